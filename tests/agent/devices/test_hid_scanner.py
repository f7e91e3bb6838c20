"""The HID scanner driver, reading kernel input events through python-evdev.

This sandbox has no /dev/uinput and no /dev/input (checked: the kernel has no uinput
and no input devices), so no virtual keyboard can be made. What runs here instead is as
real as it gets without one: the "scanner" writes genuine `struct input_event` records
(what the kernel's evdev hands a reader) into a real pipe, and the driver reads them
with python-evdev's own C reader (EventIO.read) on a non-blocking fd in the loop. The
real open path (evdev.InputDevice + EVIOCGRAB) is exercised on a missing node and on a
node that is not an input device. Grabbing a real device is left to hardware.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path

import pytest
from evdev.eventio import EventIO

from agent.config.schema import HidScannerDevice
from agent.devices.base import DeviceEvent, DeviceOffline, DeviceOnline, ScanRead
from agent.devices.hid_scanner import EventSource, HidScanner
from agent.devices.protocols.keyboard_wedge import FR, US, Layout, encode
from agent.devices.registry import build_device
from runtime.backoff import Backoff
from tests.support.pty_devices import Events

FAST = Backoff(initial_s=0.02, cap_s=0.05)
INPUT_EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux
EV_SYN = 0


class PipeDevice(EventIO):
    """python-evdev's event reader on a pipe's read end."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


class FakeKeyboard:
    """The scanner's side: writes input_event records; unplug closes the pipe."""

    def __init__(self) -> None:
        self.plugged = False
        self._w = -1
        self.opens: list[tuple[Path, bool]] = []

    def plug(self) -> None:
        self.plugged = True

    def unplug(self) -> None:
        self.plugged = False
        os.close(self._w)
        self._w = -1

    def open(self, path: Path, grab: bool) -> EventSource:
        if not self.plugged:
            raise FileNotFoundError(2, "No such file or directory")
        self.opens.append((path, grab))
        r, self._w = os.pipe()
        os.set_blocking(r, False)
        return PipeDevice(r)

    def type(
        self, text: str, layout: Layout = US, *, chunked: bool = False, raw: bool = False
    ) -> None:
        now = time.time()
        sec, usec = int(now), int(now % 1 * 1e6)
        records = []
        for type_, code, value in encode(text, layout, raw=raw):
            records.append(INPUT_EVENT.pack(sec, usec, type_, code, value))
            records.append(INPUT_EVENT.pack(sec, usec, EV_SYN, 0, 0))
        if chunked:  # one report at a time, as a slow USB poll delivers them
            for rec in records:
                os.write(self._w, rec)
        else:
            os.write(self._w, b"".join(records))


def scans(events: list[DeviceEvent]) -> list[str]:
    return [e.line for e in events if isinstance(e, ScanRead)]


def cfg(path: Path, **kw: object) -> HidScannerDevice:
    return HidScannerDevice.model_validate(
        {"kind": "hid_scanner", "id": "hid-1", "path": path, **kw}
    )


async def test_scans_become_lines_and_the_device_is_grabbed(tmp_path: Path) -> None:
    kb = FakeKeyboard()
    kb.plug()
    events = Events()
    scanner = HidScanner(cfg(tmp_path / "kbd"), events, backoff=FAST, opener=kb.open)
    await scanner.start()
    try:
        assert events.items == [DeviceOnline("hid-1")] and scanner.online
        assert kb.opens == [(tmp_path / "kbd", True)]
        kb.type("6901234567892")
        kb.type("eyJhbGciOiJFZERTQSJ9.e30.sig-_", chunked=True)
        await events.wait_for(lambda ev: len(scans(ev)) == 2)
        assert scans(events.items) == ["6901234567892", "eyJhbGciOiJFZERTQSJ9.e30.sig-_"]
        assert all(e.device == "hid-1" for e in events.items)
    finally:
        await scanner.stop()
        await scanner.stop()  # twice is fine


async def test_a_qr_holding_line_breaks_types_several_lines(tmp_path: Path) -> None:
    """What a wedge scanner does with a crafted QR: each CR or LF is an Enter, so one
    read becomes several lines for the door (which counts each against its limits)."""
    kb = FakeKeyboard()
    kb.plug()
    events = Events()
    scanner = HidScanner(cfg(tmp_path / "kbd"), events, backoff=FAST, opener=kb.open)
    await scanner.start()
    try:
        kb.type("111111\r222222\r\n333333\n", raw=True)
        await events.wait_for(lambda ev: len(scans(ev)) == 3)
        assert scans(events.items) == ["111111", "222222", "333333"]
        with pytest.raises(ValueError, match="cannot type"):
            encode("111111\r222222", US)  # not raw: a line break is no key of the layout
    finally:
        await scanner.stop()


async def test_the_configured_layout_decodes(tmp_path: Path) -> None:
    kb = FakeKeyboard()
    kb.plug()
    events = Events()
    scanner = HidScanner(cfg(tmp_path / "kbd", layout="fr", grab=False), events, opener=kb.open)
    await scanner.start()
    try:
        kb.type("Az@09", FR)
        await events.wait_for(lambda ev: scans(ev))
        assert scans(events.items) == ["Az@09"] and kb.opens[0][1] is False
    finally:
        await scanner.stop()


async def test_unplug_goes_offline_drops_the_partial_scan_and_replug_reads_again(
    tmp_path: Path,
) -> None:
    kb = FakeKeyboard()
    kb.plug()
    events = Events()
    scanner = HidScanner(cfg(tmp_path / "kbd"), events, backoff=FAST, opener=kb.open)
    await scanner.start()
    try:
        # Half a scan, then the cable comes out.
        os.write(kb._w, b"".join(INPUT_EVENT.pack(0, 0, *ev) for ev in encode("123", US)[:4]))
        await asyncio.sleep(0.05)
        kb.unplug()
        await events.wait_for(lambda ev: isinstance(ev[-1], DeviceOffline))
        assert not scanner.online
        await asyncio.sleep(0.15)  # retries meanwhile find nothing: no second event
        assert [type(e) for e in events.items] == [DeviceOnline, DeviceOffline]
        kb.plug()
        await events.wait_for(lambda ev: isinstance(ev[-1], DeviceOnline))
        kb.type("456")
        await events.wait_for(lambda ev: scans(ev))
        assert scans(events.items) == ["456"]
    finally:
        await scanner.stop()


async def test_a_missing_node_is_offline_with_the_reason(
    tmp_path: Path,
) -> None:
    events = Events()
    scanner = build_device(cfg(tmp_path / "by-id-kbd"), events)
    assert isinstance(scanner, HidScanner)
    await scanner.start()
    try:
        assert len(events.items) == 1 and isinstance(events.items[0], DeviceOffline)
        assert "No such file or directory" in events.items[0].reason
        assert str(tmp_path / "by-id-kbd") in events.items[0].reason
    finally:
        await scanner.stop()


async def test_a_node_that_is_no_input_device_is_refused_clearly(tmp_path: Path) -> None:
    link = tmp_path / "kbd"
    link.symlink_to("/dev/null")  # what a wrong by-id link would point at
    events = Events()
    scanner = HidScanner(cfg(link), events, backoff=FAST)
    await scanner.start()
    try:
        assert isinstance(events.items[0], DeviceOffline)
        assert "is not an input event device" in events.items[0].reason
        assert "-> /dev/null" in events.items[0].reason
    finally:
        await scanner.stop()


@pytest.mark.skipif(not os.path.exists("/dev/uinput"), reason="no /dev/uinput here")
async def test_a_virtual_keyboard_through_the_kernel(tmp_path: Path) -> None:
    # Runs where uinput exists (a Pi, a CI VM): the whole path through the kernel.
    from evdev import UInput, ecodes

    keys = sorted({code for _, code, _ in encode("0123456789AZaz", US)} | {ecodes.KEY_ENTER})
    with UInput({ecodes.EV_KEY: keys}, name="shopgate test scanner") as ui:
        await asyncio.sleep(0.3)  # udev creates the node
        events = Events()
        scanner = HidScanner(cfg(Path(ui.device.path)), events, backoff=FAST)
        await scanner.start()
        try:
            for type_, code, value in encode("6901234567892", US):
                ui.write(type_, code, value)
                ui.syn()
            await events.wait_for(lambda ev: scans(ev))
            assert scans(events.items) == ["6901234567892"]
        finally:
            await scanner.stop()
