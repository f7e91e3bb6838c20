"""What a store service (printing, lockers, vending, self-checkout) is given and offers.

The doors are the agent's core (agent/services/door.py, access.py); every other kind of
store hardware gets one service module with a `build(ctx) -> list[StoreService]`, listed
in agent/services/registry.py. A service

- is built from the config and the devices it names, on start and on every reload;
- sees each device event first and says whether it took it (`on_device_event`);
- answers the remote commands it owns (`commands`: `print`, `locker.open`, `vend`...);
- hears about orders as they arrive (`on_orders`), e.g. to print a pick slip;
- adds its part to the retained `state` (`state`).

Services never call into each other or the app: they get what they need in the
`StoreContext`. Blocking work goes to threads (asyncio.to_thread) inside the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.clock import Clock
from agent.config.schema import AgentConfig
from agent.devices.base import Device, DeviceEvent
from agent.hub_client import HubClient
from agent.journal import Journal
from agent.model.commands import Handler
from agent.services.orders import PendingOrders
from agent.services.stock import LocalStock


@dataclass(slots=True)
class StoreContext:
    cfg: AgentConfig
    journal: Journal
    clock: Clock
    devices: Mapping[str, Device]
    orders: PendingOrders
    catalog: Mapping[str, Mapping[str, Any]]  # barcode -> product (kept current by the app)
    stock: LocalStock
    state_changed: Callable[[], None]  # republish the retained state
    # Run a coroutine in the background; `inflight` ones are drained before a stop.
    spawn: Callable[..., None]
    hub_online: Callable[[], bool]  # is the hub reachable right now (the MQTT session up)?
    hub: HubClient  # the agent's one HTTP client for its hub (agent/hub_client.py)
    # Run another service's command from inside the store, e.g. checkout asks for
    # `print` {printer, receipt}: (name, args, by) -> result; raises CommandError
    # (`unsupported` when no service has it). Services never hold each other directly.
    command: Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]]


class StoreService:
    """Base class: override what the service does; the rest does nothing."""

    name: ClassVar[str]

    async def start(self) -> None:
        """Called after the devices started."""

    async def stop(self) -> None:
        """Finish or hand back in-flight work; called before the devices stop. May be
        called twice."""

    def commands(self) -> Mapping[str, Handler]:
        """Remote commands this service answers, by name."""
        return {}

    def on_device_event(self, ev: DeviceEvent) -> bool:
        """Take a device event (never blocking: spawn work through the context).
        True when it was this service's to handle; the doors then do not see it.
        Every service sees DeviceOnline/DeviceOffline, whatever the others answer."""
        return False

    async def on_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        """Orders just added or updated (after they were journaled)."""

    def state(self) -> dict[str, Any]:
        """This service's part of the retained state, under `name`; {} adds nothing."""
        return {}
