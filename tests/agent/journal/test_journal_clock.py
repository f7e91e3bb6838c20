"""The journal keeps the clock's last known good time, and journals its jumps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.clock import Clock, ClockAnchor
from agent.journal import Journal

T0 = 1_795_000_000.0


class FakeTime:
    def __init__(self, wall: float, mono: float = 500.0) -> None:
        self.wall_now, self.mono_now = wall, mono

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now


async def test_clock_never_goes_below_the_time_saved_before_a_reboot(db_path: Path) -> None:
    before = FakeTime(T0)
    async with await Journal.open(db_path, "s", Clock(wall=before.wall, mono=before.mono)) as j:
        last = await j.append("door.opened", {})
        before.wall_now += 30
        before.mono_now += 30  # closing saves the clock's time, later than the last event

    booted = FakeTime(wall=0.0, mono=3.0)  # reboot without RTC: 1970, monotonic restarted
    clock = Clock(wall=booted.wall, mono=booted.mono)
    async with await Journal.open(db_path, "s", clock) as j:
        assert clock.now() == T0 + 30
        event = await j.append("door.opened", {})
        events = await j.events_after(0, 10)

    assert event.ts >= last.ts and event.id > last.id
    jumped = [e for e in events if e.type == "clock.jumped"]
    assert [e.data["direction"] for e in jumped] == ["backward"]
    assert jumped[0].data["accepted"] is False
    assert jumped[0].data["to"].startswith("1970-01-01")


async def test_jumps_are_journaled_before_the_events_that_follow_them(db_path: Path) -> None:
    t = FakeTime(T0)
    clock = Clock(wall=t.wall, mono=t.mono)
    async with await Journal.open(db_path, "s", clock) as j:
        assert await j.check_clock() == []
        clock.observe_signed_time(T0, "pass")  # settled at T0
        t.wall_now += 3600  # NTP steps the clock forward an hour: held, not followed
        first = await j.append("door.opened", {})
        assert clock.observe_signed_time(T0 + 3600 - 10, "command")  # the hub agrees
        second = await j.append("door.opened", {})
        t.wall_now -= 7200  # someone sets it back two hours
        [jumped] = await j.check_clock()
        events = await j.events_after(0, 10)

    assert [e.type for e in events] == [
        "clock.jumped",
        "door.opened",
        "clock.jumped",
        "door.opened",
        "clock.jumped",
    ]
    assert events[0].data["status"] == "held" and events[0].data["accepted"] is False
    assert events[0].seq < first.seq
    assert first.ts == "2026-11-18T11:07:40.000Z"  # T0 + the allowance, not T0 + 1 h
    assert events[2].data == {
        "from": "2026-11-18T11:07:40.000Z",
        "to": "2026-11-18T12:06:40.000Z",
        "direction": "forward",
        "accepted": True,
        "status": "confirmed",
        "source": "command",
    }
    assert second.ts == "2026-11-18T12:06:40.000Z"
    assert jumped.data == {
        "from": "2026-11-18T12:06:40.000Z",
        "to": "2026-11-18T10:06:40.000Z",
        "direction": "backward",
        "accepted": False,
        "status": "refused",
    }


def saved_meta(db_path: Path) -> dict[str, str]:
    with sqlite3.connect(db_path) as conn:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


async def test_a_held_jump_is_never_saved_as_the_last_known_good_time(db_path: Path) -> None:
    t = FakeTime(T0)
    clock = Clock(wall=t.wall, mono=t.mono)
    async with await Journal.open(db_path, "s", clock) as j:
        t.wall_now += 10 * 365 * 86400  # a spoofed NTP reply
        await j.append("door.opened", {})
        assert float(saved_meta(db_path)["last_known_good"]) <= T0 + 60
    assert float(saved_meta(db_path)["last_known_good"]) <= T0 + 60


async def test_the_clock_anchor_is_saved_with_commits_and_carries_a_restart_on(
    db_path: Path,
) -> None:
    t = FakeTime(T0)
    clock = Clock(wall=t.wall, mono=t.mono, boot_id=lambda: "boot-1")
    async with await Journal.open(db_path, "s", clock) as j:
        clock.observe_signed_time(T0, "pass")  # settles the clock: a new anchor
        await j.append("door.opened", {})
        # Saved by that commit already, not only at close: a crash keeps it too.
        saved = ClockAnchor.from_json(saved_meta(db_path)["clock_anchor"])
        assert saved == ClockAnchor("boot-1", T0, 500.0, None, False)

    t.wall_now += 600  # the agent was stopped for ten minutes; the Pi ran on
    t.mono_now += 600
    clock = Clock(wall=t.wall, mono=t.mono, boot_id=lambda: "boot-1")
    async with await Journal.open(db_path, "s", clock) as j:
        assert clock.now() == T0 + 600  # followed at once: no jump, nothing held
        assert clock.doubts_before() is None
        assert [e.type for e in await j.events_after(0, 10)] == ["door.opened"]

    t.wall_now, t.mono_now = T0 + 600, 3.0  # a reboot: fake-hwclock restored the time
    clock = Clock(wall=t.wall, mono=t.mono, boot_id=lambda: "boot-2")
    async with await Journal.open(db_path, "s", clock):
        assert clock.doubts_before() == T0 + 600
