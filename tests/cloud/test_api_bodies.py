"""Request bodies are checked by the models the OpenAPI document is made of
(cloud/api/bodies): a bad body is the API's 400 naming the field, in the words the API
has always used, and the document never refuses a body the hub takes."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import hypothesis
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from cloud.api.bodies.base import Body, parse
from cloud.api.bodies.catalog import ProductsIn, SkusIn
from cloud.api.bodies.courier import CourierClaim
from cloud.api.bodies.enroll import EnrollRequest
from cloud.api.bodies.events import Event
from cloud.api.bodies.payments import PaymentRequest
from cloud.api.bodies.stock import Movement
from cloud.api.errors import ApiError
from cloud.envelope import BadBatch, parse_batch
from tests.support.api_shapes import full_document

COLA = "4006381333931"


def refused(model: type[Body], body: Any, code: str = "bad_body") -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(model, body, code=code)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"day_seq": 27, "tail": "4821"}, "platform must be one of meituan, eleme, jddj, douyin"),
        ({"platform": "ubereats", "day_seq": 27, "tail": "4821"}, "platform must be one of"),
        ({"platform": "meituan", "day_seq": True, "tail": "4821"}, "day_seq must be the order"),
        ({"platform": "meituan", "day_seq": 100000, "tail": "4821"}, "day_seq must be the"),
        ({"platform": "meituan", "day_seq": "27", "tail": "4821"}, "day_seq must be the"),
        ({"platform": "meituan", "day_seq": 27, "tail": "482"}, "tail must be the last 4 digits"),
        ({"platform": "meituan", "day_seq": 27, "tail": 4821}, "tail must be the last 4 digits"),
        ({"platform": "meituan", "day_seq": 27, "tail": "４８２１"}, "tail must be the last 4"),
    ],
)
def test_a_bad_courier_claim_is_refused_naming_the_field(
    body: dict[str, Any], message: str
) -> None:
    error = refused(CourierClaim, body)
    assert error.code == "bad_body" and error.message.startswith(message)
    assert error.details["field"] == message.split()[0]


def test_a_courier_claim_is_taken_as_contracts_section_8_says() -> None:
    claim = parse(CourierClaim, {"platform": "jddj", "day_seq": 3, "tail": " 0042 ", "x": 1})
    assert (claim.platform, claim.day_seq, claim.tail) == ("jddj", 3, "0042")


def test_a_body_that_is_not_an_object_is_refused() -> None:
    bodies: list[Any] = [[], "x", 3, None]
    for body in bodies:
        assert refused(Movement, body).message == "the body must be a JSON object"


def test_a_movement_is_one_of_delta_or_qty_with_the_apis_words() -> None:
    both = refused(Movement, {"delta": 1, "qty": 2})
    assert both.message == 'give either "delta" (a movement) or "qty" (a count)'
    assert refused(Movement, {}).message == both.message
    assert refused(Movement, {"delta": 1.5}).message == "delta and qty are whole numbers of units"
    assert refused(Movement, {"qty": True}).message == "delta and qty are whole numbers of units"
    assert refused(Movement, {"delta": 1, "reason": "sale"}).message == (
        "reason must be one of restock, adjust, manual"
    )
    assert refused(Movement, {"delta": 1, "key": ""}).message == (
        "key must be text of 1-100 characters"
    )
    taken = parse(Movement, {"qty": 0, "reason": "adjust", "key": "sheet-1"})
    assert (taken.qty, taken.delta, taken.reason, taken.key) == (0, None, "adjust", "sheet-1")


def test_a_bad_product_is_named_by_its_index_with_the_catalogs_reason() -> None:
    good = {"barcode": COLA, "name": "可乐", "price": 3.5}
    error = refused(ProductsIn, {"products": [good, good | {"barcode": "4006381333932"}]})
    assert error.code == "bad_product" and error.details["index"] == 1
    assert error.message == "products[1]: barcode 4006381333932 has a wrong check digit (a typo?)"
    # A spreadsheet's number-typed barcode is still taken, as the catalog always took it.
    taken = parse(ProductsIn, {"products": [good | {"barcode": int(COLA)}]})
    assert taken.products[0].product().barcode == COLA
    assert refused(ProductsIn, {"products": []}).code == "bad_body"


def test_a_bad_sku_keeps_its_code_and_index() -> None:
    error = refused(SkusIn, {"skus": [{"platform": "meituan", "sku": "a"}, {"platform": "x"}]})
    assert error.code == "bad_sku" and error.details["index"] == 1
    assert "platform must be one of" in error.message
    typed = refused(SkusIn, {"skus": [{"platform": "meituan", "sku": 7}]})
    assert (typed.code, typed.message) == ("bad_body", "skus[0] must be an object of texts")


def test_a_payment_request_names_the_item_at_fault() -> None:
    item = {"barcode": COLA, "name": "可乐", "qty": 2, "price": 3.5}
    body = {"checkout": "co-1", "cart": "c-1", "amount": 7.0, "items": [item]}
    assert parse(PaymentRequest, body).amount_fen == 700
    error = refused(PaymentRequest, body | {"items": [item, item | {"qty": 0}]})
    assert error.message == "items[1].qty must be a whole number, at least 1"
    assert error.details == {"field": "items[1].qty", "index": 1}
    error = refused(PaymentRequest, body | {"items": [item | {"price": 3.555}]})
    assert error.message.startswith("items[0].price: amount 3.555 is not a positive number")


def test_an_enrollment_code_is_its_digits() -> None:
    key = "-----BEGIN PUBLIC KEY-----..."
    assert parse(EnrollRequest, {"code": "1234-5678 9012", "public_key": key}).code == (
        "123456789012"
    )
    assert parse(EnrollRequest, {"code": 123456789012, "public_key": key}).code == "123456789012"
    assert refused(EnrollRequest, {"code": "1234", "public_key": key}).message == (
        "code must be 12 digits"
    )
    assert refused(EnrollRequest, {"code": "123456789012"}).message.startswith("public_key must")


# -- the document and the models agree ---------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def near(samples: list[Any]) -> st.SearchStrategy[Any]:
    """Values right for a field, or nearly right, or of another type entirely."""
    return st.sampled_from(samples) | JSON


@functools.cache
def documented_schema(model: type[Body]) -> Draft202012Validator:
    doc = full_document()
    schema = {"$ref": f"#/components/schemas/{model.__name__}", "components": doc["components"]}
    return Draft202012Validator(schema)


def accepts(model: type[Body], body: dict[str, Any]) -> bool:
    try:
        parse(model, body)
    except ApiError as e:
        assert e.status == 400 and e.message  # never anything but the API's refusal
        return False
    return True


CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "platform": near(["meituan", "eleme", "jddj", "douyin", "Meituan", ""]),
        "day_seq": near([1, 27, 99999, 100000, 0, -1, 27.0, True, "27"]),
        "tail": near(["4821", " 4821 ", "482", "48211", "48 1", "\t0000\n", "４８２１", "x821"]),
    },
)


@settings(max_examples=200, deadline=None)
@given(CLAIMS)
def test_the_document_says_exactly_which_courier_claims_are_taken(body: dict[str, Any]) -> None:
    assert accepts(CourierClaim, body) == documented_schema(CourierClaim).is_valid(body)


MOVEMENTS = st.fixed_dictionaries(
    {},
    optional={
        "delta": near([1, -3, 0, 1.5, True, None, "2"]),
        "qty": near([0, 12, -1, 2.0, None]),
        "reason": near(["restock", "adjust", "manual", "sale"]),
        "key": near(["k", "", "x" * 100, "x" * 101]),
        "note": near(["", "盘点"]),
    },
)
PAYMENTS = st.fixed_dictionaries(
    {
        "checkout": near(["co-1", "", "x" * 65]),
        "cart": near(["c-1"]),
        "amount": near([7.0, 3.5, 0, -1, 7.001, math.pi, "7", 1e300]),
        "items": near([[{"qty": 2, "price": 3.5}], [], [{"qty": 0, "price": 1}], [{"price": 1}]]),
    },
    optional={"ttl_seconds": near([30, 29, 600, 30.0, None])},
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_document_never_refuses_a_body_the_hub_takes(data: st.DataObject) -> None:
    """Some rules are the domain's (the amount is the items' sum, a barcode's check
    digit) and beyond a schema, so a body the document allows may still be refused; the
    reverse would make a client that checks against the document refuse good requests."""
    for model, bodies in (
        (Movement, MOVEMENTS),
        (PaymentRequest, PAYMENTS),
        (CourierClaim, CLAIMS),
    ):
        body = data.draw(bodies)
        if accepts(model, body):
            assert documented_schema(model).is_valid(body), (model.__name__, body)


GOOD_TS = ["2026-03-01T08:00:00Z", "2026-03-01T08:00:00.123456+08:00"]
FIELDS = {
    "id": near(["01J0A", "a" * 128, "a" * 129, "has space", "", "é"]),
    "store": near(["demo-001"]),
    "seq": near([1, 2**63 - 1, 2**63, 0, 1.0, True]),
    "ts": near([*GOOD_TS, 1700000000]),
    "type": near(["door.opened", "a b", "", "x" * 101]),
    "data": near([{}, {"door": "front"}, []]),
}
EVENTS = st.fixed_dictionaries(FIELDS, optional={"extra": JSON}) | st.fixed_dictionaries(
    {}, optional=FIELDS
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
@example({"id": "e1", "store": "demo-001", "seq": 1, "ts": GOOD_TS[0], "type": "a.b", "data": {}})
def test_the_event_model_says_what_the_ingest_checks(event: dict[str, Any]) -> None:
    """The ingest keeps its own fast parser (cloud/envelope.py, benchmarked); the Event
    model documents it. They agree, but for what a schema cannot say: the store must be
    the URL's, and the time must be RFC 3339 (a `format`, which readers need not check)."""
    body = json.dumps({"events": [event]}).encode()
    try:
        parse_batch(body, "demo-001")
        taken = True
    except BadBatch:
        taken = False
    documented = documented_schema(Event).is_valid(event)
    hypothesis.event("taken" if taken else "refused")
    if taken:
        assert documented
    elif documented:
        assert event["store"] != "demo-001" or event["ts"] not in GOOD_TS
