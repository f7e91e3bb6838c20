"""hub.yaml: the demo file at the repository root, and what check-config says about others."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cloud.config import load_hub_config, parse_listen
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError
from tests.support.hub import DEMO_HUB_CONFIG, hub_command

PLATFORM_ENV = ("MEITUAN", "ELEME", "JDDJ", "DOUYIN", "WDT", "JST")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "keys", "demo")
    return tmp_path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGATE_")}
    return {**env, **extra}


def check(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hub_command(), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(**env),
        check=False,
    )


def test_the_demo_hub_yaml_is_valid_with_the_demo_environment(run_dir: Path) -> None:
    r = check(DEMO_HUB_CONFIG, SHOPGATE_RUN=str(run_dir))
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_the_demo_hub_yaml_reads_its_defaults(run_dir: Path) -> None:
    cfg = load_hub_config(DEMO_HUB_CONFIG, clean_env(SHOPGATE_RUN=str(run_dir)))
    assert cfg.http.listen == "127.0.0.1:8080"
    assert cfg.storage.dir == run_dir / "hub"
    assert cfg.database_url() == f"sqlite:///{run_dir / 'hub' / 'hub.db'}"
    assert cfg.signing.key_file == run_dir / "keys" / "hub-signing.pem"
    assert cfg.signing.kid == "demo"
    assert cfg.mqtt.url == "mqtt://127.0.0.1:1883"
    assert [(s.id, s.token) for s in cfg.stores] == [("demo-001", "demo-token")]
    for name in ("meituan", "eleme", "jddj", "douyin"):
        creds = getattr(cfg.platforms, name)
        assert (creds.app_id, creds.secret, creds.url) == ("demo", "demo-secret", "")
    for name in ("wdt", "jst"):
        creds = getattr(cfg.erp, name)
        assert (creds.app_id, creds.secret, creds.url) == ("demo", "demo-secret", "")


def test_the_demo_hub_yaml_takes_everything_from_the_environment(run_dir: Path) -> None:
    env = {
        "SHOPGATE_RUN": str(run_dir),
        "SHOPGATE_HUB_LISTEN": "[::1]:9090",
        "SHOPGATE_MQTT_URL": "mqtts://broker.example:8883",
        "SHOPGATE_STORE_TOKEN": "tok-from-env",
        "SHOPGATE_HUB_DB": "postgresql://hub@db.example/hub",
    }
    for name in PLATFORM_ENV:
        env[f"SHOPGATE_{name}_APP_ID"] = f"{name}-id"
        env[f"SHOPGATE_{name}_SECRET"] = f"{name}-secret"
        env[f"SHOPGATE_{name}_URL"] = f"https://{name.lower()}.example/api"
    cfg = load_hub_config(DEMO_HUB_CONFIG, clean_env(**env))
    assert parse_listen(cfg.http.listen) == ("::1", 9090)
    assert cfg.mqtt.url == "mqtts://broker.example:8883"
    assert cfg.stores[0].token == "tok-from-env"
    assert cfg.database_url() == "postgresql://hub@db.example/hub"
    assert cfg.database_url("sqlite:///x.db") == "sqlite:///x.db"  # --db wins
    assert cfg.platforms.jddj.app_id == "JDDJ-id"
    assert cfg.erp.jst.secret == "JST-secret"
    assert cfg.erp.wdt.url == "https://wdt.example/api"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    write_keypair(folder / "keys", "k1")
    config = folder / "hub.yaml"
    config.write_text(
        "http: {listen: '127.0.0.1:0'}\n"
        "storage: {dir: data}\n"
        "signing: {key_file: keys/hub-signing.pem, kid: k1}\n"
        "mqtt: {url: 'mqtt://127.0.0.1'}\n"
    )
    cfg = load_hub_config(config, {})
    assert cfg.storage.dir == folder / "data"
    assert cfg.signing.key_file == folder / "keys" / "hub-signing.pem"
    assert cfg.stores == [] and cfg.merchants == []


def test_a_missing_key_says_how_to_make_one(tmp_path: Path) -> None:
    r = check(DEMO_HUB_CONFIG, SHOPGATE_RUN=str(tmp_path))
    assert r.returncode == 2
    [line] = r.stdout.splitlines()
    lines = DEMO_HUB_CONFIG.read_text().splitlines()
    key_line = next(n for n, text in enumerate(lines, 1) if "key_file:" in text)
    assert line.startswith(f"{DEMO_HUB_CONFIG}:{key_line}: signing.key_file: ")
    assert f"shopgate-hub keygen --out {tmp_path / 'keys'} --kid demo" in line


def test_every_problem_is_one_line_with_file_line_and_key(run_dir: Path) -> None:
    config = run_dir / "hub.yaml"
    config.write_text(
        "http:\n"  # 1
        "  listen: localhost\n"  # 2
        "  max_body_mb: 0\n"  # 3
        "storage: {dir: data}\n"  # 4
        f"signing: {{key_file: {run_dir}/keys/hub-signing.pem, kid: demo}}\n"  # 5
        "mqtt: {url: 'http://broker'}\n"  # 6
        "stores:\n"  # 7
        "  - {id: s1, token: tok-same-SECRET}\n"  # 8
        "  - {id: s1, token: tok-same-SECRET}\n"  # 9
        "  - {id: 'bad id', token: x}\n"  # 10
        "merchants:\n"  # 11
        "  - {id: m, token: '${MISSING_TOKEN}', stores: [s1]}\n"  # 12
        "  - {id: n, token: tok-n, stores: [nowhere]}\n"  # 13
        "platforms:\n"  # 14
        "  ubereats: {app_id: x}\n"  # 15
    )
    r = check(config)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    expected = [
        ":2: http.listen: 'localhost' is not HOST:PORT",
        ":3: http.max_body_mb: must be at least 1",
        ":6: mqtt.url: 'http://broker' is not a broker URL",
        ":10: stores.2.id: 'bad id' does not match",
        ":12: merchants.0.token: environment variable MISSING_TOKEN is not set",
        ":15: platforms.ubereats: unknown key 'ubereats'",
    ]
    assert len(lines) == len(expected), r.stdout
    for line, part in zip(lines, expected, strict=True):
        assert line.startswith(str(config) + part), line


def test_cross_checks_name_the_line_and_never_show_a_token(run_dir: Path) -> None:
    config = run_dir / "hub.yaml"
    config.write_text(
        "http: {listen: '127.0.0.1:0'}\n"
        "storage: {dir: data}\n"
        f"signing: {{key_file: {run_dir}/keys/hub-signing.pem, kid: demo}}\n"
        "mqtt: {url: 'mqtt://broker'}\n"
        "stores:\n"
        "  - {id: s1, token: tok-same-SECRET}\n"
        "  - {id: s1, token: tok-same-SECRET}\n"
        "merchants:\n"
        "  - {id: n, token: tok-n-SECRET, stores: [nowhere]}\n"
    )
    r = check(config)
    assert r.returncode == 2
    assert r.stdout.splitlines() == [
        f"{config}:7: stores.1.id: duplicate store id 's1'",
        f"{config}:7: stores.1.token: the same token as stores.0; each needs its own token",
        f"{config}:9: merchants.0.stores.0: no store 'nowhere' (s1)",
    ]
    assert "SECRET" not in r.stdout + r.stderr


def test_an_empty_or_broken_file_is_one_problem(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    for text, needle in [("", ":1: -: the file holds no settings"), ("a: [\n", "invalid YAML")]:
        config.write_text(text)
        with pytest.raises(ConfigError) as e:
            load_hub_config(config, {})
        assert needle in str(e.value)
    r = check(tmp_path / "absent.yaml")
    assert r.returncode == 2 and ":0: -: cannot read" in r.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::]:443", ("::", 443)),
        ("hub.example:80", ("hub.example", 80)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", ":8080", "::1:8080", "host:65536", "host:", "a b:1"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_ids_and_secrets_made_of_digits_stay_text(run_dir: Path) -> None:
    # Meituan app ids are numbers, and a derived key id can be 8 digits: what the
    # environment gives a text setting must not turn into an int and be refused.
    cfg = load_hub_config(
        DEMO_HUB_CONFIG,
        clean_env(
            SHOPGATE_RUN=str(run_dir),
            SHOPGATE_MEITUAN_APP_ID="4821",
            SHOPGATE_MEITUAN_SECRET="0123456789012345",
            SHOPGATE_STORE_TOKEN="1e10",
        ),
    )
    assert cfg.platforms.meituan.app_id == "4821"
    assert cfg.platforms.meituan.secret == "0123456789012345"
    assert cfg.stores[0].token == "1e10"
