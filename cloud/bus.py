"""HubBus: the hub's one MQTT connection, for signed commands to stores (CONTRACTS 3).

    bus = HubBus.from_config(cfg)          # reads the signing key and broker password
    await bus.start()                      # returns at once; connects in the background
    reply = await bus.send_command("demo-001", "unlock", {"door": "front"})
    bus.store_online("demo-001")           # True / False / None (never heard of)
    bus.on_status(callback)                # status CHANGES, consumed once across hubs
    await bus.stop()

Several hub processes may share one broker. Each subscribes, on one connection:
- `ROOT/+/status`: every store's retained presence, so `store_online` answers in every
  process (subscription identifier PRESENCE);
- `ROOT/+/state`: every store's retained state (doors, devices, business), so
  `store_state` answers in every process (the owner's dashboard; identifier PRESENCE);
- `$share/shopgate-hub/ROOT/+/status`: the same messages, but each delivered to ONE hub
  of the group, for work that must happen once (the status log in the database). The
  broker sends no retained messages to shared subscriptions, so a restart does not log
  every store again (subscription identifier STATUS);
- `ROOT/+/reply/<instance_id>`: the MQTT 5 response topic this process puts on its
  commands, so a reply comes back to the process that waits for it (identifier REPLY).
The broker tags each message with the identifier of the subscription it was sent for,
which is how one message on a topic matched twice is told apart.

A command is signed with the hub key (`jti` fresh), published QoS 1 on ROOT/S/cmd with
the response topic and correlation data (= the jti). `send_command` waits up to
`wait_reply` seconds for the reply and returns it (`{"id", "ok", "result" | "error"}`),
or None when none came; it raises BusUnavailable when the broker cannot be reached.

The connection is supervised like the agent's: any failure ends it with the reason
logged, and it is opened again after a capped exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.config import HubConfig
from cloud.signing import ISSUER, load_private_key, sign_command
from runtime.mqtt.connection import shut_down, subscription_refused
from runtime.mqtt.settings import MqttTlsConfig, parse_mqtt_url
from runtime.mqtt.supervise import describe, supervise
from runtime.mqtt.tls import NODELAY, tls_context

log = logging.getLogger("cloud.bus")

SHARE_GROUP = "shopgate-hub"
PRESENCE, STATUS, REPLY = 1, 2, 3  # MQTT 5 subscription identifiers
KEEPALIVE_S = 15
CONNECT_TIMEOUT_S = 5.0
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 30.0
WATCH_EVERY_S = 1.0
CONNECT_WAIT_S = 5.0  # how long a command waits for a connection before giving up
STOP_S = 2.0
# A lunch rush has hundreds of commands awaiting their PUBACK at once. aiomqtt warns from
# 10 pending, once per publish, which buried the log (1,812 warnings in 3,000 pushes);
# past this many something is really stuck.
PENDING_PUBLISH_WARN = 2000
MAX_INFLIGHT = 100  # QoS 1 publishes unacknowledged at once (paho's default: 20)

StatusCallback = Callable[[str, dict[str, Any]], Awaitable[None]]


class BusUnavailable(Exception):
    """The broker could not be reached in time; nothing was sent."""


class _ConnectionLost(Exception):
    pass


def default_instance_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host[:40] or 'hub'}-{os.getpid()}"


class HubBus:
    def __init__(
        self,
        *,
        mqtt_url: str,
        topic_root: str,
        key: Ed25519PrivateKey,
        kid: str,
        instance_id: str = "",
        username: str | None = None,
        password: str | None = None,
        reconnect_min_s: float = RECONNECT_MIN_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
        connect_wait_s: float = CONNECT_WAIT_S,
        tls: MqttTlsConfig | None = None,
    ) -> None:
        """`tls`: CA and client certificate for an mqtts:// URL (reads the files; raises
        MqttSetupError when they cannot be used); none: the system's CAs."""
        self.host, self.port, use_tls = parse_mqtt_url(mqtt_url)
        self._tls = tls_context(tls or MqttTlsConfig()) if use_tls else None
        self.root = topic_root
        self._key = key
        self.kid = kid
        self.instance_id = instance_id or default_instance_id()
        if any(c in self.instance_id for c in "+#/") or not self.instance_id:
            raise ValueError(f"instance id {self.instance_id!r} must be one topic level")
        self._username = username or None
        self._password = password
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._connect_wait = connect_wait_s
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._online: dict[str, bool] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self._status_callbacks: list[StatusCallback] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    def __repr__(self) -> str:  # the password stays out of anything logged
        return f"HubBus({self.host}:{self.port}, instance={self.instance_id})"

    @classmethod
    def from_config(cls, cfg: HubConfig) -> HubBus:
        """Blocking (reads key, password and TLS files): call before the loop serves."""
        key, kid = load_private_key(cfg.signing.key_file, cfg.signing.kid)
        password = None
        if cfg.mqtt.password_file is not None:
            password = Path(cfg.mqtt.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        return cls(
            mqtt_url=cfg.mqtt.url,
            topic_root=cfg.mqtt.topic_root,
            key=key,
            kid=kid,
            instance_id=cfg.mqtt.instance_id,
            username=cfg.mqtt.username,
            password=password,
            tls=cfg.mqtt.tls,
        )

    # --- topics ------------------------------------------------------------------------

    def cmd_topic(self, store: str) -> str:
        return f"{self.root}/{store}/cmd"

    def response_topic(self, store: str) -> str:
        return f"{self.root}/{store}/reply/{self.instance_id}"

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="hub-bus")

    async def until_connected(self) -> None:
        await self._connected.wait()

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_S):
                    await asyncio.gather(task, return_exceptions=True)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._side_tasks:  # status log writes under way: let them finish
            await asyncio.wait(list(self._side_tasks), timeout=1.0)
        for t in list(self._side_tasks):
            t.cancel()
        await asyncio.gather(*self._side_tasks, return_exceptions=True)
        for fut in self._waiting.values():
            fut.cancel()

    # --- what others call ------------------------------------------------------------

    def on_status(self, callback: StatusCallback) -> None:
        """`await callback(store, status)` for each status message, in ONE hub of those
        sharing the broker (not for the retained ones already there at subscribe)."""
        self._status_callbacks.append(callback)

    def store_online(self, store: str) -> bool | None:
        """The store's last retained status: online or not; None if none was seen."""
        return self._online.get(store)

    def store_state(self, store: str) -> dict[str, Any] | None:
        """The store's last retained `state` (CONTRACTS 3), or None if none was seen."""
        return self._state.get(store)

    async def send_command(
        self,
        store: str,
        cmd: str,
        args: dict[str, Any] | None = None,
        *,
        ttl: int = 60,
        wait_reply: float | None = 5.0,
        sub: str = ISSUER,
        jti: str | None = None,
    ) -> dict[str, Any] | None:
        """Sign and publish one command; its reply, or None when none came within
        `wait_reply` seconds (None: don't wait). BusUnavailable: not sent."""
        jti = jti or uuid.uuid4().hex
        token = sign_command(
            self._key, self.kid, store=store, cmd=cmd, args=args or {}, ttl=ttl, jti=jti, sub=sub
        )
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.response_topic(store)
        props.CorrelationData = jti.encode()
        future: asyncio.Future[dict[str, Any]] | None = None
        if wait_reply is not None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[jti] = future
        try:
            client = await self._client_within(self._connect_wait)
            try:
                await client.publish(self.cmd_topic(store), token, qos=1, properties=props)
            except aiomqtt.MqttError as e:
                raise BusUnavailable(f"command {cmd} to {store} not sent: {describe(e)}") from e
            if future is None:
                return None
            try:
                async with asyncio.timeout(wait_reply):
                    return await future
            except TimeoutError:
                return None
        finally:
            self._waiting.pop(jti, None)

    async def _client_within(self, seconds: float) -> aiomqtt.Client:
        try:
            async with asyncio.timeout(seconds):
                while self._client is None:
                    await self._connected.wait()
                    if self._client is None:  # lost again while waking up
                        await asyncio.sleep(0.01)
        except TimeoutError:
            raise BusUnavailable(f"not connected to the broker {self.host}:{self.port}") from None
        return self._client

    # --- the connection --------------------------------------------------------------

    async def _supervise(self) -> None:
        where = f"{self.host}:{self.port}"
        await supervise(
            self._connection, stopping=self._stopping, delays=self._reconnect, where=where
        )

    def _open_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self._username,
            password=self._password,
            identifier=f"shopgate-hub-{self.instance_id}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            keepalive=KEEPALIVE_S,
            timeout=CONNECT_TIMEOUT_S,
            tls_context=self._tls,
            socket_options=[NODELAY],
            max_inflight_messages=MAX_INFLIGHT,
        )
        client.pending_calls_threshold = PENDING_PUBLISH_WARN
        return client

    async def _connection(self) -> tuple[float | None, str | None]:
        client = self._open_client()
        up_since: float | None = None
        reason = ""
        try:
            async with client:
                up_since = time.monotonic()
                try:
                    await self._serve(client)
                except Exception as e:
                    reason = describe(e)
                    shut_down(client)
                    raise
            return time.monotonic() - up_since, None
        except (aiomqtt.MqttError, _ConnectionLost, OSError) as e:
            reason = reason or describe(e)
        finally:
            self._client = None
            self._connected.clear()
            if up_since is None:
                shut_down(client)
        return (None if up_since is None else time.monotonic() - up_since), reason

    async def _subscribe(self, client: aiomqtt.Client, topic: str, ident: int) -> None:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = ident
        granted = await client.subscribe(topic, qos=1, properties=props)
        if subscription_refused(granted):
            raise _ConnectionLost(f"the broker refused the subscription to {topic}")

    async def _serve(self, client: aiomqtt.Client) -> None:
        await self._subscribe(client, f"{self.root}/+/reply/{self.instance_id}", REPLY)
        await self._subscribe(client, f"{self.root}/+/status", PRESENCE)
        await self._subscribe(client, f"{self.root}/+/state", PRESENCE)
        await self._subscribe(client, f"$share/{SHARE_GROUP}/{self.root}/+/status", STATUS)
        self._client = client
        self.connections += 1
        self._connected.set()
        log.info(
            "mqtt: connected to %s:%d as hub instance %s", self.host, self.port, self.instance_id
        )
        loop = asyncio.get_running_loop()
        tasks = {
            loop.create_task(self._consume(client)),
            loop.create_task(self._watch(client)),
            loop.create_task(self._stopping.wait()),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when="FIRST_COMPLETED")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            error = None if t.cancelled() else t.exception()
            if error is not None:
                raise error

    async def _consume(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                self._dispatch(message)
            except Exception:
                log.exception("mqtt: a message on %s could not be handled", message.topic)
        raise _ConnectionLost("the message stream ended")

    async def _watch(self, client: aiomqtt.Client) -> None:
        paho = client._client  # aiomqtt keeps paho private; its state is public
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            if not paho.is_connected():
                raise _ConnectionLost("the MQTT client is no longer connected")
            misc = client._misc_task
            if misc is None or misc.done():
                raise _ConnectionLost("the MQTT network loop has stopped")

    # --- messages ----------------------------------------------------------------------

    def _dispatch(self, message: aiomqtt.Message) -> None:
        props = message.properties
        idents = getattr(props, "SubscriptionIdentifier", None) if props else None
        if isinstance(idents, int):
            idents = [idents]
        topic = str(message.topic)
        if not topic.startswith(self.root + "/"):
            return
        store, _, tail = topic[len(self.root) + 1 :].partition("/")
        kind = "reply" if tail == f"reply/{self.instance_id}" else tail
        payload = _json(message.payload)
        for ident in idents or []:
            if ident == REPLY and kind == "reply":
                self._on_reply(message, payload)
            elif ident == PRESENCE and kind == "status" and isinstance(payload, dict):
                self._online[store] = payload.get("online") is True
            elif ident == PRESENCE and kind == "state" and isinstance(payload, dict):
                self._state[store] = payload
            elif ident == STATUS and kind == "status" and isinstance(payload, dict):
                for callback in self._status_callbacks:
                    self._side(callback(store, payload))

    def _on_reply(self, message: aiomqtt.Message, payload: Any) -> None:
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props else None
        key = bytes(correlation).decode(errors="replace") if correlation else None
        if key is None and isinstance(payload, dict) and isinstance(payload.get("id"), str):
            key = payload["id"]
        future = self._waiting.get(key or "")
        if future is None or future.done():
            return  # a reply nobody waits for any more (timed out, or fire and forget)
        if isinstance(payload, dict):
            future.set_result(payload)
        else:
            future.set_result({"id": key, "ok": False, "error": {"code": "bad_reply"}})

    def _side(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("mqtt: a status listener failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


def _json(payload: Any) -> Any:
    try:
        return json.loads(payload if isinstance(payload, bytes | bytearray | str) else b"")
    except ValueError:
        return None


BUS = web.AppKey("bus", HubBus)
