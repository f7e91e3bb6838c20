"""How long a hub-signed token may live (`exp - iat`), per scope.

The agent refuses a pass or command that lives longer (access.max_lifetime_seconds may
lower these, never raise them), and the hub mints none (cloud/signing.py): a token that
lives for years is a standing key to the store, whoever later holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

HOUR = 3600
DAY = 24 * HOUR

MAX_LIFETIME_S: Final[Mapping[str, int]] = MappingProxyType(
    {
        "entry": 6 * HOUR,  # a customer's pass from the entry page (hub default 5 min)
        "pickup": DAY,  # a courier's or customer's pickup pass (hub default 2 h)
        "staff": 31 * DAY,  # a staff member's pass, renewed monthly
        "ops": HOUR,  # a remote command (the hub signs them for 20 s to 15 min)
        "orders.sync": 10 * 60,  # the hub's signed answer to order sync (signed for 120 s)
    }
)
