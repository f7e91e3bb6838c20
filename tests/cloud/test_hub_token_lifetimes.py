"""The hub mints nothing the agent refuses for its lifetime (storerules/lifetimes.py):
the signing functions, the CLI, the hub's config and its own command lifetimes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.rules.passes import Claims, PassVerifier
from cloud import signing
from cloud.config import CourierConfig, EntryConfig
from cloud.delivery import COMMAND_TTL_S as DELIVERY_TTL
from cloud.payments.service import COMMAND_TTL_S as PAYMENT_TTL
from cloud.remote_entry import ENTER_COMMAND_TTL_S
from cloud.stock.to_store import COMMAND_TTL_S as STOCK_TTL
from storerules.lifetimes import MAX_LIFETIME_S

KEY = Ed25519PrivateKey.generate()
NOW = 1_800_000_000
AGENT = PassVerifier({"k": KEY.public_key()}, skew_seconds=60)
HUB = Path(sys.executable).with_name("shopgate-hub")


def mint(scope: str, ttl: int) -> str:
    orders = ["o1"] if scope == "pickup" else None
    return signing.mint_pass(
        KEY, "k", store="s", scope=scope, sub="x", orders=orders, ttl=ttl, now=NOW
    )


@given(st.sampled_from(signing.PASS_SCOPES), st.integers(1, 10**9))
def test_every_pass_the_hub_mints_has_a_life_the_agent_accepts(scope: str, ttl: int) -> None:
    try:
        token = mint(scope, ttl)
    except signing.SigningError as e:
        assert ttl > MAX_LIFETIME_S[scope]
        assert str(MAX_LIFETIME_S[scope]) in str(e)
        return
    assert isinstance(AGENT.verify(token, store="s", now=NOW), Claims)


@given(st.integers(1, 10**9))
def test_every_command_the_hub_signs_has_a_life_the_agent_accepts(ttl: int) -> None:
    try:
        token = signing.sign_command(KEY, "k", store="s", cmd="ping", ttl=ttl, now=NOW)
    except signing.SigningError:
        assert ttl > MAX_LIFETIME_S["ops"]
        return
    assert isinstance(AGENT.verify(token, store="s", now=NOW, scopes=frozenset({"ops"})), Claims)


def test_the_hubs_own_commands_live_within_the_cap() -> None:
    for ttl in (DELIVERY_TTL, PAYMENT_TTL, STOCK_TTL, ENTER_COMMAND_TTL_S):
        assert ttl <= MAX_LIFETIME_S["ops"]


def test_the_hub_config_refuses_pass_lives_the_agent_would_refuse() -> None:
    assert EntryConfig(doors=["front"], pass_ttl_seconds=MAX_LIFETIME_S["entry"])
    with pytest.raises(ValidationError):
        EntryConfig(doors=["front"], pass_ttl_seconds=MAX_LIFETIME_S["entry"] + 1)
    assert CourierConfig(pass_ttl_seconds=MAX_LIFETIME_S["pickup"])
    with pytest.raises(ValidationError):
        CourierConfig(pass_ttl_seconds=MAX_LIFETIME_S["pickup"] + 1)


@pytest.mark.parametrize(
    ("args", "cap"),
    [
        (["mint-pass", "--scope", "entry", "--sub", "c", "--ttl", "94608000"], "21600"),
        (["mint-pass", "--scope", "staff", "--sub", "c", "--ttl", "31536000"], "2678400"),
        (["sign-command", "--cmd", "unlock", "--ttl", "86400"], "3600"),
    ],
)
def test_the_cli_refuses_an_overlong_ttl_in_one_line(
    tmp_path: Path, args: list[str], cap: str
) -> None:
    signing.write_keypair(tmp_path, "demo")
    r = subprocess.run(
        [str(HUB), args[0], "--key", str(tmp_path / "hub-signing.pem"), "--store", "s", *args[1:]],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 2 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert "too long" in line and cap in line
