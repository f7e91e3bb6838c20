"""Locker cabinets and hotel boxes: compartments on the lock bus, locker.open, paid orders.

A locker is a run of channels on one lock board (config `lockers`): compartment N is
channel first_channel+N-1, and that channel's feedback says whether its door is open.
Opening one, for the `locker.open` command or for a paid order whose `dispense` names it:

    OPEN frame -> the board answers -> the feedback reads open within open_timeout_seconds
    -> one transaction: locker.opened + stock.changed (+ sale.completed, pickup.completed
       and the order picked_up, for a paid order)
    -> later the feedback reads shut again: locker.closed

A compartment whose board does not answer, or whose feedback stays shut, is reported as
`locker.failed` (the command answers `failed`): nothing is charged, no stock moves and a
paid order stays pending.

A paid order is opened at most once, also when it is upserted again and across restarts:
before its OPEN goes out, the order is written into the locker's setting (`locker/<id>`)
as `opening`; the outcome replaces that mark in the same transaction as its events. A
mark still `opening` at start was cut off mid-open (a crash or power cut), so nobody
knows whether the compartment opened: it is reported as failed (`interrupted`) and not
opened again by itself. After any failure the hub or staff decide, and open it for the
order with `locker.open {locker, slot, order}`.

The same setting keeps each compartment's count (`stock`): config gives it at the first
start, each opening takes one, `locker.restock` sets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from agent.config.schema import LockerConfig
from agent.devices.base import (
    ContactChanged,
    DeviceError,
    DeviceEvent,
    DeviceOffline,
    DeviceOnline,
    DeviceUncertain,
)
from agent.devices.lockbus import LockBus
from agent.journal import JournalError, Op, PutSetting, SetOrderStatus
from agent.model.commands import BAD_ARGS, FAILED, Caller, CommandError, Handler, arg
from agent.model.ids import new_ulid
from agent.services.base import StoreContext, StoreService
from agent.services.stock import StockMove

log = logging.getLogger(__name__)

SETTING_PREFIX = "locker/"
# A stop (or reload) waits this long beyond the open timeout for opens on their way.
STOP_GRACE_S = 2.0
BY_ORDER = "order"  # `by` of an opening made for a paid order


@dataclass(eq=False, slots=True)
class Compartment:
    slot: int
    channel: int
    barcode: str | None  # what it holds per config; None: nothing configured
    stock: int
    open: bool | None = None  # the feedback; None until it was first read
    read: asyncio.Event = field(default_factory=asyncio.Event)  # set at the first reading
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one opening at a time
    opened: asyncio.Future[None] | None = None  # an OPEN waiting for the feedback

    @property
    def holds(self) -> str | None:
        """The barcode an opening hands out, None when it is empty."""
        return self.barcode if self.stock > 0 else None


@dataclass(eq=False, slots=True)
class Cabinet:
    cfg: LockerConfig
    bus: LockBus
    slots: dict[int, Compartment]
    # Paid orders that were tried here and are still pending: id -> {"slot", "state"}
    # ("opening" while the OPEN is out, "failed" after). Persisted with the counts.
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    write: asyncio.Lock = field(default_factory=asyncio.Lock)  # one setting write at a time

    @property
    def id(self) -> str:
        return self.cfg.id

    @property
    def setting(self) -> str:
        return SETTING_PREFIX + self.cfg.id


class LockerFailed(CommandError):
    """A compartment did not open (already journaled as locker.failed)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(FAILED, message, reason=reason)
        self.reason = reason


class LockerService(StoreService):
    name = "lockers"

    def __init__(self, ctx: StoreContext, lockers: Sequence[LockerConfig]) -> None:
        self._ctx = ctx
        self._cabinets: dict[str, Cabinet] = {}
        self._inputs: dict[tuple[str, str], tuple[Cabinet, Compartment]] = {}
        self._dispensing: set[str] = set()  # paid orders between on_orders and their mark
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        contents_of = {lk.id: {c.slot: c for c in lk.contents} for lk in lockers}
        for lk in lockers:
            bus = ctx.devices[lk.device]
            if not isinstance(bus, LockBus):
                raise TypeError(f"locker {lk.id}: device {lk.device!r} is not a lock bus")
            slots: dict[int, Compartment] = {}
            for n in range(1, lk.slots + 1):
                content = contents_of[lk.id].get(n)
                comp = Compartment(
                    n,
                    lk.channel(n),
                    content.barcode if content else None,
                    content.stock if content else 0,
                )
                bus.watch(lk.board, comp.channel)
                slots[n] = comp
            cab = Cabinet(lk, bus, slots)
            for comp in slots.values():
                self._inputs[(bus.id, f"{lk.board}.{comp.channel}")] = (cab, comp)
            self._cabinets[lk.id] = cab

    # --- StoreService -----------------------------------------------------------------

    async def start(self) -> None:
        local = await self._ctx.journal.load_state()
        for cab in self._cabinets.values():
            saved = local.settings.get(cab.setting) or {}
            for n, s in (saved.get("slots") or {}).items():
                comp = cab.slots.get(int(n))
                # A compartment re-planned in the config (another product) starts afresh.
                if (
                    comp is not None
                    and comp.barcode is not None
                    and s.get("barcode") == comp.barcode
                ):
                    comp.stock = int(s.get("stock", 0))
            cab.orders = {
                oid: dict(mark)
                for oid, mark in (saved.get("orders") or {}).items()
                if self._pending(oid)
            }
            for oid, mark in list(cab.orders.items()):
                if mark.get("state") == "opening":
                    await self._interrupted(cab, oid, int(mark.get("slot", 0)))
        # Paid orders that arrived but were never tried (the agent stopped in between).
        todo = [o for o in self._ctx.orders.by_id.values() if self._to_dispense(o)]
        if todo:
            self._ctx.spawn(self.on_orders(todo), inflight=True)

    async def stop(self) -> None:
        self._stopping = True
        longest = max((c.cfg.open_timeout_seconds for c in self._cabinets.values()), default=0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(longest + STOP_GRACE_S):
                await self._idle.wait()

    def commands(self) -> Mapping[str, Handler]:
        return {"locker.open": self._cmd_open, "locker.restock": self._cmd_restock}

    def on_device_event(self, ev: DeviceEvent) -> bool:
        if isinstance(ev, DeviceOnline | DeviceOffline):
            if any(c.bus.id == ev.device for c in self._cabinets.values()):
                self._ctx.state_changed()
            return False
        if not isinstance(ev, ContactChanged):
            return False
        found = self._inputs.get((ev.device, ev.input))
        if found is None:
            return False
        cab, comp = found
        was, comp.open = comp.open, ev.open
        comp.read.set()
        if ev.open:
            if comp.opened is not None and not comp.opened.done():
                comp.opened.set_result(None)
            elif was is False:
                # Open with no OPEN of ours waiting: pried open, or it sprang open only
                # after its opening was given up as failed.
                log.warning("locker %s compartment %d opened unasked", cab.id, comp.slot)
                self._journal_later("locker.forced", {"locker": cab.id, "slot": comp.slot})
        elif was:
            self._journal_later("locker.closed", {"locker": cab.id, "slot": comp.slot})
        self._ctx.state_changed()
        return True

    async def on_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        todo: list[tuple[Cabinet, Mapping[str, Any]]] = []
        for order in orders:
            if not self._to_dispense(order):
                continue
            self._dispensing.add(order["id"])  # before any await: a second upsert skips it
            todo.append((self._cabinets[order["dispense"]["device"]], order))
        await asyncio.gather(*(self._dispense(cab, order) for cab, order in todo))

    def state(self) -> dict[str, Any]:
        return {
            cab.id: {
                "online": cab.bus.online,
                "slots": {
                    str(n): {
                        "door": "unknown" if c.open is None else ("open" if c.open else "closed"),
                        "barcode": c.barcode,
                        "stock": c.stock,
                    }
                    for n, c in cab.slots.items()
                },
            }
            for cab in self._cabinets.values()
        }

    # --- commands -------------------------------------------------------------------

    def _target(self, args: Mapping[str, Any]) -> tuple[Cabinet, Compartment]:
        locker_id = arg(args, "locker", str)
        slot = arg(args, "slot", int)
        cab = self._cabinets.get(locker_id)
        if cab is None:
            known = ", ".join(self._cabinets) or "none"
            raise CommandError(BAD_ARGS, f"no locker {locker_id!r} (lockers: {known})")
        comp = cab.slots.get(slot)
        if comp is None:
            raise CommandError(
                BAD_ARGS, f"locker {cab.id} has slots 1-{len(cab.slots)}, not {slot}"
            )
        return cab, comp

    async def _cmd_open(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """{locker, slot, order?}: open a compartment; with `order`, for that paid order
        (a sale, and the order picked up), e.g. after its automatic opening failed."""
        cab, comp = self._target(args)
        oid = arg(args, "order", str, required=False)
        order = None
        if oid is not None:
            order = self._ctx.orders.by_id.get(oid)
            if order is None or order.get("status") != "pending":
                status = "unknown" if order is None else order.get("status")
                raise CommandError(BAD_ARGS, f"order {oid!r} is not pending ({status})")
            if oid in self._dispensing:
                raise CommandError(FAILED, f"order {oid} is being dispensed right now")
        if comp.lock.locked():
            raise CommandError(
                FAILED, f"locker {cab.id} compartment {comp.slot} is opening already"
            )
        return await self._open(cab, comp, order=order, by=caller.sub, source=caller.jti)

    async def _cmd_restock(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """{locker, slot, stock}: staff refilled a compartment; it now holds `stock` items."""
        cab, comp = self._target(args)
        stock = arg(args, "stock", int)
        if stock < 0:
            raise CommandError(BAD_ARGS, "argument 'stock' must be 0 or more")
        if comp.barcode is None:
            raise CommandError(
                BAD_ARGS,
                f"locker {cab.id} compartment {comp.slot} has no product in the config "
                "(lockers[].contents)",
            )
        delta = stock - comp.stock
        moves = []
        if delta:
            reason = "restock" if delta > 0 else "adjust"
            extra = {"locker": cab.id, "slot": comp.slot}
            moves.append(StockMove(comp.barcode, delta, reason, caller.jti, extra))
        data = {
            "locker": cab.id,
            "slot": comp.slot,
            "barcode": comp.barcode,
            "stock": stock,
            "by": caller.sub,
        }
        await self._record(cab, [("locker.restocked", data)], moves=moves, stock={comp.slot: stock})
        self._ctx.state_changed()
        return {"locker": cab.id, "slot": comp.slot, "barcode": comp.barcode, "stock": stock}

    # --- paid orders ----------------------------------------------------------------

    def _pending(self, oid: str) -> bool:
        return self._ctx.orders.by_id.get(oid, {}).get("status") == "pending"

    def _to_dispense(self, order: Mapping[str, Any]) -> bool:
        """A paid order for one of these lockers, never tried, still pending now (the
        copy handed to on_orders may be older than a pickup made since)."""
        spec = order.get("dispense")
        if order.get("paid") is not True or not isinstance(spec, Mapping):
            return False
        device = spec.get("device")
        cab = self._cabinets.get(device) if isinstance(device, str) else None
        oid = order.get("id")
        return (
            cab is not None
            and isinstance(oid, str)
            and self._pending(oid)
            and oid not in cab.orders
            and oid not in self._dispensing
        )

    async def _dispense(self, cab: Cabinet, order: Mapping[str, Any]) -> None:
        oid = order["id"]
        try:
            slot = order["dispense"].get("slot")
            comp = cab.slots.get(slot) if type(slot) is int else None
            if comp is None:
                await self._fail(
                    cab,
                    slot if type(slot) is int else 0,
                    oid,
                    "no_such_slot",
                    f"order {oid}: locker {cab.id} has no slot {slot!r}",
                )
            await self._open(cab, comp, order=order, by=BY_ORDER, source=oid)
        except CommandError as e:
            log.warning("paid order %s not dispensed: %s", oid, e.message)
        except Exception:
            log.exception("paid order %s: dispensing failed", oid)
        finally:
            self._dispensing.discard(oid)

    # --- opening --------------------------------------------------------------------

    async def _open(
        self,
        cab: Cabinet,
        comp: Compartment,
        *,
        order: Mapping[str, Any] | None,
        by: str,
        source: str,
    ) -> dict[str, Any]:
        oid: str | None = order["id"] if order is not None else None
        if self._stopping:
            raise CommandError(FAILED, "the store is reloading or stopping; try again")
        self._busy += 1
        self._idle.clear()
        try:
            async with comp.lock:
                return await self._open_now(cab, comp, order=order, oid=oid, by=by, source=source)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _open_now(
        self,
        cab: Cabinet,
        comp: Compartment,
        *,
        order: Mapping[str, Any] | None,
        oid: str | None,
        by: str,
        source: str,
    ) -> dict[str, Any]:
        timeout = cab.cfg.open_timeout_seconds
        if not comp.read.is_set():  # just started: learn whether it is shut first
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await comp.read.wait()
        where = f"locker {cab.id} compartment {comp.slot}"
        if comp.open:
            await self._fail(cab, comp.slot, oid, "already_open", f"{where} is open already")
        if order is not None and comp.holds is None:
            await self._fail(cab, comp.slot, oid, "empty", f"{where} is empty")
        if oid is not None:
            # The mark goes to disk before the frame goes out: a paid order opens once.
            await self._record(cab, [], orders={oid: {"slot": comp.slot, "state": "opening"}})
        board = cab.cfg.board
        comp.opened = asyncio.get_running_loop().create_future()
        try:
            try:
                await cab.bus.open_lock(board, comp.channel)
            except DeviceUncertain as e:  # sent, unanswered (also: unplugged meanwhile)
                await self._fail(cab, comp.slot, oid, "no_answer", f"{where}: {e}")
            except DeviceError as e:
                await self._fail(cab, comp.slot, oid, "offline", f"{where}: {e}")
            # Read the feedback now rather than at the next poll.
            with contextlib.suppress(DeviceError):
                await cab.bus.query(board)
            try:
                async with asyncio.timeout(timeout):
                    await comp.opened
            except TimeoutError:
                await self._fail(
                    cab,
                    comp.slot,
                    oid,
                    "no_feedback",
                    f"{where}: the board took OPEN but the compartment did not open within "
                    f"{timeout:g} s (stuck door or latch?)",
                )
        finally:
            comp.opened = None
        return await self._opened(cab, comp, order=order, oid=oid, by=by, source=source)

    async def _opened(
        self,
        cab: Cabinet,
        comp: Compartment,
        *,
        order: Mapping[str, Any] | None,
        oid: str | None,
        by: str,
        source: str,
    ) -> dict[str, Any]:
        barcode = comp.holds
        items: list[tuple[str, dict[str, Any]]] = [
            (
                "locker.opened",
                {"locker": cab.id, "slot": comp.slot, "barcode": barcode, "order": oid, "by": by},
            )
        ]
        moves: list[StockMove] = []
        ops: list[Op] = []
        if barcode is not None:
            extra = {"locker": cab.id, "slot": comp.slot}
            moves.append(StockMove(barcode, -1, "locker", source, extra))
        if order is not None and oid is not None:
            items += self._sale(cab, comp, order, barcode)
            ops.append(SetOrderStatus(oid, "picked_up"))
        stock = {comp.slot: comp.stock - 1} if barcode is not None else {}
        try:
            await self._record(
                cab, items, moves=moves, ops=ops, stock=stock, orders={oid: None} if oid else {}
            )
        except JournalError as e:
            # The goods are out; the `opening` mark stays, so it is never opened again.
            log.error("locker %s compartment %d opened but not recorded: %s", cab.id, comp.slot, e)
            raise CommandError(
                FAILED, f"locker {cab.id} compartment {comp.slot} opened, but not recorded: {e}"
            ) from e
        if oid is not None:
            self._ctx.orders.set_status_in_memory([oid], "picked_up")
        self._ctx.state_changed()
        log.info(
            "locker %s compartment %d opened (%s, by %s%s)",
            cab.id,
            comp.slot,
            barcode or "empty",
            by,
            f", order {oid}" if oid else "",
        )
        return {
            "locker": cab.id,
            "slot": comp.slot,
            "opened": True,
            "barcode": barcode,
            "order": oid,
        }

    def _sale(
        self, cab: Cabinet, comp: Compartment, order: Mapping[str, Any], barcode: str | None
    ) -> list[tuple[str, dict[str, Any]]]:
        oid = order["id"]
        product = self._ctx.catalog.get(barcode, {}) if barcode else {}
        line = next(
            (
                i
                for i in order.get("items") or ()
                if isinstance(i, Mapping) and i.get("barcode") == barcode
            ),
            {},
        )
        price = _money(line.get("price", product.get("price", 0)))
        name = line.get("name") or product.get("name") or barcode
        payment = order.get("payment")
        sale = {
            "sale": new_ulid(int(self._ctx.clock.now() * 1000)),
            "channel": "locker",
            "items": [{"barcode": barcode, "name": name, "qty": 1, "price": price}]
            if barcode
            else [],
            "total": price if barcode else 0.0,
            "payment": {"id": payment.get("id"), "method": payment.get("method")}
            if isinstance(payment, Mapping)
            else None,
            "order": oid,
        }
        pickup = {
            "order": oid,
            "channel": "locker",
            "courier": None,
            "locker": cab.id,
            "slot": comp.slot,
            "platform": order.get("platform"),
            "platform_order_id": order.get("platform_order_id"),
        }
        return [("sale.completed", sale), ("pickup.completed", pickup)]

    # --- failures -------------------------------------------------------------------

    async def _fail(
        self, cab: Cabinet, slot: int, oid: str | None, reason: str, message: str
    ) -> NoReturn:
        """Journal locker.failed (a paid order keeps a `failed` mark: it is not tried
        again by itself) and raise LockerFailed."""
        log.warning("%s", message)
        data = {"locker": cab.id, "slot": slot, "order": oid, "reason": reason}
        marks = {oid: {"slot": slot, "state": "failed"}} if oid else {}
        try:
            await self._record(cab, [("locker.failed", data)], orders=marks)
        except JournalError as e:
            log.error("could not journal locker.failed for %s slot %d: %s", cab.id, slot, e)
        raise LockerFailed(message, reason)

    async def _interrupted(self, cab: Cabinet, oid: str, slot: int) -> None:
        log.warning(
            "locker %s: paid order %s was being opened in slot %d when the agent stopped; "
            "not opened again (check the compartment, then `locker.open` with the order)",
            cab.id,
            oid,
            slot,
        )
        data = {"locker": cab.id, "slot": slot, "order": oid, "reason": "interrupted"}
        await self._record(
            cab, [("locker.failed", data)], orders={oid: {"slot": slot, "state": "failed"}}
        )

    # --- the journal ----------------------------------------------------------------

    async def _record(
        self,
        cab: Cabinet,
        items: Sequence[tuple[str, dict[str, Any]]],
        *,
        moves: Sequence[StockMove] = (),
        ops: Iterable[Op] = (),
        stock: Mapping[int, int] | None = None,
        orders: Mapping[str, dict[str, Any] | None] | None = None,
    ) -> None:
        """One transaction: `items`, the stock moves' events, `ops` and the locker's new
        setting (counts and order marks). Memory follows only once it is written."""
        async with cab.write:
            counts = {n: c.stock for n, c in cab.slots.items()} | dict(stock or {})
            marks = dict(cab.orders)
            for oid, mark in (orders or {}).items():
                if mark is None:
                    marks.pop(oid, None)
                else:
                    marks[oid] = mark
            setting = {
                "slots": {
                    str(n): {"barcode": c.barcode, "stock": counts[n]}
                    for n, c in cab.slots.items()
                    if c.barcode is not None
                },
                "orders": marks,
            }
            await self._ctx.stock.move(
                moves, with_events=items, ops=[PutSetting(cab.setting, setting), *ops]
            )
            for n, c in cab.slots.items():
                c.stock = counts[n]
            cab.orders = marks

    def _journal_later(self, type_: str, data: dict[str, Any]) -> None:
        async def write() -> None:
            try:
                await self._ctx.journal.append(type_, data)
            except JournalError as e:
                log.error("could not journal %s %s: %s", type_, data, e)

        self._ctx.spawn(write(), inflight=True)


def _money(value: Any) -> float:
    try:
        return round(float(value), 2)
    except (TypeError, ValueError):
        return 0.0


def build(ctx: StoreContext) -> list[StoreService]:
    return [LockerService(ctx, ctx.cfg.lockers)] if ctx.cfg.lockers else []
