"""A real mosquitto and a hub signing key, the same ones the agent's MQTT tests use."""

from tests.agent.mqtt.conftest import broker, keys

__all__ = ["broker", "keys"]
