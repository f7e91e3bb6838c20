"""A hub that other machines can reach takes none of the demo's secrets.

The demo hub.yaml defaults every secret to a value printed in the repository (and turns
the 确认支付 demo page on). On loopback that is the one-command demo; on any other address
anyone could confirm a payment with no credentials or sign platform pushes. So a hub whose
listen address is not loopback only, or that callers reach through `http.public_url` (a
reverse proxy), refuses to start with any of them and names each setting, FILE:LINE.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.config import load_hub_config
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError
from tests.support.hub import DEMO_HUB_CONFIG, START_TIMEOUT_S, hub_command, start_hub
from tests.support.platforms import meituan_sig

# Every secret-bearing setting the demo hub.yaml gives a demo value, and its line there.
DEMO_SECRETS = (
    "signing.kid",
    "stores.0.token",
    "merchants.0.token",
    "platforms.meituan.secret",
    "platforms.eleme.secret",
    "platforms.jddj.secret",
    "platforms.douyin.secret",
    "erp.wdt.secret",
    "erp.jst.secret",
    "payments.demo",
    "payments.notify_secret",
)
DEMO_VALUES = ("demo-secret", "demo-token", "demo-merchant-token")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "keys", "demo")
    return tmp_path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGATE_")}
    return {**env, **extra}


def problems(config: Path, env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """{dotted key: (line, message)} of every problem load_hub_config finds."""
    try:
        load_hub_config(config, clean_env(**env))
    except ConfigError as e:
        return {p.key: (p.line, p.message) for p in e.problems}
    return {}


def line_of(key: str, text: str) -> int:
    """The line of a dotted key's value in the demo hub.yaml (by its last part, after the
    section it belongs to)."""
    parts = [p for p in key.split(".") if not p.isdigit()]
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"{parts[0]}:"))
    for part in parts[1:]:
        start = next(i for i in range(start, len(lines)) if re.match(rf"\s*(- )?{part}:", lines[i]))
    return start + 1


# -- the attack, on a real hub process --------------------------------------------------


def _listening(hub: Any) -> int | None:
    """The port the hub listens on, once it says so; None once it has exited."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://\S+?:(\d+)\b", hub.log())
        if m:
            return int(m[1])
        if hub.proc.poll() is not None:
            return None
        time.sleep(0.05)
    raise TimeoutError(f"the hub neither listened nor exited:\n{hub.log()[-2000:]}")


def _http(method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _attack(port: int) -> list[str]:
    """What a stranger on the network does to a hub left on the demo's settings."""
    base = f"http://127.0.0.1:{port}"
    done = []
    item = {"barcode": "6901234567892", "name": "可乐", "qty": 1, "price": 100.0}
    body = {"checkout": "co-1", "cart": "c-1", "amount": 100.0, "items": [item]}
    status, text = _http(
        "POST",
        f"{base}/api/v1/stores/demo-001/payments",
        json.dumps(body).encode(),
        {"Authorization": "Bearer demo-token", "Content-Type": "application/json"},
    )
    if status == 201:
        pid = json.loads(text)["payment"]["id"]
        status, page = _http("POST", f"{base}/pay/{pid}/confirm", b"", {})
        if "支付成功" in page:
            done.append(f"paid ¥100 payment {pid} with no credentials at /pay/{pid}/confirm")
    url = f"{base}/api/v1/platforms/meituan/push"
    params = {
        "order_id": "9001",
        "status": "9",
        "app_id": "demo",
        "timestamp": str(int(time.time())),
    }
    params["sig"] = meituan_sig(url, params, "demo-secret")
    status, text = _http(
        "POST",
        url,
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status == 200:
        done.append("a push signed with the demo secret was taken as Meituan's")
    return done


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_the_demo_hub_on_every_interface_refuses_to_start_naming_each_setting(
    tmp_path: Path, listen: str
) -> None:
    if listen.startswith("[") and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    hub = start_hub(
        tmp_path, token="demo-token", env={"SHOPGATE_HUB_LISTEN": listen}, wait_ready=False
    )
    try:
        port = _listening(hub)
        if port is not None:
            pytest.fail(
                f"the demo hub started on {listen}; from another machine one "
                + "; ".join(_attack(port) or ["could use the demo secrets"])
            )
        assert hub.proc.wait(5) == 2
    finally:
        hub.stop()
    out = hub.log()
    text = DEMO_HUB_CONFIG.read_text(encoding="utf-8")
    for key in DEMO_SECRETS:
        line = f"{DEMO_HUB_CONFIG}:{line_of(key, text)}: {key}: "
        assert line in out, f"{key} not named:\n{out}"
    for value in DEMO_VALUES:
        assert value not in out  # named by where it is, never echoed
    assert "listening on" not in out


def test_the_demo_hub_on_loopback_starts_as_before(tmp_path: Path) -> None:
    # The one-command demo: every default, on loopback.
    with start_hub(tmp_path, token="demo-token") as hub:
        status, _ = hub.request("GET", "/healthz", token=None)
        assert status == 200


# -- check-config and the loader ---------------------------------------------------------


def test_check_config_lists_every_demo_secret_of_a_reachable_hub(run_dir: Path) -> None:
    r = subprocess.run(
        [*hub_command(), "check-config", "--config", str(DEMO_HUB_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(SHOPGATE_RUN=str(run_dir), SHOPGATE_HUB_LISTEN="0.0.0.0:8080"),
        check=False,
    )
    assert r.returncode == 2, r.stdout
    keys = [line.split(": ")[1] for line in r.stdout.splitlines()]
    assert sorted(keys) == sorted(DEMO_SECRETS)
    assert all("0.0.0.0:8080" in line for line in r.stdout.splitlines())


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:8080", "127.8.9.10:8080", "[::1]:8080", "localhost:8080"]
)
def test_a_loopback_hub_keeps_the_demo_defaults(run_dir: Path, listen: str) -> None:
    assert (
        problems(DEMO_HUB_CONFIG, {"SHOPGATE_RUN": str(run_dir), "SHOPGATE_HUB_LISTEN": listen})
        == {}
    )


@pytest.mark.parametrize(
    "listen", ["0.0.0.0:8080", "[::]:8080", "0:8080", "192.0.2.7:8080", "[2001:db8::1]:8080"]
)
def test_any_other_listen_address_is_reachable(run_dir: Path, listen: str) -> None:
    found = problems(DEMO_HUB_CONFIG, {"SHOPGATE_RUN": str(run_dir), "SHOPGATE_HUB_LISTEN": listen})
    assert sorted(found) == sorted(DEMO_SECRETS)


def test_a_public_url_means_callers_come_through_a_proxy(run_dir: Path) -> None:
    # Loopback behind nginx is still the internet's hub.
    env = {"SHOPGATE_RUN": str(run_dir), "SHOPGATE_HUB_PUBLIC_URL": "https://hub.example.com"}
    found = problems(DEMO_HUB_CONFIG, env)
    assert sorted(found) == sorted(DEMO_SECRETS)
    assert all("https://hub.example.com" in message for _, message in found.values())
    local = {"SHOPGATE_RUN": str(run_dir), "SHOPGATE_HUB_PUBLIC_URL": "http://127.0.0.1:8080"}
    assert problems(DEMO_HUB_CONFIG, local) == {}


def test_a_trusted_reverse_proxy_means_other_machines_call_it(run_dir: Path) -> None:
    # nginx on this machine forwarding the internet's requests to a loopback hub.
    def behind_nginx(raw: dict[str, Any]) -> None:
        raw["limits"]["trusted_proxies"] = ["127.0.0.1"]

    found = problems(_reachable_config(run_dir, behind_nginx), {"SHOPGATE_RUN": str(run_dir)})
    assert sorted(found) == sorted(k for k in DEMO_SECRETS if k != "signing.kid")
    assert all("trusted_proxies" in message for _, message in found.values())


def strong_env(run_dir: Path, **over: str) -> dict[str, str]:
    env = {
        "SHOPGATE_RUN": str(run_dir),
        "SHOPGATE_HUB_LISTEN": "0.0.0.0:8080",
        "SHOPGATE_STORE_TOKEN": "s" * 24,
        "SHOPGATE_MERCHANT_TOKEN": "m" * 24,
        "SHOPGATE_PAY_DEMO": "false",
        "SHOPGATE_PAY_NOTIFY_SECRET": "n" * 16,
    }
    for name in ("MEITUAN", "ELEME", "JDDJ", "DOUYIN", "WDT", "JST"):
        env[f"SHOPGATE_{name}_SECRET"] = f"{name.lower()}-secret-0123456789abcdef"
    return env | over


def _reachable_config(run_dir: Path, edit: Any) -> Path:
    import yaml

    raw = yaml.safe_load(DEMO_HUB_CONFIG.read_text(encoding="utf-8"))
    raw["signing"]["kid"] = "a1b2c3d4"
    edit(raw)
    path = run_dir / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_reachable_hub_with_its_own_secrets_starts(run_dir: Path) -> None:
    config = _reachable_config(run_dir, lambda raw: None)
    assert problems(config, strong_env(run_dir)) == {}


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("SHOPGATE_MEITUAN_SECRET", "", "platforms.meituan.secret"),
        ("SHOPGATE_ELEME_SECRET", "short-secret", "platforms.eleme.secret"),
        ("SHOPGATE_JDDJ_SECRET", "DEMO-SECRET", "platforms.jddj.secret"),
        ("SHOPGATE_WDT_SECRET", "x", "erp.wdt.secret"),
        ("SHOPGATE_STORE_TOKEN", "tok-only-20-chars-ab", "stores.0.token"),
        ("SHOPGATE_MERCHANT_TOKEN", "demo-merchant-token", "merchants.0.token"),
        ("SHOPGATE_PAY_DEMO", "true", "payments.demo"),
        ("SHOPGATE_PAY_NOTIFY_SECRET", "demo-secret", "payments.notify_secret"),
    ],
)
def test_each_weak_setting_is_named_and_never_shown(
    run_dir: Path, var: str, value: str, key: str
) -> None:
    config = _reachable_config(run_dir, lambda raw: None)
    found = problems(config, strong_env(run_dir, **{var: value}))
    assert list(found) == [key]
    if value:
        assert value not in found[key][1] and value.lower() not in found[key][1]


def test_an_empty_notify_secret_is_payments_off_not_a_weak_secret(run_dir: Path) -> None:
    # Empty refuses every notification (503), which is safe.
    config = _reachable_config(run_dir, lambda raw: raw["payments"].update(notify_secret=""))
    assert problems(config, strong_env(run_dir)) == {}


def test_the_other_secrets_are_checked_too(run_dir: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["courier"] = {"link_secret": "demo-secret"}
        raw["alerts"]["robots"][0]["url"] = (
            "https://oapi.dingtalk.com/robot/send?access_token=demo-token"
        )
        raw["alerts"]["robots"][0]["secret"] = "SEC123"
        raw["platforms"]["jddj"]["token"] = "demo-token"
        raw["signing"]["kid"] = "demo"

    config = _reachable_config(run_dir, edit)
    found = problems(config, strong_env(run_dir))
    assert sorted(found) == sorted(
        [
            "courier.link_secret",
            "alerts.robots.0.url",
            "alerts.robots.0.secret",
            "platforms.jddj.token",
            "signing.kid",
        ]
    )


def test_a_signing_key_every_user_can_read_is_refused(run_dir: Path) -> None:
    config = _reachable_config(run_dir, lambda raw: None)
    (run_dir / "keys" / "hub-signing.pem").chmod(0o644)
    found = problems(config, strong_env(run_dir))
    assert list(found) == ["signing.key_file"]
    assert "chmod" in found["signing.key_file"][1]


# -- what "loopback only" means ------------------------------------------------------------


def _resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> Iterable[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    from cloud import exposure

    resolve = _resolver(
        {
            "localhost": ["127.0.0.1", "::1"],
            "evil-localhost": ["127.0.0.1", "203.0.113.5"],
            "myhost": ["127.0.1.1"],
        }
    )
    assert exposure.listen_reach("localhost", 8080, resolve) is None
    assert exposure.listen_reach("myhost", 8080, resolve) is None
    reach = exposure.listen_reach("evil-localhost", 8080, resolve)
    assert reach is not None and "203.0.113.5" in reach
    assert exposure.listen_reach("nowhere.invalid", 8080, resolve) is not None


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_is_loopback_exactly_in_127_8(address: Any) -> None:
    from cloud import exposure

    assert exposure.is_loopback(str(address)) == (str(address).split(".")[0] == "127")


@given(st.ip_addresses(v=6))
def test_an_ipv6_address_is_loopback_only_as_1_or_a_mapped_127(address: Any) -> None:
    from cloud import exposure

    mapped = address.ipv4_mapped
    expected = str(address) == "::1" or (mapped is not None and str(mapped).startswith("127."))
    assert exposure.is_loopback(str(address)) == expected


# -- the bound sockets, checked again by the running hub ------------------------------------


async def test_the_hub_checks_the_sockets_it_bound_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A config made in code (not read by load_hub_config) or a name that resolved
    # differently at start: the hub looks at what it really bound before it serves.
    import asyncio

    from cloud.config import HubConfig
    from cloud.service import run_hub

    write_keypair(tmp_path / "keys", "demo")
    cfg = HubConfig.model_validate(
        {
            "http": {"listen": "0.0.0.0:0"},
            "storage": {"dir": str(tmp_path / "hub")},
            "signing": {"key_file": str(tmp_path / "keys" / "hub-signing.pem"), "kid": "demo"},
            "mqtt": {"url": "mqtt://127.0.0.1:9"},
            "stores": [{"id": "demo-001", "token": "demo-token"}],
            "payments": {"demo": True},
        }
    )
    status = await asyncio.wait_for(run_hub(cfg, f"sqlite:///{tmp_path / 'hub.db'}"), 15)
    assert status == 2
    refused = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert any(m.startswith("stores.0.token: ") for m in refused), refused
    assert any(m.startswith("payments.demo: ") for m in refused), refused
    assert any(m.startswith("signing.kid: ") for m in refused), refused
    assert not any("listening on" in r.getMessage() for r in caplog.records)
    assert "demo-token" not in caplog.text


def test_a_stores_broker_password_is_checked_like_its_token(run_dir: Path) -> None:
    """The hub hands `stores[].mqtt_password` to the store at enrollment: on a reachable
    hub a demo value or a short one would be the broker login of a real store."""

    def weak(value: str) -> Callable[[dict[str, Any]], None]:
        return lambda raw: raw["stores"][0].update(mqtt_password=value)

    for value in ("demo-secret", "DEMO-TOKEN", "pw-12345"):
        found = problems(_reachable_config(run_dir, weak(value)), strong_env(run_dir))
        assert list(found) == ["stores.0.mqtt_password"], (value, found)
        assert value.lower() not in found["stores.0.mqtt_password"][1].lower()  # never shown
    strong = weak("a3f1c9e07b5d4e2f8a6c1b9d")
    assert problems(_reachable_config(run_dir, strong), strong_env(run_dir)) == {}
