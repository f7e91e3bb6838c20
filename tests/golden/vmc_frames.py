"""Golden frames of the vending machine controller (VMC) protocol, 57600 8N1.

Sources:

[DOC] "VMC - Upper Computer Communication Protocol" (the FA FB protocol of the common
Chinese vending mainboards; a public English transcription of the vendor's "VMC - Upper
computer V3.0" PDF, found through the code index, which does not name its repository).
Section 3 gives the packet (`STX 0xfa 0xfb | Command | Length = PackNO+Text length |
PackNO+Text | XOR from STX to TEXT`) and the POLL and ACK packets verbatim; 4.3.1 the
selection status codes (01 normal, 02 out of stock, 03 selection doesn't exist,
04 selection pause), 4.3.2 buy, 4.3.3 the dispensing codes, 4.2.2 / 4.2.3 price and
inventory. A second public decoder written from the same PDF (vmc_protocol.py,
"Reference: VMC - Upper computer V3.0") has the same selection codes.

[LAO] Frames captured from a real machine, quoted in github.com/laoapps/vending-server,
CUI-Prod/src/app/vmc.service.ts (commit d3e0dd8620580b397befe42c2ff7203eca9966cb),
lines 396 and 410-421: "FA FB 04 04 A3 01 00 3C 9F ==> 3C is 60 slot ..., 01 = status
processing" and the money notice "fafb21069101 000186a0 91".

Frames marked `published=False` are derived by hand from [DOC]'s layout; the XOR is
worked out in the comment beside each (FA^FB = 01, the start of every chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Msg = Literal[
    "poll", "ack", "check", "selection", "buy", "dispense", "set_price", "set_inventory", "other"
]


@dataclass(frozen=True)
class Frame:
    name: str
    hex: str
    msg: Msg
    sender: Literal["vmc", "host", "either"]
    source: str
    published: bool
    pack: int | None = None
    status: str | None = None  # selection: normal / out_of_stock / not_exist / paused
    slot: int | None = None
    value: int | None = None  # price in fen, or inventory
    cmd: int | None = None  # for "other": the command byte
    data: str = ""  # for "other": the bytes after packNo


DOC = "VMC - Upper Computer Communication Protocol"
LAO = "laoapps/vending-server CUI-Prod/src/app/vmc.service.ts@d3e0dd86"

FRAMES = [
    Frame("POLL", "FA FB 41 00 40", "poll", "vmc", f"{DOC}, 3 (POLL Packet)", True),
    Frame("ACK", "FA FB 42 00 43", "ack", "either", f"{DOC}, 3 (ACK Packet)", True),
    Frame(
        "dispensing slot 60",
        "FA FB 04 04 A3 01 00 3C 9F",
        "dispense",
        "vmc",
        f"{LAO}, line 410 (01 = status processing)",
        True,
        pack=0xA3,
        status="dispensing",
        slot=60,
    ),
    Frame(
        "dispensed slot 60",
        "FA FB 04 04 A4 02 00 3C 9B",
        "dispense",
        "vmc",
        f"{LAO}, line 411 (02 = status dispensed)",
        True,
        pack=0xA4,
        status="success",
        slot=60,
    ),
    Frame(
        "jammed slot 60",
        "FA FB 04 04 9E 03 00 3C A0",
        "dispense",
        "vmc",
        f"{LAO}, line 412 (03 = status drop failed); {DOC}, 4.3.3: 0x03 selection jammed",
        True,
        pack=0x9E,
        status="jammed",
        slot=60,
    ),
    Frame(
        "money notice (a command shopgate does not use: still acknowledged)",
        "FA FB 21 06 91 01 00 01 86 A0 91",
        "other",
        "vmc",
        f"{LAO}, line 421; {DOC}, 4.1.1: packNo, mode 1 (bill), amount 0x000186A0",
        True,
        pack=0x91,
        cmd=0x21,
        data="01 00 01 86 A0",
    ),
    Frame(
        "drive selection 60 directly (a command shopgate does not send)",
        "FA FB 06 05 A6 01 00 00 3C 99",
        "other",
        "host",
        f"{LAO}, line 396; {DOC}, 4.3.5: packNo, drop sensor 1, elevator 0, selection 2 bytes",
        True,
        pack=0xA6,
        cmd=0x06,
        data="01 00 00 3C",
    ),
    Frame(
        "buy slot 3 as packet 7",
        "FA FB 03 03 07 00 03 05",  # 01^03=02 ^03=01 ^07=06 ^00=06 ^03=05
        "buy",
        "host",
        f"derived from {DOC}, 4.3.2 (packNo, selection number 2 bytes)",
        False,
        pack=7,
        slot=3,
    ),
    Frame(
        "buy slot 256 as packet 255 (big-endian selection)",
        "FA FB 03 03 FF 01 00 FF",  # 01^03=02 ^03=01 ^FF=FE ^01=FF ^00=FF
        "buy",
        "host",
        f"derived from {DOC}, 4.3.2",
        False,
        pack=255,
        slot=256,
    ),
    Frame(
        "check selection 13 as packet 1",
        "FA FB 01 03 01 00 0D 0F",  # 01^01=00 ^03=03 ^01=02 ^00=02 ^0D=0F
        "check",
        "host",
        f"derived from {DOC}, 4.3.1 (PackNO+Text: packNo + selection number, 3 bytes; the "
        "table's Length column says 4, which its own field list does not add up to)",
        False,
        pack=1,
        slot=13,
    ),
    Frame(
        "selection 1 normal",
        "FA FB 02 04 01 01 00 01 06",  # 01^02=03 ^04=07 ^01=06 ^01=07 ^00=07 ^01=06
        "selection",
        "vmc",
        f"derived from {DOC}, 4.3.1 (0x01 normal)",
        False,
        pack=1,
        status="normal",
        slot=1,
    ),
    Frame(
        "selection 1 out of stock",
        "FA FB 02 04 02 02 00 01 06",  # 01^02=03 ^04=07 ^02=05 ^02=07 ^00=07 ^01=06
        "selection",
        "vmc",
        f"derived from {DOC}, 4.3.1 (0x02 out of stock)",
        False,
        pack=2,
        status="out_of_stock",
        slot=1,
    ),
    Frame(
        "selection 10 does not exist",
        "FA FB 02 04 05 03 00 0A 0B",  # 01^02=03 ^04=07 ^05=02 ^03=01 ^00=01 ^0A=0B
        "selection",
        "vmc",
        f"derived from {DOC}, 4.3.1 (0x03 selection doesn't exist)",
        False,
        pack=5,
        status="not_exist",
        slot=10,
    ),
    Frame(
        "selection 10 paused",
        "FA FB 02 04 06 04 00 0A 0F",  # 01^02=03 ^04=07 ^06=01 ^04=05 ^00=05 ^0A=0F
        "selection",
        "vmc",
        f"derived from {DOC}, 4.3.1 (0x04 selection pause)",
        False,
        pack=6,
        status="paused",
        slot=10,
    ),
    Frame(
        "slot 5: motor did not stop",
        "FA FB 04 04 0C 04 00 05 0C",  # 01^04=05 ^04=01 ^0C=0D ^04=09 ^00=09 ^05=0C
        "dispense",
        "vmc",
        f"derived from {DOC}, 4.3.3 (0x04 motor doesn't stop normally)",
        False,
        pack=0x0C,
        status="motor_not_stopped",
        slot=5,
    ),
    Frame(
        "slot 5: no motor",
        "FA FB 04 04 0B 06 00 05 09",  # 01^04=05 ^04=01 ^0B=0A ^06=0C ^00=0C ^05=09
        "dispense",
        "vmc",
        f"derived from {DOC}, 4.3.3 (0x06 motor doesn't exist)",
        False,
        pack=0x0B,
        status="no_motor",
        slot=5,
    ),
    Frame(
        "price of selection 1: 350 fen",
        "FA FB 12 07 01 00 01 00 00 01 5E 4B",
        # 01^12=13 ^07=14 ^01=15 ^00=15 ^01=14 ^00=14 ^00=14 ^01=15 ^5E=4B
        "set_price",
        "host",
        f"derived from {DOC}, 4.2.2 (packNo, selection 2 bytes, price 4 bytes; fen)",
        False,
        pack=1,
        slot=1,
        value=350,
    ),
    Frame(
        "inventory of selection 1: 5",
        "FA FB 13 04 01 00 01 05 13",  # 01^13=12 ^04=16 ^01=17 ^00=17 ^01=16 ^05=13
        "set_inventory",
        "host",
        f"derived from {DOC}, 4.2.3 (packNo, selection 2 bytes, inventory 1 byte)",
        False,
        pack=1,
        slot=1,
        value=5,
    ),
]
