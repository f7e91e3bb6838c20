"""Every kind of device the simulator can run: a new kind is one file plus one line here."""

from __future__ import annotations

from shopgate_sim import lockbus, scanner
from shopgate_sim.device import DeviceKind

KINDS: dict[str, DeviceKind] = {
    "lockbus": lockbus.KIND,
    "scanner": scanner.KIND,
    # "printer": printer.KIND,   (ESC/POS over TCP 9100: a later issue)
    # "vending": vending.KIND,   (VMC on RS232: a later issue)
}
