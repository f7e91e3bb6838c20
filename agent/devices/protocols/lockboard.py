"""RS485 lock control board codec (CONTRACTS section 6). Pure: bytes in, frames out.

Wire format (9600 8N1, every frame ends with BCC = XOR of the bytes before it):

    open one lock      8A board lock 11 BCC    reply 8A board lock ST BCC
    query one lock     80 board lock 33 BCC    reply 80 board lock ST BCC
    query all locks    80 board 00 33 BCC      reply 80 board S3 S2 S1 33 BCC

ST is the lock's feedback input: 0x11 closed (locked), 0x00 open (the board's document,
sections 五 and 六: after OPEN, `8A 01 01 00 8A` means lock 1 opened and `8A 01 01 11 9B`
that it did not; tests/golden/ holds this codec to those bytes).
S1 carries locks 1-8 (bit 0 = lock 1), S2 locks 9-16, S3 locks 17-24; a set bit = locked.
A reply can only be framed knowing the request it answers (a query-all reply's first
five bytes can carry a valid BCC by chance), so replies are parsed against the request,
the way a half-duplex master reads its bus.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

OPEN = 0x8A
QUERY = 0x80
OPEN_TAIL = 0x11
QUERY_TAIL = 0x33
ST_LOCKED = 0x11
ST_UNLOCKED = 0x00
MAX_BOARD = 0xFF
MAX_LOCK = 24
REQUEST_LEN = 5
SHORT_REPLY_LEN = 5
ALL_REPLY_LEN = 7


def bcc(data: bytes) -> int:
    """XOR of all bytes: the checksum the board appends to every frame."""
    return reduce(lambda acc, b: acc ^ b, data, 0)


def _with_bcc(body: bytes) -> bytes:
    return body + bytes((bcc(body),))


@dataclass(frozen=True, slots=True)
class OpenLock:
    board: int
    lock: int


@dataclass(frozen=True, slots=True)
class QueryLock:
    board: int
    lock: int


@dataclass(frozen=True, slots=True)
class QueryAll:
    board: int


Request = OpenLock | QueryLock | QueryAll


@dataclass(frozen=True, slots=True)
class LockStatus:
    """Reply to OpenLock or QueryLock: one lock's feedback."""

    board: int
    lock: int
    locked: bool


@dataclass(frozen=True, slots=True)
class BoardStatus:
    """Reply to QueryAll: the feedback of all 24 locks of one board."""

    board: int
    locked: tuple[bool, ...]  # index 0 is lock 1

    def is_locked(self, lock: int) -> bool:
        return self.locked[lock - 1]


Reply = LockStatus | BoardStatus


class FrameError(ValueError):
    """Bytes that are not a valid frame; the message says what is wrong."""


def _check_address(board: int, lock: int | None) -> None:
    if not 0 <= board <= MAX_BOARD:
        raise FrameError(f"board {board} out of range 0-{MAX_BOARD}")
    if lock is not None and not 1 <= lock <= MAX_LOCK:
        raise FrameError(f"lock {lock} out of range 1-{MAX_LOCK}")


def encode_request(req: Request) -> bytes:
    match req:
        case OpenLock(board, lock):
            _check_address(board, lock)
            return _with_bcc(bytes((OPEN, board, lock, OPEN_TAIL)))
        case QueryLock(board, lock):
            _check_address(board, lock)
            return _with_bcc(bytes((QUERY, board, lock, QUERY_TAIL)))
        case QueryAll(board):
            _check_address(board, None)
            return _with_bcc(bytes((QUERY, board, 0x00, QUERY_TAIL)))
    raise TypeError(f"not a lock board request: {req!r}")


def encode_reply(reply: Reply, *, to: Request) -> bytes:
    """Encode a reply as the board sends it (the simulator's side)."""
    match reply:
        case LockStatus(board, lock, locked):
            _check_address(board, lock)
            head = OPEN if isinstance(to, OpenLock) else QUERY
            st = ST_LOCKED if locked else ST_UNLOCKED
            return _with_bcc(bytes((head, board, lock, st)))
        case BoardStatus(board, locked):
            _check_address(board, None)
            if len(locked) != MAX_LOCK:
                raise FrameError(f"a board reports {MAX_LOCK} locks, got {len(locked)}")
            bits = sum(1 << i for i, is_locked in enumerate(locked) if is_locked)
            s1, s2, s3 = bits & 0xFF, (bits >> 8) & 0xFF, (bits >> 16) & 0xFF
            return _with_bcc(bytes((QUERY, board, s3, s2, s1, QUERY_TAIL)))
    raise TypeError(f"not a lock board reply: {reply!r}")


def decode_request(frame: bytes) -> Request:
    """Decode exactly one 5-byte request frame."""
    if len(frame) != REQUEST_LEN:
        raise FrameError(f"request is {REQUEST_LEN} bytes, got {len(frame)}")
    head, board, lock, tail, check = frame
    if check != bcc(frame[:4]):
        raise FrameError(f"bad BCC {check:02X}, expected {bcc(frame[:4]):02X}")
    if head == OPEN and tail == OPEN_TAIL and lock != 0:
        _check_address(board, lock)
        return OpenLock(board, lock)
    if head == QUERY and tail == QUERY_TAIL:
        if lock == 0:
            return QueryAll(board)
        _check_address(board, lock)
        return QueryLock(board, lock)
    raise FrameError(f"unknown command {head:02X} .. {tail:02X}")


def reply_length(to: Request) -> int:
    return ALL_REPLY_LEN if isinstance(to, QueryAll) else SHORT_REPLY_LEN


def decode_reply(frame: bytes, *, to: Request) -> Reply:
    """Decode the reply to `to`; raises FrameError when it is not that reply."""
    want = reply_length(to)
    if len(frame) != want:
        raise FrameError(f"reply is {want} bytes, got {len(frame)}")
    if frame[-1] != bcc(frame[:-1]):
        raise FrameError(f"bad BCC {frame[-1]:02X}, expected {bcc(frame[:-1]):02X}")
    head, board = frame[0], frame[1]
    if board != to.board:
        raise FrameError(f"reply from board {board}, asked board {to.board}")
    if isinstance(to, QueryAll):
        if head != QUERY or frame[5] != QUERY_TAIL:
            raise FrameError("not a query-all reply")
        s3, s2, s1 = frame[2], frame[3], frame[4]
        bits = s1 | (s2 << 8) | (s3 << 16)
        return BoardStatus(board, tuple(bool(bits >> i & 1) for i in range(MAX_LOCK)))
    expected_head = OPEN if isinstance(to, OpenLock) else QUERY
    lock, st = frame[2], frame[3]
    if head != expected_head or lock != to.lock:
        raise FrameError(f"reply {head:02X} for lock {lock}, asked lock {to.lock}")
    if st not in (ST_LOCKED, ST_UNLOCKED):
        raise FrameError(f"unknown lock status {st:02X}")
    return LockStatus(board, lock, locked=st == ST_LOCKED)


class RequestDecoder:
    """Stream decoder for the board's side: feed bytes, get requests.

    Garbage is skipped one byte at a time until a valid frame lines up again; each
    skipped run is reported so the caller can log it.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Request | FrameError]:
        self._buf += data
        out: list[Request | FrameError] = []
        skipped = bytearray()
        while len(self._buf) >= REQUEST_LEN or (self._buf and self._buf[0] not in (OPEN, QUERY)):
            if self._buf[0] not in (OPEN, QUERY):
                skipped.append(self._buf.pop(0))
                continue
            try:
                req = decode_request(bytes(self._buf[:REQUEST_LEN]))
            except FrameError:
                skipped.append(self._buf.pop(0))
                continue
            if skipped:
                out.append(FrameError(f"skipped {len(skipped)} bytes: {skipped.hex(' ')}"))
                skipped.clear()
            del self._buf[:REQUEST_LEN]
            out.append(req)
        if skipped:
            out.append(FrameError(f"skipped {len(skipped)} bytes: {skipped.hex(' ')}"))
        return out


def find_reply(buf: bytes, *, to: Request) -> tuple[Reply | None, int, bytes]:
    """Look for the reply to `to` in buf.

    Returns (reply or None, bytes consumed, garbage skipped). With None and nothing
    consumed, more bytes are needed.
    """
    head = OPEN if isinstance(to, OpenLock) else QUERY
    want = reply_length(to)
    start = 0
    while start < len(buf):
        if buf[start] != head:
            start += 1
            continue
        if len(buf) - start < want:
            return None, start, bytes(buf[:start])
        try:
            reply = decode_reply(bytes(buf[start : start + want]), to=to)
        except FrameError:
            start += 1
            continue
        return reply, start + want, bytes(buf[:start])
    return None, start, bytes(buf[:start])
