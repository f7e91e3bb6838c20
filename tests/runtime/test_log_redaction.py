"""runtime.logging: what reaches stderr, in both formats, never holds a secret."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import signing
from runtime.logging import (
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    redact_text,
    setup_logging,
)

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


# --- every shape a secret travels in, through both formatters -------------------------

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
# A secret: "Zq" and characters no shape below treats as a delimiter.
_core = st.text(alphabet=st.sampled_from(_ALNUM + "-_.~"), min_size=10, max_size=40).map(
    lambda s: "Zq" + s
)
_noise = st.text(alphabet=st.sampled_from(_ALNUM + " \"'\\,:;{}=&"), max_size=12)


def _basic(secret: str) -> str:
    return base64.b64encode(f"demo-001:{secret}".encode()).decode()


# (shape, how the secret is written into it); each {s} is the written secret.
SHAPES: list[tuple[str, Callable[[str], str]]] = [
    ("Authorization: Basic {s}", _basic),
    ("{{'Authorization': 'Basic {s}'}}", _basic),
    ('{{"authorization": "Basic {s}"}}', _basic),
    ("Proxy-Authorization: Basic {s}", _basic),
    ("authorization=Token {s}", str),
    ("Bearer {s}", str),
    ("Authorization: Bearer {s}", str),
    ("mqtt://demo-001:{s}@broker.example.com:1883", lambda s: quote(s, safe="")),
    ("mqtts://demo-001:{s}@broker.example.com", lambda s: quote(s, safe="")),
    ("connecting to http://hub:{s}@10.0.0.5:8080/api", lambda s: quote(s, safe="")),
    ("GET https://user:{s}@hub.example.com/x?y=1", lambda s: quote(s, safe="")),
    ("/c/demo-001/o-1?sig={s}&exp=1700000000", str),
    ("/c/demo-001/o-1?exp=1&sig={s}", str),
    ("app_key=demo&timestamp=1&sign={s}&v=1.0", str),
    ("sign={s}", str),
    ("X-Signature: {s}", str),
    ("{{'signature': '{s}'}}", str),
    ("https://oapi.dingtalk.com/robot/send?access_token={s}&timestamp=1", str),
    ("token={s}", str),
    ("access_token={s}", str),
    ("refresh_token: {s}", str),
    ("secret={s}", str),
    ("client_secret={s}&grant_type=x", str),
    ("app_secret={s}", str),
    ("password={s}", str),
    ("pwd={s}", str),
    ("passwd: {s}", str),
    ("X-Api-Key: {s}", str),
    ("Cookie: lang=zh; SESSIONID={s}; theme=dark", str),
    ("Cookie: lang=zh; auth={s}", str),
    ("Set-Cookie: sid={s}; Path=/; HttpOnly", str),
]
_JSON_NAMES = ["secret", "app_secret", "password", "token", "access_token", "sign", "sig"]
PEM_KINDS = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"]


def formatted(text: str) -> list[str]:
    """`text` logged every way the agent and the hub log things: as a message argument,
    as an `extra` field, inside an exception; in both formats, through the filter."""
    out = []
    for formatter in (JsonFormatter(), TextFormatter()):
        try:
            raise RuntimeError(text)
        except RuntimeError:
            exc_info = sys.exc_info()
        for kwargs in (
            {"msg": "got %s", "args": (text,)},
            {"msg": "call failed", "detail": text, "body": {"raw": text}},
            {"msg": "failed", "exc_info": exc_info},
        ):
            record = logging.makeLogRecord({"name": "cloud.test", "levelno": 30, **kwargs})
            RedactingFilter().filter(record)
            out.append(formatter.format(record))
    return out


@settings(max_examples=300)
@given(
    core=_core,
    shape=st.sampled_from(SHAPES),
    before=_noise,
    after=_noise,
)
def test_no_secret_in_any_shape_reaches_the_output(
    core: str, shape: tuple[str, Callable[[str], str]], before: str, after: str
) -> None:
    template, write = shape
    written = write(core)
    text = f"{before} {template.format(s=written)} {after}"
    for line in formatted(text):
        assert core not in line and written not in line, (text, line)
    assert redact_text(redact_text(text)) == redact_text(text)


@settings(max_examples=200)
@given(core=_core, name=st.sampled_from(_JSON_NAMES), before=_noise, after=_noise)
def test_no_secret_in_a_json_or_repr_value_reaches_the_output(
    core: str, name: str, before: str, after: str
) -> None:
    # The value may hold spaces, quotes and backslashes: all of it is the secret.
    value = f"{before} {core} {after}"
    for text in (
        json.dumps({"store": "demo-001", name: value}),
        json.dumps({name: value}, ensure_ascii=False, separators=(",", ":")),
        repr({"store": "demo-001", name: value}),
    ):
        for line in formatted(text):
            assert core not in line, (text, line)
        assert redact_text(redact_text(text)) == redact_text(text)


@settings(max_examples=50)
@given(body=st.lists(_core, min_size=1, max_size=4), kind=st.sampled_from(PEM_KINDS))
def test_no_private_key_block_reaches_the_output(body: list[str], kind: str) -> None:
    pem = f"-----BEGIN {kind}-----\n" + "\n".join(body) + f"\n-----END {kind}-----\n"
    for text in (pem, json.dumps({"key": pem}), f"loaded {pem!r}", pem[:-30]):
        for line in formatted(text):
            assert all(b not in line for b in body), (text, line)


def test_what_stays_readable() -> None:
    # Redaction keeps what a person needs to follow a log: the scheme, the user name,
    # the host, the other parameters.
    assert redact_text("mqtt://demo-001:pw1234567@broker:1883") == (
        "mqtt://demo-001:[redacted]@broker:1883"
    )
    assert redact_text("Authorization: Basic ZGVtbzpwdw==") == "Authorization: Basic [redacted]"
    assert redact_text("GET /c/s/o?sig=abc123&exp=17") == "GET /c/s/o?sig=[redacted]&exp=17"
    assert redact_text('{"secret": "a b"}') == '{"secret": "[redacted]"}'
    # and leaves alone what only looks like a secret's name
    for text in (
        "design=modern",
        "sign_type=MD5",
        "signal: -67 dBm",
        "signed in as demo-001",
        "mqtt://broker.example.com:8883",
        "see https://hub.example.com/s/demo-001/front",
        "cannot open the database postgresql://postgres@127.0.0.1:5432/test",
    ):
        assert redact_text(text) == text
