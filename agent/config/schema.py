"""The agent's configuration schema (installers write it as YAML).

Every model forbids unknown keys, so a typo is an error with its line number rather
than a silently ignored setting. Path fields are `ConfigPath`: relative paths resolve
against the config file's folder (the loader passes it as validation context).
docs/config.md is generated from the descriptions here (`make docs`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from runtime.config.paths import ConfigPath
from runtime.mqtt.settings import MqttTlsConfig, parse_mqtt_url
from storerules.lifetimes import MAX_LIFETIME_S

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
DOOR_SCOPES: tuple[Literal["entry", "pickup", "staff"], ...] = ("entry", "pickup", "staff")
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


class CodeLockoutConfig(Strict):
    """Escalating pauses of a door's pickup codes (agent/rules/lockout.py)."""

    pause_seconds: float = Field(
        60, gt=0, le=86400, description="The first pause, once the limit is reached."
    )
    max_pause_seconds: float = Field(
        3600,
        gt=0,
        le=7 * 86400,
        description=(
            "Each further pause of a streak is twice as long as the last, up to this; after the "
            "first pause one wrong code starts the next."
        ),
    )
    reset_after_seconds: float = Field(
        6 * 3600,
        gt=0,
        le=30 * 86400,
        description=(
            "Wrong codes are forgotten after this long with none (counted from the end of the "
            "last pause); a good code at the door forgets them at once."
        ),
    )

    @model_validator(mode="after")
    def _cap_covers_first(self) -> CodeLockoutConfig:
        if self.max_pause_seconds < self.pause_seconds:
            raise ValueError("max_pause_seconds must be at least pause_seconds")
        return self


class ScanBurstConfig(Strict):
    """Many lines at one door within a second: a QR holding line breaks, not a person."""

    lines: int = Field(
        6,
        ge=2,
        description="This many lines at one door within `seconds` are a burst (`access.burst`).",
    )
    seconds: float = Field(1.0, gt=0, le=60, description="The burst window.")


class MaxLifetimes(Strict):
    """The longest a hub-signed token may live (`exp - iat`), per scope. The hub mints
    none longer than the defaults; a store may only lower them."""

    entry: int = Field(
        MAX_LIFETIME_S["entry"], ge=60, le=MAX_LIFETIME_S["entry"], description="Entry passes."
    )
    pickup: int = Field(
        MAX_LIFETIME_S["pickup"], ge=60, le=MAX_LIFETIME_S["pickup"], description="Pickup passes."
    )
    staff: int = Field(
        MAX_LIFETIME_S["staff"], ge=60, le=MAX_LIFETIME_S["staff"], description="Staff passes."
    )
    ops: int = Field(
        MAX_LIFETIME_S["ops"],
        ge=60,
        le=MAX_LIFETIME_S["ops"],
        description="Signed remote commands (MQTT, scope `ops`).",
    )


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
            "Wrong pickup codes in a row at a door (no good code between, none forgotten after "
            "`code_lockout.reset_after_seconds` of quiet) before the door pauses codes: it "
            "answers `rate_limited` without looking them up."
        ),
    )
    revoked_kids: list[str] = Field(
        default_factory=list,
        description=(
            "Hub key ids never trusted, whatever the journal holds: a key `keys.set` installed "
            "with that kid, or through a key with that kid, is dropped for good at the next "
            "start or reload (docs/remote-ops.md, Hub keys). Not also in `keys`."
        ),
    )
    code_lockout: CodeLockoutConfig = Field(
        CodeLockoutConfig(),
        description="How long pickup codes pause after too many wrong ones (escalating).",
    )
    scan_burst: ScanBurstConfig = Field(
        ScanBurstConfig(),
        description="Lines at one door faster than a person scans: journaled as `access.burst`.",
    )
    max_lifetime_seconds: MaxLifetimes = Field(
        MaxLifetimes(),
        description="Passes and commands that live longer are refused (`malformed`).",
    )


class ClockConfig(Strict):
    """What the agent trusts about time (docs/architecture.md, "Durability and time")."""

    max_unconfirmed_seconds: int = Field(
        60,
        ge=5,
        le=3600,
        description=(
            "How far ahead of the latest time it has proof of (its saved time, the hub's "
            "signed times) the agent follows the wall clock. A larger NTP jump is held until a "
            "hub-signed time confirms it: a spoofed NTP reply moves the agent's time by at most "
            "this much."
        ),
    )


class PickupConfig(Strict):
    code_length: int = Field(6, ge=4, le=12, description="Digits in a courier pickup code.")
    when_closed: bool = Field(
        True,
        description=(
            "Couriers may pick up (code or pickup pass) outside business hours and while the "
            "business status is closed. On by default: an order taken before closing is still "
            "fetched after it, and only a pending order's code opens, so a closed store with "
            "nothing to fetch opens to no code; the code limit holds at every hour."
        ),
    )


class HubConfig(Strict):
    url: str = Field(description="Base URL of the hub.")
    token: str = Field("", description="This store's bearer token for the hub (never logged).")
    public_url: str | None = Field(
        None,
        description=(
            "The hub's address as customers' phones reach it (door poster QR codes, "
            "`shopgate-agent door-qr`); none: `url`."
        ),
    )

    @property
    def poster_base(self) -> str:
        """The base URL a door poster's QR code points at."""
        return (self.public_url or self.url).rstrip("/")


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
        description=(
            "MQTT client id; none: `shopgate-agent-STORE`. Must be unique on the broker (the "
            "shipped broker config replaces it with the user name on its TLS listener)."
        ),
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


class NetworkPrinter(Strict):
    type: Literal["network"] = Field(description="A printer on the LAN (raw TCP, port 9100).")
    host: str | None = Field(None, min_length=1, description="Its IP address or host name.")
    port: int = Field(9100, ge=1, le=65535, description="Its raw print port.")
    address_file: ConfigPath | None = Field(
        None,
        description=(
            "Instead of host/port: a file holding one line HOST:PORT, read again at every "
            "connection (the simulator writes one per TCP device: sim/<device id>)."
        ),
    )

    @model_validator(mode="after")
    def _one_address(self) -> NetworkPrinter:
        if (self.host is None) == (self.address_file is None):
            raise ValueError("give either host (and port) or address_file")
        return self


class SerialPrinter(Strict):
    type: Literal["serial"] = Field(description="A printer on a serial (RS232 or USB CDC) line.")
    port: ConfigPath = Field(description="Its serial port, best a /dev/serial/by-id/... link.")
    baudrate: int = Field(19200, description="Serial speed (baud), as set on the printer.")


class UsbPrinter(Strict):
    type: Literal["usb"] = Field(description="A USB printer class device (needs pyusb).")
    vendor_id: int = Field(ge=0, le=0xFFFF, description="USB vendor id, e.g. 0x0416.")
    product_id: int = Field(ge=0, le=0xFFFF, description="USB product id, e.g. 0x5011.")
    in_ep: int = Field(0x82, description="Bulk IN endpoint (status replies).")
    out_ep: int = Field(0x01, description="Bulk OUT endpoint (print data).")


PrinterConnection = Annotated[
    NetworkPrinter | SerialPrinter | UsbPrinter, Field(discriminator="type")
]


class PrinterDevice(Strict):
    kind: Literal["printer"] = Field(description="An ESC/POS receipt or label printer.")
    id: str = Field(
        description="Device id, unique in the store; doors and other settings name devices by it."
    )
    connection: PrinterConnection = Field(
        description="How the printer is attached: network, serial or usb."
    )
    paper_chars: int = Field(
        48,
        ge=16,
        le=96,
        description=(
            "Characters per line in the normal font: 48 for 80 mm paper, 32 for 58 mm (a "
            "Chinese character takes two)."
        ),
    )
    status_poll_seconds: float = Field(
        5,
        gt=0,
        le=3600,
        description="How often the printer's status (DLE EOT) is read while it is idle.",
    )
    timeout_seconds: float = Field(
        5, gt=0, le=120, description="Connecting, and waiting for a status reply."
    )
    print_timeout_seconds: float = Field(
        60,
        gt=0,
        description=(
            "Longest time a job may take to print once sent (while the printer says it is "
            "fine); past it the job is sent again. Time waiting for paper does not count."
        ),
    )
    confirm: Literal["printed", "received"] = Field(
        "printed",
        description=(
            "When a job counts as done. printed: the printer answers GS r 1 after printing "
            "it (a job cut off by a power cut prints again). received: for printers without "
            "GS r, the printer answered a status request sent after the job, with no error "
            "(a job lost in a power cut is not printed again)."
        ),
    )


class VendingSlot(Strict):
    slot: int = Field(ge=1, le=65535, description="Selection (slot) number on the VMC.")
    barcode: str = Field(min_length=1, description="The product this slot holds.")
    price: float | None = Field(
        None,
        ge=0,
        description=(
            "Price in yuan, used while the catalogue (catalog.upsert) has no price for the "
            "barcode; the catalogue's price wins. Pushed to the VMC when it comes online "
            "and whenever the catalogue price changes."
        ),
    )
    stock: int | None = Field(
        None,
        ge=0,
        le=255,
        description=(
            "How many the slot holds when first loaded. Pushed to the VMC once; after that "
            "the agent counts vends down and pushes its count at every start."
        ),
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
    slots: list[VendingSlot] = Field(
        default_factory=list, description="What each slot sells (slots not listed cannot be sold)."
    )
    offline_after_ms: int = Field(
        1000, ge=300, le=60000, description="No frame from the VMC for this long: offline."
    )
    vend_timeout_s: float = Field(
        30.0,
        ge=1,
        le=600,
        description="A vend with no final dispensing status after this long fails (`timeout`).",
    )
    retries: int = Field(
        3, ge=0, le=20, description="Resends of a command the VMC did not acknowledge."
    )

    @field_validator("slots")
    @classmethod
    def _slots_once(cls, slots: list[VendingSlot]) -> list[VendingSlot]:
        seen: set[int] = set()
        for s in slots:
            if s.slot in seen:
                raise ValueError(f"slot {s.slot} is listed twice")
            seen.add(s.slot)
        return slots

    def slot(self, number: int) -> VendingSlot | None:
        return next((s for s in self.slots if s.slot == number), None)


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
    layout: Literal["us", "fr"] = Field(
        "us",
        description=(
            "Keyboard layout the scanner emulates (its own setting): `us` for China and most "
            "stores; `fr` for AZERTY. A mismatch shows as unknown keys in the log."
        ),
    )
    grab: bool = Field(
        True,
        description=(
            "Take the scanner exclusively (EVIOCGRAB), so scans do not also type into a "
            "console or login prompt on the Pi."
        ),
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
    attempts: int = Field(
        3,
        ge=1,
        le=10,
        description=(
            "Wrong answers with one pass at this door before the pass is used up (`replayed` "
            "from then on, also after a restart)."
        ),
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
        default_factory=lambda: list(DOOR_SCOPES),
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

    pick_slips: str | None = Field(
        None, description="Printer for pick slips (订单小票); none: no pick slips."
    )
    receipts: str | None = Field(
        None, description="Printer for customer receipts and plain text; none: none printed."
    )
    labels: str | None = Field(
        None, description="Printer for product barcode labels; none: no labels."
    )
    auto_pick_slip: bool = Field(
        True,
        description=(
            "Print a pick slip when a new pending order arrives (once per order, however often "
            "it is updated); false: only on the `print` command."
        ),
    )
    qr_module_dots: int = Field(
        6, ge=1, le=16, description="Size of one QR code module in printer dots."
    )
    retry_seconds: float = Field(
        5, gt=0, le=3600, description="Wait between attempts while a printer cannot print."
    )


class LockerSlot(Strict):
    slot: int = Field(ge=1, le=24, description="Compartment number, 1 to the locker's `slots`.")
    barcode: str = Field(min_length=1, description="Barcode of the product kept in it.")
    stock: int = Field(
        1,
        ge=0,
        description=(
            "Items in it at the first start; from then on the agent keeps the count (each "
            "opening takes one, `locker.restock` sets it)."
        ),
    )


class LockerConfig(Strict):
    """A locker cabinet or hotel box: compartments on a lock bus (agent/services/lockers.py)."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
        description="Locker id, as `locker.open` and orders (`dispense.device`) name it.",
    )
    device: str = Field(description="Id of the `lockbus` device its lock board is on.")
    board: int = Field(ge=0, le=255, description="Address of its lock board on the bus.")
    first_channel: int = Field(
        1,
        ge=1,
        le=24,
        description="Board channel of compartment 1; compartment N is channel first_channel+N-1.",
    )
    slots: int = Field(ge=1, le=24, description="How many compartments it has.")
    contents: list[LockerSlot] = Field(
        default_factory=list,
        description=(
            "What each compartment holds. One not listed is empty: `locker.open` still opens it "
            "(nothing is counted), a paid order for it fails."
        ),
    )
    open_timeout_seconds: float = Field(
        3,
        gt=0,
        le=30,
        description=(
            "How long after OPEN the compartment's feedback must read open; if it does not, "
            "`locker.failed` and nothing is charged."
        ),
    )

    @model_validator(mode="after")
    def _fits(self) -> LockerConfig:
        last = self.first_channel + self.slots - 1
        if last > 24:
            raise ValueError(
                f"{self.slots} slots from channel {self.first_channel} end at channel {last}; "
                "a lock board has 24"
            )
        seen: set[int] = set()
        for c in self.contents:
            if c.slot > self.slots:
                raise ValueError(f"contents: slot {c.slot} is past the last slot ({self.slots})")
            if c.slot in seen:
                raise ValueError(f"contents: slot {c.slot} is listed twice")
            seen.add(c.slot)
        return self

    def channel(self, slot: int) -> int:
        return self.first_channel + slot - 1


class CheckoutConfig(Strict):
    """A self-checkout point: a scanner building a cart (agent/services/checkout.py)."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
        description="Checkout id, as payments and `checkout.paid` name it.",
    )
    scanner: str = Field(
        description="Id of the `scanner` or `hid_scanner` device that builds the cart."
    )
    printer: str | None = Field(
        None,
        description=(
            "Id of the `printer` device for the receipt (and, with no `listen` page, a slip "
            "with the total and the pay address); none: nothing is printed."
        ),
    )
    listen: str | None = Field(
        None,
        pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):\d{1,5}$",
        description=(
            "HOST:PORT of the checkout's own page (cart, total, pay QR) for a tablet beside the "
            "scanner, e.g. 0.0.0.0:8088; none: no page (use the printer)."
        ),
    )
    cart_timeout_seconds: int = Field(
        300, ge=30, description="A cart left untouched this long is cleared."
    )
    payment_timeout_seconds: int = Field(
        180,
        ge=30,
        le=1800,
        description=(
            "Time to pay once the QR is shown; the hub refuses the payment after it and the "
            "cart stays, to pay again."
        ),
    )
    pay_barcode: str = Field(
        "SG-PAY",
        min_length=1,
        description="A scan of this code asks for payment (as the page's 付款 button does).",
    )
    clear_barcode: str = Field(
        "SG-CLEAR",
        min_length=1,
        description="A scan of this code empties the cart (as the page's 清空 button does).",
    )


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
    clock: ClockConfig = Field(ClockConfig(), description="What the agent trusts about time.")

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
        # A USB HID scanner reads lines as well as a serial one does.
        if door.scanner is None or kinds.get(door.scanner) != "hid_scanner":
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
    out.extend(_locker_problems(cfg, kinds))
    out.extend(_checkout_problems(cfg, kinds))
    out.extend(_printing_problems(cfg, kinds))
    return out


def _printing_problems(
    cfg: AgentConfig, kinds: dict[str, str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every printer the printing section names is a configured printer."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if cfg.printing is None:
        return out
    printers = [d for d, k in kinds.items() if k == "printer"]
    for key in ("pick_slips", "receipts", "labels"):
        dev = getattr(cfg.printing, key)
        if dev is None:
            continue
        if dev not in kinds:
            out.append(
                (
                    ("printing", key),
                    f"no device {dev!r} (printers: {', '.join(printers) or 'none'})",
                )
            )
        elif kinds[dev] != "printer":
            out.append((("printing", key), f"device {dev!r} is a {kinds[dev]}, not a printer"))
    return out


def _locker_problems(
    cfg: AgentConfig, kinds: dict[str, str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Each locker names a lock bus and a board on it, and its channels are its own."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    # (bus, board, channel) -> who uses it, for collisions
    taken: dict[tuple[str, int, int], str] = {}
    for door in cfg.doors:
        if isinstance(door.lock, LockboardLock):
            key = (door.lock.device, door.lock.board, door.lock.channel)
            taken[key] = f"door {door.id!r}"
    ids: set[str] = set()
    for i, locker in enumerate(cfg.lockers):
        at: tuple[str | int, ...] = ("lockers", i)
        if locker.id in ids:
            out.append(((*at, "id"), f"duplicate locker id {locker.id!r}"))
        ids.add(locker.id)
        kind = kinds.get(locker.device)
        if kind is None:
            known = ", ".join(d for d, k in kinds.items() if k == "lockbus") or "none"
            out.append(((*at, "device"), f"no device {locker.device!r} (lock buses: {known})"))
            continue
        if kind != "lockbus":
            out.append(((*at, "device"), f"device {locker.device!r} is a {kind}, not a lockbus"))
            continue
        bus = cfg.device(locker.device)
        assert isinstance(bus, LockBusDevice)
        if locker.board not in bus.boards:
            out.append(
                (
                    (*at, "board"),
                    f"board {locker.board} is not on bus {bus.id!r} (boards: {bus.boards})",
                )
            )
            continue
        for slot in range(1, locker.slots + 1):
            key = (locker.device, locker.board, locker.channel(slot))
            if key in taken:
                out.append(
                    (
                        (*at, "board"),
                        f"slot {slot} is channel {key[2]} of board {locker.board} on "
                        f"{locker.device!r}, which {taken[key]} already uses",
                    )
                )
                break
        for slot in range(1, locker.slots + 1):
            taken.setdefault(
                (locker.device, locker.board, locker.channel(slot)), f"locker {locker.id!r}"
            )
    return out


def _checkout_problems(
    cfg: AgentConfig, kinds: dict[str, str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Each checkout names a scanner of its own and, optionally, a printer."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    ids: set[str] = set()
    door_scanners = {d.scanner for d in cfg.doors if d.scanner}
    scanners: set[str] = set()
    listens: set[str] = set()
    for i, c in enumerate(cfg.checkout):
        at: tuple[str | int, ...] = ("checkout", i)
        if c.id in ids:
            out.append(((*at, "id"), f"duplicate checkout id {c.id!r}"))
        ids.add(c.id)
        for key, dev, want in (
            ("scanner", c.scanner, ("scanner", "hid_scanner")),
            ("printer", c.printer, ("printer",)),
        ):
            if dev is None:
                continue
            if dev not in kinds:
                out.append(
                    ((*at, key), f"no device {dev!r} (devices: {', '.join(kinds) or 'none'})")
                )
            elif kinds[dev] not in want:
                out.append(
                    ((*at, key), f"device {dev!r} is a {kinds[dev]}, not a {' or '.join(want)}")
                )
        if c.scanner in door_scanners:
            out.append(((*at, "scanner"), f"scanner {c.scanner!r} already serves a door"))
        if c.scanner in scanners:
            out.append(((*at, "scanner"), f"scanner {c.scanner!r} already serves another checkout"))
        scanners.add(c.scanner)
        if c.listen is not None and c.listen in listens:
            out.append(((*at, "listen"), f"{c.listen} is already another checkout's page"))
        if c.listen is not None:
            listens.add(c.listen)
        if c.pay_barcode == c.clear_barcode:
            out.append(((*at, "clear_barcode"), "pay_barcode and clear_barcode must differ"))
    return out
