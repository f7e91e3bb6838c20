"""Keyboard-wedge scanners: evdev key events -> text lines, through a keyboard layout.

A USB HID scanner is a keyboard: for each character it presses and releases keys
(Shift down, key down, key up, Shift up) and ends the scan with Enter. What a key means
depends on the keyboard layout the scanner was set to emulate, so the layout is data
here: per key code (Linux input-event-codes.h, the kernel's ABI), the character with no
modifier, with Shift, and with AltGr. Chinese stores use `us`; `fr` (AZERTY) shows why
it must be data: there the digits need Shift and `@` needs AltGr.

Pure: (type, code, value) in, lines out; no evdev import, so it runs anywhere. Key
repeat (value 2) types the character again, as the kernel console does. Dead keys are
not composed (no ASCII barcode needs one on these layouts). A key the layout does not
know (Tab, F1, a dead key...) is counted and reported with the line it fell in, never
guessed at: a wrong character in a barcode is worse than a refused scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EV_KEY = 0x01
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2

KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_LEFTCTRL, KEY_RIGHTCTRL = 29, 97
KEY_LEFTALT, KEY_RIGHTALT = 56, 100
KEY_LEFTMETA, KEY_RIGHTMETA = 125, 126
KEY_CAPSLOCK, KEY_NUMLOCK = 58, 69
SHIFTS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
LINE_ENDS = frozenset({KEY_ENTER, KEY_KPENTER})
# Modifiers that choose no character on these layouts: held state only, never "unknown".
PLAIN_MODIFIERS = frozenset(
    {KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_LEFTMETA, KEY_RIGHTMETA, KEY_NUMLOCK}
)
MAX_LINE = 4096

# One key: (no modifier, Shift, AltGr); "" where that level types nothing.
Levels = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    keys: Mapping[int, Levels]
    altgr: bool  # Right Alt is AltGr (third level) rather than a plain Alt

    def char(self, code: int, shift: bool, altgr: bool, caps: bool) -> str | None:
        levels = self.keys.get(code)
        if levels is None:
            return None
        plain = levels[0]
        if altgr and self.altgr:
            return levels[2] or None
        # Caps Lock shifts letters only, as on a PC keyboard.
        if caps and plain.isalpha() and len(plain) == 1:
            shift = not shift
        return (levels[1] if shift else plain) or None


def _row(first_code: int, plain: str, shifted: str) -> dict[int, Levels]:
    assert len(plain) == len(shifted)
    return {first_code + i: (p, s, "") for i, (p, s) in enumerate(zip(plain, shifted, strict=True))}


# Keypad keys type the same on every layout (scanners in "keypad" mode send these).
_KEYPAD: dict[int, Levels] = {
    71: ("7", "7", ""),
    72: ("8", "8", ""),
    73: ("9", "9", ""),
    74: ("-", "-", ""),
    75: ("4", "4", ""),
    76: ("5", "5", ""),
    77: ("6", "6", ""),
    78: ("+", "+", ""),
    79: ("1", "1", ""),
    80: ("2", "2", ""),
    81: ("3", "3", ""),
    82: ("0", "0", ""),
    83: (".", ".", ""),
    55: ("*", "*", ""),
    98: ("/", "/", ""),
    57: (" ", " ", ""),  # the space bar
}

US = Layout(
    "us",
    {
        **_row(2, "1234567890-=", "!@#$%^&*()_+"),
        **_row(16, "qwertyuiop[]", "QWERTYUIOP{}"),
        **_row(30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
        **_row(43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
        **_KEYPAD,
    },
    altgr=False,
)

# French AZERTY as Linux/xkb `fr` (basic) has it. Key 26 (^ ¨) is a dead key: left out.
FR = Layout(
    "fr",
    {
        2: ("&", "1", ""),
        3: ("é", "2", "~"),
        4: ('"', "3", "#"),
        5: ("'", "4", "{"),
        6: ("(", "5", "["),
        7: ("-", "6", "|"),
        8: ("è", "7", "`"),
        9: ("_", "8", "\\"),
        10: ("ç", "9", "^"),
        11: ("à", "0", "@"),
        12: (")", "°", "]"),
        13: ("=", "+", "}"),
        **_row(16, "azertyuiop", "AZERTYUIOP"),
        27: ("$", "£", "¤"),
        **_row(30, "qsdfghjklm", "QSDFGHJKLM"),
        40: ("ù", "%", ""),
        41: ("²", "", ""),
        43: ("*", "µ", ""),
        86: ("<", ">", ""),
        **_row(44, "wxcvbn", "WXCVBN"),
        50: (",", "?", ""),
        51: (";", ".", ""),
        52: (":", "/", ""),
        53: ("!", "§", ""),
        **_KEYPAD,
    },
    altgr=True,
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (US, FR)}


@dataclass(frozen=True, slots=True)
class WedgeLine:
    """One scan: the text typed before Enter, and how many keys in it meant nothing."""

    text: str
    unknown_keys: int = 0


@dataclass(frozen=True, slots=True)
class WedgeLineTooLong:
    length: int


WedgeItem = WedgeLine | WedgeLineTooLong


@dataclass(slots=True)
class WedgeDecoder:
    """Feed every input event; get the lines that Enter completes."""

    layout: Layout
    max_len: int = MAX_LINE
    unknown_total: int = 0  # unknown key presses since the decoder was made
    _held: set[int] = field(default_factory=set)
    _caps: bool = False
    _buf: list[str] = field(default_factory=list)
    _unknown: int = 0
    _dropped: int = 0

    def reset(self) -> None:
        """Forget a partial line and the held keys (the device went away)."""
        self._held.clear()
        self._buf.clear()
        self._unknown = 0
        self._dropped = 0

    def feed(self, type_: int, code: int, value: int) -> list[WedgeItem]:
        if type_ != EV_KEY:
            return []  # EV_SYN, EV_MSC (scan codes), EV_LED: nothing typed
        if value == KEY_UP:
            self._held.discard(code)
            return []
        if value not in (KEY_DOWN, KEY_REPEAT):
            return []
        if value == KEY_DOWN:
            self._held.add(code)
        if code in LINE_ENDS:
            return [] if value == KEY_REPEAT else self._end_line()
        if code in SHIFTS or code in PLAIN_MODIFIERS or code == KEY_RIGHTALT:
            return []
        if code == KEY_CAPSLOCK:
            if value == KEY_DOWN:
                self._caps = not self._caps
            return []
        shift = not self._held.isdisjoint(SHIFTS)
        altgr = KEY_RIGHTALT in self._held
        ch = self.layout.char(code, shift, altgr, self._caps)
        if ch is None:
            self._unknown += 1
            self.unknown_total += 1
            return []
        if self._dropped or len(self._buf) >= self.max_len:
            self._dropped = self._dropped or len(self._buf)
            self._dropped += 1
            self._buf.clear()
            return []
        self._buf.append(ch)
        return []

    def _end_line(self) -> list[WedgeItem]:
        text, unknown, dropped = "".join(self._buf), self._unknown, self._dropped
        self._buf.clear()
        self._unknown = 0
        self._dropped = 0
        if dropped:
            return [WedgeLineTooLong(dropped)]
        if not text.strip() and not unknown:
            return []  # a bare Enter (a scanner's prefix, a stray key): no scan
        return [WedgeLine(text, unknown)]


def encode(text: str, layout: Layout, *, raw: bool = False) -> list[tuple[int, int, int]]:
    """The (EV_KEY, code, value) events a scanner emulating `layout` sends to type `text`
    and Enter; ValueError for a character the layout cannot type. The decoder's
    inverse, used by the simulator and the tests. `raw`: CR and LF in `text` are typed
    as Enter, as a real wedge scanner types a QR whose content holds line breaks."""
    where: dict[str, tuple[int, int]] = {}
    for code, levels in sorted(layout.keys.items()):
        for level, ch in enumerate(levels):
            if ch and (level < 2 or layout.altgr):
                where.setdefault(ch, (code, level))
    out: list[tuple[int, int, int]] = []
    for ch in text:
        if raw and ch in "\r\n":
            out += [(EV_KEY, KEY_ENTER, KEY_DOWN), (EV_KEY, KEY_ENTER, KEY_UP)]
            continue
        if ch not in where:
            raise ValueError(f"the {layout.name} layout cannot type {ch!r}")
        code, level = where[ch]
        modifier = {0: None, 1: KEY_LEFTSHIFT, 2: KEY_RIGHTALT}[level]
        if modifier is not None:
            out.append((EV_KEY, modifier, KEY_DOWN))
        out += [(EV_KEY, code, KEY_DOWN), (EV_KEY, code, KEY_UP)]
        if modifier is not None:
            out.append((EV_KEY, modifier, KEY_UP))
    out += [(EV_KEY, KEY_ENTER, KEY_DOWN), (EV_KEY, KEY_ENTER, KEY_UP)]
    return out
