"""The reason codes of every access decision (CONTRACTS section 2).

One code per decision, used verbatim in logs, journal events and replies.
"""

from enum import StrEnum


class Reason(StrEnum):
    GRANTED = "granted"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_STORE = "wrong_store"
    WRONG_DOOR = "wrong_door"
    WRONG_SCOPE = "wrong_scope"
    REPLAYED = "replayed"
    CLOSED = "closed"
    LOCKDOWN = "lockdown"
    BLOCKED = "blocked"
    FULL = "full"
    UNKNOWN_ORDER = "unknown_order"
    ALREADY_PICKED_UP = "already_picked_up"
    CANCELLED = "cancelled"
    WRONG_ANSWER = "wrong_answer"
    # Extension: too many wrong pickup codes at one door in a short time (guessing).
    RATE_LIMITED = "rate_limited"
