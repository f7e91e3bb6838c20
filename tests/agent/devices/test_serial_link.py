"""SerialLink: backoff, failed opens, and closing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent.devices.base import DeviceError
from agent.devices.serial_link import SerialLink
from runtime.backoff import Backoff
from tests.support.pty_devices import FakePort, eventually


@given(
    st.floats(0.001, 10),
    st.floats(0.001, 60),
    st.floats(1.0, 4.0),
    st.integers(0, 10_000),
)
def test_backoff_grows_is_capped_and_jittered(
    initial: float, cap: float, factor: float, attempt: int
) -> None:
    backoff = Backoff(initial_s=initial, cap_s=cap, factor=factor)
    delay = backoff.delay(attempt)
    ceiling = min(cap, initial * factor ** min(attempt, 64))
    assert ceiling / 2 <= delay <= ceiling


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Recorder:
    def __init__(self) -> None:
        self.ups = 0
        self.downs: list[str] = []
        self.data = bytearray()

    def link(self, port: Path) -> SerialLink:
        return SerialLink(
            "test",
            port,
            9600,
            on_data=self.data.extend,
            on_up=lambda: setattr(self, "ups", self.ups + 1),
            on_down=self.downs.append,
            backoff=Backoff(initial_s=0.005, cap_s=0.01),
        )


async def test_failed_opens_leave_nothing_open_and_report_down_once(tmp_path: Path) -> None:
    not_a_tty = tmp_path / "ttyUSB0"
    not_a_tty.write_bytes(b"")  # opens as a file, then fails as a serial port
    rec = Recorder()
    link = rec.link(not_a_tty)
    before = open_fds()
    await link.start()
    await asyncio.sleep(0.1)  # many attempts
    assert open_fds() == before
    assert len(rec.downs) == 1 and rec.ups == 0
    await link.stop()
    await link.stop()
    assert open_fds() == before


async def test_write_when_closed_raises_and_stop_closes_the_port(tmp_path: Path) -> None:
    rec = Recorder()
    link = rec.link(tmp_path / "missing")
    try:
        link.write(b"x")
    except DeviceError as exc:
        assert "missing" in str(exc)
    else:
        raise AssertionError("write on a closed link must raise")
    port = FakePort(tmp_path / "tty")
    link = rec.link(port.path)
    await link.start()
    assert link.connected and rec.ups == 1
    link.write(b"ping")
    port.write(b"pong")
    await eventually(lambda: port.received == b"ping" and rec.data == b"pong")
    await link.stop()
    assert not link.connected and rec.downs == []  # a deliberate stop is no outage
    port.unplug()
