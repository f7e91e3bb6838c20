"""The agent process: builds everything from the config, starts it, stops it.

One asyncio loop. Start: journal -> local state -> devices -> doors -> access service,
then READY to systemd. SIGHUP re-reads the config (an invalid one is refused and the
running one stays). SIGTERM drains in-flight decisions and journal writes, locks the
doors and exits within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal

import agent
from agent.clock import Clock
from agent.config import ConfigError, load_config
from agent.config.schema import AgentConfig, GpioInput, LockboardLock
from agent.devices.base import (
    ContactChanged,
    DeviceEvent,
    DeviceOffline,
    DeviceOnline,
    ExitRequested,
    InputProvider,
    LockFeedback,
    LockProvider,
    ScanRead,
)
from agent.devices.registry import build_device
from agent.hub_client import HubClient
from agent.journal import Journal, JournalError
from agent.model.commands import UNSUPPORTED, Caller, CommandError
from agent.model.ids import new_ulid
from agent.mqtt import RemoteOps
from agent.order_sync import OrderSync
from agent.relay import Relay
from agent.remote.commands import StoreCommands
from agent.rules.decide import AccessState
from agent.rules.passes import PassVerifier
from agent.runtime import health_file
from agent.services.access import AccessService
from agent.services.base import StoreContext, StoreService
from agent.services.door import Door
from agent.services.hub_keys import HubKeys, config_anchors
from agent.services.orders import PendingOrders
from agent.services.registry import build_services
from agent.services.stock import LocalStock
from agent.services.store import Store
from runtime.systemd import Notifier, run_watchdog
from storerules.lifetimes import MAX_LIFETIME_S

log = logging.getLogger(__name__)

MAINTENANCE_S = 60.0
CLOCK_CHECK_S = 5.0
HEALTH_S = 5.0  # how often health.json is rewritten (shopgate-agent doctor reads it)
OUTBOX_STATE_S = 2.0
STOP_BUDGET_S = 4.0


class Agent:
    def __init__(
        self, config_path: Path, cfg: AgentConfig, notifier: Notifier | None = None
    ) -> None:
        self.config_path = config_path
        self.cfg = cfg
        self.notifier = notifier or Notifier.from_env()
        self.clock = Clock(max_unconfirmed=cfg.clock.max_unconfirmed_seconds)
        self.journal: Journal | None = None
        self.store: Store | None = None
        # Every pass and command it verifies tells the clock the hub's time.
        self.verifier = PassVerifier(
            {}, skew_seconds=cfg.access.clock_skew_seconds, clock=self.clock
        )
        self.catalog: dict[str, dict[str, Any]] = {}
        self.relay: Relay | None = None
        # The one HTTP client for the hub: relay, order sync and payments share it.
        self.hub = HubClient(cfg.hub.url, cfg.store.id, cfg.hub.token)
        self.remote: RemoteOps | None = None
        self.order_sync: OrderSync | None = None
        self.hub_keys: HubKeys | None = None
        # Called with the `iat` of each verified, nonce-bound hub answer (order sync): a
        # trusted reading of the hub's clock, for whoever keeps the agent's clock honest.
        self.started_at = ""
        self._on_state_change: list[Callable[[], None]] = []
        self.device_online: dict[str, bool] = {}
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # background loops: cancelled at stop
        self._inflight: set[asyncio.Task[Any]] = set()  # decisions and records: drained at stop
        self._reloading = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self.cfg.storage.dir.mkdir(parents=True, exist_ok=True)
        self.journal = await Journal.open(
            self.cfg.storage.dir / "journal.db",
            self.cfg.store.id,
            self.clock,
            max_bytes=self.cfg.storage.max_journal_mb * 1024 * 1024,
            pass_grace=max(3600.0, 2 * self.cfg.access.clock_skew_seconds),
            access_log_days=self.cfg.storage.access_log_days,
        )
        self.started_at = self.clock.now_rfc3339()
        self.hub_keys = HubKeys(self.journal, self.verifier, self.clock)
        self.store = await self._build(self.cfg)
        await self._start_store(self.store)
        await self._start_relay(self.cfg)
        await self._start_remote(self.cfg)
        await self.journal.append(
            "agent.started",
            {"version": agent.__version__, "pid": os.getpid(), "doors": list(self.store.doors)},
        )
        self._spawn(self._maintenance())
        self._spawn(self._watch_clock())
        self._spawn(self._write_health())
        # Everything built so far lives as long as the process: keep it out of the
        # collector's full passes, which otherwise cost whole milliseconds at the door.
        gc.collect()
        gc.freeze()
        log.info("agent ready: store %s, doors %s", self.cfg.store.id, ", ".join(self.store.doors))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        try:
            await self.start()
            self.notifier.ready(f"store {self.cfg.store.id}")
            self._spawn(run_watchdog(self.notifier, lambda: not self._stopping.is_set()))
            await self._stopping.wait()
        finally:
            self.notifier.stopping()
            await self.stop()
        return 0

    def request_stop(self) -> None:
        log.info("stopping")
        self._stopping.set()

    async def stop(self) -> None:
        """Drain in-flight work, lock the doors, close devices, then the journal."""
        self._stopping.set()
        if self.remote is not None:
            await self.remote.stop()  # finishes queued commands, then {"online": false}
            self.remote = None
        if self.order_sync is not None:  # before the store goes: it writes orders into it
            await self.order_sync.stop()
            self.order_sync = None
        store, self.store = self.store, None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_BUDGET_S):
                while self._inflight:
                    await asyncio.gather(*list(self._inflight), return_exceptions=True)
                if store:
                    await self._stop_store(store)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.relay is not None:
            await self.relay.stop()  # at most ~2 s; delivery is at-least-once anyway
            self.relay = None
        await self.hub.close()
        if self.journal:
            await self.journal.close()
            self.journal = None

    async def reload(self) -> tuple[bool, list[str]]:
        """Re-read the config; keep the running one if the new one is invalid.
        Returns (reloaded, the problems that refused it)."""
        async with self._reloading:
            self.notifier.reloading()
            try:
                return await self._reload()
            finally:
                self.notifier.ready(f"store {self.cfg.store.id}")

    async def _reload(self) -> tuple[bool, list[str]]:
        try:
            cfg = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as e:
            log.error("reload refused, the running config stays:\n%s", e)
            return False, [str(p) for p in e.problems]
        if cfg.store.id != self.cfg.store.id or cfg.storage.dir != self.cfg.storage.dir:
            log.error("reload refused: store.id and storage.dir need a restart")
            return False, ["store.id and storage.dir can only change with a restart"]
        old = self.store
        if old:
            await self._stop_store(old)
        if cfg.hub != self.cfg.hub and self.relay is not None:
            await self.relay.stop()
            self.relay = None
            if self.order_sync is not None:
                await self.order_sync.stop()
                self.order_sync = None
            await self._start_relay(cfg)
        mqtt_changed = cfg.mqtt != self.cfg.mqtt or [d.id for d in cfg.doors] != [
            d.id for d in self.cfg.doors
        ]
        self.cfg = cfg
        self.store = await self._build(cfg)
        await self._start_store(self.store)
        if mqtt_changed:
            if self.remote is not None:
                await self.remote.stop()
                self.remote = None
            await self._start_remote(cfg)
        assert self.journal is not None
        await self.journal.append("agent.reloaded", {"doors": list(self.store.doors)})
        log.info("config reloaded")
        self.state_changed()
        return True, []

    # --- building ----------------------------------------------------------------

    async def _build(self, cfg: AgentConfig) -> Store:
        assert self.journal is not None
        local = await self.journal.load_state()
        self.catalog = dict(local.products)
        # The config's keys are the anchors; keys rotated in by `keys.set` outlive restarts
        # and reloads only as long as the keys that vouched for them (agent/rules/key_trust.py).
        assert self.hub_keys is not None
        await self.hub_keys.load(cfg, local.settings, config_anchors(cfg))
        self.verifier.skew = cfg.access.clock_skew_seconds
        self.verifier.max_lifetime = {
            **MAX_LIFETIME_S,
            **cfg.access.max_lifetime_seconds.model_dump(),
        }
        self.clock.max_unconfirmed = cfg.clock.max_unconfirmed_seconds
        orders = PendingOrders(self.journal, local.orders, code_length=cfg.pickup.code_length)
        settings = local.settings
        lockdown = settings.get("lockdown", {d.id: d.lockdown for d in cfg.doors})
        state = AccessState(
            business_open=settings.get("business.status", cfg.business.status) == "open",
            lockdown={d for d, on in lockdown.items() if on},
            block_list=set(cfg.access.block_list) | set(settings.get("block_list", [])),
            staff=set(cfg.access.staff),
            used_jti=dict(local.used_passes),
            orders=orders.by_id,
            orders_by_code=orders.by_code,
        )
        devices = {d.id: build_device(d, self._on_device_event) for d in cfg.devices}
        doors: dict[str, Door] = {}
        store = Store(cfg, devices, doors, None, orders)  # type: ignore[arg-type]  # access: set below, once the doors exist
        for d in cfg.doors:
            # The config's cross checks made sure each device is of the kind named.
            lock_dev = devices[d.lock.device]
            assert isinstance(lock_dev, LockProvider), d.lock.device
            lock = lock_dev.door_lock(d.lock)
            if isinstance(d.lock, LockboardLock) and d.contact is not None:
                if d.contact.type == "lock_feedback":
                    assert isinstance(lock_dev, LockFeedback), d.lock.device
                    lock_dev.watch(d.lock.board, d.lock.channel)
                    store.contacts[(lock_dev.id, f"{d.lock.board}.{d.lock.channel}")] = d.id
            inputs_of: tuple[tuple[Any, Literal["contact", "button"], dict[Any, str]], ...] = (
                (d.contact, "contact", store.contacts),
                (d.exit_button, "button", store.exits),
            )
            for inp, kind, table in inputs_of:
                if isinstance(inp, GpioInput):
                    inputs = devices[inp.device]
                    assert isinstance(inputs, InputProvider), inp.device
                    inputs.watch_input(
                        inp.pin,
                        name=d.id,
                        pull_up=inp.pull_up,
                        active_when_open=inp.active_when_open,
                        kind=kind,
                    )
                    table[(inp.device, f"gpio{inp.pin}")] = d.id
            doors[d.id] = Door(d, lock, self.journal, state.occupancy, on_change=self.state_changed)
            if d.scanner:
                store.scanners[d.scanner] = d.id
            if d.entry_question:
                store.keypads[d.entry_question.keypad] = d.id
        store.access = AccessService(
            cfg, self.journal, self.clock, self.verifier, orders, doors, state, settings
        )
        store.stock = LocalStock(self.journal, settings)
        ctx = StoreContext(
            cfg=cfg,
            journal=self.journal,
            clock=self.clock,
            devices=devices,
            orders=orders,
            catalog=self.catalog,
            stock=store.stock,
            state_changed=self.state_changed,
            spawn=self._spawn,
            hub_online=lambda: self.remote is not None and self.remote.connected,
            hub=self.hub,
            command=self.local_command,
        )
        store.services = build_services(ctx)
        for service in store.services:
            orders.listeners.append(functools.partial(self._orders_to, service))
        return store

    def _orders_to(self, service: StoreService, new: list[dict[str, Any]]) -> None:
        """New orders to one store service (a pick slip to print, a box to open)."""
        self._spawn(service.on_orders(new), inflight=True)

    async def _start_relay(self, cfg: AgentConfig) -> None:
        assert self.journal is not None
        if (self.hub.base, self.hub.token) != (cfg.hub.url.rstrip("/"), cfg.hub.token):
            await self.hub.close()  # a reload moved the store to another hub, or a new token
            self.hub = HubClient(cfg.hub.url, cfg.store.id, cfg.hub.token)
        self.relay = Relay(self.journal, hub=self.hub, now=self.clock.now)
        await self.relay.start()
        self._spawn(self._watch_outbox())
        self.order_sync = OrderSync(
            self.orders,
            hub=self.hub,
            verifier=self.verifier,
            journal=self.journal,
            now=self.clock.now,
        )
        await self.order_sync.start()

    async def _start_remote(self, cfg: AgentConfig) -> None:
        if not cfg.mqtt.enabled:
            log.info("remote operations over MQTT are off (mqtt.enabled: false)")
            return
        assert self.journal is not None
        self.remote = RemoteOps(
            cfg,
            journal=self.journal,
            verifier=self.verifier,
            clock=self.clock,
            handle=StoreCommands(self),
            state=self.state,
            status_extra={"store": cfg.store.id, "started_at": self.started_at},
            on_connected=self._caught_up_on_orders,
        )
        await self.remote.start()  # returns at once; the supervisor connects and reconnects

    def _caught_up_on_orders(self) -> None:
        if self.order_sync is not None:
            self.order_sync.sync_now()

    async def _watch_outbox(self) -> None:
        """`state` carries outbox_depth: republish it when the depth changes."""
        last = None
        while True:
            await asyncio.sleep(OUTBOX_STATE_S)
            relay = self.relay
            depth = relay.stats().get("undelivered") if relay is not None else None
            if depth != last:
                last = depth
                self.state_changed()

    async def _start_store(self, store: Store) -> None:
        for dev in store.devices.values():
            await dev.start()
        for door in store.doors.values():
            try:
                await door.start()
            except Exception as e:
                log.error("door %s could not be locked at start: %s", door.id, e)
        for service in store.services:
            await service.start()

    async def _stop_store(self, store: Store) -> None:
        log.info(
            "access latency (scan read -> lock command written)",
            extra={"access_latency": store.access.latency_summary()},
        )
        for service in store.services:
            try:
                await service.stop()
            except Exception as e:
                log.error("%s did not stop cleanly: %s", service.name, e)
        for door in store.doors.values():
            await door.drain()
        for door in store.doors.values():
            await door.stop()
        for dev in store.devices.values():
            try:
                await dev.stop()
            except Exception as e:
                log.error("device %s did not stop cleanly: %s", dev.id, e)

    # --- what the agent tells the world ----------------------------------------------

    def store_doors(self) -> dict[str, Door]:
        return self.store.doors if self.store else {}

    def access_state(self) -> AccessState:
        assert self.store is not None
        return self.store.access.state

    def orders(self) -> PendingOrders:
        assert self.store is not None
        return self.store.orders

    def on_state_change(self, callback: Callable[[], None]) -> None:
        self._on_state_change.append(callback)

    def state_changed(self) -> None:
        for callback in self._on_state_change:
            callback()
        if self.remote is not None:
            self.remote.state_changed()

    def state(self) -> dict[str, Any]:
        """The retained `state` (CONTRACTS section 3): doors, devices, business, outbox."""
        store = self.store
        doors = store.doors if store else {}
        access = store.access.state if store else AccessState()
        # The contract's door states are locked/open/held_open; a released door that
        # nobody opened yet is still closed and latched, so it reads `locked` (with
        # `released` in door_info).
        out: dict[str, Any] = {
            "doors": {
                d: ("locked" if door.state == "unlocked" else str(door.state))
                for d, door in doors.items()
            },
            "door_info": {
                d: {
                    "released": door.state == "unlocked",
                    "lockdown": d in access.lockdown,
                    "occupancy": access.occupancy.get(d, 0),
                }
                for d, door in doors.items()
            },
            "devices": {
                d: "online" if self.device_online.get(d) else "error"
                for d in (store.devices if store else {})
            },
            "business": "open" if access.business_open else "closed",
            "outbox_depth": 0,
        }
        for service in store.services if store else ():
            part = service.state()
            if part:
                out[service.name] = part
        if self.relay is not None:
            stats = self.relay.stats()
            out["outbox_depth"] = stats.get("undelivered", 0)
            out["outbox_oldest_age_s"] = stats.get("oldest_age_s")
        return out

    def status(self) -> dict[str, Any]:
        store = self.store
        return {
            "version": agent.__version__,
            "store": self.cfg.store.id,
            "started_at": self.started_at,
            "now": self.clock.now_rfc3339(),
            "state": self.state(),
            "orders_pending": sum(
                1 for o in store.orders.by_id.values() if o.get("status") == "pending"
            )
            if store
            else 0,
            "products": len(self.catalog),
            "decisions": store.access.decisions if store else 0,
            "access_latency": store.access.latency_summary() if store else {},
            "relay": self.relay.stats() if self.relay is not None else None,
            "keys": self.hub_keys.trust.describe() if self.hub_keys is not None else None,
        }

    async def local_command(self, name: str, args: dict[str, Any], by: str) -> dict[str, Any]:
        """A service's command, asked from inside the store (`by`: who, for the journal)."""
        store = self.store
        for service in store.services if store else ():
            handler = service.commands().get(name)
            if handler is not None:
                # Staff on the spot: who asked, with an id of its own; nothing is signed.
                jti = f"local-{new_ulid(int(self.clock.now() * 1000))}"
                return await handler(args, Caller(sub=by, jti=jti))
        raise CommandError(UNSUPPORTED, f"this store has nothing that does {name!r}")

    # --- events from devices -------------------------------------------------------

    def _on_device_event(self, ev: DeviceEvent) -> None:
        store = self.store
        if store is None or self._stopping.is_set():
            return
        # Every service hears a device come and go; anything else belongs to one taker.
        presence = isinstance(ev, DeviceOnline | DeviceOffline)
        for service in store.services:
            if service.on_device_event(ev) and not presence:
                return
        match ev:
            case ScanRead(device, line, read_ns):
                if device in store.scanners:
                    self._spawn(
                        store.access.on_scan(store.scanners[device], line, read_ns), inflight=True
                    )
                elif device in store.keypads:
                    self._spawn(store.access.on_answer(store.keypads[device], line), inflight=True)
            case ContactChanged(device, inp, is_open):
                door = store.contacts.get((device, inp))
                if door:
                    store.doors[door].contact(is_open)
            case ExitRequested(device, inp):
                door = store.exits.get((device, inp))
                if door:
                    store.doors[door].exit_requested()
            case DeviceOnline(device):
                self._device_status(device, True, "")
            case DeviceOffline(device, reason):
                self._device_status(device, False, reason)

    def _device_status(self, device: str, online: bool, reason: str) -> None:
        if self.device_online.get(device) == online:
            return
        self.device_online[device] = online
        self.state_changed()
        if online:
            log.info("device %s online", device)
        else:
            log.warning("device %s offline: %s", device, reason)
        data = {"device": device} | ({} if online else {"reason": reason})
        self._spawn(
            self._append("device.online" if online else "device.offline", data), inflight=True
        )

    async def _append(self, type_: str, data: dict[str, Any]) -> None:
        if self.journal is None:
            return
        try:
            await self.journal.append(type_, data)
        except JournalError as e:
            log.error("could not journal %s: %s", type_, e)

    async def _watch_clock(self) -> None:
        """A Pi's clock jumps when NTP finally syncs; the journal records each jump."""
        while True:
            await asyncio.sleep(CLOCK_CHECK_S)
            if self.journal is not None:
                try:
                    for ev in await self.journal.check_clock():
                        log.warning("clock jumped: %s", ev.data)
                except JournalError as e:
                    log.error("could not record a clock jump: %s", e)

    def health(self) -> dict[str, Any]:
        """What `shopgate-agent doctor` cannot see from outside without disturbing us."""
        relay = self.relay.stats() if self.relay is not None else None
        return {
            "mqtt": {"connected": self.remote is not None and self.remote.connected},
            "hub": relay,
            "devices": dict(self.device_online),
        }

    async def _write_health(self) -> None:
        path = self.cfg.storage.dir / health_file.NAME
        while True:
            try:
                await asyncio.to_thread(health_file.write, path, self.health())
            except OSError as e:
                log.warning("cannot write %s: %s", path, e)
            await asyncio.sleep(HEALTH_S)

    async def _maintenance(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_S)
            if self.journal is None or self.store is None:
                continue
            try:
                report = await self.journal.maintain()
            except JournalError as e:
                log.error("journal maintenance failed: %s", e)
                continue
            horizon = self.clock.now() - self.cfg.access.clock_skew_seconds
            used = self.store.access.state.used_jti
            for jti in [j for j, exp in used.items() if exp < horizon]:
                del used[jti]
            if getattr(report, "over_cap", False):
                log.warning(
                    "journal is over its size cap; only events that must not be lost remain"
                )

    def _spawn(self, coro: Coroutine[Any, Any, Any], *, inflight: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        (self._inflight if inflight else self._tasks).add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())
