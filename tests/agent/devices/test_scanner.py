"""Scanner/keypad driver on a real pty: line endings, bad input, unplug and replug."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from agent.config.schema import KeypadDevice, ScannerDevice
from agent.devices.base import DeviceOffline, DeviceOnline, ScanRead
from agent.devices.registry import build_device
from agent.devices.scanner import Scanner
from runtime.backoff import Backoff
from tests.support.pty_devices import Events, FakePort

FAST = Backoff(initial_s=0.01, cap_s=0.05)


def lines(events: Events) -> list[str]:
    return [e.line for e in events.of(ScanRead)]


@pytest.fixture
async def scanner(port_path: Path, events: Events):
    port = FakePort(port_path)
    dev = Scanner(ScannerDevice(kind="scanner", id="scan1", port=port_path), events, backoff=FAST)
    await dev.start()
    yield dev, port
    await dev.stop()
    port.unplug()


async def test_cr_lf_and_crlf_each_end_one_line(scanner, events: Events) -> None:
    dev, port = scanner
    assert dev.online and events.of(DeviceOnline) == [DeviceOnline("scan1")]
    port.write(b"one\rtwo\nthree\r\nfour\n\r\n\r  \r\n five \r")
    await events.wait_count(ScanRead, 4)
    assert lines(events) == ["one", "two", "three", "four", "five"][: len(lines(events))]
    await events.wait_count(ScanRead, 5)
    assert lines(events) == ["one", "two", "three", "four", "five"]
    assert all(e.device == "scan1" for e in events.of(ScanRead))


async def test_a_line_split_across_chunks_is_one_scan(scanner, events: Events) -> None:
    _, port = scanner
    port.write(b"SG1.eyJ")
    await _settle()
    assert lines(events) == []
    port.write(b"hbGciOi\r")
    port.write(b"\n")
    await events.wait_count(ScanRead, 1)
    await _settle()
    assert lines(events) == ["SG1.eyJhbGciOi"]


async def test_read_ns_is_when_the_line_arrived(scanner, events: Events) -> None:
    _, port = scanner
    before = time.perf_counter_ns()
    port.write(b"123456\n")
    [scan] = await events.wait_count(ScanRead, 1)
    assert before < scan.read_ns <= time.perf_counter_ns()


async def test_overlong_line_is_dropped_logged_and_the_next_line_still_read(
    scanner, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    _, port = scanner
    caplog.set_level(logging.WARNING)
    secret = b"X" * 5000
    for i in range(0, len(secret), 1000):  # arrives in chunks, as from a real port
        port.write(secret[i : i + 1000])
        await _settle(0.005)
    port.write(b"\nafter\n")
    await events.wait_count(ScanRead, 1)
    assert lines(events) == ["after"]
    assert "dropped a 5000-byte line" in caplog.text
    assert "XXXX" not in caplog.text


async def test_non_utf8_bytes_are_replaced_and_logged_without_the_text(
    scanner, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    _, port = scanner
    caplog.set_level(logging.WARNING)
    port.write(b"code\xff\xfe42\n")
    [scan] = await events.wait_count(ScanRead, 1)
    assert scan.line == "code\ufffd\ufffd42"
    assert "not UTF-8" in caplog.text
    assert "code" not in caplog.text.replace("scan1", "")


async def test_unplug_reports_offline_and_replug_resumes_without_restart(
    scanner, events: Events
) -> None:
    dev, port = scanner
    port.write(b"before\n")
    await events.wait_count(ScanRead, 1)
    port.write(b"half a li")  # lost with the unplug
    await _settle()
    old_target = port_path_target(port)
    # Made while the old one still exists, so it surely gets another /dev/pts number.
    replacement = os.openpty()
    port.unplug()
    [offline] = await events.wait_count(DeviceOffline, 1)
    assert offline.device == "scan1" and str(port.path) in offline.reason
    assert not dev.online
    await _settle(0.1)  # several failed reopen attempts: still one DeviceOffline
    port.plug(replacement)
    assert port_path_target(port) != old_target
    await events.wait_count(DeviceOnline, 2)
    port.write(b"after\n")
    await events.wait_count(ScanRead, 2)
    assert lines(events) == ["before", "after"]
    assert [type(e).__name__ for e in events.items if not isinstance(e, ScanRead)] == [
        "DeviceOnline",
        "DeviceOffline",
        "DeviceOnline",
    ]


async def test_missing_port_at_start_is_offline_once_then_online_when_it_appears(
    port_path: Path, events: Events
) -> None:
    dev = Scanner(ScannerDevice(kind="scanner", id="scan1", port=port_path), events, backoff=FAST)
    await dev.start()
    try:
        [offline] = events.of(DeviceOffline)
        assert "cannot open" in offline.reason and str(port_path) in offline.reason
        await _settle(0.1)
        assert len(events.items) == 1
        port = FakePort(port_path)
        await events.wait_count(DeviceOnline, 1)
        port.write(b"hello\r\n")
        await events.wait_count(ScanRead, 1)
    finally:
        await dev.stop()
        await dev.stop()  # twice is fine
    port.unplug()


async def test_stop_before_start_and_twice_is_fine(port_path: Path, events: Events) -> None:
    dev = Scanner(ScannerDevice(kind="scanner", id="s", port=port_path), events)
    await dev.stop()
    await dev.stop()
    assert events.items == []


async def test_keypad_kind_is_built_by_the_registry_and_reads_lines(
    port_path: Path, events: Events
) -> None:
    port = FakePort(port_path)
    dev = build_device(KeypadDevice(kind="keypad", id="pad1", port=port_path), events)
    assert isinstance(dev, Scanner)
    await dev.start()
    try:
        port.write(b"123456\r")
        [scan] = await events.wait_count(ScanRead, 1)
        assert scan == ScanRead("pad1", "123456", scan.read_ns)
    finally:
        await dev.stop()
        port.unplug()


async def test_stopped_scanner_releases_the_port(port_path: Path, events: Events) -> None:
    port = FakePort(port_path)
    cfg = ScannerDevice(kind="scanner", id="s", port=port_path)
    first = Scanner(cfg, events)
    await first.start()
    await first.stop()
    # The port is opened exclusively: a second driver can only get it if the first let go.
    second = Scanner(cfg, events)
    await second.start()
    try:
        assert second.online
    finally:
        await second.stop()
        port.unplug()


def port_path_target(port: FakePort) -> str:
    return str(port.path.resolve())


async def _settle(seconds: float = 0.03) -> None:
    import asyncio

    await asyncio.sleep(seconds)
