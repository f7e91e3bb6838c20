"""What a store receives when its code is right: who it is, the hub's public keys, its
credentials and its config. The agent adds what only the Pi knows (where its files go).

The store's config comes from the store's own `agent_config` file at the hub, else the
hub's `enrollment.config_template`, else deploy/agent/store-template.yaml; the parts the
agent writes itself (store, storage, access.keys, hub, mqtt) are taken out of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cloud.config import HubConfig, StoreEntry

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "agent" / "store-template.yaml"
WRITTEN_BY_AGENT = ("store", "storage", "hub", "mqtt")


class TemplateError(Exception):
    """The store's config template cannot be read; the message says which file and why."""


def store_settings(cfg: HubConfig, store: StoreEntry) -> dict[str, Any]:
    """The store's config without the parts the agent writes (blocking: reads a file)."""
    path = store.agent_config or cfg.enrollment.config_template or DEFAULT_TEMPLATE
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise TemplateError(f"store config {path}: {e}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"store config {path}: not a mapping of settings")
    out = {k: v for k, v in raw.items() if k not in WRITTEN_BY_AGENT}
    # The store's own settings (its time zone) travel; who it is comes from hub.yaml.
    store_meta = raw.get("store")
    if isinstance(store_meta, dict):
        out["store"] = {k: v for k, v in store_meta.items() if k not in ("id", "name")}
    access = dict(out.get("access") or {})
    access.pop("keys", None)  # the hub's keys come below, from the hub itself
    if access:
        out["access"] = access
    else:
        out.pop("access", None)
    return out


def bundle(
    cfg: HubConfig, store: StoreEntry, key: Ed25519PrivateKey, kid: str, settings: dict[str, Any]
) -> dict[str, Any]:
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    ca_pem = None
    if cfg.mqtt.tls.ca_file is not None:
        ca_pem = Path(cfg.mqtt.tls.ca_file).read_text(encoding="ascii")
    return {
        "store": {**settings.get("store", {}), "id": store.id, "name": store.name or ""},
        "token": store.token,
        "keys": [{"kid": kid, "pem": pem.decode("ascii")}],
        "mqtt": {
            "url": cfg.enrollment.mqtt_url or cfg.mqtt.url,
            "topic_root": cfg.mqtt.topic_root,
            # The shipped broker ACL grants a store the topics under its own user name.
            "username": store.id if store.mqtt_password else None,
            "password": store.mqtt_password,
            "ca_pem": ca_pem,
        },
        "config": {k: v for k, v in settings.items() if k != "store"},
    }
