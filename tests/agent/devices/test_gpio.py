"""GPIO relays, contacts and exit buttons on gpiozero's own MockFactory."""

from __future__ import annotations

import asyncio
import importlib.util
import threading

import pytest

from agent.config.schema import GpioDevice
from agent.devices.base import ContactChanged, DeviceError, DeviceOnline, ExitRequested
from agent.devices.gpio import GpioBoard
from agent.devices.registry import build_device
from tests.support.pty_devices import Events

BOUNCE = 0.01


@pytest.fixture
async def board(events: Events):
    dev = GpioBoard(
        GpioDevice(kind="gpio", id="io", pin_factory="mock"), events, bounce_time=BOUNCE
    )
    yield dev
    await dev.stop()
    await dev.stop()  # twice is fine


# (active_high, fail_safe) -> pin level while locked; unlocked is the other level.
RELAYS = {
    (True, False): 0,  # strike on an active-high relay board: energise (high) to release
    (False, False): 1,  # strike on an active-low board: low energises, so idle high
    (True, True): 1,  # maglock: held energised (high) while locked
    (False, True): 0,  # maglock on an active-low board: held low
}


@pytest.mark.parametrize(("active_high", "fail_safe"), list(RELAYS))
async def test_relay_levels_at_start_unlock_and_relock(
    board: GpioBoard, active_high: bool, fail_safe: bool
) -> None:
    locked_level = RELAYS[(active_high, fail_safe)]
    lock = board.relay_lock(17, active_high=active_high, fail_safe=fail_safe)
    pin = board.pin_factory.pin(17)
    assert pin.state == locked_level and lock.locked  # locked before anything starts
    await board.start()
    assert pin.state == locked_level
    await lock.unlock(60)
    assert pin.state == 1 - locked_level and not lock.locked
    await lock.relock()
    assert pin.state == locked_level and lock.locked


async def test_unlock_relocks_by_itself_after_the_seconds(board: GpioBoard) -> None:
    lock = board.relay_lock(17)
    pin = board.pin_factory.pin(17)
    await board.start()
    await lock.unlock(0.05)
    assert pin.state == 1
    await asyncio.sleep(0.03)
    await lock.unlock(0.1)  # a second grant restarts the time
    await asyncio.sleep(0.05)
    assert pin.state == 1
    await asyncio.sleep(0.1)
    assert pin.state == 0


async def test_relock_before_the_time_is_up_stays_locked(board: GpioBoard) -> None:
    lock = board.relay_lock(17, fail_safe=True)
    pin = board.pin_factory.pin(17)
    await board.start()
    await lock.unlock(0.05)
    await lock.relock()
    await asyncio.sleep(0.08)
    # Claimed locked (held), released, held again; the cancelled timer switched nothing.
    assert [s.state for s in pin.states[1:]] == [True, False, True]


async def test_contact_reports_initial_state_then_changes_only(
    board: GpioBoard, events: Events
) -> None:
    # Switch to ground with the pull-up: the input is active (low) while the door is open.
    board.watch_input(27, "front door", pull_up=True, active_when_open=True)
    pin = board.pin_factory.pin(27)
    await board.start()
    assert events.items == [DeviceOnline("io"), ContactChanged("io", "gpio27", open=False)]
    pin.drive_low()
    await events.wait_count(ContactChanged, 2)
    pin.drive_high()
    await events.wait_count(ContactChanged, 3)
    assert [e.open for e in events.of(ContactChanged)] == [False, True, False]


async def test_a_bouncing_contact_reports_the_state_it_settles_in_once(
    board: GpioBoard, events: Events
) -> None:
    board.watch_input(27, pull_up=True, active_when_open=True)
    pin = board.pin_factory.pin(27)
    await board.start()
    for _ in range(5):
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    await events.wait_count(ContactChanged, 2)
    await asyncio.sleep(BOUNCE * 5)
    assert [e.open for e in events.of(ContactChanged)] == [False, True]


async def test_normally_closed_contact_is_inverted(board: GpioBoard, events: Events) -> None:
    board.watch_input(5, pull_up=True, active_when_open=False)
    pin = board.pin_factory.pin(5)
    await board.start()
    assert events.of(ContactChanged) == [ContactChanged("io", "gpio5", open=True)]
    pin.drive_low()
    await events.wait_count(ContactChanged, 2)
    assert events.of(ContactChanged)[-1].open is False


async def test_exit_button_reports_each_press_not_release(board: GpioBoard, events: Events) -> None:
    board.watch_input(22, "exit", pull_up=True, active_when_open=True, kind="button")
    pin = board.pin_factory.pin(22)
    await board.start()
    assert events.items == [DeviceOnline("io")]  # a button has no initial state to report
    pin.drive_low()
    await events.wait_count(ExitRequested, 1)
    pin.drive_high()
    await asyncio.sleep(BOUNCE * 3)
    assert events.of(ExitRequested) == [ExitRequested("io", "gpio22")]
    pin.drive_low()
    await events.wait_count(ExitRequested, 2)


async def test_edges_from_another_thread_reach_the_sink_on_the_loop(
    board: GpioBoard, events: Events
) -> None:
    board.watch_input(27)
    board.watch_input(22, kind="button")
    await board.start()
    # gpiozero calls back on the thread that saw the edge; here, a foreign thread.
    driver = threading.Thread(
        target=lambda: (
            board.pin_factory.pin(27).drive_low(),
            board.pin_factory.pin(22).drive_low(),
        )
    )
    driver.start()
    driver.join()
    await events.wait_count(ExitRequested, 1)
    await events.wait_count(ContactChanged, 2)
    assert events.threads == {threading.get_ident()}


async def test_registry_builds_a_gpio_board(events: Events) -> None:
    dev = build_device(GpioDevice(kind="gpio", id="io", pin_factory="mock"), events)
    assert isinstance(dev, GpioBoard)
    await dev.start()
    assert dev.online
    await dev.stop()


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None, reason="lgpio is installed")
async def test_missing_gpio_library_names_what_to_install(events: Events) -> None:
    dev = GpioBoard(GpioDevice(kind="gpio", id="io", pin_factory="lgpio"), events)
    with pytest.raises(DeviceError, match="apt install python3-lgpio"):
        dev.relay_lock(17)
    with pytest.raises(DeviceError, match="apt install python3-lgpio"):
        await dev.start()
