"""cloud.signing: key files, passes and commands, checked with PyJWT as an agent would."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from cloud import signing
from storerules.lifetimes import MAX_LIFETIME_S

NOW = 1_700_000_000
KEY = signing.generate_key()
PUBLIC = KEY.public_key()


def decode(token: str, store: str, public=PUBLIC) -> dict:
    return jwt.decode(
        token,
        public,
        algorithms=["EdDSA"],
        audience=store,
        issuer="shopgate-hub",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


def test_keypair_files_modes_and_default_kid(tmp_path: Path) -> None:
    files = signing.write_keypair(tmp_path / "keys")
    assert stat.S_IMODE(files.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.public_key.stat().st_mode) == 0o644
    private = serialization.load_pem_private_key(files.private_key.read_bytes(), None)
    public = serialization.load_pem_public_key(files.public_key.read_bytes())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        == raw
    )
    assert files.kid == hashlib.sha256(raw).hexdigest()[:8]
    assert files.kid_file.read_text() == files.kid + "\n"
    assert sorted(p.name for p in files.private_key.parent.iterdir()) == [
        "hub-signing.kid",
        "hub-signing.pem",
        "hub-signing.pub.pem",
    ]


def test_private_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        files = signing.write_keypair(tmp_path, "k1")
    finally:
        os.umask(old)
    assert stat.S_IMODE(files.private_key.stat().st_mode) == 0o600


def test_refuses_to_replace_a_key_unless_forced(tmp_path: Path) -> None:
    first = signing.write_keypair(tmp_path, "k1")
    before = first.private_key.read_bytes()
    with pytest.raises(signing.KeyExistsError, match="already exists"):
        signing.write_keypair(tmp_path, "k2")
    assert first.private_key.read_bytes() == before
    assert first.kid_file.read_text() == "k1\n"

    second = signing.write_keypair(tmp_path, "k2", force=True)
    assert second.private_key.read_bytes() != before
    assert stat.S_IMODE(second.private_key.stat().st_mode) == 0o600
    assert second.kid_file.read_text() == "k2\n"


def test_load_private_key_takes_kid_from_the_file_beside_it(tmp_path: Path) -> None:
    files = signing.write_keypair(tmp_path, "demo")
    _key, kid = signing.load_private_key(files.private_key)
    assert kid == "demo"
    assert signing.load_private_key(files.private_key, "other")[1] == "other"
    files.kid_file.unlink()
    with pytest.raises(signing.SigningError, match="--kid"):
        signing.load_private_key(files.private_key)


def test_load_private_key_refuses_what_is_not_an_ed25519_key(tmp_path: Path) -> None:
    files = signing.write_keypair(tmp_path, "demo")
    with pytest.raises(signing.SigningError, match="not a PEM private key"):
        signing.load_private_key(files.public_key, "demo")
    with pytest.raises(signing.SigningError, match="no such key file"):
        signing.load_private_key(tmp_path / "missing.pem", "demo")


def test_entry_pass_has_exactly_the_contract_claims() -> None:
    token = signing.mint_pass(KEY, "demo", store="demo-001", scope="entry", sub="c-1", now=NOW)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == "demo"
    claims = decode(token, "demo-001")
    assert set(claims) == {"iss", "aud", "sub", "scope", "jti", "iat", "exp"}
    assert claims["iss"] == "shopgate-hub"
    assert claims["aud"] == "demo-001"
    assert (claims["sub"], claims["scope"]) == ("c-1", "entry")
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 300)
    assert len(claims["jti"]) == 32


def test_jti_is_unique_per_pass() -> None:
    tokens = {signing.mint_pass(KEY, "k", store="s", scope="entry", sub="u") for _ in range(20)}
    assert len({decode(t, "s")["jti"] for t in tokens}) == 20


def test_pickup_pass_carries_orders_door_and_nbf() -> None:
    token = signing.mint_pass(
        KEY,
        "demo",
        store="s",
        scope="pickup",
        sub="courier-7",
        door="front",
        orders=["o1", "o2"],
        ttl=60,
        now=NOW,
        jti="j1",
        nbf=NOW + 5,
    )
    claims = decode(token, "s")
    assert claims["orders"] == ["o1", "o2"]
    assert claims["door"] == "front"
    assert (claims["jti"], claims["nbf"], claims["exp"]) == ("j1", NOW + 5, NOW + 60)


@pytest.mark.parametrize(
    ("scope", "orders", "message"),
    [
        ("pickup", None, "at least one order"),
        ("pickup", [], "at least one order"),
        ("entry", ["o1"], "only for pickup"),
        ("staff", ["o1"], "only for pickup"),
        ("ops", None, "scope must be one of"),
    ],
)
def test_orders_only_and_always_on_pickup(scope: str, orders, message: str) -> None:
    with pytest.raises(signing.SigningError, match=message):
        signing.mint_pass(KEY, "k", store="s", scope=scope, sub="u", orders=orders)


def test_pass_signed_by_another_key_does_not_verify() -> None:
    token = signing.mint_pass(signing.generate_key(), "k", store="s", scope="entry", sub="u")
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token, "s")


def test_command_claims() -> None:
    token = signing.sign_command(
        KEY, "demo", store="demo-001", cmd="unlock", args={"door": "front"}, now=NOW, jti="c1"
    )
    assert jwt.get_unverified_header(token)["kid"] == "demo"
    claims = decode(token, "demo-001")
    assert claims == {
        "iss": "shopgate-hub",
        "aud": "demo-001",
        "sub": "shopgate-hub",
        "scope": "ops",
        "jti": "c1",
        "iat": NOW,
        "exp": NOW + 60,
        "cmd": "unlock",
        "args": {"door": "front"},
    }
    assert decode(signing.sign_command(KEY, "k", store="s", cmd="ping"), "s")["args"] == {}


def test_command_args_must_be_an_object() -> None:
    with pytest.raises(signing.SigningError, match="object"):
        signing.sign_command(KEY, "k", store="s", cmd="ping", args=["x"])  # type: ignore[arg-type]


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@given(
    store=_text,
    sub=_text,
    door=st.none() | _text,
    orders=st.lists(_text, min_size=1, max_size=5),
    ttl=st.integers(1, MAX_LIFETIME_S["pickup"]),
)
def test_pickup_pass_round_trips_any_text(store, sub, door, orders, ttl) -> None:
    token = signing.mint_pass(
        KEY, "k", store=store, scope="pickup", sub=sub, door=door, orders=orders, ttl=ttl, now=NOW
    )
    claims = decode(token, store)
    assert (claims["aud"], claims["sub"], claims["orders"]) == (store, sub, orders)
    assert claims.get("door") == door
    assert claims["exp"] - claims["iat"] == ttl
