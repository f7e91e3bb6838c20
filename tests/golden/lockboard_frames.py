"""Golden frames of the RS485 lock control board (8A/80 frames, 9600 8N1, BCC = XOR).

Source [CSDN]: "锁控板通讯协议和规格书" (lock control board protocol and specification, the
document these 24-channel boards ship with), as published at
https://blog.csdn.net/u012909822/article/details/147892413 . Sections cited by number:
三 全开命令 (open all), 四 开锁命令 (open one lock), 五 开锁反馈数据 (open reply),
六 读锁状态命令 (query one lock). Its test case wires a lock whose feedback input is shorted
while locked (上锁短路), the usual strike and locker latch; with that wiring ST = 11 reads
closed (locked) and 00 open: "发送开锁指令8A0101119B后返回收到8A0101008A,表示1号板的1号锁开锁成功,
如果返回8A0101119B,表示...开锁失败" and "在查询单个锁状态反馈 11 表示锁关闭".

The query-all reply is not in the part of the document we could read. Its layout comes
from CONTRACTS section 6 (`80 board S3 S2 S1 33 BCC`, bit set = locked) and a public
Python driver for these boards ("80 01 [01 01 01] 33 B3 ... doors 1, 9, 17 are closed",
byte 2 = locks 17-24, byte 4 = locks 1-8; the code index we searched does not name its
repository). Those vectors are marked `published=False` and their BCC is worked out by
hand in the comment beside them.

Meanings are plain data, so the same vector checks the agent's codec
(agent/devices/protocols/lockboard.py) and the simulator's own one
(firmware-sim/shopgate_sim/lockboard_wire.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Op = Literal["open", "query", "query_all"]


@dataclass(frozen=True)
class Request:
    name: str
    hex: str
    op: Op
    board: int
    lock: int  # 0 for query_all
    source: str
    published: bool


@dataclass(frozen=True)
class Reply:
    name: str
    hex: str
    to: Op  # the request it answers
    board: int
    lock: int  # 0 for a query-all reply
    locked: frozenset[int]  # locks whose feedback reads locked (one reply: {lock} or {})
    source: str
    published: bool


CSDN = "锁控板通讯协议和规格书, blog.csdn.net/u012909822/article/details/147892413"

REQUESTS = [
    Request(
        "open board 1 lock 1",
        "8A 01 01 11 9B",  # 8A^01=8B ^01=8A ^11=9B
        "open",
        1,
        1,
        f"{CSDN}, 四 开锁命令, 例1",
        published=True,
    ),
    Request(
        "open board 1 lock 2",
        "8A 01 02 11 98",  # 8A^01=8B ^02=89 ^11=98
        "open",
        1,
        2,
        f"{CSDN}, 四 开锁命令, 例1 (second)",
        published=True,
    ),
    Request(
        "query board 1 lock 1",
        "80 01 01 33 B3",  # 80^01=81 ^01=80 ^33=B3
        "query",
        1,
        1,
        f"{CSDN}, 六 读锁状态命令, 例1",
        published=True,
    ),
    Request(
        "query all locks of board 1",
        "80 01 00 33 B2",  # 80^01=81 ^00=81 ^33=B2
        "query_all",
        1,
        0,
        "CONTRACTS section 6 (`80 board 00 33 BCC`); the same bytes are the public Python "
        "driver's query_all_doors",
        published=False,
    ),
    Request(
        "open board 24 lock 1",
        "8A 18 01 11 82",  # 8A^18=92 ^01=93 ^11=82
        "open",
        24,
        1,
        f"derived from {CSDN}, 四 (board address 0x18 = 24)",
        published=False,
    ),
    Request(
        "query all locks of board 31",
        "80 1F 00 33 AC",  # 80^1F=9F ^00=9F ^33=AC
        "query_all",
        31,
        0,
        "derived from CONTRACTS section 6 (the boards take DIP addresses up to 32)",
        published=False,
    ),
]

REPLIES = [
    Reply(
        "open reply: lock 1 opened",
        "8A 01 01 00 8A",  # 8A^01=8B ^01=8A ^00=8A
        "open",
        1,
        1,
        frozenset(),
        f"{CSDN}, 五 开锁反馈数据 (8A0101008A: 开锁成功)",
        published=True,
    ),
    Reply(
        "open reply: lock 1 still locked",
        "8A 01 01 11 9B",  # 8A^01=8B ^01=8A ^11=9B
        "open",
        1,
        1,
        frozenset({1}),
        f"{CSDN}, 五 开锁反馈数据 (8A0101119B: 开锁失败)",
        published=True,
    ),
    Reply(
        "query reply: lock 1 open",
        "80 01 01 00 80",  # 80^01=81 ^01=80 ^00=80
        "query",
        1,
        1,
        frozenset(),
        f"{CSDN}, 六 读锁状态命令, 例1 reply (00: not 11, which reads closed)",
        published=True,
    ),
    Reply(
        "query reply: lock 1 locked",
        "80 01 01 11 91",  # 80^01=81 ^01=80 ^11=91
        "query",
        1,
        1,
        frozenset({1}),
        f"derived from {CSDN}, 六: 反馈 11 表示锁关闭",
        published=False,
    ),
    Reply(
        "query-all reply: locks 1, 9 and 17 locked",
        "80 01 01 01 01 33 B3",  # 80^01=81 ^01=80 ^01=81 ^01=80 ^33=B3
        "query_all",
        1,
        0,
        frozenset({1, 9, 17}),
        "public Python driver's example `80 01 [01 01 01] 33 B3`; layout per CONTRACTS section 6",
        published=False,
    ),
    Reply(
        "query-all reply: locks 1 and 3 locked",
        "80 01 00 00 05 33 B7",  # S3=00 S2=00 S1=05 (bits 0, 2); 80^01=81 ^05=84 ^33=B7
        "query_all",
        1,
        0,
        frozenset({1, 3}),
        "derived from CONTRACTS section 6",
        published=False,
    ),
    Reply(
        "query-all reply: locks 2 and 24 locked (byte order)",
        # S3=80 (bit 7: lock 24), S2=00, S1=02 (bit 1: lock 2)
        "80 01 80 00 02 33 30",  # 80^01=81 ^80=01 ^00=01 ^02=03 ^33=30
        "query_all",
        1,
        0,
        frozenset({2, 24}),
        "derived from CONTRACTS section 6 (S3 first: locks 17-24)",
        published=False,
    ),
]

# Frames of the protocol that shopgate never sends; neither side may read them as
# something it does send.
OPEN_ALL = Request(
    "open all locks of board 1",
    "8A 01 00 11 9A",  # 8A^01=8B ^00=8B ^11=9A
    "open",
    1,
    0,
    f"{CSDN}, 三 全开命令, 例1",
    published=True,
)
