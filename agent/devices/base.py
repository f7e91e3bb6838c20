"""What every device driver offers upward, and the events it reports.

A driver owns one port (a serial line, a GPIO chip, a socket). It reports what happens
through the `EventSink` the app hands it (always called on the event loop's thread,
never blocking), and takes actions through small async methods. Drivers never call up
into services: they only report.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from agent.config.schema import DoorLockConfig


@dataclass(frozen=True, slots=True)
class ScanRead:
    """One line read from a scanner or keypad (terminator stripped)."""

    device: str
    line: str
    read_ns: int = field(default_factory=perf_counter_ns)


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """A door contact (or a lock's feedback used as one) changed.

    `input` names the contact on its device: "1.3" is board 1 lock 3 on a lock bus,
    "gpio27" is a GPIO pin.
    """

    device: str
    input: str
    open: bool


@dataclass(frozen=True, slots=True)
class ExitRequested:
    """Someone pressed the exit button (request to exit) inside a door."""

    device: str
    input: str


@dataclass(frozen=True, slots=True)
class DeviceOnline:
    device: str


@dataclass(frozen=True, slots=True)
class DeviceOffline:
    device: str
    reason: str


DeviceEvent = ScanRead | ContactChanged | ExitRequested | DeviceOnline | DeviceOffline
EventSink = Callable[[DeviceEvent], None]


class DeviceError(Exception):
    """A device could not do what it was asked; the message says what and why."""


class DeviceUncertain(DeviceError):
    """The request went out but no answer came back: the device may have done it.

    A lock board whose reply was lost to noise has opened the door all the same, so the
    caller must not act as if nothing happened (a pass given back would open twice)."""


class Device(abc.ABC):
    """A driver that owns one port. Start opens it (and keeps reopening it when it
    disappears); stop closes it and may be called twice."""

    id: str

    @property
    @abc.abstractmethod
    def online(self) -> bool: ...

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...


class DoorLock(abc.ABC):
    """The actuator of one door, owned by a device (a relay pin, a lock board channel)."""

    # perf_counter_ns() when the last unlock left for the hardware (frame written, pin
    # set): the end of the span the access latency is measured over.
    actuated_ns: int = 0

    @abc.abstractmethod
    async def unlock(self, seconds: float) -> None:
        """Release the door for `seconds` (the lock relocks by itself after that, or
        when the door closes, whichever the hardware does). Raises DeviceError."""

    @abc.abstractmethod
    async def relock(self) -> None:
        """Lock now (a relay drops; a lock board's latch relocks on its own)."""


@runtime_checkable
class LockProvider(Protocol):
    """A device that drives door locks (a lock board bus, a GPIO header): the app asks
    it for the lock a door's config names, whatever kind of device it is."""

    def door_lock(self, lock: DoorLockConfig) -> DoorLock: ...


@runtime_checkable
class LockFeedback(Protocol):
    """A lock device that also reports each lock's feedback as a door contact."""

    def watch(self, board: int, channel: int) -> None: ...


@runtime_checkable
class InputProvider(Protocol):
    """A device with inputs for door contacts and exit buttons."""

    def watch_input(
        self,
        pin: int | str,
        name: str = "",
        pull_up: bool = True,
        active_when_open: bool = True,
        kind: Literal["contact", "button"] = "contact",
    ) -> None: ...
