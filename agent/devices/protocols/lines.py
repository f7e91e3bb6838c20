"""Line framing for scanners and keypads (CONTRACTS section 6): one line per scan or
answer, ended by CR or LF. Pure: bytes in, lines out.

A CRLF pair ends one line (the empty "line" between CR and LF is dropped, like every
empty or all-whitespace line). Text is UTF-8; bytes that are not valid UTF-8 become
U+FFFD and the line says so. A line longer than `max_len` bytes is dropped whole (a
scanner without a suffix configured would otherwise grow the buffer forever) and
reported by length only: scanned lines are passes and codes, which never get logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 4096
_TERMINATOR = re.compile(rb"[\r\n]")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    had_bad_bytes: bool = False


@dataclass(frozen=True, slots=True)
class LineTooLong:
    length: int


class LineFramer:
    """Feed received chunks, get the lines they complete."""

    def __init__(self, max_len: int = MAX_LINE) -> None:
        self.max_len = max_len
        self._buf = bytearray()
        self._dropped = 0  # bytes of an overlong line already thrown away

    def reset(self) -> None:
        """Forget a partial line (the device went away mid-line)."""
        self._buf.clear()
        self._dropped = 0

    def feed(self, data: bytes) -> list[Line | LineTooLong]:
        out: list[Line | LineTooLong] = []
        if _TERMINATOR.search(data):
            self._buf += data
            *complete, rest = _TERMINATOR.split(self._buf)
            for raw in complete:
                if self._dropped:
                    out.append(LineTooLong(self._dropped + len(raw)))
                    self._dropped = 0
                elif len(raw) > self.max_len:
                    out.append(LineTooLong(len(raw)))
                elif line := _decode(raw):
                    out.append(line)
            self._buf = bytearray(rest)
        else:
            self._buf += data
        if len(self._buf) > self.max_len:
            self._dropped += len(self._buf)
            self._buf.clear()
        return out


def _decode(raw: bytes) -> Line | None:
    try:
        text, bad = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad = raw.decode("utf-8", errors="replace"), True
    text = text.strip()
    return Line(text, bad) if text else None
