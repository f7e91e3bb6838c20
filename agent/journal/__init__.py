"""The agent's durable journal (events outbox + local state). See journal.py."""

from agent.journal.errors import JournalError
from agent.journal.journal import Journal
from agent.journal.maintenance import DROPPABLE_PREFIXES, MaintenanceReport
from agent.journal.ops import (
    FinishPrintJob,
    ForgetPass,
    LogAccess,
    Op,
    PutOrder,
    PutPrintJob,
    PutProduct,
    PutSetting,
    SetOrderStatus,
    UsePass,
)
from agent.journal.state import LocalState
from agent.model.events import Event

__all__ = [
    "DROPPABLE_PREFIXES",
    "Event",
    "FinishPrintJob",
    "ForgetPass",
    "Journal",
    "JournalError",
    "LocalState",
    "LogAccess",
    "MaintenanceReport",
    "Op",
    "PutOrder",
    "PutPrintJob",
    "PutProduct",
    "PutSetting",
    "SetOrderStatus",
    "UsePass",
]
