"""ULIDs: unique, time-ordered ids for events (https://github.com/ulid/spec).

26 characters of Crockford base32: 48 bits of milliseconds since the epoch, then 80
random bits. Within one process ids are strictly increasing: a second id in the same
millisecond (or in an earlier one, should the caller's clock step back) is the previous
id plus one, so sorting ids sorts events in the order they were made.
"""

from __future__ import annotations

import base64
import os
import threading

_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_RFC4648, CROCKFORD)
_FROM_CROCKFORD = {c: i for i, c in enumerate(CROCKFORD)}

_RANDOM_BITS = 80
_MAX_MS = (1 << 48) - 1


def encode_ulid(value: int) -> str:
    """The 26-character form of a 128-bit value."""
    if not 0 <= value < 1 << 128:
        raise ValueError("a ULID is a 128-bit unsigned value")
    # 26 base32 digits hold 130 bits: the value with two zero bits on top. Shifting it
    # left by 6 makes 136 bits (17 bytes) whose first 130 bits are exactly those digits,
    # so the C base32 encoder does the work and we keep its first 26 characters.
    raw = (value << 6).to_bytes(17, "big")
    return base64.b32encode(raw)[:26].decode("ascii").translate(_TO_CROCKFORD)


def decode_ulid(text: str) -> int:
    """The 128-bit value of a ULID (case-insensitive, as the spec allows)."""
    if len(text) != 26:
        raise ValueError(f"a ULID has 26 characters, not {len(text)}")
    value = 0
    for ch in text.upper():
        digit = _FROM_CROCKFORD.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} is not a Crockford base32 digit")
        value = value << 5 | digit
    if value >= 1 << 128:
        raise ValueError("a ULID's first character is at most 7")
    return value


def ulid_ms(text: str) -> int:
    """The millisecond timestamp inside a ULID."""
    return decode_ulid(text) >> _RANDOM_BITS


class UlidFactory:
    """Makes ULIDs that are strictly increasing for as long as this object lives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = -1
        self._prefix = ""
        self._random = 0

    def new(self, ms: int) -> str:
        """A new ULID for the time `ms` (milliseconds since the epoch)."""
        with self._lock:
            if ms > self._ms:
                if ms > _MAX_MS:
                    raise ValueError(f"{ms} ms does not fit a ULID's 48-bit time")
                self._ms = ms
                self._prefix = encode_ulid(ms << _RANDOM_BITS)[:10]
                # 79 bits, so counting up within one millisecond cannot overflow in practice.
                self._random = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                # Same millisecond (or the caller's clock stepped back): the spec's
                # monotonic rule, count up from the previous id and keep its time.
                self._random += 1
                if self._random >> _RANDOM_BITS:
                    raise OverflowError("more than 2**79 ULIDs in one millisecond")
            random = self._random
            prefix = self._prefix
        # 80 bits are exactly 16 base32 digits: the C encoder does them in one go.
        return prefix + base64.b32encode(random.to_bytes(10, "big")).decode().translate(
            _TO_CROCKFORD
        )


_default = UlidFactory()


def new_ulid(ms: int) -> str:
    """A new ULID from the process-wide factory (monotonic within this process)."""
    return _default.new(ms)
