"""The journal keeps the clock's last known good time, and journals its jumps."""

from __future__ import annotations

from pathlib import Path

from agent.clock import Clock
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
    async with await Journal.open(db_path, "s", Clock(wall=t.wall, mono=t.mono)) as j:
        assert await j.check_clock() == []
        t.wall_now += 3600  # NTP steps the clock forward an hour
        first = await j.append("door.opened", {})
        t.wall_now -= 7200  # someone sets it back two hours
        [jumped] = await j.check_clock()
        events = await j.events_after(0, 10)

    assert [e.type for e in events] == ["clock.jumped", "door.opened", "clock.jumped"]
    assert events[0].data["direction"] == "forward" and events[0].data["accepted"] is True
    assert events[0].seq < first.seq
    assert first.ts == "2026-11-18T12:06:40.000Z"
    assert jumped.data == {
        "from": "2026-11-18T12:06:40.000Z",
        "to": "2026-11-18T10:06:40.000Z",
        "direction": "backward",
        "accepted": False,
    }
