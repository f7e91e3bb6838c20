"""The counts of the customer entry page (and of anything that follows its rules, as the
courier's door flow will: CONTRACTS section 8).

An answer takes four counts, in this order: the visitor's (a cookie), the address's (an
IPv4 address or IPv6 /64 behind the trusted proxies), the door's (everyone together:
what catches an attacker who drops the cookie and changes address) and the door's day.
A door count spares the door's regulars: they are counted while there is room, and not
paused when it is full.
"""

from __future__ import annotations

from cloud.limits.counters import Counter, Rule
from cloud.limits.settings import DoorLimit

VISITOR = "entry.visitor"
ADDRESS = "entry.address"
DOOR = "entry.door"
DOOR_DAY = "entry.door_day"
DOOR_SCOPES = (DOOR, DOOR_DAY)
DAY_S = 86400


def door_counters(store: str, door: str, limit: DoorLimit, *, regular: bool) -> list[Counter]:
    at_door = f"{store}\n{door}"
    return [
        Counter(
            Rule(DOOR, limit.max_wrong, limit.window_seconds, limit.max_pause_seconds),
            at_door,
            spare_when_full=regular,
        ),
        Counter(Rule(DOOR_DAY, limit.max_wrong_per_day, DAY_S), at_door, spare_when_full=regular),
    ]


def answer_counters(
    store: str,
    door: str,
    *,
    visitor: str,
    address: str,
    max_wrong: int,
    max_wrong_per_address: int,
    window_s: float,
    limit: DoorLimit,
    regular: bool,
) -> list[Counter]:
    """The counts one answer takes: visitor, address, door, door's day."""
    return [
        Counter(Rule(VISITOR, max_wrong, window_s), f"{store}\n{visitor}"),
        Counter(Rule(ADDRESS, max_wrong_per_address, window_s), f"{store}\n{address}"),
        *door_counters(store, door, limit, regular=regular),
    ]
