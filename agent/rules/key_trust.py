"""Which hub keys the agent trusts, from the config and the keys `keys.set` installed.

Pure: the caller gives the config's keys, its revocations and what the journal holds.

The rules (docs/remote-ops.md, "Hub keys"):

1. The config's `access.keys` are the anchors: always trusted, whatever the journal says.
   A `keys.set` can neither remove nor replace one (a key with an anchor's kid must be
   that same key; an anchor under another kid is refused).
2. A key that `keys.set` installs is stored with its chain of trust: the kids and
   fingerprints of every key that signed a `keys.set` on the way to it (`via`), from the
   anchor that started the chain to the command's signer. A `keys.set`, signed by an
   anchor or by an installed key, replaces all installed keys.
3. An installed key is trusted only while its chain still reaches the config: some key
   in `via` is an anchor now (same key), and neither the key nor anything in `via` is
   revoked (`access.revoked_kids`). Removing or revoking a key in the config therefore
   drops every key it vouched for, unless a key after it in the chain is in the config
   itself. Dropping happens at the next start or reload and is for good: the keys are
   removed from the journal too, so putting the anchor back does not revive them.
4. An installed key that is a copy of an anchor (same kid or same key) is dropped: the
   anchor covers it, and removing the anchor later must not leave it behind.
5. Keys installed by agents older than this rule have no chain (the journal's `keys`
   setting): they are adopted once, tied to every anchor configured at that moment
   (`roots`), so removing any configured key drops them.

Fingerprints are the SHA-256 of the raw 32-byte Ed25519 public key, hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

LEGACY = "legacy"  # the `via` of keys adopted from before provenance was kept


class KeyRuleError(ValueError):
    """A key or a keys.set that the rules refuse; the message says which and why."""


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def parse_pem(pem: Any, what: str) -> Ed25519PublicKey:
    if not isinstance(pem, str):
        raise KeyRuleError(f"{what}.pem must be text")
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as e:
        raise KeyRuleError(f"{what}.pem is not a PEM public key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise KeyRuleError(f"{what}.pem is not an Ed25519 key")
    return key


def pem_of(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass(frozen=True, slots=True)
class InstalledKey:
    """A key installed by keys.set, with where its trust comes from."""

    kid: str
    key: Ed25519PublicKey
    via: tuple[str, ...]  # kids of the keys that signed a keys.set on the way, in order
    via_fps: tuple[str, ...]  # their fingerprints
    by: str = ""  # who asked (the command's sub)
    at: str = ""  # when (RFC 3339)
    roots: tuple[str, ...] = ()  # adopted keys only: every anchor must stay

    @property
    def fp(self) -> str:
        return fingerprint(self.key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kid": self.kid,
            "pem": pem_of(self.key),
            "fp": self.fp,
            "via": list(self.via),
            "via_fps": list(self.via_fps),
            "by": self.by,
            "at": self.at,
        }
        if self.roots:
            out["roots"] = list(self.roots)
        return out

    @classmethod
    def from_json(cls, raw: Any) -> InstalledKey:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("kid"), str):
            raise KeyRuleError("an installed key must be {kid, pem, via, via_fps}")
        kid = raw["kid"]
        via, via_fps, roots = raw.get("via"), raw.get("via_fps"), raw.get("roots", [])
        if not _strings(via) or not via or not _strings(via_fps) or not _strings(roots):
            raise KeyRuleError(f"installed key {kid!r} has no chain of trust")
        if not via_fps and not roots:
            raise KeyRuleError(f"installed key {kid!r} has no chain of trust")
        return cls(
            kid,
            parse_pem(raw.get("pem"), f"key {kid!r}"),
            tuple(via),
            tuple(via_fps or ()),
            str(raw.get("by", "")),
            str(raw.get("at", "")),
            tuple(roots),
        )


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


@dataclass(frozen=True, slots=True)
class Dropped:
    kid: str
    reason: str  # revoked | anchor_removed | copy_of_anchor | duplicate | unreadable
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"kid": self.kid, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Trust:
    """What the agent trusts now."""

    anchors: Mapping[str, Ed25519PublicKey]
    installed: tuple[InstalledKey, ...]
    dropped: tuple[Dropped, ...] = ()
    adopted: tuple[str, ...] = ()  # kids adopted from the pre-provenance `keys` setting
    revoked: frozenset[str] = field(default_factory=frozenset)

    @property
    def keys(self) -> dict[str, Ed25519PublicKey]:
        """kid -> key: what passes and commands are verified with."""
        return {**{k.kid: k.key for k in self.installed}, **self.anchors}

    def describe(self) -> dict[str, Any]:
        return {
            "anchors": sorted(self.anchors),
            "installed": [
                {"kid": k.kid, "via": list(k.via), "by": k.by, "at": k.at} for k in self.installed
            ],
            "revoked": sorted(self.revoked),
        }


def resolve(
    anchors: Mapping[str, Ed25519PublicKey],
    revoked: Iterable[str],
    installed: Any,
    legacy: Any = None,
) -> Trust:
    """The trusted keys from the config's `anchors` and `revoked` kids and the journal's
    `installed` keys (the `keys.installed` setting) or, before any, its `legacy` list
    ({kid, pem} from older agents). `dropped` lists what the journal held but the rules
    no longer allow; the caller writes `installed` back so they are gone for good."""
    revoked = frozenset(revoked)
    anchors = {k: v for k, v in anchors.items() if k not in revoked}
    anchor_fps = {fingerprint(k): kid for kid, k in anchors.items()}
    dropped: list[Dropped] = []
    candidates: list[InstalledKey] = []
    adopted: list[str] = []
    if installed is None and legacy:
        candidates, bad = _adopt(legacy, tuple(sorted(anchor_fps)))
        dropped += bad
        adopted = [k.kid for k in candidates]
    elif isinstance(installed, list):
        for i, raw in enumerate(installed):
            try:
                candidates.append(InstalledKey.from_json(raw))
            except KeyRuleError as e:
                kid = raw.get("kid") if isinstance(raw, Mapping) else None
                dropped.append(Dropped(str(kid or f"#{i}"), "unreadable", str(e)))
    kept: list[InstalledKey] = []
    for k in candidates:
        why = _why_not(k, anchors, anchor_fps, revoked, {x.kid for x in kept})
        if why is None:
            kept.append(k)
        else:
            dropped.append(Dropped(k.kid, *why))
    return Trust(anchors, tuple(kept), tuple(dropped), tuple(adopted), revoked)


def _adopt(legacy: Any, roots: tuple[str, ...]) -> tuple[list[InstalledKey], list[Dropped]]:
    out: list[InstalledKey] = []
    bad: list[Dropped] = []
    for i, raw in enumerate(legacy if isinstance(legacy, list) else []):
        kid = raw.get("kid") if isinstance(raw, Mapping) else None
        try:
            if not isinstance(kid, str) or not kid:
                raise KeyRuleError("no kid")
            key = parse_pem(raw.get("pem"), f"key {kid!r}")
        except KeyRuleError as e:
            bad.append(Dropped(str(kid or f"#{i}"), "unreadable", str(e)))
            continue
        out.append(InstalledKey(kid, key, (LEGACY,), (), "keys.set before provenance", "", roots))
    return out, bad


def _why_not(
    k: InstalledKey,
    anchors: Mapping[str, Ed25519PublicKey],
    anchor_fps: Mapping[str, str],
    revoked: frozenset[str],
    taken: set[str],
) -> tuple[str, str] | None:
    if k.kid in revoked:
        return "revoked", f"{k.kid} is in access.revoked_kids"
    through = [v for v in k.via if v in revoked]
    if through:
        return "revoked", f"installed through {through[0]}, which is revoked"
    if k.kid in anchors or k.fp in anchor_fps:
        return "copy_of_anchor", "the config lists this key itself"
    # Adopted keys (and what they installed) are tied to every anchor of their adoption.
    adopted = bool(k.roots) and all(r in anchor_fps for r in k.roots)
    reaches = adopted or any(f in anchor_fps for f in k.via_fps)
    if not reaches:
        return "anchor_removed", "no key its trust comes from is in access.keys any more"
    if k.kid in taken:
        return "duplicate", "another installed key has this kid"
    return None


def install(
    trust: Trust,
    signer: str,
    keys: Sequence[Any],
    *,
    by: str,
    at: str,
) -> tuple[InstalledKey, ...]:
    """The installed keys after a `keys.set` {keys} signed by `signer` (a kid trusted
    now): they replace all installed keys. Anchors listed in `keys` are checked and
    kept as they are; an anchor left out stays all the same."""
    if not keys:
        raise KeyRuleError("keys must not be empty: the store would trust nobody")
    if signer in trust.anchors:
        via: tuple[str, ...] = (signer,)
        via_fps: tuple[str, ...] = (fingerprint(trust.anchors[signer]),)
        roots: tuple[str, ...] = ()
    else:
        parent = next((k for k in trust.installed if k.kid == signer), None)
        if parent is None:
            raise KeyRuleError(f"the signer {signer!r} is not a trusted key")
        via, via_fps, roots = (*parent.via, signer), (*parent.via_fps, parent.fp), parent.roots
    anchor_fps = {fingerprint(k): kid for kid, k in trust.anchors.items()}
    out: list[InstalledKey] = []
    seen: set[str] = set()
    for i, raw in enumerate(keys):
        what = f"keys[{i}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("kid"), str) or not raw["kid"]:
            raise KeyRuleError(f"{what} must be {{kid, pem}}")
        kid = raw["kid"]
        key = parse_pem(raw.get("pem"), what)
        if kid in seen:
            raise KeyRuleError(f"{what}: kid {kid!r} is listed twice")
        seen.add(kid)
        if kid in trust.revoked:
            raise KeyRuleError(f"{what}: key {kid!r} is revoked in this store's config")
        fp = fingerprint(key)
        if kid in trust.anchors:
            if fingerprint(trust.anchors[kid]) != fp:
                raise KeyRuleError(
                    f"{what}: {kid!r} is a key of this store's config; keys.set cannot replace it"
                )
            continue  # the anchor itself: it stays an anchor
        if fp in anchor_fps:
            raise KeyRuleError(
                f"{what}: this is the configured key {anchor_fps[fp]!r} under another kid"
            )
        out.append(InstalledKey(kid, key, via, via_fps, by, at, roots))
    return tuple(out)
