"""The event batch parser: any body gives events or a BadBatch, never anything else."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.envelope import BadBatch, normalise_rfc3339, parse_batch

STORE = "s1"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# RFC 3339 offsets are whole minutes (zoneinfo's historic ones may have seconds).
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
times = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=offsets
)
event_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
events = st.fixed_dictionaries(
    {
        "id": event_ids,
        "store": st.just(STORE),
        "seq": st.integers(1, 2**63 - 1),
        "ts": times.map(lambda t: t.isoformat()),
        "type": st.sampled_from(["door.opened", "access.denied", "stock.changed"]),
        "data": st.dictionaries(st.text(), json_values, max_size=4),
    }
)


def body(items: list[Any]) -> bytes:
    return json.dumps({"events": items}, ensure_ascii=False).encode()


@given(st.lists(events, max_size=8))
def test_good_events_come_back_exactly_as_sent(batch: list[dict]) -> None:
    parsed = parse_batch(body(batch), STORE)
    assert [json.loads(e.json) for e in parsed] == batch
    assert [(e.id, e.seq, e.type) for e in parsed] == [
        (x["id"], x["seq"], x["type"]) for x in batch
    ]


bad_values: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["", " ", "a b", "\u00e9", "x" * 129, 5, None, ["a"]]),
    "store": st.sampled_from(["s2", "", None, 1]),
    "seq": st.sampled_from([0, -5, 2**63, 1.0, "1", True, None]),
    "ts": st.sampled_from(["", "2025-01-31", "2025-01-31T25:00:00Z", "yesterday", 0, None]),
    "type": st.sampled_from(["", "a b", None, 3, {}]),
    "data": st.sampled_from([None, [], "x", 0, True]),
}


@given(
    st.lists(events, min_size=1, max_size=6),
    st.data(),
    st.sampled_from(sorted(bad_values)),
    st.booleans(),
)
def test_a_bad_field_names_its_event_and_field(
    batch: list[dict], data: st.DataObject, field: str, remove: bool
) -> None:
    index = data.draw(st.integers(0, len(batch) - 1))
    if remove:
        del batch[index][field]
    else:
        batch[index][field] = data.draw(bad_values[field])
    with pytest.raises(BadBatch) as e:
        parse_batch(body(batch), STORE)
    # an earlier field of the same event can't be bad: only `field` was touched
    assert (e.value.index, e.value.field) == (index, field)
    assert str(e.value).startswith(f"events[{index}].{field}: ")


@settings(max_examples=300)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gives_events_or_bad_batch(data: bytes) -> None:
    try:
        parse_batch(data, STORE)
    except BadBatch as e:
        assert str(e)


def test_deep_nesting_is_a_bad_batch_not_a_crash() -> None:
    with pytest.raises(BadBatch):
        parse_batch(b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", STORE)


@given(times)
def test_rfc3339_times_normalise_to_the_same_instant_in_utc(when: dt.datetime) -> None:
    text = normalise_rfc3339(when.isoformat())
    assert text is not None and text.endswith("Z") and len(text) == 27
    assert dt.datetime.fromisoformat(text) == when


@given(times, times)
def test_normalised_times_sort_as_text_like_the_instants(a: dt.datetime, b: dt.datetime) -> None:
    ta, tb = normalise_rfc3339(a.isoformat()), normalise_rfc3339(b.isoformat())
    assert ta is not None and tb is not None
    assert (ta < tb) == (a < b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T08:00:00Z", "2025-01-31T08:00:00.000000Z"),
        ("2025-01-31t08:00:00.5z", "2025-01-31T08:00:00.500000Z"),
        ("2025-01-31T08:00:00.123456789+08:00", "2025-01-31T00:00:00.123456Z"),
        ("2024-12-31T23:59:60Z", "2024-12-31T23:59:59.000000Z"),
        ("2025-01-31T08:00:00", None),  # no offset
        ("2025-01-31 08:00:00Z", None),
        ("2025-02-29T00:00:00Z", None),
        ("2025-01-31T08:00:00+24:00", None),
        ("2025-01-31T08:00:61Z", None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
    ],
)
def test_rfc3339_examples(text: str, expected: str | None) -> None:
    assert normalise_rfc3339(text) == expected
