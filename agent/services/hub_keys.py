"""The hub keys this store trusts: the config's anchors plus what `keys.set` installed,
kept in the journal and applied to the verifier (rules: agent/rules/key_trust.py).

    keys = HubKeys(journal, verifier, clock)
    await keys.load(cfg, local.settings)            # start and every reload
    await keys.set_keys(args["keys"], signer=caller.kid, by=caller.sub)   # keys.set
    await keys.reset(by="shopgate-agent keys reset")                      # drop installed

Every change is journaled with the event that records it (`keys.changed`, `keys.reset`,
`keys.dropped`, `keys.adopted`) before the verifier sees it. On each load where the
journal trusts keys that the config does not list, the agent says so loudly (a warning
and a `keys.differ` event): the operator should either list them in `access.keys` or
revoke them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from agent.clock import Clock
from agent.config.schema import AgentConfig
from agent.journal import Journal, PutSetting
from agent.journal.ops import Op
from agent.rules.key_trust import Trust, install, resolve
from agent.rules.passes import PassVerifier

log = logging.getLogger(__name__)

SETTING = "keys.installed"  # [InstalledKey.to_json(), ...]
LEGACY_SETTING = "keys"  # [{kid, pem}]: what agents before provenance stored


def config_anchors(cfg: AgentConfig) -> dict[str, Ed25519PublicKey]:
    """kid -> key for every `access.keys` entry (blocking: reads the PEM files)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for k in cfg.access.keys:
        key = load_pem_public_key(Path(k.pem_file).read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{k.pem_file}: key {k.kid!r} is not an Ed25519 public key")
        keys[k.kid] = key
    return keys


def _stored(trust: Trust) -> list[Op]:
    # The legacy list is emptied once its keys are adopted: an older agent started on
    # this journal again falls back to the config's keys, the safe side.
    return [
        PutSetting(SETTING, [k.to_json() for k in trust.installed]),
        PutSetting(LEGACY_SETTING, None),
    ]


class HubKeys:
    def __init__(self, journal: Journal, verifier: PassVerifier, clock: Clock) -> None:
        self._journal = journal
        self._verifier = verifier
        self._clock = clock
        self.trust = Trust({}, ())

    async def load(
        self,
        cfg: AgentConfig,
        settings: Mapping[str, Any],
        anchors: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> Trust:
        """Resolve the config against the journal, drop for good what the rules no
        longer allow, and give the verifier the result."""
        trust = resolve(
            anchors if anchors is not None else config_anchors(cfg),
            cfg.access.revoked_kids,
            settings.get(SETTING),
            settings.get(LEGACY_SETTING),
        )
        events: list[tuple[str, dict[str, Any]]] = []
        if trust.dropped:
            for d in trust.dropped:
                if d.reason == "copy_of_anchor":
                    log.info("hub key %r is in access.keys now; its keys.set copy goes", d.kid)
                else:
                    log.error(
                        "hub key %r is not trusted any more: %s (%s)", d.kid, d.reason, d.detail
                    )
            events.append(("keys.dropped", {"dropped": [d.to_json() for d in trust.dropped]}))
        if trust.adopted:
            log.warning(
                "hub keys %s were installed by keys.set before this version kept where trust "
                "comes from; they stay trusted while every key now in access.keys stays there. "
                "If a hub key was ever leaked, run `shopgate-agent keys reset`.",
                ", ".join(trust.adopted),
            )
            events.append(("keys.adopted", {"kids": list(trust.adopted)}))
        if events or settings.get(LEGACY_SETTING) is not None:
            await self._journal.append_many(events, ops=_stored(trust))
        if trust.installed:
            described = "; ".join(f"{k.kid} (via {' -> '.join(k.via)})" for k in trust.installed)
            log.warning(
                "trusting hub keys that access.keys does not list, installed by keys.set: %s. "
                "List them in the config, or revoke them (access.revoked_kids).",
                described,
            )
            await self._journal.append(
                "keys.differ",
                {
                    "anchors": sorted(trust.anchors),
                    "installed": [{"kid": k.kid, "via": list(k.via)} for k in trust.installed],
                },
            )
        self._apply(trust)
        return trust

    async def set_keys(self, keys: Sequence[Any], *, signer: str, by: str) -> dict[str, Any]:
        """`keys.set`: raises KeyRuleError (nothing changed) when the rules refuse it."""
        installed = install(self.trust, signer, keys, by=by, at=self._clock.now_rfc3339())
        trust = Trust(self.trust.anchors, installed, revoked=self.trust.revoked)
        kept = sorted(
            k["kid"]
            for k in keys
            if isinstance(k, Mapping) and k.get("kid") in trust.anchors  # listed anchors
        )
        await self._journal.append(
            "keys.changed",
            {
                "kids": sorted(trust.keys),
                "installed": [k.kid for k in installed],
                "anchors": sorted(trust.anchors),
                "signer": signer,
                "by": by,
            },
            ops=_stored(trust),
        )
        self._apply(trust)
        return {
            "kids": sorted(trust.keys),
            "installed": [k.kid for k in installed],
            "anchors": sorted(trust.anchors),
            "anchors_listed": kept,
        }

    async def reset(self, *, by: str) -> list[str]:
        """Drop every installed key: only the config's keys stay. Returns the kids dropped."""
        dropped = [k.kid for k in self.trust.installed]
        trust = Trust(self.trust.anchors, (), revoked=self.trust.revoked)
        await self._journal.append("keys.reset", {"dropped": dropped, "by": by}, ops=_stored(trust))
        self._apply(trust)
        return dropped

    def _apply(self, trust: Trust) -> None:
        self.trust = trust
        self._verifier.replace_keys(trust.keys)


def inspect(cfg: AgentConfig, settings: Mapping[str, Any]) -> Trust:
    """What a start with this config would trust, from the journal's settings (read-only:
    `shopgate-agent keys list`)."""
    return resolve(
        config_anchors(cfg),
        cfg.access.revoked_kids,
        settings.get(SETTING),
        settings.get(LEGACY_SETTING),
    )


async def reset_journal(cfg: AgentConfig, *, by: str) -> list[str]:
    """`shopgate-agent keys reset`: drop every installed key from the store's journal.
    A running agent takes it at its next reload or restart."""
    clock = Clock()
    journal = await Journal.open(cfg.storage.dir / "journal.db", cfg.store.id, clock)
    try:
        keys = HubKeys(journal, PassVerifier({}, skew_seconds=0), clock)
        await keys.load(cfg, (await journal.load_state()).settings)
        return await keys.reset(by=by)
    finally:
        await journal.close()
