"""The vending machine driver against the real simulator (`shopgate-sim`) over a real pty.

The simulated VMC times every answer on the wire; the driver must leave it nothing to
count as late or missing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.config.schema import VendingDevice
from agent.devices.base import DeviceOffline, DeviceOnline
from agent.devices.protocols import vmc
from agent.devices.vending import VendingMachine, VendNotStarted
from runtime.backoff import Backoff
from tests.support.pty_devices import Events, FakePort, eventually
from tests.support.sim import SimHandle, start_sim

FAST = Backoff(initial_s=0.01, cap_s=0.05)
MACHINE = "/vending/vending-1"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    handle = start_sim(tmp_path_factory.mktemp("vmc"))
    yield handle
    handle.stop()


def config(port: Path, **kw: object) -> VendingDevice:
    return VendingDevice.model_validate(
        {"kind": "vending", "id": "vending-1", "port": port, "vend_timeout_s": 5, **kw}
    )


@pytest.fixture
async def machine(sim: SimHandle, events: Events) -> AsyncIterator[VendingMachine]:
    dev = VendingMachine(config(sim.link("vending-1")), events, backoff=FAST)
    await dev.start()
    await events.wait_count(DeviceOnline, 1)
    yield dev
    await dev.stop()


def wire(sim: SimHandle) -> dict:
    return sim.get(MACHINE)["wire"]


def slot(sim: SimHandle, n: int) -> dict:
    return sim.get(MACHINE)["slots"][str(n)]


async def test_every_poll_is_answered_within_100_ms_on_the_wire(
    sim: SimHandle, machine: VendingMachine
) -> None:
    before = wire(sim)
    # Traffic while it polls: commands queued behind one another go out one per poll.
    await asyncio.gather(*(machine.set_price(n, 350) for n in (1, 2)), machine.check(4))
    await asyncio.sleep(2.0)
    after = wire(sim)
    assert after["polls"] - before["polls"] >= 8
    assert after["answered"] - before["answered"] >= after["polls"] - before["polls"]
    assert after["late"] == before["late"]
    assert after["missed"] == before["missed"]
    assert machine.counters.answer_max_us < 100_000


async def test_a_vend_succeeds_and_the_machine_has_one_less(
    sim: SimHandle, machine: VendingMachine
) -> None:
    before = slot(sim, 1)
    assert await machine.vend(1) == "success"
    assert slot(sim, 1)["stock"] == before["stock"] - 1
    last = sim.get(MACHINE)["vends"][-1]
    assert (last["slot"], last["result"]) == (1, "success")


@pytest.mark.parametrize(
    ("n", "fault", "outcome", "state"),
    [
        (6, "jam", "jammed", "fault"),
        (7, "motor", "motor", "fault"),
        (8, "no_motor", "no_motor", "absent"),
        (9, "empty", "empty", "empty"),
    ],
)
async def test_an_injected_fault_is_the_vends_outcome(
    sim: SimHandle, machine: VendingMachine, n: int, fault: str, outcome: str, state: str
) -> None:
    sim.post(f"{MACHINE}/stock", {"slot": n, "stock": 3})
    sim.post(f"{MACHINE}/fault", {"slot": n, "fault": fault})
    assert await machine.vend(n) == outcome
    assert machine.slots[n] == state
    if fault != "empty":
        assert slot(sim, n)["stock"] == 3  # nothing came out


async def test_prices_and_inventory_are_set_on_the_machine(
    sim: SimHandle, machine: VendingMachine
) -> None:
    await machine.set_price(3, 480)
    await machine.set_inventory(3, 7)
    assert slot(sim, 3)["price"] == 4.8
    assert slot(sim, 3)["stock"] == 7


async def test_slot_states_are_reported_to_listeners(
    sim: SimHandle, machine: VendingMachine
) -> None:
    seen: list[tuple[int, str]] = []
    machine.slot_listeners.append(lambda s, st: seen.append((s, st)))
    await machine.check(10)
    await eventually(lambda: (10, "empty") in seen)


async def test_a_silent_vmc_is_offline_and_a_vend_then_never_starts(
    sim: SimHandle, events: Events
) -> None:
    dev = VendingMachine(
        config(sim.link("vending-1"), vend_timeout_s=1, offline_after_ms=500), events, backoff=FAST
    )
    await dev.start()
    await events.wait_count(DeviceOnline, 1)
    vends_before = len(sim.get(MACHINE)["vends"])
    sim.post(f"{MACHINE}/mute", {"on": True})
    try:
        offline = await events.wait_count(DeviceOffline, 1, within=2.0)
        assert "no poll" in offline[0].reason
        with pytest.raises(VendNotStarted):
            await dev.vend(2)
    finally:
        sim.post(f"{MACHINE}/mute", {"on": False})
    await events.wait_count(DeviceOnline, 2)
    await asyncio.sleep(0.5)
    assert len(sim.get(MACHINE)["vends"]) == vends_before  # the buy never went out
    await dev.stop()


async def test_a_repeated_report_is_acknowledged_twice_but_acted_on_once(
    port_path: Path, events: Events
) -> None:
    """Played on a bare pty: the VMC repeats a report whose ACK it missed."""
    acks: list[bytes] = []
    deframer = vmc.Deframer()
    port = FakePort(
        port_path,
        on_bytes=lambda b: acks.extend(
            vmc.encode_frame(f) for f in deframer.feed(b) if isinstance(f, vmc.Frame)
        ),
    )
    dev = VendingMachine(config(port_path), events, backoff=FAST)
    seen: list[tuple[int, str]] = []
    dev.slot_listeners.append(lambda s, st: seen.append((s, st)))
    await dev.start()
    try:
        report = vmc.encode(vmc.SelectionStatus(9, vmc.SlotState.EMPTY, 4))
        port.write(report)
        await eventually(lambda: len(acks) == 1)
        port.write(report)
        await eventually(lambda: len(acks) == 2)
        port.write(bytes.fromhex("fa fb 02 04 0a 02 00") + b"\x00")  # bad XOR: skipped
        port.write(vmc.encode(vmc.Poll()))
        await eventually(lambda: len(acks) == 3)
        assert acks == [vmc.encode(vmc.Ack())] * 3
        assert seen == [(4, "empty")]
        assert dev.counters.duplicates == 1
        assert dev.counters.malformed == 1
    finally:
        await dev.stop()
        port.unplug()
