"""Agents' event batches (CONTRACTS section 4).

The hub checks a batch with cloud/envelope.py's `parse_batch`, which these models mirror:
it is the ingest's hot path (benchmarked), keeps each event byte for byte, and locates the
first bad event; tests/cloud/test_openapi.py checks that the two agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cloud.api.bodies.base import Body, Reply, Timestamp
from cloud.envelope import MAX_ID_LENGTH, MAX_SEQ


class Event(Body):
    """An agent's event (CONTRACTS section 4); given back exactly as sent."""

    id: str = Field(
        pattern=rf"^[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}$", description="Unique, time-ordered."
    )
    store: str = Field(description="The store of the URL.")
    seq: int = Field(ge=1, le=MAX_SEQ, description="Per-store counter, never reused.")
    ts: Timestamp
    type: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,100}$", examples=["access.granted", "sale.completed"]
    )
    data: dict[str, Any]


class EventBatch(Body):
    events: list[Event]


class EventsAccepted(Reply):
    accepted: int = Field(ge=0, description="Events stored now.")
    duplicates: int = Field(ge=0, description="Events the hub had already.")


class EventList(Reply):
    """The events, as the agents sent them, in seq order."""

    events: list[Event]


class EventsQuery(Body):
    after_seq: int = Field(
        default=0, ge=0, le=MAX_SEQ, description="Only events with a greater seq."
    )
    limit: int = Field(default=500, ge=1, le=5000, description="At most this many.")
