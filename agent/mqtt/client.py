"""RemoteOps: the agent's MQTT link for remote operations (CONTRACTS section 3).

    ops = RemoteOps(cfg, journal=journal, verifier=verifier, clock=clock,
                    handle=handlers, state=lambda: {...}, status_extra={})
    await ops.start()          # returns at once; connecting happens in the background
    ops.state_changed()        # whenever something in state() may have changed
    await ops.stop()           # marks the store offline, then disconnects

Three tasks:
- the SUPERVISOR owns the connection. It connects, subscribes ROOT/S/cmd (QoS 1),
  publishes the retained status (`{"online": true, ...}`; the will is `{"online": false}`),
  the discovery configs when enabled and the retained state, then consumes commands.
  Any failure (broker restart, network loss, a refused subscription, a stopped network
  loop) ends the connection with its reason logged; it reconnects after a capped
  exponential backoff with jitter and publishes status and state again. Nothing else
  ends the loop, so the agent cannot stay disconnected without saying so in its log.
- the EXECUTOR runs commands one at a time in arrival order from a bounded queue (a full
  queue answers `busy`), and replies on ROOT/S/reply and, with MQTT 5, on the request's
  response topic with its correlation data. It lives across reconnections.
- the STATE PUBLISHER republishes the retained state after `state_changed()`, a few
  milliseconds later so a burst of changes is one message, and only when it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import agent
from agent.clock import Clock
from agent.config.schema import AgentConfig
from agent.journal import Journal
from agent.mqtt import session
from agent.mqtt.commands import CommandHandler, CommandRunner, Outcome, ping
from agent.mqtt.discovery import discovery_configs
from agent.mqtt.topics import Topics
from agent.rules.passes import PassVerifier
from runtime.mqtt.connection import shut_down, subscription_refused
from runtime.mqtt.supervise import describe, supervise

log = logging.getLogger(__name__)

STATE_DEBOUNCE_S = 0.005
WATCH_EVERY_S = 1.0
REPLY_WAIT_S = 10.0  # how long a reply waits for a connection before it is dropped
DRAIN_S = 1.0  # at stop, time for queued commands to finish
STOP_S = 2.0  # all of stop(): SIGTERM must end the agent within 5 s


class ConnectionLost(Exception):
    """The supervisor's own finding that a connection no longer works."""


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class RemoteOps:
    def __init__(
        self,
        cfg: AgentConfig,
        *,
        journal: Journal,
        verifier: PassVerifier,
        clock: Clock,
        handle: CommandHandler = ping,
        state: Callable[[], dict[str, Any]],
        status_extra: dict[str, Any] | None = None,
        version: str = agent.__version__,
        on_connected: Callable[[], None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        # Called (on the loop) after each (re)connection: orders published while the
        # store was away may be missing, so the app catches up over HTTP then.
        self._on_connected = on_connected
        self.mqtt = cfg.mqtt
        self.clock = clock
        self.topics = Topics(cfg.mqtt.topic_root, cfg.store.id)
        self.client_id = cfg.mqtt.client_id or f"shopgate-agent-{cfg.store.id}"
        self.version = version
        self.runner = CommandRunner(
            store=cfg.store.id,
            journal=journal,
            verifier=verifier,
            clock=clock,
            handle=handle,
            skew_seconds=cfg.access.clock_skew_seconds,
        )
        self._state = state
        self._status_extra = dict(status_extra or {})
        self._protocol = session.protocol_version(cfg.mqtt.protocol)
        self._login: session.Login | None = None
        self._started_at = ""
        self._queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(cfg.mqtt.command_queue)
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._state_dirty = asyncio.Event()
        self._state_lock = asyncio.Lock()
        self._state_sent: bytes | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # successful connections so far
        self._where = "?"

    # --- lifecycle -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def protocol(self) -> str:
        return "5" if self._protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1"

    async def start(self) -> None:
        """Start connecting in the background. Raises MqttSetupError for settings that
        cannot work (an unreadable password file, bad TLS files)."""
        if not self.mqtt.enabled:
            log.info("mqtt disabled: no remote operations")
            return
        self._login = await session.prepare(self.mqtt)
        self._where = f"{self._login.host}:{self._login.port}"
        self._started_at = self.clock.now_rfc3339()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._supervise(), name="mqtt-supervisor"),
            loop.create_task(self._execute(), name="mqtt-commands"),
            loop.create_task(self._publish_states(), name="mqtt-state"),
        ]

    async def stop(self) -> None:
        """Finish queued commands (briefly), publish `{"online": false}`, disconnect."""
        self._stopping.set()
        if not self._tasks:
            return
        supervisor = self._tasks[0]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_S):
                await asyncio.gather(supervisor, return_exceptions=True)
        for t in [*self._tasks, *self._side_tasks]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._side_tasks, return_exceptions=True)
        self._tasks = []

    def state_changed(self) -> None:
        """Something in state() may have changed: republish it soon if it did."""
        self._state_dirty.set()

    async def until_connected(self) -> None:
        """Return once connected (status and state published); use with a timeout."""
        await self._connected.wait()

    # --- the connection ----------------------------------------------------------------

    async def _supervise(self) -> None:
        delays = (self.mqtt.reconnect_min_seconds, self.mqtt.reconnect_max_seconds)
        await supervise(self._connection, stopping=self._stopping, delays=delays, where=self._where)

    async def _connection(self) -> tuple[float | None, str | None]:
        """One connection, from connecting to its end: (seconds it was up, or None if it
        never came up; why it ended, or None for a stop)."""
        assert self._login is not None
        client = session.open_client(
            self._login, self.mqtt, self.topics, self.client_id, self._protocol
        )
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
        except aiomqtt.MqttError as e:
            if up_since is None and session.refused_protocol(e) and self.protocol == "5":
                log.warning("mqtt: %s refused MQTT 5; falling back to MQTT 3.1.1", self._where)
                self._protocol = aiomqtt.ProtocolVersion.V311
                return None, "MQTT 5 refused"
            reason = reason or describe(e)
        except (ConnectionLost, OSError) as e:
            reason = reason or describe(e)
        finally:
            self._client = None
            self._connected.clear()
            if up_since is None:
                shut_down(client)  # aiomqtt leaves a timed-out attempt's socket open
        return (None if up_since is None else time.monotonic() - up_since), reason

    async def _serve(self, client: aiomqtt.Client) -> None:
        granted = await client.subscribe(self.topics.cmd, qos=1)
        if subscription_refused(granted):
            raise ConnectionLost(f"the broker refused the subscription to {self.topics.cmd}")
        self.connections += 1
        await client.publish(self.topics.status, self._status(), qos=1, retain=True)
        if self.mqtt.home_assistant.enabled:
            for topic, config in discovery_configs(self.cfg, self.topics, self.version).items():
                await client.publish(topic, _encode(config), qos=1, retain=True)
        self._client = client
        self._state_sent = None
        await self._send_state(client)
        self._connected.set()
        self._on_connected()
        log.info(
            "mqtt: connected to %s as %s (MQTT %s)", self._where, self.client_id, self.protocol
        )
        loop = asyncio.get_running_loop()
        consume = loop.create_task(self._consume(client))
        watch = loop.create_task(self._watch(client))
        stop: asyncio.Task[Any] = loop.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({consume, watch, stop}, return_when="FIRST_COMPLETED")
        finally:
            for t in (consume, watch, stop):
                t.cancel()
            await asyncio.gather(consume, watch, stop, return_exceptions=True)
        if stop in done:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_S):
                    await self._queue.join()
            # A clean shutdown sends DISCONNECT, which discards the will: say it ourselves.
            await client.publish(self.topics.status, session.OFFLINE, qos=1, retain=True)
            log.info("mqtt: store marked offline; disconnecting")
            return
        for t in done:
            t.result()
        raise ConnectionLost("the message stream ended")

    async def _consume(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not message.topic.matches(self.topics.cmd):
                continue
            try:
                self._queue.put_nowait(message)
            except asyncio.QueueFull:
                outcome = self.runner.busy(_payload(message))
                self._side(self._answer(outcome, message))

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Notice a connection that aiomqtt would not report: paho no longer connected,
        or the network loop task that drives keepalive pings has stopped."""
        paho = client._client  # aiomqtt keeps paho's client private; its state is public
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            if not paho.is_connected():
                raise ConnectionLost("the MQTT client is no longer connected")
            misc = client._misc_task
            if misc is None or misc.done():
                raise ConnectionLost("the MQTT network loop has stopped")

    def _status(self) -> bytes:
        # status_extra may carry the agent's own started_at (or more); `online` is ours.
        base = {"version": self.version, "started_at": self._started_at}
        return _encode({"online": True} | base | self._status_extra | {"online": True})

    # --- commands ------------------------------------------------------------------------

    async def _execute(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                outcome = await self.runner.run(_payload(message))
                await self._reply(outcome, message)
                await self.runner.record(outcome)
            except Exception:
                log.exception("mqtt: a command could not be handled")
            finally:
                self._queue.task_done()

    async def _answer(self, outcome: Outcome, message: aiomqtt.Message) -> None:
        await self._reply(outcome, message)
        await self.runner.record(outcome)

    async def _reply(self, outcome: Outcome, message: aiomqtt.Message) -> None:
        body = _encode(outcome.reply())
        targets: list[tuple[str, Properties | None]] = [(self.topics.reply, None)]
        request = message.properties
        response_topic = getattr(request, "ResponseTopic", None) if request else None
        if response_topic:
            response = Properties(PacketTypes.PUBLISH)
            correlation = getattr(request, "CorrelationData", None)
            if correlation is not None:
                response.CorrelationData = correlation
            targets.append((response_topic, response))
        for topic, props in targets:
            await self._publish_reply(topic, body, props, outcome)

    async def _publish_reply(
        self, topic: str, body: bytes, props: Properties | None, outcome: Outcome
    ) -> None:
        deadline = time.monotonic() + REPLY_WAIT_S
        while True:
            client = self._client
            if client is not None:
                try:
                    await client.publish(topic, body, qos=1, properties=props)
                    return
                except aiomqtt.MqttError as e:
                    failure = describe(e)
            else:
                failure = "not connected"
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning(
                    "mqtt: reply to command %s (%s) not sent: %s", outcome.cmd, outcome.id, failure
                )
                return
            if client is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, 1.0)):
                        await self._connected.wait()
            else:  # the supervisor is about to notice the broken connection
                await asyncio.sleep(min(left, 0.2))

    # --- state -------------------------------------------------------------------------

    async def _publish_states(self) -> None:
        while True:
            await self._state_dirty.wait()
            await asyncio.sleep(STATE_DEBOUNCE_S)
            self._state_dirty.clear()
            client = self._client
            if client is not None:
                await self._send_state(client)

    async def _send_state(self, client: aiomqtt.Client) -> None:
        """Publish the retained state if it differs from what this connection last sent."""
        async with self._state_lock:
            try:
                payload = _encode(self._state())
            except Exception:
                log.exception("mqtt: could not build the state to publish")
                return
            if payload == self._state_sent:
                return
            try:
                await client.publish(self.topics.state, payload, qos=1, retain=True)
            except aiomqtt.MqttError as e:
                # The next connection publishes it again in any case.
                log.warning("mqtt: state not published: %s", describe(e))
                return
            self._state_sent = payload

    def _side(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


def _payload(message: aiomqtt.Message) -> bytes | str:
    """A message's payload as the command runner reads it (paho types it wider)."""
    payload = message.payload
    return payload if isinstance(payload, bytes | str) else str(payload)
