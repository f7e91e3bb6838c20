"""Work the hub owes an outside system that keeps failing: a platform call, a platform
stock push, an ERP document. Each feature reports its own (cloud/orders/health.py,
cloud/stock/health.py, cloud/erp/health.py) from its own tables; the alerts ask them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Trouble:
    system: Literal["platform", "stock", "erp"]
    store: str
    target: str  # the platform or ERP name
    attempts: int
    error: str
    gave_up: bool = False  # given up on for good (told once), else still retrying
    ident: int | None = None  # the call's or document's id, for what was given up on
    kind: str = ""  # what the call or document is (confirm_order, purchase_in...)
