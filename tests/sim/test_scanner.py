from __future__ import annotations

import os
import time

import pytest
import serial

from tests.support.sim import SimHandle, wait_until


def test_a_scan_arrives_as_one_crlf_line(sim: SimHandle) -> None:
    with sim.open_serial("scanner-front") as port:
        sim.post("/scanners/scanner-front/scan", {"code": "SG1.eyJhbGciOi-_x.sig"})
        assert port.read_until(b"\n") == b"SG1.eyJhbGciOi-_x.sig\r\n"
        sim.post("/scanners/scanner-front/scan", {"code": "取件 123456"})
        assert port.read_until(b"\n") == "取件 123456\r\n".encode()
        port.timeout = 0.2
        assert port.read(1) == b""  # nothing more than the lines


def test_the_port_can_be_closed_and_reopened_between_scans(sim: SimHandle) -> None:
    with sim.open_serial("scanner-front") as port:
        sim.post("/scanners/scanner-front/scan", {"code": "first"})
        assert port.read_until(b"\n") == b"first\r\n"
    with sim.open_serial("scanner-front") as port:
        sim.post("/scanners/scanner-front/scan", {"code": "second"})
        assert port.read_until(b"\n") == b"second\r\n"


def test_unplug_breaks_the_open_port_and_replug_brings_a_new_pty_under_the_link(
    fresh_sim: SimHandle,
) -> None:
    sim = fresh_sim
    old_path = sim.devices["scanner-front"]["path"]
    port = sim.open_serial(
        "scanner-front", timeout=0.5
    )  # held open: the old pty number stays taken
    try:
        started = time.monotonic()
        assert sim.post("/devices/scanner-front/unplug", {"seconds": 0.6})
        assert sim.read_devices()["scanner-front"]["path"] is None
        assert sim.get("/devices")["scanner-front"]["path"] is None
        assert not os.path.lexists(sim.link("scanner-front"))
        assert not os.path.exists(old_path)
        with pytest.raises(serial.SerialException):
            port.read(1)
        status, reply = sim.request("POST", "/scanners/scanner-front/scan", {"code": "x"})
        assert status == 409 and "unplugged" in reply["error"]
        status, _ = sim.request("POST", "/devices/scanner-front/unplug", {"seconds": 1})
        assert status == 409

        def replugged() -> str | None:
            return (sim.read_devices() or {}).get("scanner-front", {}).get("path")

        new_path = wait_until(replugged, 5, "the scanner to come back")
        assert time.monotonic() - started >= 0.6
        assert new_path != old_path
        assert os.readlink(sim.link("scanner-front")) == new_path
        # The other device was not touched.
        assert sim.read_devices()["lockbus-1"] == sim.devices["lockbus-1"]
    finally:
        port.close()
    with sim.open_serial("scanner-front") as port:
        sim.post("/scanners/scanner-front/scan", {"code": "after replug"})
        assert port.read_until(b"\n") == b"after replug\r\n"


def test_a_raw_scan_sends_the_content_as_it_is_then_the_terminator(sim: SimHandle) -> None:
    """A QR whose content holds line breaks: the scanner does not clean them up."""
    content = "111111\r222222\n333333\r\n444444"
    with sim.open_serial("scanner-front") as port:
        reply = sim.post("/scanners/scanner-front/scan", {"code": content, "raw": True})
        want = content.encode() + b"\r\n"
        assert reply == {"bytes": len(want)}
        got = b""
        while not got.endswith(b"444444\r\n"):
            chunk = port.read(len(want) - len(got))
            assert chunk, f"only {got!r} arrived"
            got += chunk
        assert got == want
        port.timeout = 0.2
        assert port.read(1) == b""


def test_line_breaks_without_raw_are_refused_and_nothing_is_sent(sim: SimHandle) -> None:
    with sim.open_serial("scanner-front", timeout=0.2) as port:
        status, reply = sim.request(
            "POST", "/scanners/scanner-front/scan", {"code": "111111\r222222"}
        )
        assert status == 400 and "raw" in reply["error"]
        status, reply = sim.request(
            "POST", "/scanners/scanner-front/scan", {"code": "1", "raw": "yes"}
        )
        assert status == 400 and "raw" in reply["error"]
        assert port.read(1) == b""
