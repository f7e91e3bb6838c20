"""The four platforms' signatures, as pure functions: equal to the platforms' published
rules (the fake platforms' own implementation of them), independent of parameter order,
blind to the signature parameter itself, and changed by any change of what is signed."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from cloud.platforms import douyin, eleme, jddj, meituan
from tests.support import platforms as published

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
values = st.text(max_size=40)
params_st = st.dictionaries(keys, values, max_size=8)
secrets_st = st.text(min_size=1, max_size=32)
urls = st.sampled_from(
    ["https://hub.example.com/api/v1/platforms/meituan/push", "http://127.0.0.1:8080/x"]
)
ELEME_KEYS = ("cmd", "timestamp", "ticket", "version", "source", "encrypt", "body")
eleme_params = st.fixed_dictionaries({k: values for k in ELEME_KEYS})


def test_meituan_matches_a_worked_example() -> None:
    url = "https://waimaiopen.meituan.com/api/v1/order/confirm"
    params = {"timestamp": "1700000000", "app_id": "6", "order_id": "27001", "sig": "x"}
    base = f"{url}?app_id=6&order_id=27001&timestamp=1700000000secret"
    assert meituan.sign(url, params, "secret") == hashlib.md5(base.encode()).hexdigest()


@given(urls, params_st, secrets_st)
def test_meituan_is_the_published_rule(url: str, params: dict, secret: str) -> None:
    assert meituan.sign(url, params, secret) == published.meituan_sig(url, params, secret)


@given(urls, params_st, secrets_st, values)
def test_meituan_ignores_sig_and_order(url: str, params: dict, secret: str, sig: str) -> None:
    reordered = dict(reversed(list(params.items())))
    assert meituan.sign(url, {**params, "sig": sig}, secret) == meituan.sign(url, reordered, secret)


@given(urls, params_st, secrets_st, keys, values)
def test_meituan_changes_with_any_value(
    url: str, params: dict, secret: str, key: str, value: str
) -> None:
    if key == "sig" or params.get(key) == value:
        return
    assert meituan.sign(url, {**params, key: value}, secret) != meituan.sign(url, params, secret)


def test_eleme_matches_a_worked_example() -> None:
    params = {
        "cmd": "order.confirm",
        "timestamp": "1700000000",
        "ticket": "T",
        "version": "3",
        "source": "65400",
        "encrypt": "",
        "body": '{"order_id":"1"}',
    }
    text = (
        'body={"order_id":"1"}&cmd=order.confirm&encrypt=&secret=s3&source=65400'
        "&ticket=T&timestamp=1700000000&version=3"
    )
    assert eleme.sign(params, "s3") == hashlib.md5(text.encode()).hexdigest().upper()


@given(eleme_params, secrets_st)
def test_eleme_is_the_published_rule(params: dict, secret: str) -> None:
    assert eleme.sign(params, secret) == published.eleme_sign(params, secret)


@given(eleme_params, secrets_st, st.sampled_from(ELEME_KEYS), values)
def test_eleme_changes_with_any_signed_value(
    params: dict, secret: str, key: str, value: str
) -> None:
    if params[key] == value:
        return
    assert eleme.sign({**params, key: value}, secret) != eleme.sign(params, secret)


@given(eleme_params, secrets_st)
def test_eleme_envelope_never_carries_the_secret(params: dict, secret: str) -> None:
    sent = eleme.envelope("order.confirm", {"order_id": "1"}, "src", secret, "T")
    assert "secret" not in sent
    assert sent["sign"] == published.eleme_sign(sent, secret)


def test_jddj_matches_a_worked_example() -> None:
    params = {"app_key": "k", "v": "1.0", "format": "json", "token": "t", "sign": "x"}
    text = "SECapp_keykformatjsontokentv1.0SEC"
    assert jddj.sign(params, "SEC") == hashlib.md5(text.encode()).hexdigest().upper()


@given(params_st, secrets_st)
def test_jddj_is_the_published_rule(params: dict, secret: str) -> None:
    assert jddj.sign(params, secret) == published.jddj_sign(params, secret)


@given(params_st, secrets_st, values)
def test_jddj_ignores_sign(params: dict, secret: str, sign: str) -> None:
    assert jddj.sign({**params, "sign": sign}, secret) == jddj.sign(params, secret)


args_st = st.dictionaries(keys, st.one_of(values, st.integers(), st.booleans()), max_size=6)


@given(
    keys,
    st.sampled_from(["order.orderDetail", "sku.syncStock"]),
    args_st,
    values,
    secrets_st,
    st.sampled_from(["md5", "hmac-sha256"]),
)
def test_douyin_is_the_published_rule(
    app_key: str, method: str, args: dict, ts: str, secret: str, sign_method: str
) -> None:
    pj = douyin.param_json(args)
    assert douyin.sign(app_key, method, pj, ts, secret, sign_method) == published.douyin_sign(  # type: ignore[arg-type]
        app_key, method, pj, ts, secret, sign_method
    )


@given(args_st)
def test_douyin_param_json_has_sorted_keys_and_no_spaces(args: dict) -> None:
    pj = douyin.param_json(dict(reversed(list(args.items()))))
    assert json.loads(pj) == args
    assert list(json.loads(pj)) == sorted(args)
    assert pj == json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(keys, st.binary(max_size=200).map(lambda b: b.decode("latin-1").encode()), secrets_st)
def test_douyin_event_sign_is_the_published_rule(app_key: str, body: bytes, secret: str) -> None:
    for method in ("md5", "hmac-sha256"):
        assert douyin.event_sign(app_key, body, secret, method) == published.douyin_event_sign(  # type: ignore[arg-type]
            app_key, body, secret, method
        )
