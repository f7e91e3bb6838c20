"""A store as built from one config: its devices, doors and services, torn down and
rebuilt on reload (agent/app.py builds it; the store commands read it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.config.schema import AgentConfig
from agent.devices.base import Device
from agent.services.access import AccessService
from agent.services.base import StoreService
from agent.services.door import Door
from agent.services.orders import PendingOrders
from agent.services.stock import LocalStock


@dataclass
class Store:
    """Everything built from one config: torn down and rebuilt on reload."""

    cfg: AgentConfig
    devices: dict[str, Device]
    doors: dict[str, Door]
    access: AccessService
    orders: PendingOrders
    stock: LocalStock | None = None
    services: list[StoreService] = field(default_factory=list)  # printing, lockers, vending...
    scanners: dict[str, str] = field(default_factory=dict)  # device -> door
    keypads: dict[str, str] = field(default_factory=dict)  # device -> door
    contacts: dict[tuple[str, str], str] = field(default_factory=dict)  # (device, input) -> door
    exits: dict[tuple[str, str], str] = field(default_factory=dict)
