"""`shopgate-agent relock`: put every GPIO door relay in its resting state, after the agent.

systemd runs it as the agent unit's ExecStopPost, whenever the agent has stopped: a
clean stop, a crash, a watchdog kill. A GPIO strike is released by an energised relay
and relocked only by a timer in the agent's process; if that process dies mid-grant,
whoever holds the line afterwards may keep it energised (the pigpio daemon does, and a
kernel or board that leaves a freed line at its last level), and the door stays open.
So every GPIO lock's relay is switched OFF:
- a strike (fail_safe: false, fail-secure) is then locked;
- a maglock (fail_safe: true) is then unpowered, that is OPEN, on purpose: while the
  agent is down nothing reads the door's exit button, and a maglock held energised then
  would lock people in. The unit's OnFailure alert reports an agent that stays down.
Lock boards (lockbus) need nothing: a board pulses its latch for its own short time
and the latch relocks mechanically when the door shuts.

A line still held by a running agent is refused by the GPIO library: that door is
reported and the exit status is 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.schema import AgentConfig, GpioDevice, GpioLock
from agent.devices.base import DeviceError
from agent.devices.gpio import make_pin_factory


@dataclass(frozen=True, slots=True)
class Relocked:
    door: str
    line: str  # what happened, for one line of output
    ok: bool


def relock(cfg: AgentConfig, factories: Mapping[str, Any] | None = None) -> list[Relocked]:
    """Switch off the relay of every door with a GPIO lock; one Relocked per door.
    `factories`: gpiozero pin factories by device id (tests pass a MockFactory);
    otherwise each device's configured `pin_factory`."""
    from gpiozero import DigitalOutputDevice
    from gpiozero.exc import GPIOZeroError

    gpio = {d.id: d for d in cfg.devices if isinstance(d, GpioDevice)}
    made: dict[str, Any] = {}
    report: list[Relocked] = []
    try:
        for door in cfg.doors:
            lock = door.lock
            if not isinstance(lock, GpioLock):
                report.append(Relocked(door.id, "lock board: relocks by itself", True))
                continue
            try:
                if lock.device not in made:
                    given = (factories or {}).get(lock.device)
                    made[lock.device] = given or make_pin_factory(gpio[lock.device].pin_factory)
                relay = DigitalOutputDevice(
                    lock.pin,
                    active_high=lock.active_high,
                    initial_value=False,  # off from the moment the line is claimed
                    pin_factory=made[lock.device],
                )
            except (DeviceError, GPIOZeroError, ValueError, OSError) as exc:
                report.append(Relocked(door.id, f"pin {lock.pin}: NOT switched: {exc}", False))
                continue
            relay.off()
            relay.close()
            state = (
                "maglock unpowered: OPEN until the agent runs again"
                if lock.fail_safe
                else "strike unpowered: locked"
            )
            report.append(Relocked(door.id, f"pin {lock.pin}: relay off, {state}", True))
    finally:
        for device_id, factory in made.items():
            if factory is not None and device_id not in (factories or {}):
                factory.close()
    return report
