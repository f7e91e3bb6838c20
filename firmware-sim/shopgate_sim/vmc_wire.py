"""The VMC's packets, as the vending machine controller reads and writes them. Pure.

Written from "VMC - Upper Computer Communication Protocol" (sections 3 and 4; see
tests/golden/vmc_frames.py for where it is published) and CONTRACTS section 6, apart from
the agent's codec: tests/golden/ holds both to the document's bytes and to frames captured
from a real machine, so a misreading cannot hide by being shared.

    FA FB  cmd  len  PackNO+Text  XOR

`len` counts PackNO+Text; XOR covers everything before it, FA FB included. POLL
(`FA FB 41 00 40`) and ACK (`FA FB 42 00 43`) carry no PackNO. Selection numbers are two
bytes and prices four, most significant first; prices in fen.

    01 check selection     host  PackNO, selection(2)              answered by 02
    02 selection status    VMC   PackNO, status(1), selection(2)   01 normal, 02 out of stock,
                                                                   03 no such selection,
                                                                   04 selection paused
    03 buy                 host  PackNO, selection(2)              answered by 04 (or 02)
    04 dispensing status   VMC   PackNO, status(1), selection(2)   01 dispensing, 02 success,
                                 [, microwave(1)]                  03 jammed, 04 motor didn't
                                                                   stop, 06 no motor
    12 set price           host  PackNO, selection(2), price(4)
    13 set inventory       host  PackNO, selection(2), inventory(1)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

STX = b"\xfa\xfb"
HEADER_LEN = 4  # FA FB cmd len

POLL = 0x41
ACK = 0x42
CHECK_SELECTION = 0x01
SELECTION_STATUS = 0x02
BUY = 0x03
DISPENSING_STATUS = 0x04
SET_PRICE = 0x12
SET_INVENTORY = 0x13

MAX_SELECTION = 0xFFFF
MAX_INVENTORY = 0xFF

# PackNO+Text lengths the document gives. Check selection's table says 4 where its
# fields add up to 3, and a dispensing status may carry a microwave number: both read.
_TEXT_LEN: dict[int, tuple[int, ...]] = {
    POLL: (0,),
    ACK: (0,),
    CHECK_SELECTION: (3, 4),
    SELECTION_STATUS: (4,),
    BUY: (3,),
    DISPENSING_STATUS: (4, 5),
    SET_PRICE: (7,),
    SET_INVENTORY: (4,),
}
# Other commands (payment, menu, ...) are read up to this long; a header claiming more
# is noise, and the reader looks for the next FA FB instead of waiting for that many bytes.
MAX_OTHER_TEXT = 32


class Selection(enum.IntEnum):
    """Selection status codes (4.3.1)."""

    NORMAL = 0x01
    OUT_OF_STOCK = 0x02
    NOT_EXIST = 0x03
    PAUSED = 0x04


class Dispensing(enum.IntEnum):
    """Dispensing status codes (4.3.3)."""

    DISPENSING = 0x01
    SUCCESS = 0x02
    JAMMED = 0x03
    MOTOR_NOT_STOPPED = 0x04
    NO_MOTOR = 0x06


def xor(data: bytes) -> int:
    check = 0
    for b in data:
        check ^= b
    return check


def packet(cmd: int, text: bytes = b"") -> bytes:
    head = STX + bytes((cmd, len(text))) + text
    return head + bytes((xor(head),))


def selection_status(pack: int, status: Selection, selection: int) -> bytes:
    return packet(SELECTION_STATUS, bytes((pack, status)) + selection.to_bytes(2, "big"))


def dispensing_status(pack: int, status: Dispensing, selection: int) -> bytes:
    return packet(DISPENSING_STATUS, bytes((pack, status)) + selection.to_bytes(2, "big"))


@dataclass(frozen=True, slots=True)
class Packet:
    cmd: int
    text: bytes = b""  # PackNO + Text

    @property
    def pack(self) -> int:
        return self.text[0] if self.text else 0


@dataclass(frozen=True, slots=True)
class Noise:
    """Bytes that were not a packet, skipped; `why` is for the log."""

    data: bytes
    why: str


def _fits(cmd: int, length: int) -> bool:
    known = _TEXT_LEN.get(cmd)
    return length in known if known is not None else 1 <= length <= MAX_OTHER_TEXT


class PacketReader:
    """Splits what arrives on the line into packets. A packet that does not check out
    (wrong XOR, a length its command cannot have) costs only its FA: the reader looks for
    the next FA FB from the byte after it, so the packets behind it still come through."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Packet | Noise]:
        self._buf += data
        out: list[Packet | Noise] = []
        noise = bytearray()
        why = ""
        buf = self._buf
        while buf:
            if buf[:2] != STX[: len(buf[:2])]:
                noise.append(buf.pop(0))
                why = why or "no FA FB"
                continue
            if len(buf) < HEADER_LEN:
                break  # FA or FA FB ... with the rest on its way
            cmd, length = buf[2], buf[3]
            if _fits(cmd, length):
                end = HEADER_LEN + length + 1
                if len(buf) < end:
                    break
                if xor(bytes(buf[:end])) == 0:  # the check byte XORs the packet to 0
                    if noise:
                        out.append(Noise(bytes(noise), why))
                        noise.clear()
                        why = ""
                    out.append(Packet(cmd, bytes(buf[HEADER_LEN : end - 1])))
                    del buf[:end]
                    continue
                why = why or f"bad XOR on a {cmd:02X} packet"
            else:
                why = why or f"a {cmd:02X} packet cannot hold {length} bytes"
            noise.append(buf.pop(0))
        if noise:
            out.append(Noise(bytes(noise), why))
        return out


@dataclass(frozen=True, slots=True)
class HostCommand:
    """A packet from the upper computer, read: `value` is the price in fen (12) or the
    inventory (13); commands the machine does not model keep only their PackNO."""

    cmd: int
    pack: int
    selection: int | None = None
    value: int | None = None


def read_host_command(p: Packet) -> HostCommand:
    """Raises ValueError for a packet no upper computer may send (PackNO 0, a VMC report)."""
    if p.cmd in (POLL, SELECTION_STATUS, DISPENSING_STATUS):
        raise ValueError(f"{p.cmd:02X} is sent by the VMC, not to it")
    if p.pack == 0:
        raise ValueError(f"PackNO 0 in a {p.cmd:02X} packet (PackNO runs 1-255)")
    data = p.text[1:]
    selection = int.from_bytes(data[:2], "big")
    if p.cmd in (CHECK_SELECTION, BUY):
        return HostCommand(p.cmd, p.pack, selection)
    if p.cmd == SET_PRICE:
        return HostCommand(p.cmd, p.pack, selection, int.from_bytes(data[2:6], "big"))
    if p.cmd == SET_INVENTORY:
        return HostCommand(p.cmd, p.pack, selection, data[2])
    return HostCommand(p.cmd, p.pack)


def describe(cmd: HostCommand) -> str:
    """A short form for logs: `BUY #7 selection 3`."""
    name = {
        CHECK_SELECTION: "CHECK",
        BUY: "BUY",
        SET_PRICE: "SET-PRICE",
        SET_INVENTORY: "SET-INVENTORY",
    }.get(cmd.cmd, f"CMD {cmd.cmd:02X}")
    out = f"{name} #{cmd.pack}"
    if cmd.selection is not None:
        out += f" selection {cmd.selection}"
    if cmd.value is not None:
        out += f" = {cmd.value}"
    return out
