"""A stuck locker compartment in the simulator, seen by a master on the real pty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import serial

from agent.devices.protocols.lockboard import LockStatus, OpenLock, QueryAll
from tests.sim.test_lockbus import BUS, ask, channel
from tests.support.sim import SimHandle


@pytest.fixture
def bus(sim: SimHandle) -> Iterator[serial.Serial]:
    with sim.open_serial("lockbus-1", timeout=1.0) as port:
        yield port


def test_a_stuck_compartment_takes_open_but_stays_shut(sim: SimHandle, bus: serial.Serial) -> None:
    fault = f"{BUS}/boards/2/channels/9/fault"
    before = channel(sim, 2, 9)["unlock_count"]
    reply = sim.post(fault, {"stuck": True})
    assert reply["stuck"] is True and reply["channel"] == 9
    assert ask(bus, OpenLock(2, 9)) == LockStatus(2, 9, locked=True)
    after = channel(sim, 2, 9)
    assert after["unlock_count"] == before + 1 and after["locked"] is True
    assert ask(bus, QueryAll(2)).is_locked(9) is True

    sim.post(fault, {"stuck": False})
    assert ask(bus, OpenLock(2, 9)) == LockStatus(2, 9, locked=False)
    sim.post(f"{BUS}/boards/2/channels/9/contact", {"open": False})


def test_fault_requests_are_checked(sim: SimHandle) -> None:
    assert sim.request("POST", f"{BUS}/boards/2/channels/13/fault", {"stuck": True})[0] == 404
    assert sim.request("POST", f"{BUS}/boards/7/channels/1/fault", {"stuck": True})[0] == 404
    status, body = sim.request("POST", f"{BUS}/boards/2/channels/1/fault", {"stuck": "yes"})
    assert status == 400 and "stuck" in body["error"]
