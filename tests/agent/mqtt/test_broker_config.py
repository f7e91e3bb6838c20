"""The shipped broker config (deploy/mosquitto/mosquitto.conf) under attack, on a real
mosquitto started from that very file (tests/support/shipped_broker.py)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.bus import HubBus
from runtime.mqtt.settings import MqttTlsConfig
from tests.agent.mqtt.harness import STORE, Keys, running_ops, until
from tests.support.broker import REPO
from tests.support.certs import TestCA
from tests.support.shipped_broker import ShippedBroker, host_addresses, start_shipped_broker

OTHER = "other-002"
USERS = {STORE: "store-pw-1", OTHER: "store-pw-2", "shopgate-hub": "hub-pw"}
CMD = f"shopgate/{STORE}/cmd"


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[ShippedBroker]:
    broker = start_shipped_broker(tmp_path, users=USERS)
    try:
        yield broker
    finally:
        broker.stop()


def client(
    broker: ShippedBroker,
    user: str,
    *,
    identifier: str | None = None,
    clean_start: bool = False,
    v5: bool = True,
    listener: Any = None,
) -> aiomqtt.Client:
    """A client of the store listener (TLS if the shipped config says so), logged in as
    `user`, with a persistent session unless `clean_start`."""
    listener = listener or broker.store
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
    return aiomqtt.Client(
        **broker.connect_kwargs(listener),
        username=user,
        password=USERS[user],
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        clean_start=clean_start if v5 else 3,
        clean_session=None if v5 else clean_start,
        properties=props,
        timeout=5,
    )


async def first_message(c: aiomqtt.Client, within: float = 5.0) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        async for message in c.messages:
            return message
    raise AssertionError("the message stream ended")


@contextlib.asynccontextmanager
async def hub(broker: ShippedBroker) -> AsyncIterator[aiomqtt.Client]:
    async with client(broker, "shopgate-hub", identifier="test-hub", clean_start=True) as c:
        yield c


async def test_a_store_using_another_stores_client_id_does_not_kick_it(
    shipped: ShippedBroker,
) -> None:
    # The victim: the agent's default, predictable client id, persistent session.
    victim_id = f"shopgate-agent-{STORE}"
    async with client(shipped, STORE, identifier=victim_id) as victim, hub(shipped) as h:
        await victim.subscribe(CMD, qos=1)
        # The attacker authenticates as ITSELF (its own password) with the victim's id.
        async with client(shipped, OTHER, identifier=victim_id, clean_start=True):
            # Its CONNACK has come: the broker has dealt with the id clash by now.
            await h.publish(CMD, b"still-here", qos=1)
            message = await first_message(victim)
    assert message.payload == b"still-here"


async def test_a_store_using_another_stores_client_id_does_not_wipe_its_queued_commands(
    shipped: ShippedBroker,
) -> None:
    victim_id = f"shopgate-agent-{STORE}"
    async with client(shipped, STORE, identifier=victim_id) as victim:
        await victim.subscribe(CMD, qos=1)
    # The victim is offline; the broker queues its commands in its session.
    async with hub(shipped) as h:
        await h.publish(CMD, b"queued-while-away", qos=1)
        # The attacker: clean start with the victim's id discards that session.
        async with client(shipped, OTHER, identifier=victim_id, clean_start=True):
            pass
        async with client(shipped, STORE, identifier=victim_id) as victim:
            await victim.subscribe(CMD, qos=1)  # as the agent does on every connection
            await h.publish(CMD, b"sent-after", qos=1)
            message = await first_message(victim)
    assert message.payload == b"queued-while-away"


def test_stores_get_tls_and_plain_mqtt_stays_on_loopback(shipped: ShippedBroker) -> None:
    # As shipped: every listener without TLS is bound to loopback; no anonymous clients;
    # on the store listener the client id is the user name.
    assert shipped.settings["allow_anonymous"] == "false"
    for listener in shipped.listeners:
        assert listener.tls or listener.loopback_only, listener
    assert shipped.store.shipped_port == 8883 and shipped.store.tls
    assert shipped.store.options["use_username_as_clientid"] == "true"
    assert shipped.local.shipped_port == 1883 and not shipped.local.tls
    # And as running: from this machine's other addresses the plain port is closed while
    # the TLS one answers (so the address is reachable and the refusal means something).
    outside = host_addresses()
    if not outside:
        pytest.skip("this machine has no address other than loopback")
    for address in outside:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, shipped.local.port), timeout=5).close()
        context = shipped.tls_context()
        with (
            socket.create_connection((address, shipped.store.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=address) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def _mqtt_string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def plain_connect_packet(user: str, password: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with user name and password, as a client without TLS sends
    it (both in clear)."""
    body = _mqtt_string("MQTT") + bytes([4, 0xC2]) + (60).to_bytes(2, "big")
    body += _mqtt_string("plain-client") + _mqtt_string(user) + _mqtt_string(password)
    assert len(body) < 128  # a one-byte remaining length
    return bytes([0x10, len(body)]) + body


def test_plain_mqtt_to_the_store_listener_gets_no_answer(shipped: ShippedBroker) -> None:
    with socket.create_connection(("127.0.0.1", shipped.store.port), timeout=5) as s:
        s.sendall(plain_connect_packet(STORE, USERS[STORE]))
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(4096):  # until the broker closes the connection
                received += chunk
    assert not received.startswith(b"\x20")  # no CONNACK: the TLS listener hung up


async def test_an_oversize_packet_ends_the_senders_connection_and_goes_nowhere(
    shipped: ShippedBroker,
) -> None:
    limit = int(shipped.settings["max_packet_size"])
    assert limit <= 1024 * 1024  # the documented bound
    status = f"shopgate/{STORE}/status"
    async with hub(shipped) as h:
        await h.subscribe(status, qos=1)
        # MQTT 3.1.1: the client is not told the limit, so it sends the packet anyway.
        async with client(shipped, STORE, v5=False, clean_start=True) as store:
            await store.publish(status, b"x" * (limit - 1000), qos=1)  # just under: fine
            assert len((await first_message(h)).payload) == limit - 1000
            # Sending it may never finish (the broker hangs up halfway): don't wait on it.
            send = asyncio.create_task(store.publish(status, b"x" * limit, qos=0))
            with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
                await first_message(store)  # the broker closes the connection
            send.cancel()
            await asyncio.gather(send, return_exceptions=True)
        async with client(shipped, STORE, v5=False, clean_start=True) as store:
            await store.publish(status, b"sentinel", qos=1)
        # The oversize one never reached anyone: the next message is the sentinel.
        assert (await first_message(h)).payload == b"sentinel"
    assert "max packet size" in shipped.log.lower() or "oversize" in shipped.log.lower()


# --- the agent and the hub over TLS ---------------------------------------------------


def store_login(tmp_path: Path, **tls: str) -> dict[str, Any]:
    secret = tmp_path / "mqtt.pw"
    secret.write_text(USERS[STORE] + "\n")
    return {"username": STORE, "password_file": str(secret), "tls": tls}


@contextlib.asynccontextmanager
async def hub_bus(broker: ShippedBroker, keys: Keys, **tls: Any) -> AsyncIterator[HubBus]:
    """The hub's bus as a hub on another host runs it: over TLS to the store listener."""
    password = "hub-pw"
    bus = HubBus(
        mqtt_url=broker.url(broker.store),
        topic_root="shopgate",
        key=keys.key,
        kid=keys.kid,
        instance_id="hub-a",
        username="shopgate-hub",
        password=password,
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        tls=MqttTlsConfig.model_validate(tls),
    )
    await bus.start()
    try:
        async with asyncio.timeout(10):
            await bus.until_connected()
        yield bus
    finally:
        await bus.stop()


async def test_the_agent_and_the_hub_talk_over_tls_with_a_private_ca(
    tmp_path: Path, shipped: ShippedBroker, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    ca = str(shipped.ca_file)
    url = shipped.url(shipped.store)
    assert url.startswith("mqtts://")
    async with (
        running_ops(tmp_path, keys, url, **store_login(tmp_path, ca_file=ca)) as store,
        hub_bus(shipped, keys, ca_file=ca) as bus,
    ):
        reply = await bus.send_command(STORE, "unlock", {"door": "front"})
        assert reply is not None and reply["ok"] is True
        assert store.handler.calls == [("unlock", {"door": "front"})]
        assert bus.store_online(STORE) is True
    assert USERS[STORE] not in caplog.text


async def test_a_broker_certificate_from_another_ca_is_refused(
    tmp_path: Path, shipped: ShippedBroker, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    # Someone in the middle with a certificate of their own (another CA) gets nothing.
    stranger = TestCA.make(tmp_path / "stranger", "not the broker's CA")
    login = store_login(tmp_path, ca_file=str(stranger.cert_file))
    url = shipped.url(shipped.store)
    async with running_ops(tmp_path, keys, url, connect=False, **login) as run:
        await until(lambda: "certificate verify failed" in caplog.text, within=10)
        assert not run.ops.connected and run.ops.connections == 0


@pytest.fixture
def mutual_tls(tmp_path: Path) -> Iterator[ShippedBroker]:
    # The shipped file's commented mutual-TLS lines, switched on as written there.
    broker = start_shipped_broker(
        tmp_path, users=USERS, uncomment=("cafile", "require_certificate")
    )
    try:
        yield broker
    finally:
        broker.stop()


async def test_with_mutual_tls_the_agent_and_hub_show_client_certificates(
    tmp_path: Path, mutual_tls: ShippedBroker, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    assert mutual_tls.store.options["require_certificate"] == "true"
    ca = str(mutual_tls.ca_file)
    url = mutual_tls.url(mutual_tls.store)
    # Without a client certificate the password alone no longer gets in.
    async with running_ops(
        tmp_path / "bare", keys, url, connect=False, **store_login(tmp_path, ca_file=ca)
    ) as bare:
        await until(lambda: "cannot connect to the broker" in caplog.text, within=10)
        assert bare.ops.connections == 0
    assert mutual_tls.ca is not None
    store_cert = mutual_tls.ca.issue(STORE, client=True)
    hub_cert = mutual_tls.ca.issue("shopgate-hub", client=True)
    with_cert = {"cert_file": str(store_cert.cert_file), "key_file": str(store_cert.key_file)}
    async with (
        running_ops(tmp_path, keys, url, **store_login(tmp_path, ca_file=ca, **with_cert)),
        hub_bus(
            mutual_tls,
            keys,
            ca_file=ca,
            cert_file=str(hub_cert.cert_file),
            key_file=str(hub_cert.key_file),
        ) as bus,
    ):
        reply = await bus.send_command(STORE, "ping", {})
        assert reply is not None and reply["ok"] is True


@pytest.fixture
def script_certs(tmp_path: Path) -> tuple[Path, bytes]:
    """deploy/mosquitto/make-certs.sh run twice (the second run renews the broker's
    certificate with the same CA): its folder, and its CA as the first run made it."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    certs = tmp_path / "certs"
    script = REPO / "deploy" / "mosquitto" / "make-certs.sh"
    subprocess.run([script, "broker", certs, "localhost", "127.0.0.1"], check=True)
    first_ca = (certs / "ca.crt").read_bytes()
    subprocess.run([script, "broker", certs, "localhost", "127.0.0.1"], check=True)
    return certs, first_ca


async def test_make_certs_sh_makes_what_the_broker_and_the_agent_need(
    tmp_path: Path, keys: Keys, script_certs: tuple[Path, bytes]
) -> None:
    certs, first_ca = script_certs
    assert (certs / "ca.crt").read_bytes() == first_ca
    assert (certs / "broker.key").stat().st_mode & 0o077 == 0
    broker = start_shipped_broker(tmp_path, users=USERS, certs_dir=certs)
    try:
        login = store_login(tmp_path, ca_file=str(certs / "ca.crt"))
        for host in ("localhost", "127.0.0.1"):  # each name the certificate was made for
            async with running_ops(tmp_path / host, keys, broker.url(broker.store, host), **login):
                pass
    finally:
        broker.stop()
