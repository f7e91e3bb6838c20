"""The ESC/POS status exchange's golden bytes (tests/golden/escpos_status.py, from Epson's
manuals) against the agent's codec (agent/devices/protocols/escpos.py: the requests it
sends, how it reads the replies) and the simulated printer (its own reader and status
bytes, firmware-sim/shopgate_sim/escpos_stream.py and printer.py)."""

from __future__ import annotations

import pytest
from shopgate_sim.escpos_stream import EscPosReader, NewLine, StatusRequest, Text
from shopgate_sim.printer import Printer, PrinterSpec

from agent.devices.protocols import escpos
from tests.golden.escpos_status import COMMANDS, REPLIES, Request, StatusByte

# The manuals' names for the bits -> the agent's flag names.
AGENT_FLAG = {
    "offline": "offline",
    "cover_open": "cover_open",
    "paper_end_stop": "paper_stop",
    "error": "error",
    "autocutter_error": "cutter_error",
    "unrecoverable_error": "fatal_error",
    "auto_recoverable_error": "auto_error",
    "near_end": "paper_near_end",
    "paper_not_present": "paper_out",
}
AGENT_COMMAND = {
    "DLE EOT 1": escpos.status_request(1),
    "DLE EOT 2": escpos.status_request(2),
    "DLE EOT 3": escpos.status_request(3),
    "DLE EOT 4": escpos.status_request(4),
    "GS r 1": escpos.CONFIRM_REQUEST,
    "GS a 0 (no automatic status back)": escpos.ASB_OFF,
}


def golden(request: Request, flags: set[str]) -> int:
    (match,) = [r.byte for r in REPLIES if r.request == request and r.flags == flags]
    return match


@pytest.mark.parametrize("c", COMMANDS, ids=[c.name for c in COMMANDS])
def test_the_agent_sends_each_status_command_byte_for_byte(c: object) -> None:
    assert AGENT_COMMAND[c.name] == bytes.fromhex(c.hex)  # type: ignore[attr-defined]


@pytest.mark.parametrize("r", REPLIES, ids=[f"{r.request}: {r.name}" for r in REPLIES])
def test_the_agent_reads_each_status_byte_as_the_manual_says(r: StatusByte) -> None:
    want = {AGENT_FLAG[f] for f in r.flags}
    if r.request == "GS r 1":
        got = escpos.parse_confirm(r.byte)
        assert not escpos.is_status_reply(r.byte)
    else:
        got = escpos.parse_status(int(r.request[-1]), r.byte)
        assert escpos.is_status_reply(r.byte)
    assert {name for name, on in got.items() if on} == want


def test_the_simulated_printer_reads_the_status_commands_as_the_manual_says() -> None:
    asked: list[int] = []
    reader = EscPosReader(asked.append)
    for n in (1, 2, 3, 4):
        assert reader.feed(bytes.fromhex(f"10 04 0{n}")) == []  # answered at once, not queued
    assert asked == [1, 2, 3, 4]
    assert reader.feed(bytes.fromhex("1D 72 01")) == [StatusRequest(1)]
    # GS a 0 takes its one argument and prints nothing.
    out = reader.feed(bytes.fromhex("1D 61 00") + b"A\n")
    assert [type(a) for a in out] == [Text, NewLine] and out[0].text == "A"  # type: ignore[union-attr]


# What the simulated printer's sensors read -> which bits the manual says are then set.
STATES: dict[str, tuple[dict[str, bool], dict[Request, set[str]]]] = {
    "ready": (
        {},
        {"DLE EOT 1": set(), "DLE EOT 2": set(), "DLE EOT 3": set(), "DLE EOT 4": set()}
        | {"GS r 1": set()},
    ),
    "cover open": (
        {"cover_open": True},
        {"DLE EOT 1": {"offline"}, "DLE EOT 2": {"cover_open"}, "DLE EOT 4": set()},
    ),
    "paper near end": (
        {"paper_near_end": True},
        {"DLE EOT 1": set(), "DLE EOT 4": {"near_end"}, "GS r 1": {"near_end"}},
    ),
    "paper out": (
        {"paper_out": True},
        {
            "DLE EOT 1": {"offline"},
            "DLE EOT 2": {"paper_end_stop"},
            "DLE EOT 4": {"near_end", "paper_not_present"},
            "GS r 1": {"near_end", "paper_not_present"},
        },
    ),
}


@pytest.mark.parametrize("state", STATES)
def test_the_simulated_printer_answers_with_the_manuals_bytes(state: str) -> None:
    sensors, expected = STATES[state]
    printer = Printer(PrinterSpec(id="printer-golden", kind="printer"))
    for name, value in sensors.items():
        setattr(printer, name, value)
    for request, flags in expected.items():
        if request == "GS r 1":
            sent = printer.gs_r_byte(1)
        else:
            sent = printer.status_byte(int(request[-1]))
        assert sent == golden(request, flags), request
