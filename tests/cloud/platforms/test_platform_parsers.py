"""The push readers never fail on garbage in any way but a refusal with a reason:
PlatformAuthError (401) or PlatformBadRequest (400), never another exception (500)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.config import Credentials
from cloud.platforms import douyin, eleme, jddj, meituan
from cloud.platforms.base import (
    PlatformAuthError,
    PlatformBadRequest,
    PlatformPush,
    PushRequest,
)
from cloud.platforms.registry import PLATFORMS
from tests.support import platforms as published

CREDS = Credentials(app_id="demo", secret="demo-secret")
URL = "http://127.0.0.1:8080/api/v1/platforms/x/push"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
# Values for the fields each platform reads, so the garbage reaches deep into the readers.
FIELDS = {
    "meituan": [
        "order_id",
        "app_poi_code",
        "day_seq",
        "status",
        "detail",
        "caution",
        "total",
        "shipping_fee",
        "poi_receive_detail",
        "notify_type",
        "reason_code",
        "reason",
    ],
    "eleme": ["cmd", "ticket", "body"],
    "jddj": ["jd_param_json"],
    "douyin": [],
}


def request(
    body: bytes, query: dict[str, str] | None = None, headers: dict | None = None
) -> PushRequest:
    return PushRequest(URL, "POST", query or {}, headers or {}, body)


def field_value() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=30),
        json_values.map(lambda v: json.dumps(v)),
        st.sampled_from(["order.create", "order.status.push", "32000", "20020", "9", "agree", "1"]),
    )


def take(adapter: Any, req: PushRequest) -> list[PlatformPush] | None:
    try:
        return adapter.parse_pushes(req)
    except PlatformBadRequest as e:
        assert str(e)  # a reason to send back
        return None


@pytest.mark.parametrize("name", list(PLATFORMS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=300),
    query=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_arbitrary_bytes_are_refused_with_a_reason(name: str, body: bytes, query: dict) -> None:
    adapter = PLATFORMS[name](CREDS)
    req = request(body, query, {"event-sign": "00", "app-id": "demo"})
    with pytest.raises((PlatformAuthError, PlatformBadRequest)) as refused:
        adapter.verify(req)
    assert str(refused.value)
    take(adapter, req)


@pytest.mark.parametrize("name", ["meituan", "eleme", "jddj"])
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_form_pushes_of_any_content_are_read_or_refused(name: str, data: st.DataObject) -> None:
    fields = data.draw(st.dictionaries(st.sampled_from(FIELDS[name]), field_value(), min_size=1))
    adapter = PLATFORMS[name](CREDS)
    pushes = take(adapter, request(urlencode(fields).encode()))
    for push in pushes or []:
        assert push.platform == name
        if push.order is not None:
            assert all(item.qty >= 1 for item in push.order.items)


@settings(max_examples=300)
@given(
    messages=st.lists(
        st.fixed_dictionaries({"tag": field_value(), "data": field_value()}), max_size=3
    )
    | json_values
)
def test_douyin_messages_of_any_content_are_read_or_refused(messages: Any) -> None:
    body = json.dumps(messages).encode()
    adapter = douyin.DouyinAdapter(CREDS)
    headers = {
        "event-sign": published.douyin_event_sign("demo", body, "demo-secret"),
        "app-id": "demo",
    }
    req = request(body, headers=headers)
    adapter.verify(req)  # signed properly: whatever it says, it is the platform's
    take(adapter, req)


@pytest.mark.parametrize(
    "normalize",
    [eleme.normalize, jddj.normalize, douyin.normalize],
    ids=["eleme", "jddj", "douyin"],
)
@settings(max_examples=300)
@given(data=json_values)
def test_fetched_orders_of_any_shape_are_read_or_refused(normalize: Any, data: Any) -> None:
    if not isinstance(data, dict):
        data = {"order": data, "products": data, "product": data, "sku_order_list": data}
    try:
        order = normalize(data)
    except PlatformBadRequest as e:
        assert str(e)
    else:
        assert order.items


@given(st.one_of(st.integers(), st.floats(), st.text(max_size=12), st.booleans(), st.none()))
def test_yuan_amounts_are_exact_fen_or_refused(value: Any) -> None:
    try:
        fen = meituan.yuan_to_fen(value, "price")
    except PlatformBadRequest:
        return
    assert isinstance(fen, int)


def test_yuan_amounts() -> None:
    assert meituan.yuan_to_fen("12.50", "p") == 1250
    assert meituan.yuan_to_fen(0.1, "p") == 10
    assert meituan.yuan_to_fen(3, "p") == 300
    with pytest.raises(PlatformBadRequest, match="amount in yuan"):
        meituan.yuan_to_fen("1.234", "p")
    with pytest.raises(PlatformBadRequest):
        meituan.yuan_to_fen("Infinity", "p")
