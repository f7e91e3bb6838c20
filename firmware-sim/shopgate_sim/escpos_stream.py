"""The simulated printer's reading of an ESC/POS byte stream (its own, written from the
Epson command reference, never the agent's encoder: a bug on one side must show).

`EscPosReader.feed(chunk)` parses as far as the bytes go (a command split across TCP
segments waits for its rest) and returns what the print engine is to do, in order.
Real-time requests (`DLE EOT n`) are not queued: they go to `on_realtime` at once, as a
printer answers them from its receive routine even while it waits for paper.

Text: outside the Chinese character mode (`FS &` on, `FS .` off; off after `ESC @`)
each byte is one character of code page PC437; inside it, bytes from 0x81 start a
GB18030 character of two or four bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10


@dataclass(frozen=True, slots=True)
class Style:
    width: int = 1
    height: int = 1
    bold: bool = False
    align: str = "left"


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    style: Style


@dataclass(frozen=True, slots=True)
class NewLine:
    count: int = 1


@dataclass(frozen=True, slots=True)
class QrCode:
    data: bytes
    model: int
    module: int
    level: str


@dataclass(frozen=True, slots=True)
class Barcode:
    type: str
    data: str
    height: int
    module: int
    hri: int


@dataclass(frozen=True, slots=True)
class Image:
    width_dots: int
    height_dots: int


@dataclass(frozen=True, slots=True)
class Cut:
    partial: bool


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """GS r n: answered when the engine gets to it (after what came before is printed)."""

    n: int


Action = Text | NewLine | QrCode | Barcode | Image | Cut | StatusRequest

# Commands with fixed-length arguments that change nothing we model: (prefix, arg bytes).
_SKIP: dict[tuple[int, int], int] = {
    (ESC, 0x20): 1,  # ESC SP n: right-side character spacing
    (ESC, 0x25): 1,  # ESC % n: user-defined character set
    (ESC, 0x2D): 1,  # ESC - n: underline
    (ESC, 0x32): 0,  # ESC 2: default line spacing
    (ESC, 0x33): 1,  # ESC 3 n: line spacing
    (ESC, 0x3D): 1,  # ESC = n: peripheral device
    (ESC, 0x3F): 1,  # ESC ? n: cancel user-defined character
    (ESC, 0x47): 1,  # ESC G n: double strike
    (ESC, 0x4A): 1,  # ESC J n: feed n dots
    (ESC, 0x4D): 1,  # ESC M n: font
    (ESC, 0x52): 1,  # ESC R n: international character set
    (ESC, 0x53): 0,  # ESC S: standard mode
    (ESC, 0x54): 1,  # ESC T n: print direction (page mode)
    (ESC, 0x56): 1,  # ESC V n: rotate 90 degrees
    (ESC, 0x5C): 2,  # ESC \ nL nH: relative position
    (ESC, 0x24): 2,  # ESC $ nL nH: absolute position
    (ESC, 0x63): 2,  # ESC c 3 n / ESC c 4 n / ESC c 5 n: paper sensors, panel buttons
    (ESC, 0x70): 3,  # ESC p m t1 t2: drawer kick
    (ESC, 0x74): 1,  # ESC t n: code page
    (ESC, 0x7B): 1,  # ESC { n: upside down
    (ESC, 0x4C): 0,  # ESC L: page mode
    (ESC, 0x0C): 0,  # ESC FF: print in page mode
    (GS, 0x42): 1,  # GS B n: reverse
    (GS, 0x62): 1,  # GS b n: smoothing
    (GS, 0x66): 1,  # GS f n: HRI font
    (GS, 0x4C): 2,  # GS L nL nH: left margin
    (GS, 0x57): 2,  # GS W nL nH: print area width
    (GS, 0x50): 2,  # GS P x y: motion units
    (GS, 0x61): 1,  # GS a n: automatic status back (this printer never sends one)
    (GS, 0x49): 1,  # GS I n: printer id (not answered)
    (GS, 0x3A): 0,  # GS :: macro definition start/end
    (FS, 0x21): 1,  # FS ! n: Chinese character print mode
    (FS, 0x2D): 1,  # FS - n: Chinese character underline
    (FS, 0x43): 1,  # FS C n: character code system
    (FS, 0x53): 2,  # FS S n1 n2: Chinese character spacing
    (FS, 0x57): 1,  # FS W n: Chinese character quadruple size
}

_QR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}
_BARCODE_A = {0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR"}
_BARCODE_B = {
    65: "UPC-A",
    66: "UPC-E",
    67: "EAN13",
    68: "EAN8",
    69: "CODE39",
    70: "ITF",
    71: "CODABAR",
    72: "CODE93",
    73: "CODE128",
}


@dataclass(slots=True)
class _Modes:
    chinese: bool = False
    style: Style = Style()
    qr_model: int = 2
    qr_module: int = 3
    qr_level: str = "L"
    qr_data: bytes = b""
    barcode_height: int = 162
    barcode_module: int = 3
    barcode_hri: int = 0
    skipped: list[str] = field(default_factory=list)


class EscPosReader:
    def __init__(self, on_realtime: Callable[[int], None]) -> None:
        self._buf = bytearray()
        self._modes = _Modes()
        self._on_realtime = on_realtime

    @property
    def chinese(self) -> bool:
        return self._modes.chinese

    def feed(self, data: bytes) -> list[Action]:
        self._buf += data
        out: list[Action] = []
        i = 0
        while i < len(self._buf):
            used = self._step(i, out)
            if used == 0:
                break  # the rest of this command has not arrived yet
            i += used
        del self._buf[:i]
        return out

    # Each step returns how many bytes it used, 0 when the command is incomplete.
    def _step(self, i: int, out: list[Action]) -> int:
        buf = self._buf
        b = buf[i]
        if b == 0x0A:
            out.append(NewLine())
            return 1
        if b in (0x0D, 0x00):
            return 1
        if b == 0x09:
            return self._text(" ", out, 1)
        if b == DLE:
            return self._dle(i)
        if b in (ESC, GS, FS):
            if i + 1 >= len(buf):
                return 0
            return self._command(i, b, buf[i + 1], out)
        if b < 0x20 or b == 0x7F:
            log.info("printer: skipped control byte 0x%02x", b)
            return 1
        return self._text_run(i, out)

    def _text_run(self, i: int, out: list[Action]) -> int:
        buf = self._buf
        j = i
        while j < len(buf) and buf[j] >= 0x20 and buf[j] != 0x7F:
            if self._modes.chinese and buf[j] >= 0x81:
                width = _gb18030_length(buf, j)
                if width == 0:
                    break  # a character split across chunks
                j += width
            else:
                j += 1
        if j == i:
            return 0
        raw = bytes(buf[i:j])
        codec = "gb18030" if self._modes.chinese else "cp437"
        return self._text(raw.decode(codec, errors="replace"), out, j - i)

    def _text(self, text: str, out: list[Action], used: int) -> int:
        last = out[-1] if out else None
        if isinstance(last, Text) and last.style == self._modes.style:
            out[-1] = Text(last.text + text, last.style)
        else:
            out.append(Text(text, self._modes.style))
        return used

    def _dle(self, i: int) -> int:
        buf = self._buf
        if i + 1 >= len(buf):
            return 0
        cmd = buf[i + 1]
        if cmd == 0x04:  # DLE EOT n
            if i + 2 >= len(buf):
                return 0
            self._on_realtime(buf[i + 2])
            return 3
        if cmd == 0x05:  # DLE ENQ n: real-time request to the printer
            return 3 if i + 2 < len(buf) else 0
        if cmd == 0x14:  # DLE DC4 fn ...: pulses and buffer clears
            return 5 if i + 4 < len(buf) else 0
        log.info("printer: skipped DLE 0x%02x", cmd)
        return 2

    def _command(self, i: int, prefix: int, cmd: int, out: list[Action]) -> int:
        buf = self._buf
        avail = len(buf) - i - 2  # bytes after the two-byte command
        m = self._modes

        def arg(k: int) -> int:
            return buf[i + 2 + k]

        skip = _SKIP.get((prefix, cmd))
        if skip is not None:
            return 2 + skip if avail >= skip else 0
        match prefix, cmd:
            case (0x1B, 0x40):  # ESC @: initialize
                self._modes = _Modes()
                return 2
            case (0x1B, 0x21):  # ESC ! n: print mode
                if avail < 1:
                    return 0
                n = arg(0)
                m.style = _with(
                    m.style,
                    bold=bool(n & 0x08),
                    height=2 if n & 0x10 else 1,
                    width=2 if n & 0x20 else 1,
                )
                return 3
            case (0x1B, 0x45):  # ESC E n: emphasized
                if avail < 1:
                    return 0
                m.style = _with(m.style, bold=bool(arg(0) & 1))
                return 3
            case (0x1B, 0x61):  # ESC a n: justification
                if avail < 1:
                    return 0
                where = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}
                m.style = _with(m.style, align=where.get(arg(0), "left"))
                return 3
            case (0x1B, 0x64):  # ESC d n: print and feed n lines
                if avail < 1:
                    return 0
                out.append(NewLine(max(arg(0), 1)))
                return 3
            case (0x1B, 0x2A):  # ESC * m nL nH d...: bit image
                if avail < 3:
                    return 0
                dots = arg(1) | arg(2) << 8
                length = dots * (3 if arg(0) in (32, 33) else 1)
                if avail < 3 + length:
                    return 0
                out.append(Image(dots, 24 if arg(0) in (32, 33) else 8))
                return 5 + length
            case (0x1D, 0x21):  # GS ! n: character size
                if avail < 1:
                    return 0
                n = arg(0)
                m.style = _with(m.style, width=(n >> 4) + 1, height=(n & 0x0F) + 1)
                return 3
            case (0x1D, 0x56):  # GS V m [n]: cut
                if avail < 1:
                    return 0
                mode = arg(0)
                if mode in (65, 66, 97, 98, 103, 104):
                    if avail < 2:
                        return 0
                    out.append(Cut(partial=mode in (66, 98, 104)))
                    return 4
                out.append(Cut(partial=mode in (1, 49)))
                return 3
            case (0x1D, 0x68):  # GS h n: barcode height
                if avail < 1:
                    return 0
                m.barcode_height = arg(0)
                return 3
            case (0x1D, 0x77):  # GS w n: barcode module width
                if avail < 1:
                    return 0
                m.barcode_module = arg(0)
                return 3
            case (0x1D, 0x48):  # GS H n: HRI position
                if avail < 1:
                    return 0
                m.barcode_hri = arg(0) & 0x03
                return 3
            case (0x1D, 0x6B):  # GS k: barcode
                return self._barcode(i, out)
            case (0x1D, 0x28):  # GS ( x pL pH ...: functions with a length
                if avail < 3:
                    return 0
                length = arg(1) | arg(2) << 8
                if avail < 3 + length:
                    return 0
                body = bytes(buf[i + 5 : i + 5 + length])
                if arg(0) == 0x6B:  # GS ( k: 2D codes
                    self._two_d(body, out)
                elif arg(0) == 0x4C:  # GS ( L: graphics
                    out.append(Image(0, 0))
                return 5 + length
            case (0x1D, 0x38):  # GS 8 L p1 p2 p3 p4 ...: graphics, 4-byte length
                if avail < 5:
                    return 0
                length = arg(1) | arg(2) << 8 | arg(3) << 16 | arg(4) << 24
                if avail < 5 + length:
                    return 0
                out.append(Image(0, 0))
                return 7 + length
            case (0x1D, 0x76):  # GS v 0 m xL xH yL yH d...: raster image
                if avail < 6:
                    return 0
                width_bytes = arg(2) | arg(3) << 8
                rows = arg(4) | arg(5) << 8
                if avail < 6 + width_bytes * rows:
                    return 0
                out.append(Image(width_bytes * 8, rows))
                return 8 + width_bytes * rows
            case (0x1D, 0x72):  # GS r n: transmit status, in order with printing
                if avail < 1:
                    return 0
                out.append(StatusRequest(arg(0)))
                return 3
            case (0x1C, 0x26):  # FS &: Chinese character mode on
                m.chinese = True
                return 2
            case (0x1C, 0x2E):  # FS .: Chinese character mode off
                m.chinese = False
                return 2
        log.warning("printer: unknown command %02x %02x, skipped its two bytes", prefix, cmd)
        return 2

    def _barcode(self, i: int, out: list[Action]) -> int:
        buf = self._buf
        if i + 2 >= len(buf):
            return 0
        mode = buf[i + 2]
        m = self._modes
        if mode <= 6:  # format A: data ends at NUL
            end = buf.find(0, i + 3)
            if end < 0:
                return 0
            data, used, kind = bytes(buf[i + 3 : end]), end + 1 - i, _BARCODE_A[mode]
        else:
            if i + 3 >= len(buf):
                return 0
            n = buf[i + 3]
            if len(buf) < i + 4 + n:
                return 0
            data, used, kind = bytes(buf[i + 4 : i + 4 + n]), 4 + n, _BARCODE_B.get(mode, "?")
        text = data.decode("ascii", errors="replace")
        if kind == "EAN13":
            digits = _ean13_digits(text)
            if digits is None:
                log.warning("printer: EAN-13 data %r is invalid; nothing printed", text)
                return used
            text = digits
        out.append(Barcode(kind, text, m.barcode_height, m.barcode_module, m.barcode_hri))
        return used

    def _two_d(self, body: bytes, out: list[Action]) -> None:
        if len(body) < 2 or body[0] != 49:  # cn 49: QR code (48 would be PDF417)
            log.info("printer: 2D code type %r not modelled", body[:1])
            return
        fn, params, m = body[1], body[2:], self._modes
        if fn == 65 and params:
            m.qr_model = params[0] - 48
        elif fn == 67 and params:
            m.qr_module = params[0]
        elif fn == 69 and params:
            m.qr_level = _QR_LEVELS.get(params[0], "L")
        elif fn == 80 and params:
            m.qr_data = params[1:]  # after m = 48
        elif fn == 81:
            if m.qr_data:
                out.append(QrCode(m.qr_data, m.qr_model, m.qr_module, m.qr_level))
            else:
                log.warning("printer: QR print with no data stored")


def _with(style: Style, **changes: object) -> Style:
    values = {
        "width": style.width,
        "height": style.height,
        "bold": style.bold,
        "align": style.align,
    }
    values.update(changes)
    return Style(**values)  # type: ignore[arg-type]  # values: Style's own fields, changed


def _gb18030_length(buf: bytearray, j: int) -> int:
    """Length of the GB18030 character at j (first byte 0x81-0xFE), 0 if incomplete;
    a malformed sequence counts as one byte (decoded as U+FFFD)."""
    if buf[j] == 0xFF:
        return 1
    if j + 1 >= len(buf):
        return 0
    second = buf[j + 1]
    if 0x30 <= second <= 0x39:
        if j + 3 >= len(buf):
            return 0
        return 4
    if 0x40 <= second <= 0xFE and second != 0x7F:
        return 2
    return 1


def _ean13_digits(text: str) -> str | None:
    """13 digits with a right check digit (computed when 12 were sent), else None."""
    if not text.isdigit() or len(text) not in (12, 13):
        return None
    odd = sum(int(d) for d in text[0:12:2])
    even = sum(int(d) for d in text[1:12:2])
    check = str((10 - (odd + 3 * even) % 10) % 10)
    if len(text) == 13 and text[12] != check:
        return None
    return text[:12] + check
