"""The DingTalk robot client: the documented signature, and a real HTTP exchange with a
fake robot API that checks timestamp and sign as DingTalk does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import shutil
import subprocess
import time
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.alerts.dingtalk import (
    BAD_SIGNATURE,
    RATE_LIMITED,
    UNREACHABLE,
    DingTalkError,
    DingTalkRobot,
    sign,
    signed_url,
)
from tests.support.dingtalk import FakeDingTalk, _check_sign

secrets_ = st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s)
timestamps = st.integers(min_value=0, max_value=2**45)


def documented_sign(secret: str, timestamp: int) -> str:
    """DingTalk's own Python example (open.dingtalk.com, 自定义机器人 加签), step by step."""
    import urllib.parse

    secret_enc = secret.encode("utf-8")
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(secret_enc, string_to_sign.encode("utf-8"), digestmod=hashlib.sha256)
    return urllib.parse.quote_plus(base64.b64encode(hmac_code.digest()))


@given(secrets_, timestamps)
def test_sign_is_the_documented_algorithm(secret: str, timestamp: int) -> None:
    assert sign(secret, timestamp) == documented_sign(secret, timestamp)


@given(secrets_, timestamps)
def test_sign_decodes_to_the_hmac_of_timestamp_newline_secret(secret: str, ts: int) -> None:
    raw = base64.b64decode(unquote_plus(sign(secret, ts)), validate=True)
    expected = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert raw == expected
    # URL-safe as it stands: nothing that a query would read differently
    assert all(c.isalnum() or c in "%-_.~" for c in sign(secret, ts))


@given(secrets_, timestamps, secrets_)
def test_a_sign_for_another_secret_or_time_does_not_verify(a: str, ts: int, b: str) -> None:
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", a, ts)
    query = parse_qs(urlsplit(url).query)
    assert _check_sign(query, a, ts / 1000) is None
    if b != a:
        assert _check_sign(query, b, ts / 1000) == "sign not match"
    assert _check_sign(query, a, ts / 1000 + 3601) == "invalid timestamp"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_sign_matches_openssl() -> None:
    # an implementation that shares no code with ours (the shell example people use)
    secret, ts = "SECf00d+/=", 1700000000123
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"],
        input=f"{ts}\n{secret}".encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert unquote_plus(sign(secret, ts)) == base64.b64encode(out).decode()


def test_signed_url_keeps_the_token_and_appends_timestamp_and_sign() -> None:
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", "SECx", 1234)
    assert url.startswith("https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1234&")
    assert signed_url("https://x/robot/send?access_token=abc", "", 1) == (
        "https://x/robot/send?access_token=abc"
    )


async def test_a_signed_markdown_message_is_taken() -> None:
    async with FakeDingTalk() as ding:
        robot = DingTalkRobot(ding.webhook(), ding.secret)
        try:
            # many times: some signatures hold "+" or "/", which must be encoded
            for i in range(30):
                ding.messages.clear()
                await robot.send_markdown(f"标题 {i}", f"### 门未关\n\n门 **front** {i}")
                assert [m.body["msgtype"] for m in ding.messages] == ["markdown"]
        finally:
            await robot.close()
        assert ding.messages[0].title == "标题 29"


async def test_wrong_secret_and_stale_timestamp_are_refused() -> None:
    async with FakeDingTalk() as ding:
        wrong = DingTalkRobot(ding.webhook(), "SECnot-the-secret")
        stale = DingTalkRobot(
            ding.webhook(), ding.secret, clock_ms=lambda: int(time.time() * 1000) - 3601_000
        )
        try:
            with pytest.raises(DingTalkError) as e:
                await wrong.send_markdown("t", "x")
            assert e.value.errcode == BAD_SIGNATURE and "sign not match" in e.value.errmsg
            with pytest.raises(DingTalkError) as e:
                await stale.send_markdown("t", "x")
            assert e.value.errcode == BAD_SIGNATURE and "timestamp" in e.value.errmsg
        finally:
            await wrong.close()
            await stale.close()
        assert ding.messages == []


async def test_over_twenty_a_minute_is_errcode_130101() -> None:
    async with FakeDingTalk() as ding:
        robot = DingTalkRobot(ding.webhook(), ding.secret)
        try:
            for i in range(20):
                await robot.send_markdown("t", f"message {i}")
            with pytest.raises(DingTalkError) as e:
                await robot.send_markdown("t", "one too many")
            assert e.value.errcode == RATE_LIMITED and e.value.rate_limited
        finally:
            await robot.close()
        assert len(ding.messages) == 20


async def test_secrets_stay_out_of_errors_and_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token, secret = "tok-very-secret-123", "SECvery-secret-456"
    async with FakeDingTalk(token=token, secret=secret) as ding:
        port = ding.port
        ding.fail_next(1, status=502)
        robot = DingTalkRobot(ding.webhook(), secret)
        with pytest.raises(DingTalkError) as bad_gateway:
            await robot.send_markdown("t", "x")
        await robot.close()
    gone = DingTalkRobot(f"http://127.0.0.1:{port}/robot/send?access_token={token}", secret)
    with pytest.raises(DingTalkError) as unreachable:
        await gone.send_markdown("t", "x")
    await gone.close()
    assert unreachable.value.errcode == UNREACHABLE
    shown = [str(bad_gateway.value), str(unreachable.value), repr(gone), caplog.text]
    assert "HTTP 502" in shown[0]
    for text in shown:
        assert token not in text and secret not in text
