"""The event envelope the agent journals and delivers to the hub (CONTRACTS section 4).

`{"id", "store", "seq", "ts", "type", "data"}`: `id` is a ULID (unique, time-ordered),
`seq` the store's counter (never reused), `ts` RFC 3339 UTC with milliseconds and `Z`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENVELOPE_KEYS = ("id", "store", "seq", "ts", "type", "data")


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    store: str
    seq: int
    ts: str
    type: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Exactly the contract's JSON object."""
        return {
            "id": self.id,
            "store": self.store,
            "seq": self.seq,
            "ts": self.ts,
            "type": self.type,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Event:
        """The reverse of `to_dict`; a missing or extra key is a ValueError naming it."""
        missing = [k for k in ENVELOPE_KEYS if k not in obj]
        extra = sorted(set(obj) - set(ENVELOPE_KEYS))
        if missing or extra:
            raise ValueError(f"event envelope: missing {missing}, unexpected {extra}")
        if not isinstance(obj["data"], dict):
            raise ValueError("event envelope: data must be an object")
        return cls(
            id=str(obj["id"]),
            store=str(obj["store"]),
            seq=int(obj["seq"]),
            ts=str(obj["ts"]),
            type=str(obj["type"]),
            data=obj["data"],
        )
