"""The mqtt section of the config, the backoff, and start-up with unusable settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.clock import Clock
from agent.config.schema import MqttConfig
from agent.journal import Journal
from agent.mqtt import MqttSetupError, RemoteOps
from runtime.mqtt.settings import parse_mqtt_url
from runtime.mqtt.supervise import reconnect_delay
from tests.agent.mqtt.harness import STORE, Keys, make_config

hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)


@given(
    scheme=st.sampled_from(["mqtt", "mqtts"]), host=hosts, port=st.integers(1, 65535) | st.none()
)
def test_broker_urls_give_host_port_and_tls(scheme: str, host: str, port: int | None) -> None:
    url = f"{scheme}://{host}" + (f":{port}" if port else "")
    default = 8883 if scheme == "mqtts" else 1883
    assert parse_mqtt_url(url) == (host, port or default, scheme == "mqtts")


@pytest.mark.parametrize(
    "url",
    [
        "tcp://broker:1883",
        "mqtt://",
        "mqtt://user:pw@broker",
        "mqtt://broker:0",
        "mqtt://broker:70000",
        "broker:1883",
        "mqtt://broker/path",
    ],
)
def test_bad_broker_urls_are_refused_with_an_example(url: str) -> None:
    with pytest.raises(ValidationError, match=r"like mqtt://host:1883|out of range"):
        MqttConfig(url=url)


def test_ipv6_literal() -> None:
    assert parse_mqtt_url("mqtt://[::1]:1884") == ("::1", 1884, False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password_file": "pw"}, "password_file needs a username"),
        ({"tls": {"cert_file": "c.pem"}}, "go together"),
        ({"reconnect_min_seconds": 5, "reconnect_max_seconds": 1}, "less than"),
        ({"topic_root": "shop/#"}, "pattern"),
        ({"protocol": "4"}, "'5' or '3.1.1'"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MqttConfig.model_validate({"url": "mqtt://b"} | fields)


@given(
    failures=st.integers(0, 200),
    lo=st.floats(0.01, 5),
    spread=st.floats(1, 100),
    r=st.floats(0, 1, exclude_max=True),
)
def test_backoff_grows_is_capped_and_jittered(
    failures: int, lo: float, spread: float, r: float
) -> None:
    hi = lo * spread
    delay = reconnect_delay(failures, lo, hi, rand=lambda: r)
    base = min(hi, lo * 2 ** min(failures, 32))
    assert base / 2 <= delay <= base <= hi
    assert reconnect_delay(failures + 1, lo, hi, rand=lambda: r) >= delay


async def test_an_unreadable_password_file_stops_the_start_with_a_clear_error(
    tmp_path: Path, keys: Keys
) -> None:
    cfg = make_config(
        tmp_path, "mqtt://127.0.0.1:1", username=STORE, password_file=str(tmp_path / "missing")
    )
    async with await Journal.open(tmp_path / "j.db", STORE, Clock()) as journal:
        ops = RemoteOps(cfg, journal=journal, verifier=keys.verifier(), clock=Clock(), state=dict)
        with pytest.raises(MqttSetupError, match=r"mqtt\.password_file .*missing"):
            await ops.start()
        await ops.stop()


async def test_disabled_mqtt_starts_and_stops_without_a_broker(tmp_path: Path, keys: Keys) -> None:
    cfg = make_config(tmp_path, "mqtt://127.0.0.1:1", enabled=False)
    async with await Journal.open(tmp_path / "j.db", STORE, Clock()) as journal:
        ops = RemoteOps(cfg, journal=journal, verifier=keys.verifier(), clock=Clock(), state=dict)
        await ops.start()
        ops.state_changed()
        await asyncio.sleep(0.05)
        assert not ops.connected
        await ops.stop()


async def test_an_unreachable_broker_is_retried_and_stop_is_prompt(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path, "mqtt://127.0.0.1:1")
    async with await Journal.open(tmp_path / "j.db", STORE, Clock()) as journal:
        ops = RemoteOps(cfg, journal=journal, verifier=keys.verifier(), clock=Clock(), state=dict)
        await ops.start()
        await asyncio.sleep(0.5)
        async with asyncio.timeout(1):
            await ops.stop()
    attempts = caplog.text.count("cannot connect to the broker 127.0.0.1:1")
    assert attempts >= 2


@pytest.mark.parametrize(
    "url", ["mqtt://demo-001:S3cretPw@broker", "mqtts://demo-001:S3cretPw@broker:8883"]
)
def test_a_password_in_the_url_is_refused_without_being_repeated(url: str) -> None:
    with pytest.raises(ValueError, match="password_file") as caught:
        parse_mqtt_url(url)
    assert "S3cretPw" not in str(caught.value)
