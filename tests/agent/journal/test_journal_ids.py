from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.model.events import Event
from agent.model.ids import CROCKFORD, UlidFactory, decode_ulid, encode_ulid, ulid_ms


def reference_encode(value: int) -> str:
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@given(st.integers(0, (1 << 128) - 1))
def test_encoding_matches_the_spec_digit_by_digit(value: int) -> None:
    text = encode_ulid(value)
    assert text == reference_encode(value)
    assert decode_ulid(text) == value
    assert decode_ulid(text.lower()) == value


def test_known_value() -> None:
    # From the spec's README: time 1469918176385 encodes as 01ARYZ6S41.
    assert encode_ulid(1469918176385 << 80)[:10] == "01ARYZ6S41"
    assert encode_ulid(uuid.UUID(int=(1 << 128) - 1).int) == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"


@given(st.lists(st.integers(0, 5), min_size=1, max_size=200))
def test_ids_are_strictly_increasing_and_carry_their_time(steps: list[int]) -> None:
    factory = UlidFactory()
    ms = 1_795_000_000_000
    previous = ""
    for step in steps:
        ms += step  # often the same millisecond several times
        text = factory.new(ms)
        assert text > previous and len(text) == 26
        assert ulid_ms(text) == ms
        previous = text


def test_a_clock_stepping_back_still_gives_increasing_ids() -> None:
    factory = UlidFactory()
    a = factory.new(2_000)
    b = factory.new(1_000)
    assert b > a and ulid_ms(b) == 2_000


def test_bad_ulids_are_refused() -> None:
    for bad in ("", "0" * 25, "8" + "0" * 25, "0" * 25 + "U"):
        with pytest.raises(ValueError):
            decode_ulid(bad)


def test_event_round_trip_and_strict_envelope() -> None:
    event = Event(
        "01M8000000000000000000000A",
        "demo-001",
        7,
        "2026-11-23T23:56:05.123Z",
        "pickup.completed",
        {"order": "o1", "courier": "c9"},
    )
    assert Event.from_dict(event.to_dict()) == event
    with pytest.raises(ValueError, match="missing \\['seq'\\]"):
        Event.from_dict({k: v for k, v in event.to_dict().items() if k != "seq"})
    with pytest.raises(ValueError, match="unexpected \\['extra'\\]"):
        Event.from_dict({**event.to_dict(), "extra": 1})
