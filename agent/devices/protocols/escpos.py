"""ESC/POS: the bytes we send to receipt and label printers, and their status replies.

Pure: bytes in, objects out, no I/O. python-escpos carries the bytes (network, serial,
USB); this module adds what it lacks for Chinese stores and for knowing that a job
really printed:

- Chinese text is encoded explicitly in GB18030 inside the Chinese character mode
  (`FS &` ... `FS .`); python-escpos's automatic code page selection has no GB18030.
  The yuan sign goes out full width (U+FFE5, GB18030 A3 A4): the half-width U+00A5 is a
  four-byte GB18030 sequence that most printer fonts lack.
- QR codes are printed natively (`GS ( k`, function 165-181 of the Epson reference):
  model, module size and error correction level, then the data, then print.
- EAN-13 barcodes with `GS k` (format B, m = 67).
- Status: the real-time requests `DLE EOT n` (n = 1 printer, 2 offline cause, 3 error
  cause, 4 roll paper sensor) answer at once, even while the printer waits for paper;
  `GS r 1` (paper sensor status) is processed in order with the print data, so its reply
  means that everything sent before it has been printed: our print confirmation.
  The two replies are told apart by bit 4, fixed to 1 in `DLE EOT` and to 0 in `GS r`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
DLE = b"\x10"
EOT = b"\x04"
LF = b"\n"

INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."
ASB_OFF = GS + b"a\x00"  # no unsolicited status: every byte we read answers a request
CONFIRM_REQUEST = GS + b"r\x01"  # in-order paper sensor status: the print confirmation

Align = Literal["left", "center", "right"]
_ALIGN = {"left": 0, "center": 1, "right": 2}
QrLevel = Literal["L", "M", "Q", "H"]
_QR_LEVEL = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_MAX_BYTES = 7089  # the largest model 2 symbol (version 40, numeric, level L)

FULLWIDTH_YUAN = "\uffe5"


class EscPosError(ValueError):
    """Data that cannot be put on paper as asked; the message says why."""


class StatusReplyError(ValueError):
    """A byte that is not a valid reply to the status request it was read for."""


# --- text ---------------------------------------------------------------------------


def printable(text: str) -> str:
    """`text` with what would corrupt the byte stream taken out: control characters
    (other than newline) would be read as commands, lone surrogates cannot be encoded.
    The half-width yuan sign becomes the full-width one the printer fonts have."""
    out = []
    for ch in text.replace("\r\n", "\n").replace("\t", " "):
        cat = unicodedata.category(ch)
        if ch == "\n":
            out.append(ch)
        elif ch == "\u00a5":
            out.append(FULLWIDTH_YUAN)
        elif cat in ("Cc", "Cs"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def encode_text(text: str) -> bytes:
    """Text for a printer in the Chinese character mode: GB18030 (ASCII stays one byte)."""
    return printable(text).encode("gb18030")


def columns(text: str) -> int:
    """Printed width in half-width columns: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit(text: str, width: int) -> str:
    """`text` cut to at most `width` columns (never half a wide character)."""
    out, used = [], 0
    for ch in text:
        w = columns(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out)


def pad(text: str, width: int, *, right: bool = False) -> str:
    """`text` fitted and padded with spaces to exactly `width` columns."""
    text = fit(text, width)
    fill = " " * (width - columns(text))
    return fill + text if right else text + fill


def yuan(amount: float) -> str:
    """Money as printed: ￥3.50 (full-width sign, two decimals)."""
    return f"{FULLWIDTH_YUAN}{amount:.2f}"


# --- commands -----------------------------------------------------------------------


def align(where: Align) -> bytes:
    return ESC + b"a" + bytes([_ALIGN[where]])


def bold(on: bool) -> bytes:
    return ESC + b"E" + bytes([1 if on else 0])


def size(width: int = 1, height: int = 1) -> bytes:
    """Character size as multiples of the normal one (1-8 each); Chinese characters
    follow it too."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise EscPosError(f"character size {width}x{height}: each must be 1-8")
    return GS + b"!" + bytes([(width - 1) << 4 | (height - 1)])


def feed(lines: int) -> bytes:
    if not 0 <= lines <= 255:
        raise EscPosError(f"feed {lines} lines: must be 0-255")
    return ESC + b"d" + bytes([lines])


def cut(*, partial: bool = False, feed_dots: int = 48) -> bytes:
    """Feed `feed_dots` (the cutter sits below the print head) and cut: GS V 65/66 n."""
    if not 0 <= feed_dots <= 255:
        raise EscPosError(f"feed before cut {feed_dots} dots: must be 0-255")
    return GS + b"V" + bytes([66 if partial else 65, feed_dots])


def _qr_function(fn: int, params: bytes) -> bytes:
    # GS ( k pL pH cn fn params: the length counts cn, fn and the parameters.
    length = len(params) + 2
    return GS + b"(k" + bytes([length & 0xFF, length >> 8, 49, fn]) + params


def qr(data: str | bytes, *, module: int = 6, level: QrLevel = "M", model: int = 2) -> bytes:
    """A native QR code: select model, module size, error level, store data, print."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if not raw:
        raise EscPosError("a QR code needs data")
    if len(raw) > QR_MAX_BYTES:
        raise EscPosError(f"QR data is {len(raw)} bytes; a QR code holds at most {QR_MAX_BYTES}")
    if not 1 <= module <= 16:
        raise EscPosError(f"QR module size {module}: must be 1-16 dots")
    if model not in (1, 2):
        raise EscPosError(f"QR model {model}: must be 1 or 2")
    return b"".join(
        (
            _qr_function(65, bytes([48 + model, 0])),
            _qr_function(67, bytes([module])),
            _qr_function(69, bytes([_QR_LEVEL[level]])),
            _qr_function(80, b"0" + raw),
            _qr_function(81, b"0"),
        )
    )


def ean13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def ean13(code: str) -> str:
    """The full 13 digits of an EAN-13 given as 12 or 13 digits; a wrong check digit is
    an error (a label with it would not scan)."""
    if not code.isascii() or not code.isdigit() or len(code) not in (12, 13):
        raise EscPosError(f"{code!r} is not an EAN-13 (12 or 13 digits)")
    check = ean13_check_digit(code[:12])
    if len(code) == 13 and code[12] != check:
        raise EscPosError(f"{code!r} has check digit {code[12]}, it should be {check}")
    return code[:12] + check


def barcode_ean13(code: str, *, height: int = 80, module: int = 2, hri: bool = True) -> bytes:
    """An EAN-13 barcode: height in dots, module (narrowest bar) 2-6 dots, digits below."""
    digits = ean13(code)
    if not 1 <= height <= 255:
        raise EscPosError(f"barcode height {height}: must be 1-255 dots")
    if not 2 <= module <= 6:
        raise EscPosError(f"barcode module {module}: must be 2-6 dots")
    return b"".join(
        (
            GS + b"h" + bytes([height]),
            GS + b"w" + bytes([module]),
            GS + b"H" + bytes([2 if hri else 0]),
            GS + b"k" + bytes([67, 13]) + digits.encode("ascii"),
        )
    )


class Receipt:
    """Builds one job's bytes: init, the Chinese character mode, then what is added."""

    def __init__(self) -> None:
        self._parts: list[bytes] = [INIT, ASB_OFF, CHINESE_ON]

    def raw(self, data: bytes) -> Receipt:
        self._parts.append(data)
        return self

    def line(
        self,
        text: str = "",
        *,
        where: Align = "left",
        width: int = 1,
        height: int = 1,
        strong: bool = False,
    ) -> Receipt:
        styled = (width, height, strong, where) != (1, 1, False, "left")
        if styled:
            self._parts += [align(where), size(width, height), bold(strong)]
        self._parts += [encode_text(text), LF]
        if styled:
            self._parts += [align("left"), size(1, 1), bold(False)]
        return self

    def qr(self, data: str, *, module: int = 6, level: QrLevel = "M") -> Receipt:
        self._parts += [align("center"), qr(data, module=module, level=level), LF, align("left")]
        return self

    def ean13(self, code: str, *, height: int = 80, module: int = 2) -> Receipt:
        self._parts += [align("center"), barcode_ean13(code, height=height, module=module)]
        self._parts += [LF, align("left")]
        return self

    def cut(self) -> bytes:
        """The finished job: ends with a feed and a cut (a job ends at its cut)."""
        return b"".join([*self._parts, feed(2), cut()])


# --- status -------------------------------------------------------------------------


def status_request(n: int) -> bytes:
    """DLE EOT n: a real-time status request (n = 1..4)."""
    if n not in (1, 2, 3, 4):
        raise EscPosError(f"DLE EOT {n}: n must be 1-4")
    return DLE + EOT + bytes([n])


# Bits of each DLE EOT reply, per the Epson reference. Bits 1 and 4 are fixed to 1,
# bits 0 and 7 to 0 in every one of them.
STATUS_BITS: Mapping[int, Mapping[str, int]] = {
    1: {"drawer_open": 0x04, "offline": 0x08, "waiting_recovery": 0x20, "feed_button": 0x40},
    2: {"cover_open": 0x04, "feeding": 0x08, "paper_stop": 0x20, "error": 0x40},
    3: {"mechanism_error": 0x04, "cutter_error": 0x08, "fatal_error": 0x20, "auto_error": 0x40},
    4: {"paper_near_end": 0x0C, "paper_out": 0x60},
}
_FIXED_MASK, _FIXED_VALUE = 0x93, 0x12


def parse_status(n: int, reply: int) -> dict[str, bool]:
    """The flags of one DLE EOT n reply byte. The sensor pairs of n = 4 (two bits each)
    read as set when either bit is: printers differ in which of the two they report."""
    if n not in STATUS_BITS:
        raise StatusReplyError(f"DLE EOT {n}: n must be 1-4")
    if not 0 <= reply <= 255 or reply & _FIXED_MASK != _FIXED_VALUE:
        raise StatusReplyError(
            f"0x{reply:02x} is not a DLE EOT {n} reply (bits 1 and 4 must be set, 0 and 7 clear)"
        )
    return {name: bool(reply & mask) for name, mask in STATUS_BITS[n].items()}


def is_status_reply(byte: int) -> bool:
    """True for a DLE EOT reply, False for a GS r reply (bit 4 tells them apart)."""
    return byte & _FIXED_MASK == _FIXED_VALUE


def parse_confirm(reply: int) -> dict[str, bool]:
    """The GS r 1 reply (roll paper sensor): bits 0-1 near end, 2-3 paper out; bits 4 and
    7 are 0."""
    if not 0 <= reply <= 255 or reply & 0x90:
        raise StatusReplyError(f"0x{reply:02x} is not a GS r 1 reply (bits 4 and 7 must be clear)")
    return {"paper_near_end": bool(reply & 0x03), "paper_out": bool(reply & 0x0C)}


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What the DLE EOT 1, 2, 3 and 4 replies say together."""

    offline: bool = False
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    cutter_error: bool = False
    error: bool = False  # any other error the printer reports (mechanism, fatal, head heat)

    @property
    def problem(self) -> str | None:
        """Why the printer cannot print now, as `printer.error` names it; None if it can."""
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.cutter_error:
            return "cutter_error"
        if self.error:
            return "error"
        if self.offline:
            return "offline"
        return None

    @property
    def ready(self) -> bool:
        return self.problem is None


def combine_status(replies: Mapping[int, int]) -> PrinterStatus:
    """A PrinterStatus from the reply bytes of DLE EOT 1..4 (n = 3 may be missing: it is
    asked only when n = 2 reports an error)."""
    flags: dict[str, bool] = {}
    for n in (1, 2, 4):
        if n not in replies:
            raise StatusReplyError(f"no reply to DLE EOT {n}")
    for n, byte in replies.items():
        flags.update(parse_status(n, byte))
    return PrinterStatus(
        offline=flags["offline"],
        cover_open=flags["cover_open"],
        paper_out=flags["paper_out"] or flags["paper_stop"],
        paper_near_end=flags["paper_near_end"],
        cutter_error=flags.get("cutter_error", False),
        error=flags["error"]
        or flags.get("mechanism_error", False)
        or flags.get("fatal_error", False)
        or flags.get("auto_error", False),
    )
