"""The simulated receipt printer, driven over real TCP with hand-written ESC/POS bytes
(the Epson reference's, not the agent's encoder), read back through the control API."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
import zxingcpp
from PIL import Image

from tests.support.inproc_agent import start_sim_with
from tests.support.sim import SimHandle, start_sim, wait_until

P = "/printers/printer-1"
INIT, CN_ON = b"\x1b@", b"\x1c&"
QR_123456 = (
    b"\x1d(k\x04\x00\x31\x41\x32\x00"  # model 2
    b"\x1d(k\x03\x00\x31\x43\x05"  # module 5 dots
    b"\x1d(k\x03\x00\x31\x45\x31"  # level M
    b"\x1d(k\x09\x00\x31\x50\x30123456"  # store 6 bytes
    b"\x1d(k\x03\x00\x31\x51\x30"  # print
)
EAN = b"\x1dh\x50\x1dw\x02\x1dk\x43\x0c400638133393"  # 12 digits: the printer adds the 13th
CUT = b"\x1dVA\x10"
DLE_EOT = {n: b"\x10\x04" + bytes([n]) for n in (1, 2, 3, 4)}
GS_R1 = b"\x1dr\x01"


@pytest.fixture
def printer_sim(tmp_path: Path) -> Iterator[SimHandle]:
    handle = start_sim(tmp_path)
    yield handle
    assert handle.stop() == 0, handle.log()


def connect(sim: SimHandle) -> socket.socket:
    port = sim.get("/devices")["printer-1"]["port"]
    return socket.create_connection(("127.0.0.1", port), timeout=3)


def ask(conn: socket.socket, n: int) -> int:
    conn.sendall(DLE_EOT[n])
    return conn.recv(1)[0]


def jobs(sim: SimHandle) -> list[dict[str, Any]]:
    return sim.get(P + "/jobs")


def wait_jobs(sim: SimHandle, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found = jobs(sim)
        return found if len(found) >= count else None

    return wait_until(enough, 5, f"{count} jobs")


def decode(sim: SimHandle, path: str) -> Any:
    with urllib.request.urlopen(sim.control_url + path, timeout=5) as resp:
        assert resp.headers["Content-Type"] == "image/png"
        (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(resp.read())))
    return found


def test_the_printer_listens_on_tcp_and_says_where(printer_sim: SimHandle) -> None:
    entry = printer_sim.devices["printer-1"]
    assert entry["kind"] == "printer" and entry["path"] is None and entry["port"] > 0
    address = printer_sim.link("printer-1").read_text().strip()
    assert address == f"127.0.0.1:{entry['port']}"
    state = printer_sim.get(P)
    assert state["plugged"] and not state["paper_out"] and not state["cover_open"]


def test_a_job_is_decoded_with_chinese_text_qr_and_barcode(printer_sim: SimHandle) -> None:
    with connect(printer_sim) as conn:
        conn.sendall(
            INIT
            + CN_ON
            + b"\x1ba\x01\x1d!\x11"  # ESC a 1: centred; GS ! 0x11: double size
            + "美团外卖 #12\n".encode("gb18030")
            + b"\x1d!\x00\x1ba\x00"
            + "货架号 A-01 可口可乐 ￥3.50\n".encode("gb18030")
            + QR_123456
            + EAN
            + CUT
        )
        (job,) = wait_jobs(printer_sim, 1)
    assert job["cut"] is True and job["interrupted"] is False
    assert "美团外卖 #12" in job["text"] and "货架号 A-01 可口可乐 ￥3.50" in job["text"]
    big = job["lines"][0]
    assert big == {
        "text": "美团外卖 #12",
        "width": 2,
        "height": 2,
        "bold": False,
        "align": "center",
    }
    assert job["qr"] == ["123456"]
    assert job["qr_codes"][0] | {"hex": None} == {
        "data": "123456",
        "hex": None,
        "model": 2,
        "module": 5,
        "level": "M",
    }
    assert job["barcodes"][0]["data"] == "4006381333931"
    assert decode(printer_sim, P + "/jobs/0/qr/0").text == "123456"
    found = decode(printer_sim, P + "/jobs/0/barcodes/0")
    assert (found.format, found.text) == (zxingcpp.BarcodeFormat.EAN13, "4006381333931")


def test_without_the_chinese_mode_gb18030_bytes_are_not_chinese(printer_sim: SimHandle) -> None:
    with connect(printer_sim) as conn:
        conn.sendall(INIT + "可乐\n".encode("gb18030") + CUT)
        (job,) = wait_jobs(printer_sim, 1)
    assert "可乐" not in job["text"]  # as on paper: code page 437 glyphs


def test_status_replies_tell_paper_and_cover_truthfully(printer_sim: SimHandle) -> None:
    with connect(printer_sim) as conn:
        assert [ask(conn, n) for n in (1, 2, 3, 4)] == [0x12, 0x12, 0x12, 0x12]
        printer_sim.post(P + "/paper", {"out": True})
        assert [ask(conn, n) for n in (1, 2, 4)] == [0x1A, 0x32, 0x7E]
        printer_sim.post(P + "/paper", {"out": False, "near_end": True})
        assert [ask(conn, n) for n in (1, 2, 4)] == [0x12, 0x12, 0x1E]
        printer_sim.post(P + "/cover", {"open": True})
        assert [ask(conn, n) for n in (1, 2, 4)] == [0x1A, 0x16, 0x1E]


def test_paper_out_holds_the_job_and_prints_it_once_the_paper_is_back(
    printer_sim: SimHandle,
) -> None:
    printer_sim.post(P + "/paper", {"out": True})
    with connect(printer_sim) as conn:
        conn.sendall(INIT + b"held\n" + CUT + GS_R1)
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(1)  # GS r waits behind the unprinted job
        assert ask(conn, 4) == 0x7E  # while DLE EOT is answered at once
        assert jobs(printer_sim) == []
        printer_sim.post(P + "/paper", {"out": False})
        conn.settimeout(3)
        assert conn.recv(1) == b"\x00"  # printed: paper present, bits 4 and 7 clear
    (job,) = jobs(printer_sim)
    assert job["text"].startswith("held")


def test_unplugging_cuts_the_power(printer_sim: SimHandle) -> None:
    port = printer_sim.devices["printer-1"]["port"]
    printer_sim.post(P + "/speed", {"line_ms": 200})
    with connect(printer_sim) as conn:
        conn.sendall(INIT + b"one\ntwo\nthree\nfour\nfive\n" + CUT + b"lost\n" + CUT)
        wait_until(lambda: printer_sim.get(P)["printing"], 3, "printing")
        time.sleep(0.3)
        printer_sim.post("/devices/printer-1/unplug", {"seconds": 0.5})
        assert printer_sim.get("/devices")["printer-1"]["port"] is None
        assert not printer_sim.link("printer-1").exists()
        conn.settimeout(2)
        try:
            got = conn.recv(1)
        except ConnectionResetError:
            got = b""
        assert got == b""  # the connection is gone
    wait_until(lambda: printer_sim.get("/devices")["printer-1"]["port"], 3, "replug")
    assert printer_sim.get("/devices")["printer-1"]["port"] == port  # same address
    (job,) = jobs(printer_sim)
    assert job["cut"] is False and job["interrupted"] is True
    assert job["text"].startswith("one") and "five" not in job["text"]
    with connect(printer_sim) as conn:
        assert ask(conn, 1) == 0x12


def test_control_api_errors(printer_sim: SimHandle) -> None:
    for method, path, body, status in [
        ("GET", "/printers/nope/jobs", None, 404),
        ("POST", "/printers/scanner-front/paper", {"out": True}, 404),
        ("POST", P + "/paper", {"out": "yes"}, 400),
        ("POST", P + "/cover", {}, 400),
        ("POST", P + "/speed", {"line_ms": -1}, 400),
        ("GET", P + "/jobs/0/qr/0", None, 404),
    ]:
        code, reply = printer_sim.request(method, path, body)
        assert code == status, (path, reply)
        assert reply["error"]
    assert json.loads((printer_sim.dir / "devices.json").read_text())["printer-1"]["port"]


def with_serial_printer(raw: dict[str, Any]) -> None:
    raw["devices"].append({"id": "printer-2", "kind": "printer", "transport": "serial"})


def test_a_serial_printer_prints_and_answers_on_its_pseudo_terminal(tmp_path: Path) -> None:
    sim = start_sim_with(tmp_path, with_serial_printer)
    try:
        entry = sim.devices["printer-2"]
        assert entry["path"].startswith("/dev/pts/") and entry["port"] is None
        with serial.Serial(str(sim.link("printer-2")), 19200, timeout=2) as line:
            line.write(DLE_EOT[1])
            assert line.read(1) == b"\x12"
            line.write(INIT + CN_ON + "取货码 123456\n".encode("gb18030") + CUT + GS_R1)
            assert line.read(1) == b"\x00"  # answered once printed: paper present
            sim.post("/printers/printer-2/paper", {"out": True})
            line.write(DLE_EOT[4])
            assert line.read(1)[0] & 0x60 == 0x60  # paper end, told over the same line
        (job,) = sim.get("/printers/printer-2/jobs")
        assert job["text"].startswith("取货码 123456") and job["cut"] is True
        # Unplugged, it comes back on a new tty (the symlink follows it), powered up
        # fresh: the paper was changed meanwhile.
        sim.post("/devices/printer-2/unplug", {"seconds": 0.2})
        assert sim.get("/devices")["printer-2"]["path"] is None
        wait_until(lambda: sim.get("/devices")["printer-2"]["path"], 3, "replug")
        sim.post("/printers/printer-2/paper", {"out": False})
        with serial.Serial(str(sim.link("printer-2")), 19200, timeout=2) as line:
            line.write(DLE_EOT[1])
            assert line.read(1) == b"\x12"
    finally:
        assert sim.stop() == 0, sim.log()
