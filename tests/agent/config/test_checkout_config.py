"""Config of self-checkout points and HID scanners: every mistake named with its line."""

from __future__ import annotations

from collections.abc import Callable

from tests.agent.config.config_files import BASE

DEVICES = """\
  - id: hid
    kind: hid_scanner
    path: /dev/input/by-id/usb-scanner-event-kbd
  - id: hid2
    kind: hid_scanner
    path: /dev/input/by-id/usb-other-event-kbd
    layout: fr
    grab: false
"""


def config(checkout: str, devices: str = DEVICES) -> str:
    return BASE.replace("doors:\n", devices + "doors:\n") + "checkout:\n" + checkout


def test_a_checkout_on_a_hid_scanner_is_valid(problems: Callable[..., list[str]]) -> None:
    text = config("  - {id: co-1, scanner: hid, listen: '0.0.0.0:8088'}\n")
    assert problems(text) == []


def test_a_checkout_names_a_scanner_of_its_own(problems: Callable[..., list[str]]) -> None:
    text = config(
        "  - {id: co-1, scanner: scan}\n"  # the door's
        "  - {id: co-2, scanner: bus}\n"  # a lock bus
        "  - {id: co-3, scanner: nope, printer: hid}\n"
        "  - {id: co-3, scanner: hid}\n"
        "  - {id: co-4, scanner: hid, pay_barcode: X, clear_barcode: X}\n"
    )
    found = problems(text)
    assert any("checkout.0.scanner: scanner 'scan' already serves a door" in p for p in found)
    assert any(
        "checkout.1.scanner: device 'bus' is a lockbus, not a scanner or hid_scanner" in p
        for p in found
    )
    assert any("checkout.2.scanner: no device 'nope'" in p for p in found)
    assert any(
        "checkout.2.printer: device 'hid' is a hid_scanner, not a printer" in p for p in found
    )
    assert any("checkout.3.id: duplicate checkout id 'co-3'" in p for p in found)
    assert any(
        "checkout.4.scanner: scanner 'hid' already serves another checkout" in p for p in found
    )
    assert any(
        "checkout.4.clear_barcode: pay_barcode and clear_barcode must differ" in p for p in found
    )


def test_bad_values_are_refused(problems: Callable[..., list[str]]) -> None:
    text = config(
        "  - {id: co-1, scanner: hid, listen: 'localhost', payment_timeout_seconds: 5}\n",
        DEVICES.replace("layout: fr", "layout: dvorak"),
    )
    found = problems(text)
    assert any("layout" in p for p in found)
    assert any("checkout.0.listen" in p for p in found)
    assert any("checkout.0.payment_timeout_seconds" in p for p in found)


def test_a_door_may_use_a_hid_scanner(problems: Callable[..., list[str]]) -> None:
    text = BASE.replace("doors:\n", DEVICES + "doors:\n").replace("scanner: scan", "scanner: hid")
    assert problems(text) == []
    assert any(
        "not a scanner" in p for p in problems(BASE.replace("scanner: scan", "scanner: bus"))
    )
