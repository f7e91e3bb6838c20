"""Vending machines over the VMC protocol: the vend command, paid orders, faults and refunds.

A vend is journaled at both ends. Before the buy goes to the machine, `vend.started`
(and, for a paid order, the order's vend record `vend/order/<id>` = started) is on
disk. The outcome then lands in one transaction:

- success: `vend.completed`, `sale.completed` (channel "vend"), the `stock.changed`
  (reason "vend", delta -1) and the slot's new count; for a paid order also
  `pickup.completed` {order, channel: "vend", courier: null}, the order marked
  picked_up and its record completed;
- a fault (jammed, motor, empty, no_motor, timeout): `vend.failed` with the fault and
  a refund request {amount, order, payment}; no stock moves; the order stays pending
  (not fulfilled, not charged) and its record says failed, so it is not vended again
  without someone deciding to.

A paid order is vended once, also across restarts: an order whose record still says
`started` when the agent starts had its buy sent but no outcome journaled (power cut
mid-vend). It is not vended again blindly: `vend.uncertain` is journaled, the order
stays pending and shows in the state for staff to check the machine.

Prices: each slot's price (the catalogue's for its barcode, else the config's) is
pushed to the machine whenever it comes online and, checked every SYNC_S, whenever the
catalogue changes it (catalog.upsert). Inventory: the agent keeps a count per slot
(first loaded from the config's `stock`, counted down by each vend) and pushes it when
the machine comes online.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from agent.config.schema import VendingDevice
from agent.devices.base import DeviceError
from agent.devices.vending import VendingMachine, VendNotStarted
from agent.journal import JournalError, PutSetting, SetOrderStatus
from agent.model.commands import BAD_ARGS, FAILED, Caller, CommandError, Handler, arg
from agent.model.ids import new_ulid
from agent.services.base import StoreContext, StoreService
from agent.services.stock import StockMove

log = logging.getLogger(__name__)

SYNC_S = 1.0
ORDER_KEY = "vend/order/"
COUNTS_KEY = "vend/slots/"  # + machine id: {slot: count}
# Records that mean "never vend this order again by itself".
SETTLED = frozenset({"started", "completed", "failed", "uncertain"})


def _money(value: float) -> float:
    return round(float(value), 2)


class VendingService(StoreService):
    name = "vending"

    def __init__(self, ctx: StoreContext, machines: Mapping[str, VendingDevice]) -> None:
        self._ctx = ctx
        self._cfgs = dict(machines)
        self._devs: dict[str, VendingMachine] = {
            mid: ctx.devices[mid]  # type: ignore[misc]  # the registry made each a VendingMachine
            for mid in machines
        }
        self._records: dict[str, dict[str, Any]] = {}  # order id -> its vend record
        self._counts: dict[str, dict[int, int]] = {mid: {} for mid in machines}
        self._busy: set[str] = set()  # orders being vended right now
        self._vending: dict[str, int | None] = dict.fromkeys(machines)
        self._tasks: list[asyncio.Task[None]] = []
        self._vends_running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        local = await self._ctx.journal.load_state()
        for key, value in local.settings.items():
            if key.startswith(ORDER_KEY) and isinstance(value, dict):
                self._records[key.removeprefix(ORDER_KEY)] = value
        first_loads: list[PutSetting] = []
        for mid, cfg in self._cfgs.items():
            stored = local.settings.get(COUNTS_KEY + mid) or {}
            counts = {int(k): int(v) for k, v in stored.items()}
            fresh = {s.slot: s.stock for s in cfg.slots if s.stock is not None}
            fresh = {k: v for k, v in fresh.items() if k not in counts}
            if fresh:
                counts.update(fresh)
                first_loads.append(PutSetting(COUNTS_KEY + mid, _counts_json(counts)))
            self._counts[mid] = counts
        if first_loads:
            await self._ctx.journal.apply(first_loads)
        await self._report_uncertain()
        for mid, dev in self._devs.items():
            dev.slot_listeners.append(lambda _slot, _state: self._ctx.state_changed())
            self._tasks.append(asyncio.create_task(self._sync(mid), name=f"vending sync {mid}"))

    async def stop(self) -> None:
        """Let a vend on its way finish (its outcome journaled) before the machine's
        driver closes: a reload must not turn a normal vend into an uncertain one."""
        self._stopping = True
        longest = max((c.vend_timeout_s for c in self._cfgs.values()), default=0.0)
        try:
            await asyncio.wait_for(self._idle.wait(), longest + 1)
        except TimeoutError:
            log.error("a vend did not finish before the vending service stopped")
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _report_uncertain(self) -> None:
        """Orders whose buy went out before a restart, with no outcome on disk."""
        for oid, rec in self._records.items():
            if rec.get("state") != "started":
                continue
            rec = {**rec, "state": "uncertain"}
            log.error(
                "vend for order %s on %s slot %s was started but its outcome is unknown "
                "(the agent stopped mid-vend); not vending it again: check the machine",
                oid,
                rec.get("machine"),
                rec.get("slot"),
            )
            await self._ctx.journal.append(
                "vend.uncertain",
                {k: rec.get(k) for k in ("machine", "slot", "barcode")} | {"order": oid},
                ops=[PutSetting(ORDER_KEY + oid, rec)],
            )
            self._records[oid] = rec

    # --- what others ask --------------------------------------------------------------

    def commands(self) -> Mapping[str, Handler]:
        return {"vend": self._vend_command}

    async def _vend_command(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        mid = arg(args, "machine", str)
        slot = arg(args, "slot", int)
        payment = arg(args, "payment", dict, required=False)
        if mid not in self._devs:
            raise CommandError(
                BAD_ARGS, f"no vending machine {mid!r} (machines: {', '.join(self._devs)})"
            )
        return await self._vend(mid, slot, order=None, payment=payment, by=caller.sub)

    async def on_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        for order in orders:
            if self._is_for_me(order):
                self._ctx.spawn(self._vend_order(order["id"]), inflight=True)

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mid, dev in self._devs.items():
            slots = dev.slots
            out[mid] = {
                "online": dev.online,
                "vending": self._vending[mid],
                "empty": sorted(s for s, st in slots.items() if st == "empty"),
                "fault": sorted(s for s, st in slots.items() if st in ("fault", "absent")),
                "uncertain": sorted(
                    oid
                    for oid, rec in self._records.items()
                    if rec.get("state") == "uncertain" and rec.get("machine") == mid
                ),
            }
        return out

    # --- paid orders ------------------------------------------------------------------

    def _is_for_me(self, order: Mapping[str, Any]) -> bool:
        dispense = order.get("dispense")
        return (
            order.get("paid") is True
            and isinstance(dispense, Mapping)
            and dispense.get("device") in self._devs
            and order.get("status", "pending") == "pending"
        )

    async def _vend_order(self, oid: str) -> None:
        order = self._ctx.orders.by_id.get(oid)
        if order is None or not self._is_for_me(order) or self._stopping:
            return
        if oid in self._busy or self._records.get(oid, {}).get("state") in SETTLED:
            log.info("order %s: already vended or being vended; not again", oid)
            return
        mid, slot = order["dispense"]["device"], order["dispense"].get("slot")
        if not isinstance(slot, int) or isinstance(slot, bool):
            log.error("order %s: dispense.slot must be a slot number, got %r", oid, slot)
            return
        if not self._devs[mid].online:
            log.info("order %s waits for vending machine %s to come online", oid, mid)
            return
        self._busy.add(oid)
        try:
            await self._vend(mid, slot, order=order, payment=order.get("payment"), by="order")
        except CommandError as e:
            log.error("order %s: not vended: %s", oid, e.message)
        except JournalError as e:
            log.error("order %s: vend not journaled: %s", oid, e)
        finally:
            self._busy.discard(oid)

    def _orders_waiting(self, mid: str) -> list[str]:
        return [
            oid
            for oid, order in self._ctx.orders.by_id.items()
            if self._is_for_me(order)
            and order["dispense"]["device"] == mid
            and self._records.get(oid, {}).get("state") not in SETTLED
            and oid not in self._busy
        ]

    # --- one vend ---------------------------------------------------------------------

    def _product(self, mid: str, slot: int) -> tuple[str, str, float]:
        """(barcode, name, price) of what a slot sells; CommandError when it sells nothing."""
        cfg_slot = self._cfgs[mid].slot(slot)
        if cfg_slot is None:
            known = ", ".join(str(s.slot) for s in self._cfgs[mid].slots) or "none"
            raise CommandError(BAD_ARGS, f"slot {slot} of {mid} sells nothing (slots: {known})")
        product = self._ctx.catalog.get(cfg_slot.barcode) or {}
        price = product.get("price")
        if not isinstance(price, int | float) or isinstance(price, bool):
            price = cfg_slot.price if cfg_slot.price is not None else 0.0
        return cfg_slot.barcode, str(product.get("name", "")), _money(price)

    async def _vend(
        self,
        mid: str,
        slot: int,
        *,
        order: Mapping[str, Any] | None,
        payment: Mapping[str, Any] | None,
        by: str,
    ) -> dict[str, Any]:
        if self._stopping:
            raise CommandError(FAILED, "the vending service is stopping; try again shortly")
        barcode, name, price = self._product(mid, slot)
        self._vends_running += 1
        self._idle.clear()
        try:
            return await self._vend_journaled(mid, slot, barcode, name, price, order, payment, by)
        finally:
            self._vends_running -= 1
            if not self._vends_running:
                self._idle.set()

    async def _vend_journaled(
        self,
        mid: str,
        slot: int,
        barcode: str,
        name: str,
        price: float,
        order: Mapping[str, Any] | None,
        payment: Mapping[str, Any] | None,
        by: str,
    ) -> dict[str, Any]:
        oid = order["id"] if order is not None else None
        what = {"machine": mid, "slot": slot, "barcode": barcode}
        started_ops: list[PutSetting] = []
        if oid is not None:
            record = {**what, "state": "started", "ts": self._ctx.clock.now_rfc3339()}
            started_ops.append(PutSetting(ORDER_KEY + oid, record))
            for item in order.get("items", []) if order is not None else []:
                if not name and isinstance(item, Mapping) and item.get("barcode") == barcode:
                    name = str(item.get("name", ""))
        # On disk before the buy goes out: a restart mid-vend then knows not to repeat it.
        await self._ctx.journal.append(
            "vend.started", {**what, "order": oid, "by": by}, ops=started_ops
        )
        if oid is not None:
            self._records[oid] = record
        self._vending[mid] = slot
        self._ctx.state_changed()
        try:
            outcome = await self._devs[mid].vend(slot)
        except VendNotStarted as e:
            await self._aborted(what, oid, str(e))
            raise CommandError(FAILED, str(e)) from e
        except DeviceError as e:  # defensive: the driver reports every other end as an outcome
            log.error("%s slot %d: %s", mid, slot, e)
            outcome = "timeout"
        finally:
            self._vending[mid] = None
            self._ctx.state_changed()
        pay = _payment(payment)
        if outcome == "success":
            sale = await self._completed(what, name, price, order, pay)
            log.info("%s slot %d vended %s (order %s)", mid, slot, barcode, oid)
            return {**what, "result": "success", "sale": sale, "order": oid}
        log.warning("%s slot %d failed: %s (order %s); refund requested", mid, slot, outcome, oid)
        refund = {"amount": price, "order": oid, "payment": pay}
        ops: list[PutSetting] = []
        if oid is not None:
            record = {**self._records[oid], "state": "failed", "fault": outcome}
            ops.append(PutSetting(ORDER_KEY + oid, record))
        await self._ctx.journal.append(
            "vend.failed", {**what, "fault": outcome, "order": oid, "refund": refund}, ops=ops
        )
        if oid is not None:
            self._records[oid] = record
        return {**what, "result": outcome, "order": oid, "refund": refund}

    async def _aborted(self, what: dict[str, Any], oid: str | None, reason: str) -> None:
        """Nothing went out: the order may be vended once the machine is back."""
        ops = [PutSetting(ORDER_KEY + oid, None)] if oid is not None else []
        await self._ctx.journal.append(
            "vend.aborted", {**what, "order": oid, "reason": reason}, ops=ops
        )
        if oid is not None:
            self._records.pop(oid, None)

    async def _completed(
        self,
        what: dict[str, Any],
        name: str,
        price: float,
        order: Mapping[str, Any] | None,
        payment: dict[str, Any] | None,
    ) -> str:
        ctx = self._ctx
        mid, slot, barcode = what["machine"], what["slot"], what["barcode"]
        oid = order["id"] if order is not None else None
        sale = f"vend-{new_ulid(int(ctx.clock.now() * 1000))}"
        events: list[tuple[str, dict[str, Any]]] = [
            ("vend.completed", {**what, "price": price, "order": oid, "sale": sale}),
            (
                "sale.completed",
                {
                    "sale": sale,
                    "channel": "vend",
                    "items": [{"barcode": barcode, "name": name, "qty": 1, "price": price}],
                    "total": price,
                    "payment": payment,
                    "order": oid,
                },
            ),
        ]
        counts = dict(self._counts[mid])
        if slot in counts:
            counts[slot] = max(0, counts[slot] - 1)
        ops: list[Any] = [PutSetting(COUNTS_KEY + mid, _counts_json(counts))]
        if oid is not None:
            events.append(("pickup.completed", {"order": oid, "channel": "vend", "courier": None}))
            ops.append(SetOrderStatus(oid, "picked_up"))
            record = {**self._records[oid], "state": "completed", "sale": sale}
            ops.append(PutSetting(ORDER_KEY + oid, record))
        moves = [StockMove(barcode, -1, "vend", oid or sale, {"machine": mid, "slot": slot})]
        await ctx.stock.move(moves, with_events=events, ops=ops)
        self._counts[mid] = counts
        if oid is not None:
            self._records[oid] = record
            ctx.orders.set_status_in_memory([oid], "picked_up")
        return sale

    # --- keeping the machine in line ----------------------------------------------------

    async def _sync(self, mid: str) -> None:
        """Push prices and counts when the machine comes online and prices as they
        change; vend the paid orders that waited for it."""
        dev, cfg = self._devs[mid], self._cfgs[mid]
        pushed: dict[int, int] = {}
        was_online = False
        while True:
            try:
                if dev.online:
                    if not was_online:
                        pushed.clear()
                        for slot, qty in sorted(self._counts[mid].items()):
                            await dev.set_inventory(slot, min(qty, 255))
                        for s in cfg.slots:
                            await dev.check(s.slot)
                        for oid in self._orders_waiting(mid):
                            self._ctx.spawn(self._vend_order(oid), inflight=True)
                    was_online = True
                    for s in cfg.slots:
                        fen = round(self._product(mid, s.slot)[2] * 100)
                        if pushed.get(s.slot) != fen:
                            await dev.set_price(s.slot, fen)
                            pushed[s.slot] = fen
                            log.info("%s slot %d: price %.2f pushed", mid, s.slot, fen / 100)
                else:
                    was_online = False
            except DeviceError as e:
                log.warning("vending machine %s: could not sync: %s", mid, e)
                was_online = False
            await asyncio.sleep(SYNC_S)


def _counts_json(counts: Mapping[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items())}


def _payment(payment: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(payment, Mapping):
        return None
    return {"id": payment.get("id"), "method": payment.get("method")}


def build(ctx: StoreContext) -> list[StoreService]:
    machines = {d.id: d for d in ctx.cfg.devices if isinstance(d, VendingDevice)}
    return [VendingService(ctx, machines)] if machines else []
