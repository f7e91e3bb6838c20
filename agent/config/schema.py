"""The agent's configuration schema (installers write it as YAML).

Every model forbids unknown keys, so a typo is an error with its line number rather
than a silently ignored setting. Path fields are `ConfigPath`: relative paths resolve
against the config file's folder (the loader passes it as validation context).
docs/config.md is generated from the descriptions here (`make docs`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return Path(value)


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_time_range(text: str) -> tuple[dt.time, dt.time | None]:
    """ "08:00-22:00" -> (08:00, 22:00); the end may be 24:00 (returned as None) and may
    be earlier than the start (the range crosses midnight)."""
    m = _RANGE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time range like 08:00-22:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r} has an impossible time (hours 00-24, minutes 00-59)")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{text!r} is empty: start and end are the same")
    return dt.time(h1, m1), None if h2 == 24 else dt.time(h2, m2)


def _check_ranges(ranges: list[str]) -> list[str]:
    for r in ranges:
        parse_time_range(r)
    return ranges


TimeRanges = Annotated[list[str], AfterValidator(_check_ranges)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Strict):
    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Store id, as the hub knows it (passes carry it as `aud`).",
    )
    name: str = Field("", description="Display name.")
    timezone: str = Field(
        "Asia/Shanghai", description="IANA time zone of the store; business hours are in it."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        # A folder name such as "Asia" makes ZoneInfo raise IsADirectoryError (an OSError).
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name like Asia/Shanghai)"
            ) from e
        return v


class StorageConfig(Strict):
    dir: ConfigPath = Field(description="The agent's data folder (journal database, settings).")
    max_journal_mb: int = Field(
        1024,
        ge=16,
        description=(
            "Size cap of the journal. Over it, delivered events go first, then undelivered "
            "door/device telemetry; access, order, stock and sale events are never dropped."
        ),
    )
    access_log_days: int = Field(180, ge=1, description="Days the local access log is kept.")


class KeyConfig(Strict):
    kid: str = Field(min_length=1, description="Key id, as in the pass's `kid` header.")
    pem_file: ConfigPath = Field(description="PEM file with the hub's Ed25519 public key.")


class AccessConfig(Strict):
    keys: list[KeyConfig] = Field(
        min_length=1, description="Hub public keys that sign passes and commands."
    )
    clock_skew_seconds: int = Field(
        60, ge=0, le=3600, description="Accepted clock skew for `exp`/`nbf`."
    )
    block_list: list[str] = Field(
        default_factory=list, description="Subjects (`sub`) refused at every door."
    )
    staff: list[str] = Field(
        default_factory=list,
        description="Staff ids whose staff passes open any door, also in lockdown and when closed.",
    )
    pickup_code_attempts: int = Field(
        5,
        ge=1,
        description=(
            "Wrong pickup codes tolerated per door per minute before it answers `rate_limited` for "
            "a minute."
        ),
    )


class PickupConfig(Strict):
    code_length: int = Field(6, ge=4, le=12, description="Digits in a courier pickup code.")
    when_closed: bool = Field(True, description="Couriers may pick up outside business hours.")


class HubConfig(Strict):
    url: str = Field(description="Base URL of the hub.")
    token: str = Field("", description="This store's bearer token for the hub (never logged).")


_MQTT_URL = re.compile(r"^(mqtts?)://(?:\[([0-9A-Fa-f:.]+)\]|([^:/\[\]@\s]+))(?::(\d{1,5}))?/?$")


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """ "mqtts://broker.example.com" -> ("broker.example.com", 8883, True)."""
    m = _MQTT_URL.match(url.strip())
    if not m:
        raise ValueError(
            f"{url!r} is not a broker URL like mqtt://host:1883 or mqtts://host:8883 "
            "(credentials go in username and password_file, not in the URL)"
        )
    scheme, v6, host, port = m.groups()
    tls = scheme == "mqtts"
    number = int(port) if port else (8883 if tls else 1883)
    if not 0 < number < 65536:
        raise ValueError(f"{url!r}: port {number} is out of range")
    return v6 or host, number, tls


class MqttTlsConfig(Strict):
    ca_file: ConfigPath | None = Field(
        None,
        description=(
            "PEM file of the CA that signed the broker's certificate; none: the system's CAs."
        ),
    )
    cert_file: ConfigPath | None = Field(
        None,
        description=(
            "Client certificate (PEM), when the broker authenticates clients by certificate."
        ),
    )
    key_file: ConfigPath | None = Field(None, description="Private key (PEM) of `cert_file`.")
    insecure: bool = Field(
        False,
        description=(
            "Skip checking the broker's certificate and host name. Only for a test broker: anyone "
            "on the path can then impersonate it."
        ),
    )


class HomeAssistantConfig(Strict):
    enabled: bool = Field(
        False,
        description=(
            "Publish Home Assistant MQTT discovery configs: each door as a lock (state only: "
            "commands must come signed, so HA cannot unlock it) and its contact as a door sensor."
        ),
    )
    prefix: str = Field(
        "homeassistant", min_length=1, description="Home Assistant's discovery prefix."
    )


class MqttConfig(Strict):
    enabled: bool = Field(
        True, description="Connect to the broker; false runs the store without remote operations."
    )
    url: str = Field(
        description=(
            "Broker URL, mqtt://HOST[:PORT] (default port 1883) or mqtts://HOST[:PORT] (TLS, 8883)."
        )
    )
    topic_root: str = Field(
        "shopgate",
        pattern=r"^[^#+/\s]+(/[^#+/\s]+)*$",
        description="Topic root; the store publishes under ROOT/STORE/.",
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="MQTT client id; none: `shopgate-agent-STORE`. Must be unique on the broker.",
    )
    username: str | None = Field(
        None,
        description="User name at the broker (deploy/mosquitto: the store id); none: anonymous.",
    )
    password_file: ConfigPath | None = Field(
        None,
        description=(
            "File holding the broker password (trailing newline ignored); read at start, never "
            "logged. Needs `username`."
        ),
    )
    tls: MqttTlsConfig = Field(MqttTlsConfig(), description="TLS settings for an mqtts:// URL.")
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description=(
            "MQTT version. With 5, a broker that refuses it is retried with 3.1.1 (no reply to "
            "response topics then)."
        ),
    )
    keepalive_seconds: int = Field(
        30,
        ge=2,
        le=3600,
        description=(
            "A dead connection is noticed within this time (the agent pings an idle broker every "
            "half of it) and the store is reported offline by the broker soon after."
        ),
    )
    session_expiry_seconds: int = Field(
        3600,
        ge=0,
        description=(
            "How long the broker keeps this store's session while it is disconnected: commands "
            "published meanwhile are delivered on reconnect (expired ones are then refused)."
        ),
    )
    reconnect_min_seconds: float = Field(
        0.5, gt=0, description="First delay before reconnecting; it doubles on each failure."
    )
    reconnect_max_seconds: float = Field(
        30, gt=0, description="Longest delay between reconnection attempts."
    )
    command_queue: int = Field(
        32,
        ge=1,
        description=(
            "Commands waiting to run (one at a time, in arrival order); more are answered `busy`."
        ),
    )
    home_assistant: HomeAssistantConfig = Field(
        HomeAssistantConfig(), description="Home Assistant MQTT discovery."
    )

    @field_validator("url")
    @classmethod
    def _broker_url(cls, v: str) -> str:
        parse_mqtt_url(v)
        return v.strip()

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.password_file is not None and not self.username:
            raise ValueError("password_file needs a username")
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together")
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds is less than reconnect_min_seconds")
        return self


WeeklyHours = dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], TimeRanges]


class BusinessConfig(Strict):
    status: Literal["open", "closed"] = Field(
        "open",
        description=(
            "Business status at first start (remote ops change it later; the change survives "
            "restarts)."
        ),
    )
    hours: TimeRanges | WeeklyHours = Field(
        default_factory=lambda: ["00:00-24:00"],
        description=(
            "Opening hours in the store's time zone: a list of ranges for every day, or a map "
            "mon..sun to lists. A range may cross midnight (22:00-06:00); its part after midnight "
            "belongs to the day it started."
        ),
    )


# --- devices ---------------------------------------------------------------------


class LockBusDevice(Strict):
    kind: Literal["lockbus"] = Field(description="An RS485 bus of lock control boards.")
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    port: ConfigPath = Field(
        description="Serial port of the RS485 adapter (or the simulator's link)."
    )
    baudrate: int = Field(9600, description="Serial speed (baud).")
    boards: list[int] = Field(min_length=1, description="Addresses of the lock boards on this bus.")
    poll_ms: int = Field(200, ge=20, description="How often each board's feedback is read.")
    timeout_ms: int = Field(150, ge=10, description="How long to wait for a reply.")
    retries: int = Field(2, ge=0, le=10, description="Retries after a missing or malformed reply.")


class ScannerDevice(Strict):
    kind: Literal["scanner"] = Field(description="A barcode/QR scanner sending one line per scan.")
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    port: ConfigPath = Field(description="Serial (USB CDC) port of the scanner.")
    baudrate: int = Field(9600, description="Serial speed (baud).")


class KeypadDevice(Strict):
    kind: Literal["keypad"] = Field(description="A keypad typing answers to the entry question.")
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    port: ConfigPath = Field(
        description="Serial port of the keypad; one line per answer, ended with Enter."
    )
    baudrate: int = Field(9600, description="Serial speed (baud).")


class GpioDevice(Strict):
    kind: Literal["gpio"] = Field(
        description="The GPIO header (relays, door contacts, exit buttons)."
    )
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    pin_factory: Literal["default", "lgpio", "rpigpio", "pigpio", "native", "mock"] = Field(
        "default", description="gpiozero pin factory; `mock` runs without hardware (tests, demos)."
    )


class PrinterDevice(Strict):
    kind: Literal["printer"] = Field(description="An ESC/POS receipt or label printer.")
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )


class VendingDevice(Strict):
    kind: Literal["vending"] = Field(
        description="A vending machine controller (VMC) on an RS232 line; the VMC is master."
    )
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    port: ConfigPath = Field(description="Serial port of the VMC link.")
    baudrate: int = Field(57600, description="Serial speed (baud).")


class HidScannerDevice(Strict):
    kind: Literal["hid_scanner"] = Field(
        description="A USB HID (keyboard-wedge) scanner read through evdev."
    )
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    path: ConfigPath = Field(
        description="Its input device, best a stable /dev/input/by-id/... link."
    )


DeviceConfig = (
    LockBusDevice
    | ScannerDevice
    | KeypadDevice
    | GpioDevice
    | PrinterDevice
    | VendingDevice
    | HidScannerDevice
)
Device = Annotated[DeviceConfig, Field(discriminator="kind")]


# --- doors -----------------------------------------------------------------------


class LockboardLock(Strict):
    type: Literal["lockboard"] = Field(
        description="A channel of a lock control board on an RS485 bus."
    )
    device: str = Field(description="Id of a `lockbus` device.")
    board: int = Field(ge=0, le=255, description="Address of the lock board on the bus.")
    channel: int = Field(ge=1, le=24, description="Lock channel on the board.")


class GpioLock(Strict):
    type: Literal["gpio"] = Field(description="A relay on a GPIO output.")
    device: str = Field(description="Id of a `gpio` device.")
    pin: int | str = Field(description="Relay output pin (BCM number or gpiozero pin name).")
    active_high: bool = Field(True, description="The relay board energises on a high output.")
    fail_safe: bool = Field(
        False,
        description=(
            "True for a maglock (unpowered = open: the relay holds it locked); false for a "
            "fail-secure strike (the relay releases it)."
        ),
    )


DoorLockConfig = Annotated[LockboardLock | GpioLock, Field(discriminator="type")]


class LockFeedbackContact(Strict):
    type: Literal["lock_feedback"] = Field(
        description="The lock board channel's feedback is the door contact."
    )


class GpioInput(Strict):
    type: Literal["gpio"] = Field(description="A switch on a GPIO input.")
    device: str = Field(description="Id of a `gpio` device.")
    pin: int | str = Field(description="Input pin (BCM number or gpiozero pin name).")
    pull_up: bool = Field(True, description="Use the internal pull-up (switch to ground).")
    active_when_open: bool = Field(
        True,
        description=(
            "For a contact: the input reads active when the door is open. For a button: active when"
            " pressed."
        ),
    )


ContactConfig = Annotated[LockFeedbackContact | GpioInput, Field(discriminator="type")]


class EntryQuestionConfig(Strict):
    keypad: str = Field(description="Id of the keypad device where the answer is typed.")
    answers: list[str] = Field(
        min_length=1, description="Hashed answers, made with `shopgate-agent hash-answer`."
    )
    timeout_seconds: int = Field(
        30, ge=5, description="Time to type the answer after scanning the pass."
    )

    @field_validator("answers")
    @classmethod
    def _hashed(cls, v: list[str]) -> list[str]:
        for a in v:
            if not a.startswith("scrypt$"):
                raise ValueError(
                    "answers are stored hashed: make each with `shopgate-agent hash-answer`"
                )
        return v


class DoorConfig(Strict):
    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
        description="Door id, as passes (`door`) and remote operations name it.",
    )
    lock: DoorLockConfig = Field(description="The lock that this door opens on a grant.")
    contact: ContactConfig | None = Field(
        None,
        description=(
            "Door contact; none means no open/closed sensing (no forced or held-open alarms)."
        ),
    )
    exit_button: GpioInput | None = Field(
        None, description="Request-to-exit button inside; none: no button."
    )
    scanner: str | None = Field(None, description="Id of the scanner at this door.")
    unlock_seconds: float = Field(
        5, gt=0, le=300, description="How long a grant keeps the door released if nobody opens it."
    )
    held_open_seconds: float = Field(
        60, gt=0, description="Open longer than this raises `door.held_open`."
    )
    scopes: list[Literal["entry", "pickup", "staff"]] = Field(
        default_factory=lambda: ["entry", "pickup", "staff"],
        description="Pass scopes this door accepts (pickup codes count as pickup).",
    )
    hours: TimeRanges | WeeklyHours | None = Field(
        None, description="This door's hours; none: the store's."
    )
    occupancy_limit: int | None = Field(
        None, ge=1, description="Most people inside at once; none: no limit."
    )
    exit_counting: Literal["button", "door_cycle"] = Field(
        "button",
        description=(
            "How exits are counted: the exit button, or any door cycle without a grant (free "
            "egress; such a cycle is then no forced-door alarm)."
        ),
    )
    lockdown: bool = Field(
        False, description="Start in lockdown (only staff passes); remote ops change it later."
    )
    entry_question: EntryQuestionConfig | None = Field(
        None,
        description="A question typed at a keypad after an entry pass; none: passes alone suffice.",
    )


# --- store services (agent/services/) ---------------------------------------------


class PrintingConfig(Strict):
    """Which printer prints what (agent/services/printing.py)."""


class LockerConfig(Strict):
    """A locker cabinet or hotel box: compartments on a lock bus (agent/services/lockers.py)."""

    id: str = Field(description="Locker id, as `locker.open` and orders name it.")


class CheckoutConfig(Strict):
    """A self-checkout point: a scanner building a cart (agent/services/checkout.py)."""

    id: str = Field(description="Checkout id.")


class AgentConfig(Strict):
    store: StoreConfig = Field(description="Who this store is.")
    storage: StorageConfig = Field(description="Where the agent keeps its data.")
    access: AccessConfig = Field(description="Who may open the doors.")
    hub: HubConfig = Field(description="The cloud hub that events go to.")
    mqtt: MqttConfig = Field(description="The broker for remote operations.")
    pickup: PickupConfig = Field(PickupConfig(), description="Courier pickups.")
    business: BusinessConfig = Field(
        BusinessConfig(), description="Business status and opening hours."
    )
    devices: list[Device] = Field(
        default_factory=list, description="The hardware attached to this agent."
    )
    doors: list[DoorConfig] = Field(min_length=1, description="The store's doors.")
    printing: PrintingConfig | None = Field(
        None, description="Receipt and label printing; none: nothing is printed."
    )
    lockers: list[LockerConfig] = Field(
        default_factory=list, description="Locker cabinets and hotel boxes."
    )
    checkout: list[CheckoutConfig] = Field(
        default_factory=list, description="Self-checkout points."
    )

    def device(self, device_id: str) -> DeviceConfig:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)


def reference_problems(cfg: AgentConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """(location, message) for every id that is duplicated or names a missing device
    or a device of the wrong kind."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    kinds: dict[str, str] = {}
    for i, d in enumerate(cfg.devices):
        if d.id in kinds:
            out.append((("devices", i, "id"), f"duplicate device id {d.id!r}"))
        # The first device of an id is the one AgentConfig.device() returns.
        kinds.setdefault(d.id, d.kind)
    seen_doors: set[str] = set()

    def ref(loc: tuple[str | int, ...], dev: str | None, want: str) -> None:
        if dev is None:
            return
        if dev not in kinds:
            out.append((loc, f"no device {dev!r} (devices: {', '.join(kinds) or 'none'})"))
        elif kinds[dev] != want:
            out.append((loc, f"device {dev!r} is a {kinds[dev]}, not a {want}"))

    for i, door in enumerate(cfg.doors):
        at: tuple[str | int, ...] = ("doors", i)
        if door.id in seen_doors:
            out.append(((*at, "id"), f"duplicate door id {door.id!r}"))
        seen_doors.add(door.id)
        lock_kind = "lockbus" if door.lock.type == "lockboard" else "gpio"
        ref((*at, "lock", "device"), door.lock.device, lock_kind)
        if isinstance(door.lock, LockboardLock) and door.lock.device in kinds:
            bus = cfg.device(door.lock.device)
            if isinstance(bus, LockBusDevice) and door.lock.board not in bus.boards:
                out.append(
                    (
                        (*at, "lock", "board"),
                        f"board {door.lock.board} is not on bus {bus.id!r} (boards: {bus.boards})",
                    )
                )
        if isinstance(door.contact, LockFeedbackContact) and door.lock.type != "lockboard":
            out.append(((*at, "contact", "type"), "lock_feedback needs a lockboard lock"))
        if isinstance(door.contact, GpioInput):
            ref((*at, "contact", "device"), door.contact.device, "gpio")
        if door.exit_button is not None:
            ref((*at, "exit_button", "device"), door.exit_button.device, "gpio")
        ref((*at, "scanner"), door.scanner, "scanner")
        if door.entry_question is not None:
            ref((*at, "entry_question", "keypad"), door.entry_question.keypad, "keypad")
        if door.exit_counting == "button" and door.occupancy_limit and door.exit_button is None:
            out.append(
                (
                    (*at, "exit_counting"),
                    "occupancy counted by exit button, but the door has no exit_button",
                )
            )
    return out
