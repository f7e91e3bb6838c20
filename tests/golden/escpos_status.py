"""Golden bytes of the ESC/POS status exchange: the requests shopgate sends and the status
bytes a printer answers, from Epson's command reference as printed in the printers'
manuals (all pages quoted here say the same for these bits):

[U220] Epson TM-U220A manual, DLE EOT n (p. 54: "Hex 10 04 n", printer status n = 1 and
       offline cause n = 2 tables) and GS r n (p. 84: "Hex 1D 72 n", paper sensor status
       n = 1, 49), https://easymanua.ls/epson/tm-u220a/manual?p=54 and ?p=84
[T88-3] Epson TM-T88III Specification (STANDARD), DLE EOT n = 3 error status (sheet 73),
       https://manualsdump.com/en/manuals/epson-t88iii/156066/84
[T88-4] Epson TM-T88III ESC/POS reference Ver. 10.01, DLE EOT roll paper sensor status
       n = 4 (p. 304), https://www.easymanua.ls/epson/tm-t88iii/manual/518843?p=304
[ASB]  GS a n "Enable/Disable Automatic Status Back", hex 1D 61 n, "When n = 0, ASB is
       disabled" (Epson command set, Ithaca PcOS 80PLUS programmer's guide p. 90),
       https://manualshive.com/en/manual/ithaca/pcos-series-80plus/2095564?page=100

Every DLE EOT reply has bits 1 and 4 fixed on and bits 0 and 7 fixed off (0x12 when
nothing is set); a GS r 1 reply has bits 4 and 7 off, which is how a reader tells the two
apart. Every byte below is a sum of the table values cited beside it (published=True:
the table gives each bit; the sums are ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Request = Literal["DLE EOT 1", "DLE EOT 2", "DLE EOT 3", "DLE EOT 4", "GS r 1"]


@dataclass(frozen=True)
class Command:
    name: str
    hex: str
    source: str


@dataclass(frozen=True)
class StatusByte:
    name: str
    request: Request
    byte: int
    flags: frozenset[str]  # what the manual says is set; every other status is clear
    source: str


COMMANDS = [
    Command("DLE EOT 1", "10 04 01", "[U220] p. 54"),
    Command("DLE EOT 2", "10 04 02", "[U220] p. 54"),
    Command("DLE EOT 3", "10 04 03", "[U220] p. 54"),
    Command("DLE EOT 4", "10 04 04", "[U220] p. 54"),
    Command("GS r 1", "1D 72 01", "[U220] p. 84"),
    Command("GS a 0 (no automatic status back)", "1D 61 00", "[ASB] p. 90"),
]

REPLIES = [
    StatusByte("online", "DLE EOT 1", 0x12, frozenset(), "[U220] n = 1: 02 + 10 fixed"),
    StatusByte(
        "offline", "DLE EOT 1", 0x1A, frozenset({"offline"}), "[U220] n = 1: 12 + bit 3 (08)"
    ),
    StatusByte("no offline cause", "DLE EOT 2", 0x12, frozenset(), "[U220] n = 2: 02 + 10"),
    StatusByte(
        "cover open", "DLE EOT 2", 0x16, frozenset({"cover_open"}), "[U220] n = 2: 12 + bit 2 (04)"
    ),
    StatusByte(
        "printing stopped at paper end",
        "DLE EOT 2",
        0x32,
        frozenset({"paper_end_stop"}),
        "[U220] n = 2: 12 + bit 5 (20)",
    ),
    StatusByte(
        "error occurred", "DLE EOT 2", 0x52, frozenset({"error"}), "[U220] n = 2: 12 + bit 6 (40)"
    ),
    StatusByte("no error", "DLE EOT 3", 0x12, frozenset(), "[T88-3] n = 3: 02 + 10"),
    StatusByte(
        "autocutter error",
        "DLE EOT 3",
        0x1A,
        frozenset({"autocutter_error"}),
        "[T88-3] n = 3: 12 + bit 3 (08)",
    ),
    StatusByte(
        "unrecoverable error",
        "DLE EOT 3",
        0x32,
        frozenset({"unrecoverable_error"}),
        "[T88-3] n = 3: 12 + bit 5 (20)",
    ),
    StatusByte(
        "auto-recoverable error (head too hot)",
        "DLE EOT 3",
        0x52,
        frozenset({"auto_recoverable_error"}),
        "[T88-3] n = 3: 12 + bit 6 (40)",
    ),
    StatusByte("paper adequate", "DLE EOT 4", 0x12, frozenset(), "[T88-4] n = 4: 02 + 10"),
    StatusByte(
        "paper near end",
        "DLE EOT 4",
        0x1E,
        frozenset({"near_end"}),
        "[T88-4] n = 4: 12 + bits 2,3 (0C)",
    ),
    StatusByte(
        "paper not present",
        "DLE EOT 4",
        0x72,
        frozenset({"paper_not_present"}),
        "[T88-4] n = 4: 12 + bits 5,6 (60)",
    ),
    StatusByte(
        "roll used up (both sensors)",
        "DLE EOT 4",
        0x7E,
        frozenset({"near_end", "paper_not_present"}),
        "[T88-4] n = 4: 12 + 0C + 60",
    ),
    StatusByte("paper present", "GS r 1", 0x00, frozenset(), "[U220] p. 84: all off"),
    StatusByte(
        "paper near end", "GS r 1", 0x03, frozenset({"near_end"}), "[U220] p. 84: bits 0,1 (03)"
    ),
    StatusByte(
        "paper not present",
        "GS r 1",
        0x0C,
        frozenset({"paper_not_present"}),
        "[U220] p. 84: bits 2,3 (0C)",
    ),
    StatusByte(
        "roll used up (both sensors)",
        "GS r 1",
        0x0F,
        frozenset({"near_end", "paper_not_present"}),
        "[U220] p. 84: 03 + 0C",
    ),
]
