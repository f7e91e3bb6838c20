"""Vending machine controller (VMC) "upper computer" codec (CONTRACTS section 6). Pure.

RS232, 57600 8N1. The VMC is master: it polls, the upper computer (the agent) answers.
Every frame is

    FA FB  cmd  len  body...  XOR

where `len` counts the body bytes and XOR covers every byte before it (FA and FB
included). POLL (41) and ACK (42) have no body (`FA FB 41 00 40`, `FA FB 42 00 43`);
every other frame's body starts with a packet number (packNo, 1..255 then 1 again) that
a retransmission repeats, followed by the command's data. Slot (selection) numbers are
two bytes big-endian, prices four bytes big-endian in fen (0.01 yuan).

    cmd  direction  name             data after packNo
    01   agent->VMC check selection  slot(2)
    02   VMC->agent selection status status(1) slot(2)   01 ok, 02 empty, 03 absent (no such
                                                         selection), 04 fault (paused)
    03   agent->VMC buy              slot(2)
    04   VMC->agent dispense status  status(1) slot(2)   01 dispensing, 02 success, 03 jammed,
                                                         04 motor didn't stop, 06 no motor
    12   agent->VMC set price        slot(2) price(4)
    13   agent->VMC set inventory    slot(2) qty(1)

docs/vending.md has the exchange rules (who answers what, within how long, retries).
Commands this codec does not know (the VMC's coin and card reports, for instance) decode
as `Unknown`, so a driver can still acknowledge them.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from functools import reduce

STX = b"\xfa\xfb"
HEADER_LEN = 4  # FA FB cmd len
MAX_PACK = 255
# Bodies of commands this codec does not know are at most this long. A garbage header
# claiming a longer body would otherwise hold back the polls behind it until that many
# bytes arrived (a POLL is 5 bytes every 200 ms).
MAX_UNKNOWN_BODY = 16

CMD_CHECK = 0x01
CMD_SELECTION = 0x02
CMD_BUY = 0x03
CMD_DISPENSE = 0x04
CMD_SET_PRICE = 0x12
CMD_SET_INVENTORY = 0x13
CMD_POLL = 0x41
CMD_ACK = 0x42

MAX_SLOT = 0xFFFF
MAX_PRICE_FEN = 0xFFFFFFFF
MAX_QTY = 0xFF


def xor(data: bytes) -> int:
    """XOR of all bytes: the check byte that ends every frame."""
    return reduce(lambda acc, b: acc ^ b, data, 0)


def next_pack(pack: int) -> int:
    """The packet number after `pack`: 1..255, then 1 again (0 is never used)."""
    return pack % MAX_PACK + 1


class FrameError(ValueError):
    """Bytes that are not a valid frame or message; the message says what is wrong."""


class SlotState(enum.IntEnum):
    """Selection status codes (cmd 02, the document's 4.3.1; tests/golden/ holds them)."""

    OK = 0x01  # normal
    EMPTY = 0x02  # out of stock
    ABSENT = 0x03  # selection doesn't exist: no motor wired there
    FAULT = 0x04  # selection paused: the VMC took it out of service (after a jam, say)


class DispenseState(enum.IntEnum):
    """Dispensing status codes (cmd 04)."""

    DISPENSING = 0x01
    SUCCESS = 0x02
    JAMMED = 0x03
    MOTOR_NOT_STOPPED = 0x04
    NO_MOTOR = 0x06

    @property
    def final(self) -> bool:
        return self is not DispenseState.DISPENSING


# --- frames --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    cmd: int
    body: bytes = b""


def encode_frame(frame: Frame) -> bytes:
    if not 0 <= frame.cmd <= 0xFF:
        raise FrameError(f"command {frame.cmd} out of range 0-255")
    if len(frame.body) > 0xFF:
        raise FrameError(f"body of {len(frame.body)} bytes; at most 255 fit")
    head = STX + bytes((frame.cmd, len(frame.body))) + frame.body
    return head + bytes((xor(head),))


def _length_problem(cmd: int, length: int) -> str | None:
    """Why a header cannot start a frame, or None when it can."""
    want = _BODY_LEN.get(cmd)
    if want is not None:
        return None if length == want else f"command {cmd:02X} has {want} body bytes, not {length}"
    if length == 0 or length > MAX_UNKNOWN_BODY:
        return f"unknown command {cmd:02X} with a {length}-byte body"
    return None


def decode_frame(data: bytes) -> Frame:
    """Exactly one frame; raises FrameError."""
    if len(data) < HEADER_LEN + 1:
        raise FrameError(f"a frame is at least {HEADER_LEN + 1} bytes, got {len(data)}")
    if data[:2] != STX:
        raise FrameError(f"a frame starts with FA FB, not {data[:2].hex(' ')}")
    cmd, length = data[2], data[3]
    if len(data) != HEADER_LEN + length + 1:
        raise FrameError(f"length byte says {length} body bytes; frame has {len(data) - 5}")
    if data[-1] != xor(data[:-1]):
        raise FrameError(f"bad XOR {data[-1]:02X}, expected {xor(data[:-1]):02X}")
    problem = _length_problem(cmd, length)
    if problem:
        raise FrameError(problem)
    return Frame(cmd, bytes(data[HEADER_LEN:-1]))


class Deframer:
    """Stream decoder: feed bytes as they arrive, get frames and the garbage skipped.

    Resynchronises on FA FB: a run of bytes that does not start a valid frame (wrong
    check, impossible length, noise) is skipped and reported as one FrameError, for the
    caller to log; the frames after it come out as usual.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self._buf += data
        out: list[Frame | FrameError] = []
        skipped = bytearray()
        why = ""

        def flush() -> None:
            if skipped:
                out.append(FrameError(f"skipped {len(skipped)} bytes ({why}): {skipped.hex(' ')}"))
                skipped.clear()

        buf = self._buf
        while buf:
            start = buf.find(STX)
            if start < 0:
                # Keep a trailing FA: it may be the first half of the next STX.
                keep = 1 if buf[-1] == STX[0] else 0
                skipped += buf[: len(buf) - keep]
                del buf[: len(buf) - keep]
                why = why or "no FA FB"
                break
            if start:
                skipped += buf[:start]
                del buf[:start]
                why = why or "no FA FB"
            if len(buf) < HEADER_LEN:
                break
            cmd, length = buf[2], buf[3]
            problem = _length_problem(cmd, length)
            if problem is None:
                end = HEADER_LEN + length + 1
                if len(buf) < end:
                    break
                if buf[end - 1] == xor(bytes(buf[: end - 1])):
                    flush()
                    why = ""
                    out.append(Frame(cmd, bytes(buf[HEADER_LEN : end - 1])))
                    del buf[:end]
                    continue
                problem = f"bad XOR on a {cmd:02X} frame"
            why = why or problem
            # Not a frame here: skip this FA and look for the next FA FB.
            skipped.append(buf.pop(0))
        flush()
        return out


# --- messages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poll:
    """VMC: anything to send? (answer within 100 ms: ACK or one command)"""


@dataclass(frozen=True, slots=True)
class Ack:
    """Either side: the last packet arrived."""


@dataclass(frozen=True, slots=True)
class CheckSelection:
    pack: int
    slot: int


@dataclass(frozen=True, slots=True)
class SelectionStatus:
    pack: int
    state: SlotState
    slot: int


@dataclass(frozen=True, slots=True)
class Buy:
    pack: int
    slot: int


@dataclass(frozen=True, slots=True)
class DispenseStatus:
    pack: int
    state: DispenseState
    slot: int


@dataclass(frozen=True, slots=True)
class SetPrice:
    pack: int
    slot: int
    price_fen: int


@dataclass(frozen=True, slots=True)
class SetInventory:
    pack: int
    slot: int
    qty: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A packet of a command this codec does not know: acknowledged, otherwise ignored."""

    cmd: int
    pack: int
    data: bytes


Message = (
    Poll
    | Ack
    | CheckSelection
    | SelectionStatus
    | Buy
    | DispenseStatus
    | SetPrice
    | SetInventory
    | Unknown
)
Packet = CheckSelection | SelectionStatus | Buy | DispenseStatus | SetPrice | SetInventory | Unknown

# Body length (packNo included) of every command this codec knows.
_BODY_LEN: dict[int, int] = {
    CMD_POLL: 0,
    CMD_ACK: 0,
    CMD_CHECK: 3,
    CMD_SELECTION: 4,
    CMD_BUY: 3,
    CMD_DISPENSE: 4,
    CMD_SET_PRICE: 7,
    CMD_SET_INVENTORY: 4,
}


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise FrameError(f"{name} {value} out of range {low}-{high}")


def to_frame(msg: Message) -> Frame:
    match msg:
        case Poll():
            return Frame(CMD_POLL)
        case Ack():
            return Frame(CMD_ACK)
    _check("packNo", msg.pack, 1, MAX_PACK)
    match msg:
        case CheckSelection(pack, slot) | Buy(pack, slot):
            _check("slot", slot, 0, MAX_SLOT)
            cmd = CMD_CHECK if isinstance(msg, CheckSelection) else CMD_BUY
            return Frame(cmd, struct.pack(">BH", pack, slot))
        case SelectionStatus(pack, state, slot) | DispenseStatus(pack, state, slot):
            _check("slot", slot, 0, MAX_SLOT)
            cmd = CMD_SELECTION if isinstance(msg, SelectionStatus) else CMD_DISPENSE
            return Frame(cmd, struct.pack(">BBH", pack, int(state), slot))
        case SetPrice(pack, slot, price):
            _check("slot", slot, 0, MAX_SLOT)
            _check("price_fen", price, 0, MAX_PRICE_FEN)
            return Frame(CMD_SET_PRICE, struct.pack(">BHI", pack, slot, price))
        case SetInventory(pack, slot, qty):
            _check("slot", slot, 0, MAX_SLOT)
            _check("qty", qty, 0, MAX_QTY)
            return Frame(CMD_SET_INVENTORY, struct.pack(">BHB", pack, slot, qty))
        case Unknown(cmd, pack, data):
            if cmd in _BODY_LEN:
                raise FrameError(f"command {cmd:02X} is known; use its message type")
            if len(data) + 1 > MAX_UNKNOWN_BODY:
                raise FrameError(f"unknown command body of {len(data) + 1} bytes is too long")
            return Frame(cmd, bytes((pack,)) + data)
    raise TypeError(f"not a VMC message: {msg!r}")


def encode(msg: Message) -> bytes:
    return encode_frame(to_frame(msg))


def from_frame(frame: Frame) -> Message:
    """The message a (checked) frame carries; raises FrameError for bad field values."""
    cmd, body = frame.cmd, frame.body
    problem = _length_problem(cmd, len(body))
    if problem:
        raise FrameError(problem)
    if cmd == CMD_POLL:
        return Poll()
    if cmd == CMD_ACK:
        return Ack()
    pack = body[0]
    if pack == 0:
        raise FrameError(f"packNo 0 in a {cmd:02X} frame (packet numbers run 1-255)")
    if cmd in (CMD_CHECK, CMD_BUY):
        (slot,) = struct.unpack(">H", body[1:])
        return CheckSelection(pack, slot) if cmd == CMD_CHECK else Buy(pack, slot)
    if cmd == CMD_SELECTION:
        code, slot = struct.unpack(">BH", body[1:])
        try:
            return SelectionStatus(pack, SlotState(code), slot)
        except ValueError:
            raise FrameError(f"unknown selection status {code:02X}") from None
    if cmd == CMD_DISPENSE:
        code, slot = struct.unpack(">BH", body[1:])
        try:
            return DispenseStatus(pack, DispenseState(code), slot)
        except ValueError:
            raise FrameError(f"unknown dispensing status {code:02X}") from None
    if cmd == CMD_SET_PRICE:
        slot, price = struct.unpack(">HI", body[1:])
        return SetPrice(pack, slot, price)
    if cmd == CMD_SET_INVENTORY:
        slot, qty = struct.unpack(">HB", body[1:])
        return SetInventory(pack, slot, qty)
    return Unknown(cmd, pack, bytes(body[1:]))


def decode(data: bytes) -> Message:
    """Exactly one frame's bytes -> its message; raises FrameError."""
    return from_frame(decode_frame(data))


def describe(msg: Message) -> str:
    """A short human form for logs: `BUY #7 slot 3`."""
    match msg:
        case Poll():
            return "POLL"
        case Ack():
            return "ACK"
        case CheckSelection(pack, slot):
            return f"CHECK #{pack} slot {slot}"
        case SelectionStatus(pack, state, slot):
            return f"SELECTION #{pack} slot {slot} {state.name.lower()}"
        case Buy(pack, slot):
            return f"BUY #{pack} slot {slot}"
        case DispenseStatus(pack, state, slot):
            return f"DISPENSE #{pack} slot {slot} {state.name.lower()}"
        case SetPrice(pack, slot, price):
            return f"SET-PRICE #{pack} slot {slot} {price} fen"
        case SetInventory(pack, slot, qty):
            return f"SET-INVENTORY #{pack} slot {slot} qty {qty}"
        case Unknown(cmd, pack, data):
            return f"CMD {cmd:02X} #{pack} {data.hex(' ')}"
    return repr(msg)
