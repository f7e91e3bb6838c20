"""What every simulated device offers the hardware it belongs to and the control API."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field


class DeviceUnplugged(Exception):
    """The device is unplugged right now, so it cannot do what the control API asked."""


class SimDevice(abc.ABC):
    """One simulated device: owns its port (a pseudo-terminal or a socket).

    `port_changed` is called (on the loop) whenever the port appears, moves or
    disappears, so the hardware can re-point its symlink and rewrite devices.json.
    """

    kind: ClassVar[str]

    def __init__(self, device_id: str) -> None:
        self.id = device_id
        self.port_changed: Callable[[SimDevice], None] = lambda _device: None

    @property
    @abc.abstractmethod
    def path(self) -> str | None:
        """The serial device node (/dev/pts/N), or None when it has none (unplugged, TCP)."""

    @property
    def tcp_port(self) -> int | None:
        return None

    def describe(self) -> dict[str, object]:
        """This device's entry in devices.json."""
        return {"kind": self.kind, "path": self.path, "port": self.tcp_port}

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close everything; may be called twice."""

    @abc.abstractmethod
    async def unplug(self, seconds: float) -> None:
        """Disappear now and come back on a new port after `seconds`."""


DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class DeviceSpec(BaseModel):
    """One entry of the simulator config's `devices` list; each kind extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Becomes a file name in the run folder (the device's symlink), hence the pattern.
    id: str = Field(pattern=DEVICE_ID_PATTERN, max_length=64)
    kind: str


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """Everything the simulator needs to know about one kind of device.

    `spec` validates its config entry, `build` makes the device from that spec, and
    `routes` adds its control API routes (given every device, keyed by id); it may raise
    ValueError for a config problem that spans devices.
    """

    spec: type[DeviceSpec]
    build: Callable[[Any], SimDevice]
    routes: Callable[[Mapping[str, SimDevice]], list[web.RouteDef]]
