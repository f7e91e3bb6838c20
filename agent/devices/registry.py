"""Which driver serves which device `kind`: one line per kind, imported on first use.

Adding a device kind is one new driver file plus one line in DRIVERS (and its config
model in agent/config/schema.py). Nothing registers itself on import.
"""

from __future__ import annotations

import importlib

from agent.config.schema import DeviceConfig
from agent.devices.base import Device, DeviceError, EventSink

DRIVERS: dict[str, str] = {
    "lockbus": "agent.devices.lockbus:LockBus",
    "scanner": "agent.devices.scanner:Scanner",
    "keypad": "agent.devices.scanner:Scanner",
    "gpio": "agent.devices.gpio:GpioBoard",
    "printer": "agent.devices.printer:Printer",
    "vending": "agent.devices.vending:VendingMachine",
    "hid_scanner": "agent.devices.hid_scanner:HidScanner",
}


def driver_class(kind: str) -> type[Device]:
    try:
        target = DRIVERS[kind]
    except KeyError:
        raise DeviceError(
            f"no driver for device kind {kind!r} (known: {', '.join(DRIVERS)})"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(cls, Device), target
    return cls


def build_device(cfg: DeviceConfig, sink: EventSink) -> Device:
    """The driver for one configured device, not started yet."""
    # Every driver takes (its config, the sink); Device, the ABC, declares no __init__.
    return driver_class(cfg.kind)(cfg, sink)  # type: ignore[call-arg]
