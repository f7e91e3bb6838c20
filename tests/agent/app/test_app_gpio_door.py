"""A GPIO door through the whole agent, in-process: a relay-driven strike, a reed
contact and an exit button on gpiozero's MockFactory pins, a scanner on a real pty,
a real journal. Checks what an installer would check with a multimeter: the relay
energises on a grant, drops when the door closes, and an exit press releases it."""

from __future__ import annotations

from tests.agent.app.conftest import CONTACT, EXIT, RELAY, events
from tests.support.agent import make_keys
from tests.support.pty_devices import eventually


async def test_grant_energises_the_strike_and_closing_the_door_drops_it(running):
    agent, scanner, pins = running
    relay = pins.pin(RELAY)
    assert relay.state == 0  # fail-secure strike: unpowered = locked at start
    keys = make_keys(agent.cfg.storage.dir.parent)
    scanner.write(keys.mint(scope="entry", sub="gina").encode() + b"\r\n")
    await eventually(lambda: relay.state == 1)
    pins.pin(CONTACT).drive_low()  # door opens
    await eventually(lambda: bool(events(agent, "door.opened")))
    assert events(agent, "door.opened")[0]["data"]["by"] == "grant"
    pins.pin(CONTACT).drive_high()  # door closes
    await eventually(lambda: relay.state == 0)
    await eventually(lambda: bool(events(agent, "door.locked")))
    assert not events(agent, "door.forced")


async def test_unopened_grant_relocks_after_unlock_seconds(running):
    agent, scanner, pins = running
    keys = make_keys(agent.cfg.storage.dir.parent)
    scanner.write(keys.mint(scope="entry", sub="hal").encode() + b"\r\n")
    await eventually(lambda: pins.pin(RELAY).state == 1)
    await eventually(lambda: pins.pin(RELAY).state == 0, within=3)
    await eventually(lambda: bool(events(agent, "door.locked")))
    assert events(agent, "door.locked")[-1]["data"]["why"] == "not_opened"


async def test_exit_button_releases_and_is_not_forced(running):
    agent, _, pins = running
    pins.pin(EXIT).drive_low()  # pressed
    await eventually(lambda: pins.pin(RELAY).state == 1)
    pins.pin(EXIT).drive_high()
    pins.pin(CONTACT).drive_low()
    await eventually(lambda: bool(events(agent, "door.opened")))
    assert events(agent, "door.opened")[0]["data"]["by"] == "exit"
    assert not events(agent, "door.forced")


async def test_contact_without_grant_is_forced(running):
    agent, _, pins = running
    pins.pin(CONTACT).drive_low()
    await eventually(lambda: bool(events(agent, "door.forced")))
    assert pins.pin(RELAY).state == 0
