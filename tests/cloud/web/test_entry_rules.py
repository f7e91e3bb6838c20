"""The entry page's pure parts: the form token's checks (the guess counts are tested in
tests/security)."""

from __future__ import annotations

import time

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cloud.signing import generate_key
from cloud.web.form_token import AskedQuestion, FormTokenError, FormTokens, derive_key

KEY = generate_key()
TOKENS = FormTokens(derive_key(KEY, "entry-form"))
BANK = ["q0", "q1"]


def minted(**kw: object) -> str:
    args: dict = {"asked": AskedQuestion("s1", "front", 1), "question": "q1", "visitor": "v" * 22}
    args.update(kw)
    return TOKENS.mint(ttl_seconds=60, **args)  # type: ignore[arg-type]


def verify(token: str, **kw: object) -> AskedQuestion:
    args: dict = {"store": "s1", "door": "front", "visitor": "v" * 22, "bank": BANK}
    args.update(kw)
    return TOKENS.verify(token, **args)


def test_a_token_names_the_question_asked() -> None:
    assert verify(minted()) == AskedQuestion("s1", "front", 1)


@given(position=st.integers(0, 10_000), char=st.sampled_from("AQgw-_0."))
def test_any_changed_character_is_refused(position: int, char: str) -> None:
    token = minted()
    # A segment's last base64 character has spare bits: some changes there decode to the
    # same bytes, which is the same token.
    ends = {i - 1 for i, c in enumerate(token) if c == "."} | {len(token) - 1}
    i = position % len(token)
    changed = token[:i] + char + token[i + 1 :]
    assume(i not in ends and changed != token)
    with pytest.raises(FormTokenError):
        verify(changed)


@pytest.mark.parametrize(
    ("kw", "expired"),
    [
        ({"store": "s2"}, False),
        ({"door": "back"}, False),
        ({"visitor": "w" * 22}, False),
        ({"visitor": None}, False),
        ({"bank": ["q1", "q0"]}, True),  # the bank changed under the token
        ({"bank": ["q0"]}, True),
    ],
)
def test_a_token_is_only_good_where_and_for_whom_it_was_made(kw: dict, expired: bool) -> None:
    with pytest.raises(FormTokenError) as e:
        verify(minted(), **kw)
    assert e.value.expired is expired


def test_a_late_token_is_expired() -> None:
    with pytest.raises(FormTokenError) as e:
        verify(minted(now=time.time() - 61))
    assert e.value.expired


def test_a_token_under_another_hub_key_is_refused() -> None:
    other = FormTokens(derive_key(generate_key(), "entry-form"))
    token = other.mint(AskedQuestion("s1", "front", 1), "q1", "v" * 22, ttl_seconds=60)
    with pytest.raises(FormTokenError) as e:
        verify(token)
    assert not e.value.expired


def test_keys_for_different_purposes_differ() -> None:
    assert derive_key(KEY, "entry-form") != derive_key(KEY, "entry-hash")
    assert derive_key(KEY, "entry-form") == derive_key(KEY, "entry-form")
