"""agent.runtime.logging: what reaches stderr, in both formats, never holds a secret."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.runtime.logging import redact_text, setup_logging
from cloud import signing

KEY = signing.generate_key()
PASS = signing.mint_pass(KEY, "demo", store="demo-001", scope="entry", sub="c-1")
_, PASS_PAYLOAD, PASS_SIG = PASS.split(".")
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIDx5mL2f0sZkR1nQ7v3xq1bTzY0g8c9PZQ5S4W7y3k2A\n"
    "-----END PRIVATE KEY-----"
)
log = logging.getLogger("shopgate.test")


@pytest.fixture(params=["text", "json"])
def fmt(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    # capsys first: the handler binds the sys.stderr of the moment it is made
    root = logging.getLogger()
    level = root.level
    handler = setup_logging(request.param, "DEBUG")
    yield request.param
    root.removeHandler(handler)
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def assert_no_pass(out: str) -> None:
    assert PASS not in out
    assert PASS_PAYLOAD not in out
    assert PASS_SIG[:-6] not in out


def test_jwt_in_a_message_is_cut_to_its_tail(fmt: str, capsys) -> None:
    log.info("scanned %s at door %s", PASS, "front")
    out = capsys.readouterr().err
    assert_no_pass(out)
    assert f"eyJ…{PASS[-6:]}" in out
    assert "front" in out


def test_bearer_token_is_redacted(fmt: str, capsys) -> None:
    log.warning("hub said 401 to %s", {"Authorization": "Bearer st0re-t0ken-abc"})
    log.warning("retrying with Bearer st0re-t0ken-abc")
    out = capsys.readouterr().err
    assert "st0re-t0ken-abc" not in out
    assert out.count("[redacted]") == 2


def test_secret_extra_fields_are_redacted(fmt: str, capsys) -> None:
    log.info(
        "posting events",
        extra={
            "token": "st0re-t0ken-abc",
            "headers": {"Authorization": "Bearer hdr-s3cret", "X-Count": "3"},
            "app_secret": "meituan-s3cret",
            "password": 123456789,
            "pass_seen": PASS,
            "door": "front",
        },
    )
    out = capsys.readouterr().err
    for secret in ("st0re-t0ken-abc", "hdr-s3cret", "meituan-s3cret", "123456789"):
        assert secret not in out
    assert_no_pass(out)
    assert "front" in out and "X-Count" in out


def test_secrets_in_a_traceback_are_redacted(fmt: str, capsys) -> None:
    try:
        raise ValueError(f"rejected pass {PASS} with token=abc-s3cret-def")
    except ValueError:
        log.exception("verification failed")
    out = capsys.readouterr().err
    assert_no_pass(out)
    assert "abc-s3cret-def" not in out
    assert "ValueError" in out


def test_private_key_pem_is_redacted(fmt: str, capsys) -> None:
    log.error("loaded %s", PEM)
    out = capsys.readouterr().err
    assert "MC4CAQAw" not in out
    assert "[private key]" in out


def test_json_lines_have_the_documented_fields(capsys) -> None:
    handler = setup_logging("json")
    try:
        log.info("door %s unlocked", "front", extra={"door": "front", "seconds": 5})
        log.debug("not shown at INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = lines(capsys)
    record = json.loads(line)
    assert record["level"] == "INFO"
    assert record["logger"] == "shopgate.test"
    assert record["msg"] == "door front unlocked"
    assert (record["door"], record["seconds"]) == ("front", 5)
    ts = dt.datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
    assert ts.utcoffset() == dt.timedelta(0) and record["ts"].endswith("Z")
    assert abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) < 60


def test_setup_twice_replaces_the_handler(capsys) -> None:
    setup_logging("text")
    handler = setup_logging("json")
    try:
        log.warning("once")
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = lines(capsys)
    assert json.loads(line)["msg"] == "once"


def test_bad_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="text or json"):
        setup_logging("xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log level"):
        setup_logging("text", "LOUD")


_secret = st.text(
    alphabet=st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~+/="),
    min_size=12,
    max_size=40,
).map(lambda s: "Zq" + s)
_shapes = st.sampled_from(
    [
        "Bearer {s}",
        "bearer {s}",
        "Authorization: Bearer {s}",
        "token={s}",
        "store_token: {s}",
        '{{"password": "{s}"}}',
        "secret='{s}'",
        "api_key={s}&x=1",
    ]
)


@settings(max_examples=200)
@given(secret=_secret, shape=_shapes, prefix=st.text(max_size=20))
def test_redact_text_never_lets_a_secret_through(secret: str, shape: str, prefix: str) -> None:
    text = prefix + " " + shape.format(s=secret) + " done"
    redacted = redact_text(text)
    assert secret not in redacted
    assert redact_text(redacted) == redacted


@given(st.text(max_size=80))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


def test_plain_text_is_left_alone() -> None:
    text = "door front unlocked for 5 s by courier-7 (order 1234, seq 42)"
    assert redact_text(text) == text


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")


def test_broken_log_calls_still_log_without_secrets(fmt: str, capsys) -> None:
    log.info("token %d", "tok-s3cret-xyz")  # wrong placeholder for the argument
    log.info("device state", extra={"thing": _Unprintable(), "secret_thing": _Unprintable()})
    out = capsys.readouterr().err
    assert "tok-s3cret-xyz" not in out
    assert "<unprintable _Unprintable>" in out
    assert "Traceback" not in out and "Logging error" not in out
