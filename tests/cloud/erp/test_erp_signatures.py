"""The ERPs' signatures: the published example, and properties of any parameters.

The verifiers in tests/support/erp.py are written apart from cloud/erp (from the ERPs'
rules); the hub's signer must agree with them on any input, and any change to a signed
request must break the signature."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.erp import jst, wdt
from tests.support.erp import jst_sign, wdt_sign

keys = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x9FFF, exclude_characters="sign"),
    min_size=1,
    max_size=12,
)
values = st.text(max_size=40)
params_st = st.dictionaries(keys, values, min_size=1, max_size=8)
secrets = st.text(min_size=1, max_size=20)


def test_wdt_published_example() -> None:
    # open.wangdian.cn/open/guide?path=guide_signsf: appsecret 12345 signs these as below.
    params = {
        "appkey": "test2-xx",
        "page_no": "0",
        "end_time": "2016-08-01 13:00:00",
        "start_time": "2016-08-01 12:00:00",
        "page_size": "40",
        "sid": "test2",
        "timestamp": "1470042310",
    }
    assert wdt.sign(params, "12345") == "ad4e6fe037ea6e3ba4768317be9d1309"
    assert wdt.sign_text(params, "12345").startswith(
        "06-appkey:0008-test2-xx;08-end_time:0019-2016-08-01 13:00:00;"
    )


def test_wdt_counts_characters_not_bytes() -> None:
    # The official client measures with iconv_strlen(..., 'UTF-8'): 可乐 is 2, not 6.
    assert wdt.sign_text({"goods_name": "可乐"}, "s") == "10-goods_name:0002-可乐s"


def test_jst_signature_shape() -> None:
    params = {"app_key": "k", "access_token": "t", "timestamp": "1", "charset": "utf-8",
              "version": "2", "biz": "{}", "sign": "ignored"}  # fmt: skip
    assert jst.sign_text(params, "S") == "Saccess_tokentapp_keykbiz{}charsetutf-8timestamp1version2"


@given(params_st, secrets)
def test_wdt_sign_verifies_and_matches_the_fake(params: dict[str, str], secret: str) -> None:
    signed = {**params, "sign": wdt.sign(params, secret)}
    assert wdt.verify(signed, secret)
    assert signed["sign"] == wdt_sign(signed, secret)


@given(params_st, secrets)
def test_jst_sign_verifies_and_matches_the_fake(params: dict[str, str], secret: str) -> None:
    signed = {**params, "sign": jst.sign(params, secret)}
    assert jst.verify(signed, secret)
    assert signed["sign"] == jst_sign(signed, secret)


@given(params_st, secrets, st.data())
def test_any_change_breaks_the_signature(
    params: dict[str, str], secret: str, data: st.DataObject
) -> None:
    for module in (wdt, jst):
        signed = {**params, "sign": module.sign(params, secret)}
        key = data.draw(st.sampled_from(sorted(params)))
        changed_value = {**signed, key: signed[key] + data.draw(st.text(min_size=1, max_size=3))}
        assert not module.verify(changed_value, secret)
        taken = set(signed)
        extra_key = data.draw(keys.filter(lambda k, taken=taken: k not in taken))
        assert not module.verify({**signed, extra_key: ""}, secret)
        dropped = {k: v for k, v in signed.items() if k != key}
        assert not module.verify(dropped, secret)
        other = data.draw(secrets.filter(lambda s: s != secret))
        assert not module.verify(signed, other)
