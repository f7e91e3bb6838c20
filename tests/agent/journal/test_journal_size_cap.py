from __future__ import annotations

from pathlib import Path

from agent.clock import Clock
from agent.journal import Journal, LogAccess, UsePass
from agent.journal.maintenance import file_bytes

PAD = "x" * 1000  # ~1 KB per event: a few hundred events make a few hundred KB
CAP = 176_000  # room for the schema (its empty tables take pages too)


async def fill(j: Journal, type_: str, n: int) -> list[int]:
    events = await j.append_many([(type_, {"pad": PAD, "i": i}) for i in range(n)])
    return [e.seq for e in events]


async def test_under_the_cap_nothing_is_deleted(db_path: Path) -> None:
    async with await Journal.open(db_path, "demo-001", Clock(), max_bytes=10_000_000) as j:
        seqs = await fill(j, "door.opened", 50)
        await j.mark_delivered(seqs)
        report = await j.maintain()
        assert report.delivered_deleted == 0 and not report.over_cap
        assert len(await j.events_after(0, 1000)) == 50


async def test_delivered_events_go_first_oldest_first(db_path: Path) -> None:
    async with await Journal.open(db_path, "demo-001", Clock(), max_bytes=CAP) as j:
        delivered = await fill(j, "door.opened", 400)
        await j.mark_delivered(delivered)
        kept = await fill(j, "access.granted", 40)

        report = await j.maintain()

        remaining = [e.seq for e in await j.events_after(0, 10_000)]
        assert report.delivered_deleted > 0 and report.undelivered_dropped == 0
        assert not report.over_cap
        assert report.bytes_before > CAP >= report.bytes_after
        assert file_bytes(db_path) <= CAP  # the file really shrank
        assert set(kept) <= set(remaining)  # every undelivered event is still there
        gone = sorted(set(delivered) - set(remaining))
        assert gone == delivered[: len(gone)]  # the oldest went
        assert [
            e.type for e in await j.events_after(0, 10_000) if e.type == "journal.dropped"
        ] == []


async def test_droppable_telemetry_goes_next_and_the_drop_is_journaled(db_path: Path) -> None:
    async with await Journal.open(db_path, "demo-001", Clock(), max_bytes=CAP) as j:
        first = await fill(j, "door.opened", 150)
        sales = await fill(j, "sale.completed", 10)
        devices = await fill(j, "device.offline", 150)
        access = await fill(j, "access.granted", 10)
        pickups = await fill(j, "pickup.completed", 5)
        stock = await fill(j, "stock.changed", 5)

        report = await j.maintain()
        after = await j.events_after(0, 10_000)
        remaining = {e.seq for e in after}

        assert not report.over_cap and file_bytes(db_path) <= CAP
        assert set(sales + access + pickups + stock) <= remaining  # never dropped
        assert set(first).isdisjoint(remaining)  # oldest droppable first: all door.* went
        assert report.undelivered_dropped == sum(report.dropped_types.values())
        assert report.dropped_types["door.opened"] == 150
        dropped = [e for e in after if e.type == "journal.dropped"]
        assert len(dropped) == 1
        assert dropped[0].data == {
            "count": report.undelivered_dropped,
            "types": report.dropped_types,
        }
        assert dropped[0].seq > max(stock)  # a new seq, never a reused one
        survivors = sorted(remaining & set(devices))
        assert 0 < len(survivors) < len(devices)
        assert survivors == devices[len(devices) - len(survivors) :]  # the newest stayed


async def test_business_events_are_kept_even_over_the_cap(db_path: Path) -> None:
    async with await Journal.open(db_path, "demo-001", Clock(), max_bytes=CAP) as j:
        await fill(j, "access.granted", 200)
        await fill(j, "sale.completed", 100)
        await fill(j, "vend.completed", 50)

        report = await j.maintain()

        assert report.over_cap and report.undelivered_dropped == 0
        assert len(await j.events_after(0, 10_000)) == 350
        assert (await j.append("sale.completed", {"still": "accepted"})).seq == 351


async def test_expired_passes_and_old_access_log_are_pruned(db_path: Path) -> None:
    clock = Clock()
    now = clock.now()
    async with await Journal.open(db_path, "demo-001", clock, pass_grace=60) as j:
        await j.apply(
            [
                UsePass("long-expired", now - 3600),
                UsePass("just-expired", now - 10),  # inside the grace: still refused
                UsePass("valid", now + 3600),
                LogAccess("2020-01-01T00:00:00.000Z", "front", "c1", "entry", "granted", {}),
                LogAccess(clock.now_rfc3339(), "front", "c2", "entry", "expired", {}),
            ]
        )
        report = await j.maintain()
        state = await j.load_state()
        log = await j.access_log()
    assert (report.passes_pruned, report.access_log_pruned) == (1, 1)
    assert set(state.used_passes) == {"just-expired", "valid"}
    assert [line["subject"] for line in log] == ["c2"]
