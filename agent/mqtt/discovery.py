"""Home Assistant MQTT discovery: the store's doors as HA entities (off by default).

Each door becomes a `lock` entity whose state comes from the retained state topic, and,
when it has a contact, a `binary_sensor` (device_class door). The templates read the
state as agent/app.py publishes it: `doors: {ID: "locked" | "open" | "held_open"}` and
`door_info: {ID: {"released": bool, ...}}`. Availability follows the
retained status topic, so the entities go unavailable when the broker publishes the
agent's will.

Home Assistant cannot sign commands. HA's MQTT lock requires a command topic, so it is
pointed at the store's cmd topic: HA's plain `LOCK`/`UNLOCK` payloads are not signed
commands and the agent refuses them as `malformed` (journaled, nothing runs). In effect
the lock is read-only in HA; unlocking takes a signed `unlock` from the hub. Most
deployments also keep HA's broker user out of `shopgate/+/cmd` (deploy/mosquitto/aclfile).

Discovery topics: PREFIX/lock/STORE/DOOR/config and PREFIX/binary_sensor/STORE/DOOR/config
(STORE with characters HA does not allow in a node id replaced by `_`).
"""

from __future__ import annotations

import re
from typing import Any

from agent.config.schema import AgentConfig
from agent.mqtt.topics import Topics

_NODE_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

AVAILABILITY_TEMPLATE = "{{ 'online' if value_json.online else 'offline' }}"


def node_id(store: str) -> str:
    return _NODE_ID_UNSAFE.sub("_", store)


def discovery_configs(cfg: AgentConfig, topics: Topics, version: str) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload, for every door of the store."""
    prefix = cfg.mqtt.home_assistant.prefix
    node = node_id(cfg.store.id)
    device = {
        "identifiers": [f"shopgate_{node}"],
        "name": cfg.store.name or cfg.store.id,
        "manufacturer": "shopgate",
        "model": "shopgate-agent",
        "sw_version": version,
    }
    common = {
        "availability_topic": topics.status,
        "availability_template": AVAILABILITY_TEMPLATE,
        "payload_available": "online",
        "payload_not_available": "offline",
        "state_topic": topics.state,
        "device": device,
        "qos": 1,
    }
    out: dict[str, dict[str, Any]] = {}
    for door in cfg.doors:
        out[f"{prefix}/lock/{node}/{door.id}/config"] = {
            **common,
            "name": f"{door.id} lock",
            "unique_id": f"shopgate_{node}_{door.id}_lock",
            "object_id": f"shopgate_{node}_{door.id}_lock",
            "command_topic": topics.cmd,
            "optimistic": False,
            "value_template": _lock_template(door.id),
            "state_locked": "LOCKED",
            "state_unlocked": "UNLOCKED",
        }
        if door.contact is not None:
            out[f"{prefix}/binary_sensor/{node}/{door.id}/config"] = {
                **common,
                "name": f"{door.id} door",
                "unique_id": f"shopgate_{node}_{door.id}_contact",
                "object_id": f"shopgate_{node}_{door.id}_contact",
                "device_class": "door",
                "value_template": (
                    f"{{{{ 'ON' if value_json.doors[{_jinja_str(door.id)}] in ('open', 'held_open')"
                    " else 'OFF' }}"
                ),
                "payload_on": "ON",
                "payload_off": "OFF",
            }
    return out


def _lock_template(door: str) -> str:
    """LOCKED only while the door is shut and latched: an open door, or a door released
    by a grant but not yet opened (state `locked`, door_info.released), is UNLOCKED."""
    d = _jinja_str(door)
    released = f"value_json.get('door_info', {{}}).get({d}, {{}}).get('released', false)"
    return (
        f"{{{{ 'LOCKED' if value_json.doors[{d}] == 'locked' and not {released}"
        " else 'UNLOCKED' }}"
    )


def _jinja_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
