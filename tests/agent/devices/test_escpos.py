"""The ESC/POS codec, checked against the simulator's own reader and status bytes (written
separately, from the Epson reference), so a mistake cannot hide on both sides."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from shopgate_sim import printout
from shopgate_sim.escpos_stream import Barcode, Cut, EscPosReader, NewLine, QrCode, Text
from shopgate_sim.printer import Printer as SimPrinter
from shopgate_sim.printer import PrinterSpec

from agent.devices.protocols import escpos
from agent.devices.protocols.escpos import (
    EscPosError,
    PrinterStatus,
    Receipt,
    StatusReplyError,
    combine_status,
    is_status_reply,
    parse_confirm,
    parse_status,
)


def read(data: bytes, cuts: list[int] | None = None) -> tuple[list[object], list[int]]:
    """What the simulated printer makes of `data`, fed in pieces split at `cuts`."""
    realtime: list[int] = []
    reader = EscPosReader(realtime.append)
    actions: list[object] = []
    start = 0
    for at in [*sorted(set(cuts or [])), len(data)]:
        actions += reader.feed(data[start:at])
        start = at
    return actions, realtime


def printed_text(actions: list[object]) -> str:
    out = []
    for a in actions:
        if isinstance(a, Text):
            out.append(a.text)
        elif isinstance(a, NewLine):
            out.append("\n" * a.count)
    return "".join(out)


chunk_cuts = st.lists(st.integers(min_value=0, max_value=4000), max_size=8)
# Text a clerk could type: anything but control characters and lone surrogates.
shop_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u00a5"), max_size=60
)


@given(text=shop_text, cuts=chunk_cuts)
def test_gb18030_text_reads_back_exactly_in_the_chinese_mode(text: str, cuts: list[int]) -> None:
    data = Receipt().line(text).cut()
    actions, _ = read(data, cuts)
    assert printed_text(actions).split("\n")[0] == text
    assert isinstance(actions[-1], Cut)


def test_chinese_text_is_gb18030_inside_fs_ampersand_and_the_yuan_is_full_width() -> None:
    data = Receipt().line("可口可乐 ¥3.50").cut()
    assert escpos.CHINESE_ON + escpos.align("left") not in data  # plain lines carry no style
    body = "可口可乐 ￥3.50".encode("gb18030")
    assert body in data
    assert data.index(escpos.CHINESE_ON) < data.index(body)
    assert "￥".encode("gb18030") == b"\xa3\xa4"
    assert escpos.yuan(3.5) == "￥3.50"


def test_control_characters_never_reach_the_wire_as_commands() -> None:
    # ESC @ would reset the printer, DLE EOT 1 would be answered: only the text stays.
    assert escpos.encode_text("a\x1b@b\x10\x04\x01c\x00") == b"a@bc"
    assert escpos.printable("x\ty\r\nz") == "x y\nz"


def test_columns_count_chinese_characters_as_two() -> None:
    assert escpos.columns("可乐ab") == 6
    assert escpos.pad("可口可乐", 5) == "可口 "  # never half a character
    assert escpos.pad("ab", 4, right=True) == "  ab"


@given(
    data=st.binary(min_size=1, max_size=3000),
    module=st.integers(1, 16),
    level=st.sampled_from(["L", "M", "Q", "H"]),
    cuts=chunk_cuts,
)
def test_qr_command_framing_round_trips_through_the_printer(
    data: bytes, module: int, level: str, cuts: list[int]
) -> None:
    wire = escpos.qr(data, module=module, level=level)  # type: ignore[arg-type]
    actions, realtime = read(wire, cuts)
    assert actions == [QrCode(data, 2, module, level)]
    assert realtime == []  # 10 04 inside the data is not a status request


def test_qr_limits_are_clear_errors() -> None:
    with pytest.raises(EscPosError, match="needs data"):
        escpos.qr("")
    with pytest.raises(EscPosError, match="at most 7089"):
        escpos.qr(b"1" * 7090)
    with pytest.raises(EscPosError, match="1-16"):
        escpos.qr("x", module=17)


def test_printed_qr_reads_back_with_a_real_decoder() -> None:
    payload = "123456"
    actions, _ = read(Receipt().qr(payload, module=4).cut())
    (code,) = [a for a in actions if isinstance(a, QrCode)]
    png = printout.qr_png(code.data, module=code.module, level=code.level)
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found.format == zxingcpp.BarcodeFormat.QRCode and found.text == payload


@given(digits=st.text("0123456789", min_size=12, max_size=12))
def test_ean13_labels_print_and_scan_back_exactly(digits: str) -> None:
    full = digits + escpos.ean13_check_digit(digits)
    actions, _ = read(Receipt().ean13(digits).cut())
    (code,) = [a for a in actions if isinstance(a, Barcode)]
    assert (code.type, code.data) == ("EAN13", full)
    png = printout.ean13_png(code.data, module=code.module, height=code.height)
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found.format == zxingcpp.BarcodeFormat.EAN13 and found.text == full


def test_a_wrong_ean13_check_digit_is_refused_before_printing() -> None:
    assert escpos.ean13("4006381333931") == "4006381333931"
    with pytest.raises(EscPosError, match="should be 1"):
        escpos.ean13("4006381333932")
    with pytest.raises(EscPosError, match="12 or 13 digits"):
        escpos.ean13("40063813339")


@given(n=st.sampled_from([1, 2, 3, 4]), reply=st.integers(0, 255))
def test_status_bytes_parse_only_with_the_fixed_bits(n: int, reply: int) -> None:
    if reply & 0x93 == 0x12:
        flags = parse_status(n, reply)
        for name, mask in escpos.STATUS_BITS[n].items():
            assert flags[name] == bool(reply & mask)
        assert is_status_reply(reply)
    else:
        with pytest.raises(StatusReplyError):
            parse_status(n, reply)
        assert not is_status_reply(reply)


@given(reply=st.integers(0, 255))
def test_confirm_replies_are_never_mistaken_for_status_replies(reply: int) -> None:
    if reply & 0x90 == 0:
        flags = parse_confirm(reply)
        assert not is_status_reply(reply)
        assert flags["paper_out"] == bool(reply & 0x0C)
    else:
        with pytest.raises(StatusReplyError):
            parse_confirm(reply)


@given(paper_out=st.booleans(), near_end=st.booleans(), cover_open=st.booleans())
def test_status_from_the_printers_own_replies(
    paper_out: bool, near_end: bool, cover_open: bool
) -> None:
    printer = SimPrinter(PrinterSpec(id="p", kind="printer"))
    printer.paper_out, printer.paper_near_end, printer.cover_open = paper_out, near_end, cover_open
    replies = {n: printer.status_byte(n) for n in (1, 2, 3, 4)}
    status = combine_status(replies)  # type: ignore[arg-type]
    assert status.paper_out == paper_out
    assert status.cover_open == cover_open
    assert status.paper_near_end == (near_end or paper_out)
    assert status.offline == (paper_out or cover_open)
    assert status.ready == (not paper_out and not cover_open)
    expected = "paper_out" if paper_out else "cover_open" if cover_open else None
    assert status.problem == expected


def test_problem_order_and_missing_replies() -> None:
    assert PrinterStatus(cover_open=True, paper_out=True).problem == "paper_out"
    assert PrinterStatus(cutter_error=True, error=True).problem == "cutter_error"
    assert PrinterStatus(offline=True).problem == "offline"
    with pytest.raises(StatusReplyError, match="DLE EOT 4"):
        combine_status({1: 0x12, 2: 0x12})


def test_status_requests_are_answered_in_real_time_not_printed() -> None:
    actions, realtime = read(escpos.status_request(2) + b"ab" + escpos.status_request(4))
    assert realtime == [2, 4]
    assert printed_text(actions) == "ab"
