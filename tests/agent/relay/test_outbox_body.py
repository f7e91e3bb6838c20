"""The request body SQLite builds for a batch is exactly the contract's envelopes."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.clock import Clock
from agent.journal import Journal

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
datas = st.dictionaries(st.text(), json_values, max_size=5)
types = st.text(min_size=1, max_size=20).filter(str.isprintable)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(types, datas), min_size=1, max_size=8), st.integers(1, 8))
def test_the_batch_body_equals_the_events_to_dict(items: list[Any], limit: int) -> None:
    async def check() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            async with await Journal.open(Path(tmp) / "j.db", "demo-001", Clock()) as j:
                events = await j.append_many(items)
                await j.mark_delivered([events[0].seq])  # a gap the batch must skip
                pending = events[1:]
                batch = await j.outbox_batch(0, limit)
                assert batch.seqs == [e.seq for e in pending[:limit]]
                body = json.loads(batch.body)
                assert body == {"events": [e.to_dict() for e in pending[:limit]]}
                rest = await j.outbox_batch(pending[0].seq if pending else 0, 100)
                assert rest.seqs == [e.seq for e in pending[1:]]

    asyncio.run(check())


async def test_an_empty_outbox_is_an_empty_batch(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "j.db", "demo-001", Clock()) as j:
        batch = await j.outbox_batch(0, 10)
        assert batch.seqs == [] and json.loads(batch.body) == {"events": []}
