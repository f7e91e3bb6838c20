from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.clock import Clock
from agent.journal import (
    Journal,
    JournalError,
    LogAccess,
    PutOrder,
    PutProduct,
    PutSetting,
    SetOrderStatus,
    UsePass,
)
from agent.model.ids import ulid_ms

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def rows(path: Path, sql: str) -> list[tuple]:
    """Read the file with a connection of its own: what is on disk, not in our memory."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_append_returns_the_contract_envelope_with_increasing_seq(
    journal: Journal, db_path: Path
) -> None:
    first = await journal.append("door.opened", {"door": "front"})
    second = await journal.append("door.closed", {"door": "front"})

    assert list(first.to_dict()) == ["id", "store", "seq", "ts", "type", "data"]
    assert first.store == "demo-001"
    assert (first.seq, second.seq) == (1, 2)
    assert RFC3339_MS.match(first.ts)
    assert len(first.id) == 26 and first.id < second.id
    assert abs(ulid_ms(first.id) / 1000 - Clock().now()) < 60
    # Acknowledged means committed: another connection sees it already.
    assert rows(db_path, "SELECT seq, type, data FROM events") == [
        (1, "door.opened", '{"door":"front"}'),
        (2, "door.closed", '{"door":"front"}'),
    ]


async def test_append_many_is_one_transaction(journal: Journal) -> None:
    before = journal.commits
    events = await journal.append_many(
        [("sale.completed", {"n": 1}), ("stock.changed", {"barcode": "1", "delta": -1})]
    )
    assert [e.seq for e in events] == [1, 2]
    assert journal.commits == before + 1


async def test_concurrent_appends_get_distinct_seqs_in_few_commits(journal: Journal) -> None:
    before = journal.commits

    events = await asyncio.gather(*(journal.append("door.opened", {"i": i}) for i in range(5000)))

    assert sorted(e.seq for e in events) == list(range(1, 5001))
    assert journal.commits - before < 500  # group commit: far fewer commits than appends
    stored = {e.seq: e for e in await journal.events_after(0, 10_000)}
    assert all(stored[e.seq] == e for e in events)  # each caller got its own event back


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=50, deadline=None)
@given(
    data=st.dictionaries(st.text(), JSON, max_size=5),
    type_=st.text(min_size=1).filter(str.isprintable),
)
async def test_event_data_and_type_come_back_exactly(
    tmp_path_factory: pytest.TempPathFactory, data: dict, type_: str
) -> None:
    path = tmp_path_factory.mktemp("j") / "journal.db"
    async with await Journal.open(path, "demo-001", Clock()) as j:
        event = await j.append(type_, data)
        [stored] = await j.events_after(0, 10)
    assert stored == event
    assert (stored.type, stored.data) == (type_, data)


async def test_ops_commit_with_their_event_or_not_at_all(journal: Journal) -> None:
    order = {"id": "o1", "status": "pending", "pickup_code": "123456", "items": []}
    await journal.append("order.received", {"order": "o1"}, ops=[PutOrder(order)])
    await journal.append("access.granted", {"jti": "j1"}, ops=[UsePass("j1", 2e9)])

    # The same jti again: the journal itself refuses the replay, and the event that came
    # with it is not written either.
    with pytest.raises(JournalError) as err:
        await journal.append(
            "pickup.completed",
            {"order": "o1"},
            ops=[SetOrderStatus("o1", "picked_up"), UsePass("j1", 2e9)],
        )
    assert err.value.code == "conflict"
    state = await journal.load_state()
    assert state.orders["o1"]["status"] == "pending"
    assert [e.type for e in await journal.events_after(0, 10)] == [
        "order.received",
        "access.granted",
    ]


async def test_one_bad_request_does_not_fail_the_others_in_its_batch(journal: Journal) -> None:
    await journal.apply([UsePass("used", 2e9)])
    results = await asyncio.gather(
        journal.append("access.granted", {"i": 1}),
        journal.append("access.granted", {"i": 2}, ops=[UsePass("used", 2e9)]),
        journal.append("access.granted", {"i": 3}),
        journal.append("pickup.completed", {"i": 4}, ops=[SetOrderStatus("nope", "picked_up")]),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["Event", "JournalError", "Event", "JournalError"]
    assert [r.code for r in results if isinstance(r, JournalError)] == ["conflict", "not_found"]
    assert [e.data["i"] for e in await journal.events_after(0, 10)] == [1, 3]


async def test_state_survives_reopen(db_path: Path) -> None:
    order = {"id": "o1", "status": "pending", "pickup_code": "654321", "items": [{"qty": 2}]}
    async with await Journal.open(db_path, "demo-001", Clock()) as j:
        await j.apply(
            [
                PutOrder(order),
                SetOrderStatus("o1", "picked_up"),
                UsePass("jti-1", 1_900_000_000.5),
                PutSetting("business", "closed"),
                PutSetting("lockdown", {"front": True}),
                PutProduct({"barcode": "6901234567892", "name": "水", "price": 2.5}),
                LogAccess("2026-11-23T10:00:00.000Z", "front", "c1", "entry", "granted", {}),
            ]
        )
        await j.append("sale.completed", {"total": 2.5})

    async with await Journal.open(db_path, "demo-001", Clock()) as j:
        state = await j.load_state()
        log = await j.access_log()
    assert state.orders == {"o1": {**order, "status": "picked_up"}}
    assert state.used_passes == {"jti-1": 1_900_000_000.5}
    assert state.settings == {"business": "closed", "lockdown": {"front": True}}
    assert state.products["6901234567892"]["name"] == "水"
    assert state.last_seq == 1
    assert log == [
        {
            "ts": "2026-11-23T10:00:00.000Z",
            "door": "front",
            "subject": "c1",
            "scope": "entry",
            "reason": "granted",
            "detail": {},
        }
    ]
    assert rows(db_path, "SELECT id FROM orders WHERE pickup_code = '654321'") == [("o1",)]


async def test_outbox_is_confirmed_by_seq(journal: Journal) -> None:
    events = await journal.append_many([("door.opened", {"i": i}) for i in range(5)])
    assert await journal.outbox_stats() == (5, events[0].ts)

    await journal.mark_delivered([events[0].seq, events[2].seq, 999])

    assert [e.seq for e in await journal.undelivered(10)] == [2, 4, 5]
    assert [e.seq for e in await journal.undelivered(2)] == [2, 4]
    assert await journal.outbox_stats() == (3, events[1].ts)
    await journal.mark_delivered([2, 4, 5])
    assert await journal.outbox_stats() == (0, None)
    assert [e.seq for e in await journal.events_after(3, 10)] == [4, 5]


async def test_bad_input_is_refused_before_anything_is_written(journal: Journal) -> None:
    with pytest.raises(JournalError) as err:
        await journal.append("sale.completed", {"total": float("nan")})
    assert err.value.code == "bad_data"
    with pytest.raises(JournalError):
        await journal.append("sale.completed", {"at": object()})
    with pytest.raises(JournalError):
        await journal.append("sale.completed", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(JournalError, match="printable"):
        await journal.append("sale\x00completed", {})
    with pytest.raises(ValueError, match="'id'"):
        PutOrder({"status": "pending"})
    assert await journal.events_after(0, 10) == []
    assert (await journal.append("sale.completed", {"ok": True})).seq == 1


async def test_close_drains_queued_writes_and_is_idempotent(db_path: Path) -> None:
    j = await Journal.open(db_path, "demo-001", Clock())
    pending = [asyncio.ensure_future(j.append("door.opened", {"i": i})) for i in range(200)]
    await asyncio.sleep(0)  # let every append queue
    await asyncio.gather(j.close(), j.close())
    await j.close()
    assert len({e.seq for e in await asyncio.gather(*pending)}) == 200
    with pytest.raises(JournalError) as err:
        await j.append("door.opened", {})
    assert err.value.code == "closed"
    assert rows(db_path, "SELECT count(*) FROM events") == [(200,)]
