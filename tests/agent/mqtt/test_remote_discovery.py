"""Home Assistant discovery configs: valid JSON with what HA requires, retained."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

import agent
from agent.mqtt.discovery import discovery_configs
from agent.mqtt.topics import Topics
from tests.agent.mqtt.harness import STORE, Keys, make_config, running_ops, watching
from tests.support.broker import BrokerHandle


def render(template: str, value_json: dict[str, object]) -> str:
    return jinja2.Environment().from_string(template).render(value_json=value_json).strip()


REQUIRED = {
    "lock": {"name", "unique_id", "state_topic", "command_topic", "value_template", "device"},
    "binary_sensor": {"name", "unique_id", "state_topic", "value_template", "device_class"},
}


def test_each_door_is_a_lock_and_a_door_sensor_that_follow_status_and_state(
    tmp_path: Path,
) -> None:
    cfg = make_config(tmp_path, "mqtt://127.0.0.1", home_assistant={"enabled": True})
    topics = Topics("shopgate", STORE)
    configs = discovery_configs(cfg, topics, "1.2.3")
    assert set(configs) == {
        f"homeassistant/lock/{STORE}/front/config",
        f"homeassistant/binary_sensor/{STORE}/front/config",
    }
    for topic, config in configs.items():
        component = topic.split("/")[1]
        config = json.loads(json.dumps(config))  # what goes on the wire
        assert REQUIRED[component] <= set(config)
        assert config["availability_topic"] == topics.status
        assert config["state_topic"] == topics.state
        assert config["device"]["identifiers"] == [f"shopgate_{STORE}"]
        assert config["device"]["sw_version"] == "1.2.3"
    lock = configs[f"homeassistant/lock/{STORE}/front/config"]
    sensor = configs[f"homeassistant/binary_sensor/{STORE}/front/config"]
    # What HA would show for the states the agent publishes (templates rendered by Jinja).
    for doors, released, want_lock, want_contact in [
        ("locked", False, "LOCKED", "OFF"),
        ("locked", True, "UNLOCKED", "OFF"),  # released by a grant, not yet opened
        ("open", False, "UNLOCKED", "ON"),
        ("held_open", False, "UNLOCKED", "ON"),
    ]:
        value = {"doors": {"front": doors}, "door_info": {"front": {"released": released}}}
        assert render(lock["value_template"], value) == want_lock
        assert render(sensor["value_template"], value) == want_contact
    assert sensor["device_class"] == "door"
    assert sensor["unique_id"] != lock["unique_id"]


async def test_discovery_is_published_retained_only_when_enabled(
    tmp_path: Path, broker: BrokerHandle, keys: Keys
) -> None:
    async with running_ops(tmp_path / "off", keys, broker.url, client_id="a-off"):
        pass
    async with running_ops(
        tmp_path / "on",
        keys,
        broker.url,
        client_id="a-on",
        home_assistant={"enabled": True, "prefix": "ha"},
    ):
        pass
    async with watching(broker, "homeassistant/#", "ha/#") as w:
        lock = await w.next(f"ha/lock/{STORE}/front/config")
        await w.next(f"ha/binary_sensor/{STORE}/front/config")
    assert lock.retain
    assert lock.json()["device"]["sw_version"] == agent.__version__
    assert w.on("homeassistant/#") == []
