"""Which hub keys the agent trusts (agent/rules/key_trust.py): the config's keys are
anchors; a key keys.set installed lives only while its chain reaches the config."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.rules.key_trust import (
    KeyRuleError,
    Trust,
    fingerprint,
    install,
    pem_of,
    resolve,
)

KEYS = {name: Ed25519PrivateKey.generate().public_key() for name in "abcdefgh"}


def entry(kid: str, key: str | None = None) -> dict[str, str]:
    return {"kid": kid, "pem": pem_of(KEYS[key or kid])}


def stored(trust: Trust) -> list[dict[str, Any]]:
    return [k.to_json() for k in trust.installed]


def anchors(*kids: str) -> dict[str, Any]:
    return {k: KEYS[k] for k in kids}


def keys_set(trust: Trust, signer: str, *kids: str) -> Trust:
    installed = install(trust, signer, [entry(k) for k in kids], by="ops", at="now")
    return Trust(trust.anchors, installed, revoked=trust.revoked)


def test_the_config_keys_are_trusted_and_a_keys_set_adds_to_them() -> None:
    trust = resolve(anchors("a"), [], None)
    assert set(trust.keys) == {"a"}
    trust = keys_set(trust, "a", "b")
    assert set(trust.keys) == {"a", "b"}
    [b] = trust.installed
    assert b.via == ("a",) and b.via_fps == (fingerprint(KEYS["a"]),)
    # What was stored comes back the same on the next start.
    again = resolve(anchors("a"), [], stored(trust))
    assert set(again.keys) == {"a", "b"} and again.dropped == ()


def test_a_keys_set_replaces_installed_keys_and_chains_through_its_signer() -> None:
    trust = keys_set(resolve(anchors("a"), [], None), "a", "b")
    trust = keys_set(trust, "b", "c")  # the hub moved to b, then rotated to c
    assert set(trust.keys) == {"a", "c"}
    [c] = trust.installed
    assert c.via == ("a", "b")


def test_a_keys_set_cannot_remove_or_replace_a_config_key() -> None:
    trust = resolve(anchors("a", "b"), [], None)
    after = keys_set(trust, "a", "c")  # b is not listed: it stays all the same
    assert set(after.keys) == {"a", "b", "c"}
    listed = keys_set(trust, "a", "a", "c")  # the anchor listed as it is: fine, not stored
    assert [k.kid for k in listed.installed] == ["c"]
    with pytest.raises(KeyRuleError, match="cannot replace"):
        install(trust, "a", [entry("b", key="d")], by="x", at="t")
    with pytest.raises(KeyRuleError, match="configured key 'b' under another kid"):
        install(trust, "a", [entry("zz", key="b")], by="x", at="t")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "must not be empty"),
        ([{"kid": "c"}], "must be text"),
        ([{"kid": "c", "pem": "junk"}], "not a PEM public key"),
        (["c"], "must be {kid, pem}"),
        ([{"kid": "", "pem": "x"}], "must be {kid, pem}"),
    ],
)
def test_bad_keys_set_arguments_are_refused(keys: list[Any], message: str) -> None:
    with pytest.raises(KeyRuleError, match=message):
        install(resolve(anchors("a"), [], None), "a", keys, by="x", at="t")


def test_revoked_and_duplicate_kids_are_refused() -> None:
    trust = resolve(anchors("a"), ["c"], None)
    with pytest.raises(KeyRuleError, match="revoked"):
        install(trust, "a", [entry("c")], by="x", at="t")
    with pytest.raises(KeyRuleError, match="listed twice"):
        install(trust, "a", [entry("d"), entry("d", key="e")], by="x", at="t")
    with pytest.raises(KeyRuleError, match="not a trusted key"):
        install(trust, "nobody", [entry("d")], by="x", at="t")


def test_removing_the_config_key_drops_what_it_installed() -> None:
    trust = keys_set(resolve(anchors("a", "h"), [], None), "a", "e")
    after = resolve(anchors("h"), [], stored(trust))
    assert set(after.keys) == {"h"}
    assert [(d.kid, d.reason) for d in after.dropped] == [("e", "anchor_removed")]


def test_revoking_a_key_drops_it_and_everything_installed_through_it() -> None:
    trust = keys_set(resolve(anchors("a"), [], None), "a", "b")
    trust = keys_set(trust, "b", "b", "e")  # b leaked: the thief plants e, keeps b
    after = resolve(anchors("a"), ["b"], stored(trust))
    assert set(after.keys) == {"a"}
    assert {(d.kid, d.reason) for d in after.dropped} == {("b", "revoked"), ("e", "revoked")}


def test_a_chain_survives_its_first_key_once_a_later_one_is_in_the_config() -> None:
    # The operator's rotation: a -> b (keys.set), b -> c, then b goes into the config
    # and a comes out. c was vouched for by b, which the config now names.
    trust = keys_set(resolve(anchors("a"), [], None), "a", "b")
    trust = keys_set(trust, "b", "b", "c")
    after = resolve(anchors("b"), [], stored(trust))
    assert set(after.keys) == {"b", "c"}
    assert [(d.kid, d.reason) for d in after.dropped] == [("b", "copy_of_anchor")]


def test_a_copy_of_a_config_key_is_dropped_so_removing_it_from_the_config_sticks() -> None:
    trust = keys_set(resolve(anchors("a"), [], None), "a", "b")
    promoted = resolve(anchors("a", "b"), [], stored(trust))  # b goes into the config
    assert promoted.installed == () and set(promoted.keys) == {"a", "b"}
    demoted = resolve(anchors("a"), [], stored(promoted))  # ...and out again
    assert set(demoted.keys) == {"a"}


def test_keys_from_before_provenance_are_adopted_and_tied_to_every_config_key() -> None:
    legacy = [entry("a"), entry("b")]
    trust = resolve(anchors("a", "h"), [], None, legacy)
    assert trust.adopted == ("a", "b") and set(trust.keys) == {"a", "b", "h"}
    assert [(d.kid, d.reason) for d in trust.dropped] == [("a", "copy_of_anchor")]
    assert set(resolve(anchors("a", "h"), [], stored(trust)).keys) == {"a", "b", "h"}
    assert set(resolve(anchors("h"), [], stored(trust)).keys) == {"h"}
    assert set(resolve(anchors("a", "h"), ["b"], stored(trust)).keys) == {"a", "h"}


def test_unreadable_entries_are_dropped_not_fatal() -> None:
    trust = resolve(anchors("a"), [], [{"kid": "x", "pem": "junk", "via": ["a"]}, "nonsense"])
    assert set(trust.keys) == {"a"}
    assert [d.reason for d in trust.dropped] == ["unreadable", "unreadable"]


# --- the property: whatever keys.set did, the config decides -------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from("abcdefgh"),  # signer
        st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=3, unique=True),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    config=st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True),
    history=ops,
    later=st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True),
    revoked=st.lists(st.sampled_from("abcdefgh"), max_size=3, unique=True),
)
def test_a_key_removed_or_revoked_in_the_config_never_comes_back_from_the_journal(
    config: list[str], history: list[tuple[str, list[str]]], later: list[str], revoked: list[str]
) -> None:
    trust = resolve(anchors(*config), [], None)
    for signer, kids in history:
        if signer not in trust.keys:
            continue  # only a trusted key can sign a keys.set
        try:
            trust = keys_set(trust, signer, *kids)
        except KeyRuleError:
            continue  # refused: nothing changed
        assert set(config) <= set(trust.keys)  # keys.set never removes a config key
    revoked = [k for k in revoked if k not in later]
    after = resolve(anchors(*later), revoked, stored(trust))
    assert set(later) <= set(after.keys)
    for kid in revoked:
        assert kid not in after.keys
    for k in after.installed:
        # Every installed key still trusted was vouched for by a chain that reaches the
        # config now, and passes through nothing revoked.
        assert any(f in {fingerprint(KEYS[a]) for a in later} for f in k.via_fps)
        assert not set(k.via) & set(revoked)
    trusted_fps = {fingerprint(v) for v in after.keys.values()}
    for kid in set(config) - set(later):
        # A key taken out of the config is not trusted any more, under any kid: keys.set
        # never stored a copy of it while it was in the config.
        assert kid not in after.keys and fingerprint(KEYS[kid]) not in trusted_fps
    # Dropped keys are gone for good: putting the old config back does not revive them.
    again = resolve(anchors(*config), revoked, stored(after))
    assert {k.kid for k in again.installed} <= {k.kid for k in after.installed}
