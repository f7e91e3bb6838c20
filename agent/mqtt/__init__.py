"""The agent's MQTT transport for remote operations (CONTRACTS section 3). See client.py."""

from agent.mqtt.client import RemoteOps
from agent.mqtt.commands import CommandHandler, Outcome, ping
from agent.mqtt.topics import Topics
from runtime.mqtt.tls import MqttSetupError

__all__ = ["CommandHandler", "MqttSetupError", "Outcome", "RemoteOps", "Topics", "ping"]
