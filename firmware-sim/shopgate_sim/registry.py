"""Every kind of device the simulator can run: a new kind is one file plus one line here."""

from __future__ import annotations

from shopgate_sim import lockbus, printer, scanner, vending
from shopgate_sim.device import DeviceKind

KINDS: dict[str, DeviceKind] = {
    "lockbus": lockbus.KIND,
    "scanner": scanner.KIND,
    "printer": printer.KIND,
    "vending": vending.KIND,
}
