"""The remote commands (CONTRACTS section 3), executed against the running agent.

The MQTT transport (agent/mqtt/) has already verified the signature, scope, store,
expiry and single use of the command; this module checks the arguments and acts.
Every state change is written through the journal before it is visible, and most
commands journal an event saying what changed and who asked (`by`: the command's sub).
Commands for hardware the store does not have answer `unsupported`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from agent.devices.base import DeviceError
from agent.journal import JournalError, PutProduct, PutSetting
from agent.model.commands import (
    BAD_ARGS,
    FAILED,
    UNKNOWN_COMMAND,
    UNSUPPORTED,
    Caller,
    CommandError,
    Handler,
)
from agent.model.commands import arg as _arg
from agent.rules.key_trust import KeyRuleError
from agent.services.orders import OrderError
from storerules.gtin import gtin_check_digit_ok

if TYPE_CHECKING:
    from agent.clock import Clock
    from agent.journal import Journal
    from agent.order_sync import OrderSync
    from agent.relay import Relay
    from agent.rules.decide import AccessState
    from agent.rules.passes import PassVerifier
    from agent.services.door import Door
    from agent.services.hub_keys import HubKeys
    from agent.services.orders import PendingOrders
    from agent.services.store import Store


class StoreAgent(Protocol):
    """What the store commands use of the running agent (agent/app.py's Agent): this and
    nothing more, so they do not depend on the whole agent."""

    clock: Clock
    store: Store | None
    journal: Journal | None
    hub_keys: HubKeys | None
    relay: Relay | None
    order_sync: OrderSync | None
    catalog: dict[str, dict[str, Any]]
    verifier: PassVerifier

    def status(self) -> dict[str, Any]: ...

    def access_state(self) -> AccessState: ...

    def store_doors(self) -> dict[str, Door]: ...

    def orders(self) -> PendingOrders: ...

    def state_changed(self) -> None: ...

    async def reload(self) -> tuple[bool, list[str]]: ...


log = logging.getLogger(__name__)

MAX_UNLOCK_S = 300


class StoreCommands:
    """`handle(cmd, args, caller)` for the MQTT transport."""

    def __init__(self, agent: StoreAgent) -> None:
        self.agent = agent
        self._handlers: dict[str, Handler] = {
            "ping": self.ping,
            "status": self.status,
            "unlock": self.unlock,
            "enter": self.enter,
            "lockdown": self.lockdown,
            "business": self.business,
            "reload": self.reload,
            "orders.upsert": self.orders_upsert,
            "orders.cancel": self.orders_cancel,
            "catalog.upsert": self.catalog_upsert,
            "keys.set": self.keys_set,
            "keys.reset": self.keys_reset,
            "sync": self.sync,
            # Answered by a store service (agent/services/) when the store has the hardware.
            "print": self.no_device("printer"),
            "locker.open": self.no_device("locker"),
            "vend": self.no_device("vending machine"),
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    async def __call__(self, cmd: str, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        handler = self._handlers.get(cmd)
        store = self.agent.store
        for service in store.services if store else ():
            handler = service.commands().get(cmd, handler)  # a service's command wins
        if handler is None:
            raise CommandError(
                UNKNOWN_COMMAND, f"unknown command {cmd!r} (known: {', '.join(self.names)})"
            )
        if not isinstance(args, dict):
            raise CommandError(BAD_ARGS, "args must be an object")
        try:
            return await handler(args, caller)
        except JournalError as e:
            raise CommandError(FAILED, f"could not record it: {e}") from e

    # --- the commands ----------------------------------------------------------------

    async def ping(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return {"pong": True, "ts": self.agent.clock.now_rfc3339()}

    async def status(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self.agent.status()

    async def unlock(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        door = self._door(args)
        seconds = _arg(args, "seconds", (int, float), required=False)
        if seconds is not None and not (0 < seconds <= MAX_UNLOCK_S and math.isfinite(seconds)):
            raise CommandError(BAD_ARGS, f"seconds must be between 0 and {MAX_UNLOCK_S}")
        journal = self._journal()
        data = {
            "door": door.id,
            "method": "remote",
            "scope": "ops",
            "sub": caller.sub,
            "jti": caller.jti,
        }
        await journal.append("access.granted", data)
        try:
            await door.release(by="remote", seconds=seconds, data={"sub": caller.sub})
        except DeviceError as e:
            await journal.append("door.unlock_failed", {"door": door.id, "error": str(e)})
            raise CommandError(FAILED, f"the lock of door {door.id!r} did not open: {e}") from e
        return {"door": door.id, "seconds": seconds or door.cfg.unlock_seconds}

    async def enter(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """A pass presented remotely (the hub's entry page, right after the customer
        answered): decided exactly as if scanned at the door, so lockdown, hours,
        occupancy, the block list and single use all apply. `unlock` is for operators."""
        door = self._door(args)
        token = _arg(args, "pass", str)
        if self.agent.store is None:
            raise CommandError(FAILED, "the agent is stopping")
        decision = await self.agent.store.access.on_scan(door.id, token)
        return {"door": door.id, "granted": decision.granted, "reason": str(decision.reason)}

    async def lockdown(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        door = self._door(args)
        on = _arg(args, "on", bool)
        state = self.agent.access_state()
        wanted = set(state.lockdown) | {door.id} if on else set(state.lockdown) - {door.id}
        setting = {d: d in wanted for d in self.agent.store_doors()}
        await self._journal().append(
            "door.lockdown",
            {"door": door.id, "on": on, "by": caller.sub},
            ops=[PutSetting("lockdown", setting)],
        )
        state.lockdown.clear()
        state.lockdown.update(wanted)
        self.agent.state_changed()
        return {"door": door.id, "lockdown": on}

    async def business(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        status = _arg(args, "status", str)
        if status not in ("open", "closed"):
            raise CommandError(BAD_ARGS, "status must be 'open' or 'closed'")
        await self._journal().append(
            "business.changed",
            {"status": status, "by": caller.sub},
            ops=[PutSetting("business.status", status)],
        )
        self.agent.access_state().business_open = status == "open"
        self.agent.state_changed()
        return {"business": status}

    async def reload(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        ok, problems = await self.agent.reload()
        if not ok:
            raise CommandError(
                FAILED, "the new config is invalid; the running one stays", problems=problems
            )
        return {"reloaded": True}

    async def orders_upsert(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        orders = _arg(args, "orders", list)
        try:
            ids = await self.agent.orders().upsert(orders)
        except OrderError as e:
            raise CommandError(BAD_ARGS, str(e)) from e
        await self._journal().append("orders.received", {"ids": ids, "by": caller.sub})
        return {"upserted": ids}

    async def orders_cancel(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        ids = _arg(args, "ids", list)
        if not all(isinstance(i, str) and i for i in ids):
            raise CommandError(BAD_ARGS, "ids must be a list of order ids")
        cancelled = await self.agent.orders().cancel(ids)
        if cancelled:
            await self._journal().append("orders.cancelled", {"ids": cancelled, "by": caller.sub})
        return {"cancelled": cancelled, "unchanged": [i for i in ids if i not in cancelled]}

    async def catalog_upsert(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        products = _arg(args, "products", list)
        checked = [_product(p, i) for i, p in enumerate(products)]
        await self._journal().apply([PutProduct(p) for p in checked])
        self.agent.catalog.update({p["barcode"]: p for p in checked})
        # A product may carry the hub's count (`stock`): the store counts from it.
        counts = {p["barcode"]: p["stock"] for p in checked if "stock" in p}
        store = self.agent.store
        if counts and store is not None and store.stock is not None:
            await store.stock.set_counts(counts)
        return {"upserted": len(checked)}

    async def keys_set(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """Replace the keys installed by keys.set (the config's keys stay, always). The new
        keys are trusted for as long as the key that signed this command is: removing or
        revoking it in the config drops them (agent/rules/key_trust.py)."""
        keys = _arg(args, "keys", list)
        try:
            if caller.kid is None:  # keys come only from the hub, signed
                raise CommandError(BAD_ARGS, "keys.set must come signed by a hub key")
            return await self._hub_keys().set_keys(keys, signer=caller.kid, by=caller.sub)
        except KeyRuleError as e:
            raise CommandError(BAD_ARGS, str(e)) from e

    async def keys_reset(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """Drop every key keys.set installed: only the config's keys stay trusted."""
        dropped = await self._hub_keys().reset(by=caller.sub)
        return {"dropped": dropped, "kids": sorted(self.agent.verifier.kids)}

    async def sync(self, args: dict[str, Any], caller: Caller) -> dict[str, Any]:
        relay = self.agent.relay
        if relay is None:
            raise CommandError(UNSUPPORTED, "this agent has no hub relay configured")
        relay.sync_now()
        if self.agent.order_sync is not None:
            self.agent.order_sync.sync_now()  # and fetch orders the store may have missed
        return {"outbox": relay.stats()}

    def no_device(self, what: str) -> Handler:
        async def handler(args: dict[str, Any], caller: Caller) -> dict[str, Any]:
            raise CommandError(UNSUPPORTED, f"this store has no {what}")

        return handler

    # --- helpers ---------------------------------------------------------------------

    def _door(self, args: Mapping[str, Any]) -> Any:
        door_id = _arg(args, "door", str)
        doors = self.agent.store_doors()
        if door_id not in doors:
            raise CommandError(BAD_ARGS, f"no door {door_id!r} (doors: {', '.join(doors)})")
        return doors[door_id]

    def _hub_keys(self) -> HubKeys:
        if self.agent.hub_keys is None:
            raise CommandError(FAILED, "the agent is stopping")
        return self.agent.hub_keys

    def _journal(self) -> Any:
        if self.agent.journal is None:
            raise CommandError(FAILED, "the agent is stopping")
        return self.agent.journal


def _product(raw: Any, i: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CommandError(BAD_ARGS, f"products[{i}] must be an object")
    barcode = raw.get("barcode")
    if not (
        isinstance(barcode, str)
        and barcode.isdigit()
        and len(barcode) in (8, 12, 13)
        and gtin_check_digit_ok(barcode)
    ):
        raise CommandError(
            BAD_ARGS,
            f"products[{i}].barcode must be an EAN-8/EAN-13/UPC-A with a valid check digit",
        )
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise CommandError(BAD_ARGS, f"products[{i}].name must be a non-empty string")
    price = raw.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
        raise CommandError(BAD_ARGS, f"products[{i}].price must be a number >= 0")
    if "shelf" in raw and not isinstance(raw["shelf"], str):
        raise CommandError(BAD_ARGS, f"products[{i}].shelf must be a string")
    stock = raw.get("stock")
    if "stock" in raw and (isinstance(stock, bool) or not isinstance(stock, int)):
        raise CommandError(BAD_ARGS, f"products[{i}].stock must be a whole number")
    return dict(raw)
