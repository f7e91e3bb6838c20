"""The lock control board's frames, as the board reads and writes them. Pure.

Written from the board's document (锁控板通讯协议和规格书, sections 四-六; see
tests/golden/lockboard_frames.py for where it is published) and CONTRACTS section 6, apart
from the agent's codec: tests/golden/ holds both to the document's bytes, so a misreading
cannot hide by being shared.

    8A board lock 11 BCC   open one lock     reply  8A board lock ST BCC
    80 board lock 33 BCC   query one lock    reply  80 board lock ST BCC
    80 board 00   33 BCC   query all locks   reply  80 board S3 S2 S1 33 BCC

BCC is the XOR of the bytes before it. ST is the lock's feedback input: 11 closed
(locked), 00 open. S1 carries locks 1-8 (bit 0 = lock 1), S2 locks 9-16, S3 locks 17-24;
a set bit reads locked. `8A board 00 11` (open every lock) is not modelled: the agent
never sends it, and a frame the board does not model goes unanswered like noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

HEAD_OPEN = 0x8A
HEAD_QUERY = 0x80
FN_OPEN = 0x11
FN_QUERY = 0x33
ST_CLOSED = 0x11
ST_OPEN = 0x00
LOCKS = 24
COMMAND_LEN = 5

Op = Literal["open", "query", "query_all"]


@dataclass(frozen=True, slots=True)
class Command:
    op: Op
    board: int
    lock: int  # 0 for query_all
    frame: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Noise:
    """Bytes that were not a command, skipped so the next command lines up again."""

    data: bytes


def bcc(data: bytes) -> int:
    check = 0
    for b in data:
        check ^= b
    return check


def _sealed(body: bytes) -> bytes:
    return body + bytes((bcc(body),))


def read_command(frame: bytes) -> Command | None:
    """The command those 5 bytes are, or None."""
    if len(frame) != COMMAND_LEN or bcc(frame) != 0:  # a good BCC XORs the frame to 0
        return None
    head, board, lock, fn = frame[0], frame[1], frame[2], frame[3]
    if head == HEAD_OPEN and fn == FN_OPEN and 1 <= lock <= LOCKS:
        return Command("open", board, lock, bytes(frame))
    if head == HEAD_QUERY and fn == FN_QUERY:
        if lock == 0:
            return Command("query_all", board, 0, bytes(frame))
        if lock <= LOCKS:
            return Command("query", board, lock, bytes(frame))
    return None


class CommandReader:
    """What arrives on the bus, split into commands. A byte that does not start a command
    is skipped (a run of them comes out as one Noise, for the log), so one corrupted frame
    costs that frame and no more."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Command | Noise]:
        self._buf += data
        out: list[Command | Noise] = []
        noise = bytearray()
        buf = self._buf
        while buf:
            if buf[0] in (HEAD_OPEN, HEAD_QUERY):
                if len(buf) < COMMAND_LEN:
                    break  # the rest of this frame is still on its way
                cmd = read_command(bytes(buf[:COMMAND_LEN]))
                if cmd is not None:
                    if noise:
                        out.append(Noise(bytes(noise)))
                        noise.clear()
                    out.append(cmd)
                    del buf[:COMMAND_LEN]
                    continue
            noise.append(buf.pop(0))
        if noise:
            out.append(Noise(bytes(noise)))
        return out


def lock_reply(cmd: Command, *, locked: bool) -> bytes:
    """The reply to an open or a query of one lock: that lock's feedback."""
    head = HEAD_OPEN if cmd.op == "open" else HEAD_QUERY
    return _sealed(bytes((head, cmd.board, cmd.lock, ST_CLOSED if locked else ST_OPEN)))


def board_reply(board: int, locked: Sequence[bool]) -> bytes:
    """The reply to a query of all locks; `locked[0]` is lock 1."""
    if len(locked) != LOCKS:
        raise ValueError(f"a board reports {LOCKS} locks, got {len(locked)}")
    bits = sum(1 << i for i, is_locked in enumerate(locked) if is_locked)
    s1, s2, s3 = bits & 0xFF, bits >> 8 & 0xFF, bits >> 16 & 0xFF
    return _sealed(bytes((HEAD_QUERY, board, s3, s2, s1, FN_QUERY)))
