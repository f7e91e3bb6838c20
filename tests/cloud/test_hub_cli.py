"""`shopgate-hub` run as a real program, as an operator would run it."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

HUB = Path(sys.executable).with_name("shopgate-hub")


def hub(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HUB), *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hubkeys")
    r = hub("keygen", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def verify(token: str, keys: Path, store: str) -> dict:
    public = serialization.load_pem_public_key((keys / "hub-signing.pub.pem").read_bytes())
    return jwt.decode(token, public, algorithms=["EdDSA"], audience=store, issuer="shopgate-hub")


def one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_keygen_writes_the_three_files(keys: Path) -> None:
    private = keys / "hub-signing.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    public = serialization.load_pem_public_key((keys / "hub-signing.pub.pem").read_bytes())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert (keys / "hub-signing.kid").read_text().strip() == hashlib.sha256(raw).hexdigest()[:8]


def test_keygen_never_prints_key_material(tmp_path: Path) -> None:
    r = hub("keygen", "--out", tmp_path, "--kid", "demo")
    assert r.returncode == 0
    private_pem = (tmp_path / "hub-signing.pem").read_text()
    body = "".join(private_pem.splitlines()[1:-1])
    assert body not in r.stdout + r.stderr
    assert "PRIVATE KEY" not in r.stdout + r.stderr
    assert "demo" in r.stdout
    assert (tmp_path / "hub-signing.kid").read_text() == "demo\n"


def test_keygen_refuses_to_overwrite_then_force_replaces(tmp_path: Path) -> None:
    assert hub("keygen", "--out", tmp_path).returncode == 0
    before = (tmp_path / "hub-signing.pem").read_bytes()
    one_line_error(hub("keygen", "--out", tmp_path), "already exists")
    assert (tmp_path / "hub-signing.pem").read_bytes() == before
    assert hub("keygen", "--out", tmp_path, "--force").returncode == 0
    assert (tmp_path / "hub-signing.pem").read_bytes() != before


def test_mint_pass_verifies_with_the_public_key(keys: Path) -> None:
    start = int(time.time())
    r = hub(
        "mint-pass", "--key", keys / "hub-signing.pem", "--store", "demo-001",
        "--scope", "pickup", "--sub", "courier-1", "--door", "front",
        "--order", "o1", "o2", "--order", "o3", "--ttl", "120",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert r.stdout == token + "\n"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == (keys / "hub-signing.kid").read_text().strip()
    claims = verify(token, keys, "demo-001")
    assert set(claims) == {"iss", "aud", "sub", "scope", "jti", "iat", "exp", "door", "orders"}
    assert claims["scope"] == "pickup" and claims["sub"] == "courier-1"
    assert claims["orders"] == ["o1", "o2", "o3"] and claims["door"] == "front"
    assert start <= claims["iat"] <= int(time.time()) and claims["exp"] == claims["iat"] + 120


def test_mint_pass_kid_flag_overrides_the_kid_file(keys: Path) -> None:
    r = hub(
        "mint-pass", "--key", keys / "hub-signing.pem", "--kid", "other",
        "--store", "s", "--scope", "entry", "--sub", "c",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert jwt.get_unverified_header(token)["kid"] == "other"
    assert set(verify(token, keys, "s")) == {"iss", "aud", "sub", "scope", "jti", "iat", "exp"}


def test_sign_command_verifies_with_cmd_and_args(keys: Path) -> None:
    r = hub(
        "sign-command", "--key", keys / "hub-signing.pem", "--store", "demo-001",
        "--cmd", "unlock", "--args", '{"door": "front", "seconds": 5}',
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    claims = verify(r.stdout.strip(), keys, "demo-001")
    assert claims["scope"] == "ops" and claims["cmd"] == "unlock"
    assert claims["args"] == {"door": "front", "seconds": 5}
    assert claims["exp"] - claims["iat"] == 60
    assert set(claims) == {"iss", "aud", "sub", "scope", "jti", "iat", "exp", "cmd", "args"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sign-command", "--store", "s", "--cmd", "x", "--args", "{nope"], "not valid JSON"),
        (["sign-command", "--store", "s", "--cmd", "x", "--args", "[1]"], "JSON object"),
        (["mint-pass", "--store", "s", "--scope", "pickup", "--sub", "c"], "--order"),
        (
            ["mint-pass", "--store", "s", "--scope", "entry", "--sub", "c", "--order", "o"],
            "--order",
        ),
        (["mint-pass", "--store", "s", "--scope", "vip", "--sub", "c"], "--scope"),
        (["mint-pass", "--store", "s", "--scope", "entry", "--sub", "c", "--ttl", "0"], "--ttl"),
        (["mint-pass", "--store", "s", "--scope", "entry"], "--sub"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(keys: Path, args: list[str], needle: str) -> None:
    one_line_error(hub(*args[:1], "--key", keys / "hub-signing.pem", *args[1:]), needle)


def test_missing_key_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    r = hub("mint-pass", "--key", missing, "--store", "s", "--scope", "entry", "--sub", "c")
    one_line_error(r, "no such key file")


def test_missing_kid_file(tmp_path: Path, keys: Path) -> None:
    lone = tmp_path / "lone.pem"
    lone.write_bytes((keys / "hub-signing.pem").read_bytes())
    r = hub("sign-command", "--key", lone, "--store", "s", "--cmd", "ping")
    one_line_error(r, "--kid")


def test_run_with_a_missing_config_is_a_one_line_error(tmp_path: Path) -> None:
    # (the service itself: tests/cloud/test_hub_service.py)
    r = hub("run", "--config", tmp_path / "hub.yaml")
    assert r.returncode == 2
    assert r.stderr == f"{tmp_path / 'hub.yaml'}:0: -: cannot read: No such file or directory\n"


def test_no_subcommand_is_a_one_line_error() -> None:
    one_line_error(hub(), "COMMAND")


@pytest.mark.parametrize(
    "sub", [[], ["keygen"], ["mint-pass"], ["sign-command"], ["run"], ["check-config"]]
)
def test_help_works(sub: list[str]) -> None:
    r = hub(*sub, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: shopgate-hub")


def test_args_json_is_passed_through_unchanged(keys: Path) -> None:
    args = {"orders": [{"id": "o1", "items": [{"name": "牛奶", "qty": 2}]}]}
    r = hub(
        "sign-command", "--key", keys / "hub-signing.pem", "--store", "s",
        "--cmd", "orders.upsert", "--args", json.dumps(args, ensure_ascii=False),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert verify(r.stdout.strip(), keys, "s")["args"] == args
