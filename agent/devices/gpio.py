"""The Pi's GPIO header (kind `gpio`): door relays, door contacts and exit buttons.

One GpioBoard wraps one gpiozero pin factory, chosen by config: `default` lets gpiozero
pick (lgpio on current Raspberry Pi OS), `mock` is gpiozero's MockFactory (tests,
demos without hardware), the others name a library, imported only when asked for so a
missing one is a clear error naming the package to install.

Writing a pin is a register or ioctl write in this process (microseconds), so relays
are switched right on the event loop: a thread hop would only add latency. gpiozero
reports input edges on its own threads; they reach the loop only through
call_soon_threadsafe, and the sink is only ever called from the loop.

Inputs are debounced by settling: every edge (re)starts a `bounce_time` timer on the
loop, and when it fires the pin's current value is what counts. Unlike gpiozero's own
bounce_time, which ignores edges inside the window, this never misses the state a
bouncing contact finally settles in.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, Literal

from agent.config.schema import DoorLockConfig, GpioDevice, GpioLock
from agent.devices.base import (
    ContactChanged,
    Device,
    DeviceError,
    DoorLock,
    EventSink,
    ExitRequested,
)
from agent.devices.presence import Presence

log = logging.getLogger(__name__)

BOUNCE_TIME_S = 0.03

# pin_factory -> (module, class, what to install when the import fails)
_FACTORIES: dict[str, tuple[str, str, str]] = {
    "lgpio": (
        "gpiozero.pins.lgpio",
        "LGPIOFactory",
        "apt install python3-lgpio (or pip install lgpio)",
    ),
    "rpigpio": (
        "gpiozero.pins.rpigpio",
        "RPiGPIOFactory",
        "apt install python3-rpi.gpio (or pip install RPi.GPIO)",
    ),
    "pigpio": (
        "gpiozero.pins.pigpio",
        "PiGPIOFactory",
        "apt install python3-pigpio pigpiod (or pip install pigpio), and start pigpiod",
    ),
    "native": ("gpiozero.pins.native", "NativeFactory", "pip install 'gpiozero>=2'"),
    "mock": ("gpiozero.pins.mock", "MockFactory", "pip install 'gpiozero>=2'"),
}
_NO_DEFAULT_HINT = (
    "on a Raspberry Pi: apt install python3-lgpio; without GPIO hardware set pin_factory: mock"
)


def make_pin_factory(name: str) -> Any:
    """The gpiozero pin factory for a config's `pin_factory`; None for `default`
    (gpiozero's own choice, made when the first pin is claimed)."""
    if name == "default":
        return None
    try:
        module_name, class_name, install = _FACTORIES[name]
    except KeyError:
        raise DeviceError(
            f"unknown pin_factory {name!r} (known: default, {', '.join(_FACTORIES)})"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DeviceError(
            f"pin_factory {name} needs a library that is missing ({exc}): {install}"
        ) from exc
    try:
        return getattr(module, class_name)()
    except Exception as exc:
        raise DeviceError(f"pin_factory {name} cannot start: {exc}") from exc


class GpioRelayLock(DoorLock):
    """A door lock switched by a relay on one output pin.

    fail_safe=False (a strike, fail-secure): energising the relay releases the door.
    fail_safe=True (a maglock): energising holds the door, so releasing de-energises.
    The door is locked from the moment the pin is claimed.
    """

    def __init__(self, device: Any, *, fail_safe: bool) -> None:
        self._device = device  # a gpiozero DigitalOutputDevice; on = relay energised
        self.fail_safe = fail_safe
        self._relock_timer: asyncio.TimerHandle | None = None

    @property
    def locked(self) -> bool:
        return bool(self._device.value) == self.fail_safe

    async def unlock(self, seconds: float) -> None:
        self._cancel_timer()
        self._set_locked(False)
        self.actuated_ns = perf_counter_ns()
        loop = asyncio.get_running_loop()
        self._relock_timer = loop.call_later(seconds, self._relock_when_due)

    async def relock(self) -> None:
        self._cancel_timer()
        self._set_locked(True)

    def lock_now(self) -> None:
        self._cancel_timer()
        self._set_locked(True)

    def close(self) -> None:
        self.lock_now()
        self._device.close()

    def _relock_when_due(self) -> None:
        self._relock_timer = None
        self._set_locked(True)

    def _set_locked(self, locked: bool) -> None:
        energised = self.fail_safe if locked else not self.fail_safe
        try:
            if energised:
                self._device.on()
            else:
                self._device.off()
        except Exception as exc:
            raise DeviceError(f"cannot switch relay {self._device.pin}: {exc}") from exc

    def _cancel_timer(self) -> None:
        if self._relock_timer is not None:
            self._relock_timer.cancel()
            self._relock_timer = None


@dataclass(eq=False, slots=True)
class _Input:
    name: str  # the `input` of its events
    label: str
    device: Any  # a gpiozero DigitalInputDevice
    kind: Literal["contact", "button"]
    active_when_open: bool
    reported: bool | None = None  # last reported "open"/"pressed"
    settle: asyncio.TimerHandle | None = None

    def reading(self) -> bool:
        active = bool(self.device.value)
        return active if self.kind == "button" else active == self.active_when_open


class GpioBoard(Device):
    def __init__(
        self,
        cfg: GpioDevice,
        sink: EventSink,
        *,
        bounce_time: float = BOUNCE_TIME_S,
    ) -> None:
        self.id = cfg.id
        self._cfg = cfg
        self._sink = sink
        self._bounce_time = bounce_time
        self._presence = Presence(cfg.id, sink)
        self._factory: Any = None
        self._factory_made = False
        self._locks: list[GpioRelayLock] = []
        self._inputs: list[_Input] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    @property
    def online(self) -> bool:
        return self._presence.online

    @property
    def pin_factory(self) -> Any:
        """The gpiozero pin factory (None for `default` until gpiozero picks one)."""
        return self._ensure_factory()

    def door_lock(self, lock: DoorLockConfig) -> GpioRelayLock:
        if not isinstance(lock, GpioLock):
            raise DeviceError(f"{self.id} is a GPIO header: a door's lock here is a relay pin")
        return self.relay_lock(lock.pin, active_high=lock.active_high, fail_safe=lock.fail_safe)

    def relay_lock(
        self, pin: int | str, active_high: bool = True, fail_safe: bool = False
    ) -> GpioRelayLock:
        """Claim `pin` as a door relay; the door is locked from now on."""
        from gpiozero import DigitalOutputDevice

        device = self._claim(
            DigitalOutputDevice,
            pin,
            active_high=active_high,
            initial_value=fail_safe,  # locked: a maglock's relay held, a strike's dropped
        )
        lock = GpioRelayLock(device, fail_safe=fail_safe)
        self._locks.append(lock)
        return lock

    def watch_input(
        self,
        pin: int | str,
        name: str = "",
        pull_up: bool = True,
        active_when_open: bool = True,
        kind: Literal["contact", "button"] = "contact",
    ) -> None:
        """Report a door contact (ContactChanged, on change and once at start) or an
        exit button (ExitRequested on press), as input f"gpio{pin}". `name` labels the
        input in logs; `active_when_open` means "active when pressed" for a button."""
        from gpiozero import DigitalInputDevice

        device = self._claim(DigitalInputDevice, pin, pull_up=pull_up)
        item = _Input(f"gpio{pin}", name or f"gpio{pin}", device, kind, active_when_open)
        log.info("%s: watching %s %s on pin %s", self.id, kind, item.label, pin)
        # gpiozero's threads: only hop onto the loop from here.
        device.when_activated = lambda: self._edge_from_thread(item)
        device.when_deactivated = lambda: self._edge_from_thread(item)
        self._inputs.append(item)
        if self._started:
            self._report_initial(item)

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._ensure_factory()
        self._started = True
        self._presence.up()
        for item in self._inputs:
            self._report_initial(item)

    async def stop(self) -> None:
        """Lock every door and release the pins (a maglock's relay drops with them:
        that is what fail-safe means). Safe to call twice."""
        self._started = False
        for item in self._inputs:
            if item.settle is not None:
                item.settle.cancel()
            item.device.close()
        for lock in self._locks:
            lock.close()
        self._inputs.clear()
        self._locks.clear()
        if self._factory is not None:
            self._factory.close()
            self._factory = None
            self._factory_made = False

    # --- internals ------------------------------------------------------------------

    def _ensure_factory(self) -> Any:
        if not self._factory_made:
            self._factory = make_pin_factory(self._cfg.pin_factory)
            self._factory_made = True
        return self._factory

    def _claim(self, cls: Any, pin: int | str, **kwargs: Any) -> Any:
        from gpiozero.exc import BadPinFactory, GPIOZeroError

        factory = self._ensure_factory()
        try:
            return cls(pin, pin_factory=factory, **kwargs)
        except BadPinFactory as exc:
            raise DeviceError(
                f"{self.id}: no GPIO library found ({exc}); {_NO_DEFAULT_HINT}"
            ) from exc
        except (GPIOZeroError, ValueError) as exc:
            raise DeviceError(f"{self.id}: cannot use pin {pin}: {exc}") from exc

    def _edge_from_thread(self, item: _Input) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._edge, item)

    def _edge(self, item: _Input) -> None:
        if not self._started:
            return
        assert self._loop is not None
        if item.settle is not None:
            item.settle.cancel()
        item.settle = self._loop.call_later(self._bounce_time, self._settled, item)

    def _settled(self, item: _Input) -> None:
        item.settle = None
        if not self._started:
            return
        now = item.reading()
        if now == item.reported:
            return
        item.reported = now
        if item.kind == "contact":
            self._sink(ContactChanged(self.id, item.name, open=now))
        elif now:
            self._sink(ExitRequested(self.id, item.name))

    def _report_initial(self, item: _Input) -> None:
        item.reported = item.reading()
        if item.kind == "contact":
            self._sink(ContactChanged(self.id, item.name, open=item.reported))
