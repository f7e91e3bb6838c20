"""Print jobs in the journal: queued once per key, done once, reloaded after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.clock import Clock
from agent.journal import FinishPrintJob, Journal, JournalError, PutPrintJob


async def test_a_keyed_job_is_queued_once_and_finished_once(db_path: Path) -> None:
    async with await Journal.open(db_path, "demo-001", Clock()) as j:
        await j.apply(
            [PutPrintJob("J1", "printer-1", "pick_slip", b"\x1b@a", "pick_slip:o1", "o1")]
        )
        await j.apply([PutPrintJob("J2", "printer-1", "text", b"\x1b@b")])
        with pytest.raises(JournalError) as err:
            await j.apply([PutPrintJob("J3", "printer-1", "pick_slip", b"x", "pick_slip:o1")])
        assert err.value.code == "conflict"
        await j.append("print.done", {"job": "J2"}, ops=[FinishPrintJob("J2")])
        with pytest.raises(JournalError) as err:
            await j.append("print.done", {"job": "J2"}, ops=[FinishPrintJob("J2")])
        assert err.value.code == "not_found"
        assert [e.data for e in await j.events_after(0, 10)] == [{"job": "J2"}]
    async with await Journal.open(db_path, "demo-001", Clock()) as j:
        queue = await j.print_queue()
    assert [(q.id, q.payload, q.key, q.ref) for q in queue.queued] == [
        ("J1", b"\x1b@a", "pick_slip:o1", "o1")
    ]
    assert queue.keys == {"pick_slip:o1"}


def test_a_job_needs_bytes() -> None:
    with pytest.raises(ValueError, match="payload"):
        PutPrintJob("J1", "printer-1", "text", b"")
