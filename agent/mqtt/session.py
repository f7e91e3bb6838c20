"""How one connection to the broker is opened: address, login, TLS, will, session.

`prepare()` does the blocking part once at start (reading the password file, loading TLS
certificates); `open_client()` then makes a fresh aiomqtt client for each connection
attempt (a new client per attempt keeps no state from a broken connection).

The session is persistent: the same client id, clean start off and a session expiry
(MQTT 5) or clean session off (3.1.1), with the cmd subscription at QoS 1. Commands
published while the store is disconnected are then queued by the broker and delivered
on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt import client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.config.schema import MqttConfig
from agent.mqtt.topics import Topics
from runtime.mqtt.settings import parse_mqtt_url
from runtime.mqtt.tls import NODELAY, MqttSetupError, tls_context

OFFLINE = json.dumps({"online": False}).encode()

# MQTT 5 "unsupported protocol version" (0x84), and 3.1.1's CONNACK code 1, which a
# 3.1.1-only broker sends to an MQTT 5 CONNECT (paho maps it to 0x84 as well).
UNSUPPORTED_PROTOCOL = frozenset({0x84, 1})


@dataclass(frozen=True, slots=True)
class Login:
    host: str
    port: int
    tls: ssl.SSLContext | None
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # the password stays out of any repr that gets logged
        return f"Login({self.host}:{self.port}, tls={self.tls is not None}, user={self.username})"


async def prepare(cfg: MqttConfig) -> Login:
    return await asyncio.to_thread(_prepare, cfg)


def _prepare(cfg: MqttConfig) -> Login:
    host, port, tls = parse_mqtt_url(cfg.url)
    password = None
    if cfg.password_file is not None:
        try:
            password = cfg.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise MqttSetupError(
                f"mqtt.password_file {cfg.password_file}: cannot read it ({e.__class__.__name__})"
            ) from None
    context = tls_context(cfg.tls) if tls else None
    return Login(host, port, context, cfg.username, password)


def protocol_version(name: str) -> aiomqtt.ProtocolVersion:
    return aiomqtt.ProtocolVersion.V5 if name == "5" else aiomqtt.ProtocolVersion.V311


def refused_protocol(e: aiomqtt.MqttError) -> bool:
    """The broker refused the protocol version (an MQTT 5 CONNECT to a 3.1.1 broker)."""
    rc = getattr(e, "rc", None)
    return isinstance(e, MqttConnectError) and int(getattr(rc, "value", rc) or 0) in (
        UNSUPPORTED_PROTOCOL
    )


def open_client(
    login: Login,
    cfg: MqttConfig,
    topics: Topics,
    client_id: str,
    protocol: aiomqtt.ProtocolVersion,
) -> aiomqtt.Client:
    v5 = protocol == aiomqtt.ProtocolVersion.V5
    properties = None
    if v5:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = cfg.session_expiry_seconds
    return aiomqtt.Client(
        login.host,
        login.port,
        username=login.username,
        password=login.password,
        identifier=client_id,
        protocol=protocol,
        will=aiomqtt.Will(topics.status, OFFLINE, qos=1, retain=True),
        clean_session=None if v5 else False,
        # 3.1.1 has clean_session instead, and paho refuses clean_start with it.
        clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
        # paho pings an idle broker after its keepalive and gives up one keepalive after
        # that: half of ours, so a dead link is noticed within keepalive_seconds.
        keepalive=max(1, cfg.keepalive_seconds // 2),
        timeout=float(min(10, max(2, cfg.keepalive_seconds))),
        tls_context=login.tls,
        socket_options=[NODELAY],
    )
