"""Pass verification: every way a pass can be wrong maps to its reason code."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.rules.passes import Claims, PassVerifier, Rejected
from agent.rules.reasons import Reason
from cloud.signing import mint_pass

NOW = 1_800_000_000.0
HUB_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
VERIFIER = PassVerifier({"hub": HUB_KEY.public_key()}, skew_seconds=60)


def mint(**kw) -> str:
    args = {"store": "s1", "scope": "entry", "sub": "cust-1", "ttl": 300, "now": NOW} | kw
    key = args.pop("key", HUB_KEY)
    kid = args.pop("kid", "hub")
    return mint_pass(key, kid, **args)


def verify(token: str, now: float = NOW) -> Claims | Rejected:
    return VERIFIER.verify(token, store="s1", now=now)


def reason(token: str, now: float = NOW) -> Reason:
    r = verify(token, now)
    return Reason.GRANTED if isinstance(r, Claims) else r.reason


def test_a_good_pass_verifies_with_its_claims():
    c = verify(mint(door="front", jti="j1"))
    assert isinstance(c, Claims)
    assert (c.store, c.sub, c.scope, c.jti, c.door) == ("s1", "cust-1", "entry", "j1", "front")


def test_pickup_pass_carries_its_orders():
    c = verify(mint(scope="pickup", orders=["o1", "o2"]))
    assert isinstance(c, Claims) and c.orders == ("o1", "o2")


@pytest.mark.parametrize(
    ("token", "now", "want"),
    [
        (lambda: mint(key=OTHER_KEY), NOW, Reason.BAD_SIGNATURE),
        (lambda: mint(kid="nobody"), NOW, Reason.UNKNOWN_KEY),
        (lambda: mint(ttl=10), NOW + 10 + 61, Reason.EXPIRED),
        (lambda: mint(ttl=10), NOW + 10 + 59, Reason.GRANTED),  # inside the skew
        (lambda: mint(nbf=int(NOW) + 3600), NOW, Reason.NOT_YET_VALID),
        (lambda: mint(store="s2"), NOW, Reason.WRONG_STORE),
        (lambda: "eyJhbGciOiJFZERTQSJ9.e30.AAAA", NOW, Reason.UNKNOWN_KEY),
        (lambda: "not.a.jwt", NOW, Reason.MALFORMED),
    ],
)
def test_reason_codes(token, now, want):
    assert reason(token(), now) is want


def test_hs256_with_the_public_key_as_secret_is_refused():
    # The classic alg-confusion forgery: HMAC keyed with the (public) verification key.
    token = jwt.encode(
        {
            "iss": "shopgate-hub",
            "aud": "s1",
            "sub": "x",
            "scope": "staff",
            "jti": "j",
            "iat": NOW,
            "exp": NOW + 60,
        },
        "s" * 32,
        algorithm="HS256",
        headers={"kid": "hub"},
    )
    assert reason(token) is Reason.BAD_SIGNATURE


def test_ops_scope_is_not_a_door_pass():
    token = jwt.encode(
        {
            "iss": "shopgate-hub",
            "aud": "s1",
            "sub": "x",
            "scope": "ops",
            "jti": "j",
            "iat": NOW,
            "exp": NOW + 60,
            "cmd": "unlock",
        },
        HUB_KEY,
        algorithm="EdDSA",
        headers={"kid": "hub"},
    )
    assert reason(token) is Reason.WRONG_SCOPE


def test_wrong_issuer_or_missing_claims_are_malformed():
    for claims in (
        {
            "iss": "someone",
            "aud": "s1",
            "sub": "x",
            "scope": "entry",
            "jti": "j",
            "iat": NOW,
            "exp": NOW + 60,
        },
        {
            "iss": "shopgate-hub",
            "aud": "s1",
            "scope": "entry",
            "jti": "j",
            "iat": NOW,
            "exp": NOW + 60,
        },
        {"iss": "shopgate-hub", "aud": "s1", "sub": "x", "scope": "entry", "jti": "j", "iat": NOW},
    ):
        token = jwt.encode(claims, HUB_KEY, algorithm="EdDSA", headers={"kid": "hub"})
        assert reason(token) is Reason.MALFORMED


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_tampering_is_refused(data):
    """Changing any character of a signed pass never yields a valid pass."""
    token = mint(scope="staff", sub="boss")
    i = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    ch = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[i]))
    forged = token[:i] + ch + token[i + 1 :]
    r = verify(forged)
    if isinstance(r, Claims):
        # Base64 padding bits: a segment's last char can change without changing its bytes.
        decode = jwt.utils.base64url_decode
        assert [decode(s) for s in forged.split(".")] == [decode(s) for s in token.split(".")]


@settings(max_examples=200, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from(
            ["iss", "aud", "sub", "scope", "jti", "iat", "exp", "nbf", "door", "orders"]
        ),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=5), st.lists(st.text(max_size=3), max_size=2)
        ),
    )
)
def test_arbitrary_signed_claims_never_crash_and_rarely_pass(claims):
    payload = json.dumps(claims).encode()
    token = jwt.api_jws.encode(payload, HUB_KEY, algorithm="EdDSA", headers={"kid": "hub"})
    r = verify(token)
    if isinstance(r, Claims):
        assert claims["iss"] == "shopgate-hub" and claims["aud"] == "s1" and r.exp + 60 >= NOW


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_is_rejected_not_raised(text):
    assert isinstance(verify(text), Rejected)


def test_header_json_garbage_is_malformed():
    token = _b64(b"{not json") + "." + _b64(json.dumps({"a": 1}).encode()) + ".AAAA"
    assert reason(token) is Reason.MALFORMED
