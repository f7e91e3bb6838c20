"""deploy/hub/hub.yaml, the production hub's config, and deploy/hub/hub.env.example.

No secret in the template has a default; the example environment lists every variable the
template reads, and as shipped (secrets empty) it starts nothing. Filled in, the template
is a valid hub that others reach (public_url), so any demo value put back is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud.signing import default_kid, load_private_key, write_keypair
from tests.support.hub import REPO, hub_command

TEMPLATE = REPO / "deploy" / "hub" / "hub.yaml"
ENV_EXAMPLE = REPO / "deploy" / "hub" / "hub.env.example"
UNIT = REPO / "systemd" / "shopgate-hub.service"
SECRET_KEYS = {"token", "secret", "notify_secret", "link_secret", "access_token", "sid"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _walk(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _walk(v, (*path, str(k)))]
    if isinstance(node, list):
        return [kv for i, v in enumerate(node) for kv in _walk(v, (*path, str(i)))]
    return [(path, node)]


def example_env() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name] = value
    return out


def installed(tmp_path: Path) -> Path:
    """The template as installed, with /etc/shopgate and /var/lib/shopgate-hub in tmp_path."""
    text = TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("/etc/shopgate/", f"{tmp_path}/etc/").replace(
        "/var/lib/shopgate-hub", f"{tmp_path}/var"
    )
    keys = tmp_path / "etc" / "keys"
    write_keypair(keys)
    (tmp_path / "etc" / "hub-mqtt.pw").write_text("broker-password\n")
    path = tmp_path / "etc" / "hub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def filled_env(tmp_path: Path, **over: str) -> dict[str, str]:
    key, _ = load_private_key(tmp_path / "etc" / "keys" / "hub-signing.pem")
    env = {
        name: value or f"{name.lower()}-{os.urandom(12).hex()}"
        for name, value in example_env().items()
    }
    env["SHOPGATE_HUB_KID"] = default_kid(key.public_key())
    env["SHOPGATE_HUB_DB"] = ""
    env["SHOPGATE_DINGTALK_URL"] = "https://oapi.dingtalk.com/robot/send?access_token=" + "a" * 64
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGATE_")}
    return base | env | over


def check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hub_command(), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def test_no_secret_in_the_template_has_a_default() -> None:
    raw = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    secrets = [(p, v) for p, v in _walk(raw) if p[-1] in SECRET_KEYS]
    secrets += [(p, v) for p, v in _walk(raw) if p[:2] == ("alerts", "robots") and p[-1] == "url"]
    assert len(secrets) >= 14
    for path, value in secrets:
        assert isinstance(value, str) and re.fullmatch(r"\$\{[A-Z0-9_]+\}", value), (path, value)
    assert raw["payments"]["demo"] is False
    assert raw["signing"]["kid"] == "${SHOPGATE_HUB_KID}"


def test_the_example_environment_lists_exactly_what_the_template_reads() -> None:
    raw = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    read = {m[1] for _, v in _walk(raw) if isinstance(v, str) for m in _VAR.finditer(v)}
    assert set(example_env()) == read


def test_the_filled_in_template_is_a_valid_hub(tmp_path: Path) -> None:
    config = installed(tmp_path)
    r = check(config, filled_env(tmp_path))
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stdout


def test_the_example_as_shipped_starts_nothing(tmp_path: Path) -> None:
    config = installed(tmp_path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGATE_")}
    r = check(config, base | example_env())
    assert r.returncode == 2
    named = {line.split(": ")[1] for line in r.stdout.splitlines()}
    assert named == {"signing.kid", "stores.0.token", "merchants.0.token"}


def test_each_platform_and_erp_secret_left_empty_is_named(tmp_path: Path) -> None:
    config = installed(tmp_path)
    empty = {
        f"SHOPGATE_{n}_SECRET": "" for n in ("MEITUAN", "ELEME", "JDDJ", "DOUYIN", "WDT", "JST")
    }
    r = check(config, filled_env(tmp_path, **empty))
    assert r.returncode == 2
    named = [line.split(": ")[1:3] for line in r.stdout.splitlines()]
    assert sorted(key for key, _ in named) == sorted(
        [f"platforms.{n}.secret" for n in ("meituan", "eleme", "jddj", "douyin")]
        + ["erp.wdt.secret", "erp.jst.secret"]
    )
    assert all(why.startswith("is empty") for _, why in named)


def test_an_unset_variable_is_named(tmp_path: Path) -> None:
    config = installed(tmp_path)
    env = filled_env(tmp_path)
    del env["SHOPGATE_MEITUAN_SECRET"]
    r = check(config, env)
    assert r.returncode == 2
    assert "environment variable SHOPGATE_MEITUAN_SECRET is not set" in r.stdout


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("SHOPGATE_MEITUAN_SECRET", "demo-secret", "platforms.meituan.secret"),
        ("SHOPGATE_STORE_001_TOKEN", "demo-token", "stores.0.token"),
        ("SHOPGATE_HUB_KID", "demo", "signing.kid"),
    ],
)
def test_a_demo_value_put_back_is_refused_behind_the_proxy(
    tmp_path: Path, var: str, value: str, key: str
) -> None:
    config = installed(tmp_path)
    r = check(config, filled_env(tmp_path, **{var: value}))
    assert r.returncode == 2
    assert [line.split(": ")[1] for line in r.stdout.splitlines()] == [key], r.stdout
    assert "public_url https://hub.example.com" in r.stdout


def test_the_service_runs_the_production_config() -> None:
    unit = UNIT.read_text(encoding="utf-8")
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "--config /etc/shopgate/hub.yaml" in exec_start
    assert "EnvironmentFile=-/etc/shopgate/hub.env" in unit
