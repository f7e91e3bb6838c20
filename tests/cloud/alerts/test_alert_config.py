"""hub.yaml `alerts:`: the demo's robot is off until its webhook is given, and mistakes
are reported as FILE:LINE: key: message without echoing a token or secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloud.config import load_hub_config
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError
from tests.support.hub import DEMO_HUB_CONFIG


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGATE_")}
    return {**base, "SHOPGATE_RUN": str(tmp_path), **extra}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "keys", "demo")
    return tmp_path


def test_the_demo_robot_is_off_without_a_webhook(run_dir: Path) -> None:
    cfg = load_hub_config(DEMO_HUB_CONFIG, env(run_dir))
    [robot] = cfg.alerts.robots
    assert not robot.enabled
    assert cfg.alerts.store_offline_minutes == 10 and cfg.alerts.pickup_minutes == 30
    assert set(cfg.alerts.triggers) == {
        "low_stock",
        "store_offline",
        "door_held_open",
        "device",
        "push_failed",
        "pickup_overdue",
        "door_guessing",
        "entry_attack",
    }


def test_the_demo_robot_takes_its_webhook_and_secret_from_the_environment(run_dir: Path) -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    cfg = load_hub_config(
        DEMO_HUB_CONFIG,
        env(run_dir, SHOPGATE_DINGTALK_URL=url, SHOPGATE_DINGTALK_SECRET="SECxyz"),
    )
    [robot] = cfg.alerts.robots
    assert robot.enabled and robot.webhook == url and robot.secret == "SECxyz"
    assert robot.stores == ["demo-001"]


def write(run_dir: Path, alerts: str) -> Path:
    config = run_dir / "hub.yaml"
    config.write_text(
        "http: {listen: '127.0.0.1:0'}\n"
        "storage: {dir: data}\n"
        f"signing: {{key_file: {run_dir}/keys/hub-signing.pem, kid: demo}}\n"
        "mqtt: {url: 'mqtt://127.0.0.1'}\n"
        "stores: [{id: s1, token: tok-s1-0123456789abcdefghij}]\n"
        "alerts:\n" + alerts
    )
    return config


def test_schema_mistakes_are_reported_by_line(run_dir: Path) -> None:
    config = write(
        run_dir,
        "  store_offline_minutes: 0\n"
        "  triggers: [low_stock, fire]\n"
        "  robots:\n"
        "    - id: b\n"
        "      url: ftp://example.com/robot?access_token=tok-SECRET-0\n",
    )
    with pytest.raises(ConfigError) as e:
        load_hub_config(config, {})
    text = str(e.value)
    for expected in (
        ":7: alerts.store_offline_minutes: must be at least 1",
        ":8: alerts.triggers.1: expected 'low_stock', ",
        ":11: alerts.robots.0.url: must be the robot's https:// webhook URL",
    ):
        assert expected in text, text
    assert "SECRET" not in text


def test_robot_mistakes_are_reported_by_line_without_secrets(run_dir: Path) -> None:
    config = write(
        run_dir,
        "  robots:\n"
        "    - id: a\n"
        "      url: https://oapi.dingtalk.com/robot/send?token=tok-SECRET-1\n"
        "      secret: SEC-SECRET-2\n"
        "      stores: [s1, s9]\n"
        "    - id: a\n"
        "      url: https://oapi.dingtalk.com/robot/send?access_token=tok-SECRET-3\n"
        "      access_token: tok-SECRET-3\n"
        "      merchants: [m1]\n",
    )
    with pytest.raises(ConfigError) as e:
        load_hub_config(config, {})
    text = str(e.value)
    for expected in (
        ":9: alerts.robots.0.url: the webhook URL has no access_token",
        ":11: alerts.robots.0.stores.1: no store 's9' (s1)",
        ":12: alerts.robots.1.id: duplicate robot id 'a'",
        ":14: alerts.robots.1.access_token: give url or access_token, not both",
        ":15: alerts.robots.1.merchants.0: no merchant 'm1'",
    ):
        assert expected in text, text
    assert "SECRET" not in text


def test_an_access_token_alone_uses_dingtalks_address(run_dir: Path) -> None:
    config = write(run_dir, "  robots: [{id: a, access_token: t0k, secret: SECs}]\n")
    [robot] = load_hub_config(config, {}).alerts.robots
    assert robot.webhook == "https://oapi.dingtalk.com/robot/send?access_token=t0k"
