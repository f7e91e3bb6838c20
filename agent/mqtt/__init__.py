"""The agent's MQTT transport for remote operations (CONTRACTS section 3). See client.py."""

from agent.mqtt.client import RemoteOps
from agent.mqtt.commands import CommandHandler, Outcome, ping
from agent.mqtt.session import MqttSetupError
from agent.mqtt.topics import Topics

__all__ = ["CommandHandler", "MqttSetupError", "Outcome", "RemoteOps", "Topics", "ping"]
