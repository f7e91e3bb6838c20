"""The journal's side of the outbox: rejections are kept through the size cap, and
appends wake the relay."""

from __future__ import annotations

from pathlib import Path

from agent.clock import Clock
from agent.journal import Journal

PAD = "x" * 1000
CAP = 160_000


async def test_rejected_events_survive_the_size_cap_even_of_droppable_types(
    tmp_path: Path,
) -> None:
    async with await Journal.open(tmp_path / "j.db", "demo-001", Clock(), max_bytes=CAP) as j:
        rejected = await j.append_many([("door.opened", {"pad": PAD, "i": i}) for i in range(5)])
        await j.mark_rejected([e.seq for e in rejected], 400, "door.opened: unknown door")
        delivered = await j.append_many([("sale.completed", {"pad": PAD}) for _ in range(200)])
        await j.mark_delivered([e.seq for e in delivered])
        await j.append_many([("door.closed", {"pad": PAD}) for _ in range(200)])

        report = await j.maintain()

        assert report.delivered_deleted == 200  # delivered events went first
        assert report.undelivered_dropped > 0  # then droppable pending telemetry...
        kept = {e.seq for e in await j.events_after(0, 10_000)}
        assert {e.seq for e in rejected} <= kept  # ...but never a rejected event
        assert [r.event.seq for r in await j.rejected()] == [e.seq for e in rejected]
        assert {r.reason for r in await j.rejected()} == {"door.opened: unknown door"}


async def test_rejected_events_are_not_pending_and_stay_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await Journal.open(path, "demo-001", Clock()) as j:
        a, b, c = await j.append_many([("sale.completed", {"i": i}) for i in range(3)])
        await j.mark_rejected([b.seq], 422, "no such product")
        assert [e.seq for e in await j.undelivered(10)] == [a.seq, c.seq]
        summary = await j.outbox_summary()
        assert (summary.pending, summary.oldest_pending_ts, summary.rejected) == (2, a.ts, 1)
    async with await Journal.open(path, "demo-001", Clock()) as j:
        (r,) = await j.rejected()
        assert (r.event.seq, r.status, r.reason) == (b.seq, 422, "no such product")


async def test_a_delivered_event_is_never_marked_rejected(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "j.db", "demo-001", Clock()) as j:
        (e,) = await j.append_many([("sale.completed", {})])
        await j.mark_delivered([e.seq])
        await j.mark_rejected([e.seq], 400, "late answer to a retry")
        assert await j.rejected() == []
        assert (await j.outbox_summary()).pending == 0


async def test_listeners_hear_of_each_commit_with_events(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "j.db", "demo-001", Clock()) as j:
        heard: list[int] = []
        listener = lambda: heard.append(1)  # noqa: E731
        j.add_events_listener(listener)
        await j.append("sale.completed", {})
        assert heard == [1]
        await j.mark_delivered([1])  # no new event: no notification
        assert heard == [1]
        j.remove_events_listener(listener)
        await j.append("sale.completed", {})
        assert heard == [1]
