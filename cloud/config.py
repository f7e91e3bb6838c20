"""The hub's configuration (hub.yaml): schema, loader, and `check-config`.

The file is read with the agent's config machinery (agent/config: YAML with line marks,
`${VAR:-default}` expansion, pydantic errors rewritten as plain messages), so both programs
report problems the same way: `FILE:LINE: dotted.key: message`, every problem at once.
Every model forbids unknown keys; relative paths resolve against the config file's folder.
Tokens and secrets are never echoed back in a problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cloud import exposure, signing
from cloud.alerts.settings import AlertsConfig, alert_problems
from cloud.enrollment.settings import EnrollmentConfig
from cloud.limits.settings import DoorLimit, LimitsConfig
from cloud.payments.settings import PaymentsConfig
from runtime.config.loader import check_config_main as yaml_check_config_main
from runtime.config.loader import load_model
from runtime.config.paths import ConfigPath
from runtime.config.yamltree import Loc
from runtime.mqtt.settings import MqttTlsConfig, parse_mqtt_url
from storerules.lifetimes import MAX_LIFETIME_S

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DOOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"  # as the agent's doors.id
SQLITE_FILE_NAME = "hub.db"
PLATFORM_NAMES = ("meituan", "eleme", "jddj", "douyin")
ERP_NAMES = ("wdt", "jst")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})$")


# `url: ${SHOPGATE_X_URL:-}` expands to nothing, which YAML reads as null: that is "".
OptionalText = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]


def parse_listen(text: str) -> tuple[str, int]:
    """ "127.0.0.1:8080" -> ("127.0.0.1", 8080); "[::1]:8080" -> ("::1", 8080)."""
    m = _LISTEN.match(text.strip())
    if not m or int(m["port"]) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (like 127.0.0.1:8080 or [::1]:8080)")
    return m["v6"] or m["host"], int(m["port"])


def _check_listen(text: str) -> str:
    parse_listen(text)
    return text.strip()


def _check_mqtt_url(text: str) -> str:
    if not text.startswith(("mqtt://", "mqtts://")):
        raise ValueError(f"{text!r} is not a broker URL (mqtt://host:1883 or mqtts://host:8883)")
    parse_mqtt_url(text)  # host and port; no credentials in it
    return text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(Strict):
    listen: Annotated[str, AfterValidator(_check_listen)] = Field(
        description="HOST:PORT the hub's HTTP API listens on (port 0: any free port)."
    )
    max_body_mb: int = Field(
        16, ge=1, le=256, description="Largest request body accepted, after decompression."
    )
    public_url: OptionalText = Field(
        "",
        description="The hub's address as callers reach it (https://hub.example.com), "
        "for webhook URLs that platforms sign (Meituan); empty: the address each request "
        "came in on (scheme and Host header).",
    )


class StorageConfig(Strict):
    dir: ConfigPath = Field(
        description=f"The hub's data folder; the SQLite database `{SQLITE_FILE_NAME}` lives "
        "here unless `database.url` names another database."
    )


class DatabaseConfig(Strict):
    url: OptionalText = Field(
        "",
        description="Database URL: postgresql://user@host/db, or sqlite:///path. Empty: "
        f"the SQLite file storage.dir/{SQLITE_FILE_NAME}. `--db` overrides it.",
    )


class SigningConfig(Strict):
    key_file: ConfigPath = Field(
        description="The Ed25519 private key that signs passes and commands "
        "(`shopgate-hub keygen` makes it)."
    )
    kid: str = Field(min_length=1, description="Its key id, as agents list it in access.keys.")


class MqttConfig(Strict):
    url: Annotated[str, AfterValidator(_check_mqtt_url)] = Field(
        description="Broker URL, mqtt:// or mqtts://, for commands."
    )
    topic_root: str = Field("shopgate", min_length=1, description="Topic root (CONTRACTS 3).")
    username: OptionalText = Field(
        "shopgate-hub", description="Broker login (the shipped ACL knows `shopgate-hub`)."
    )
    password_file: ConfigPath | None = Field(
        None, description="File holding the broker password (first line); none: no password."
    )
    instance_id: OptionalText = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="This hub process's name on the broker (its reply topic); empty: "
        "host name and process id. Hubs sharing a broker need different ones.",
    )
    tls: MqttTlsConfig = Field(
        MqttTlsConfig(),
        description="For an mqtts:// URL: the CA that signed the broker's certificate "
        "(deploy/mosquitto/make-certs.sh) and an optional client certificate.",
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> MqttConfig:
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together")
        return self


class CourierConfig(Strict):
    link_secret: OptionalText = Field(
        "",
        description="Secret that signs courier page links (/c/STORE/ORDER?sig=...); empty: "
        "derived from the signing key (links then change when the key does).",
    )
    pass_ttl_seconds: int = Field(
        7200,
        ge=60,
        le=MAX_LIFETIME_S["pickup"],  # agents refuse longer-lived passes
        description="How long a courier's pickup pass is valid.",
    )


class EntryQuestion(Strict):
    question: str = Field(min_length=1, max_length=200, description="Asked on the entry page.")
    answers: list[str] = Field(
        min_length=1,
        description="Accepted answers, hashed: make each with `shopgate-agent hash-answer`.",
    )

    @field_validator("answers")
    @classmethod
    def _hashed(cls, v: list[str]) -> list[str]:
        # A clear answer in the config would be served to anyone who reads the file.
        for a in v:
            if not a.startswith("scrypt$") or a.count("$") != 5:
                raise ValueError(
                    "answers are stored hashed: make each with `shopgate-agent hash-answer`"
                )
        return v


class EntryConfig(Strict):
    """The customer entry page at /s/STORE/DOOR (the door poster's QR)."""

    doors: list[Annotated[str, Field(pattern=DOOR_PATTERN)]] = Field(
        min_length=1, description="Doors with an entry page (ids as in the agent's config)."
    )
    questions: list[EntryQuestion] = Field(
        default_factory=list,
        description="The question bank; one is picked per visit. Empty: no question asked.",
    )
    pass_ttl_seconds: int = Field(
        300,
        ge=30,
        le=MAX_LIFETIME_S["entry"],  # agents refuse longer-lived passes
        description="Life of an entry pass.",
    )
    question_ttl_seconds: int = Field(
        600, ge=30, le=86400, description="Time to answer before the page asks again."
    )
    max_wrong: int = Field(
        5, ge=1, le=1000, description="Wrong answers per visitor per window before a pause."
    )
    max_wrong_per_ip: int = Field(
        20,
        ge=1,
        le=10000,
        description="Wrong answers per address per window (phones on the store's Wi-Fi share one).",
    )
    wrong_window_seconds: int = Field(
        600, ge=10, le=86400, description="The window wrong answers are counted over."
    )
    unlock_wait_seconds: float = Field(
        5.0, gt=0, le=30, description="How long a right answer waits for the door to open."
    )
    door_limit: DoorLimit = Field(
        default_factory=DoorLimit,
        description="Wrong answers at one door from everyone together (docs/hub.md).",
    )


def _check_shop_id(text: str) -> str:
    if not (1 <= len(text) <= 64 and text.isascii() and text.isprintable() and " " not in text):
        raise ValueError(
            f"{text[:70]!r} is not a shop id (1-64 printable ASCII characters, no spaces)"
        )
    return text


ShopId = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
    AfterValidator(_check_shop_id),
]


class StorePlatforms(Strict):
    """The store's shop id on each platform (Meituan app_poi_code, Eleme shop id,
    JD Daojia station no, Douyin shop id); a platform left out does not sell for it."""

    meituan: ShopId | None = None
    eleme: ShopId | None = None
    jddj: ShopId | None = None
    douyin: ShopId | None = None


class StoreErp(Strict):
    """The store in its ERP (cloud/erp): which ERP keeps its books, and under what names."""

    system: Literal["wdt", "jst"] | None = Field(
        None, description="The ERP this store's sales, fees and stock go to; none: no ERP."
    )
    shop_no: OptionalText = Field(
        "",
        description="The store's shop in the ERP (旺店通 shop_no; 聚水潭 shop_id); "
        "empty: the store id.",
    )
    warehouse_no: OptionalText = Field(
        "",
        description="The store's warehouse in the ERP (旺店通 warehouse_no; 聚水潭 "
        "wms_co_id), for stock queries and uploads; empty: the ERP's default.",
    )
    stock_source: Literal["hub", "erp"] = Field(
        "hub",
        description="Who is right about stock: `hub` (the ledger; changes are uploaded "
        "to the ERP) or `erp` (the ERP's count is polled and set in the ledger).",
    )
    address: OptionalText = Field(
        "",
        description="Receiver address on sales orders (旺店通 wants one; province, city, "
        "district and street separated by spaces).",
    )
    mobile: OptionalText = Field("", description="Receiver phone on sales orders.")


class StoreEntry(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Store id, as the store's agent knows it.")
    name: OptionalText = Field("", description="Display name.")
    token: str = Field(
        min_length=1,
        description="The store's bearer token for the hub API (kept hashed in the database).",
    )
    entry: EntryConfig | None = Field(
        None, description="The customer entry page; none: the store has no entry page."
    )
    platforms: StorePlatforms = Field(
        default_factory=StorePlatforms,
        description="The store's shop id on each delivery platform it sells on.",
    )
    auto_accept: bool = Field(
        True, description="Confirm new platform orders at once (false: the merchant does)."
    )
    shelves: dict[str, str] = Field(
        default_factory=dict,
        description="barcode -> shelf, for order items whose platform gives no shelf.",
    )
    erp: StoreErp = Field(
        default_factory=StoreErp, description="The store in its ERP (none by default)."
    )
    courier_help_url: str | None = Field(
        None,
        description="A page for riders new to the store (where to park, how to find the "
        "shelves), linked from the courier side of the door poster.",
    )
    timezone: str = Field(
        "Asia/Shanghai", description="The store's time zone: order times on its pages."
    )
    mqtt_password: str | None = Field(
        None,
        description="The store's broker password (user name: the store id), handed to its "
        "agent at enrollment; none: the store gets no broker login from the hub.",
    )
    agent_config: ConfigPath | None = Field(
        None,
        description="YAML file with this store's agent config (devices, doors, hours), "
        "handed to its agent at enrollment; none: enrollment.config_template.",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return v


class MerchantEntry(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Merchant id.")
    token: str = Field(min_length=1, description="The merchant's bearer token (read access).")
    stores: list[str] = Field(min_length=1, description="Ids of the stores the merchant reads.")


class Credentials(Strict):
    app_id: OptionalText = Field("", description="App id / key issued by the platform.")
    secret: OptionalText = Field("", description="App secret (never logged).")
    url: OptionalText = Field(
        "", description="API base URL (empty: the platform's production URL)."
    )
    token: OptionalText = Field(
        "",
        description="Access token from the merchant's authorization, where the platform "
        "asks for one (JD Daojia `token`, Douyin `access_token`); never logged.",
    )


class PlatformsConfig(Strict):
    meituan: Credentials | None = None
    eleme: Credentials | None = None
    jddj: Credentials | None = None
    douyin: Credentials | None = None
    push_max_age_seconds: int = Field(
        300,
        ge=10,
        le=86400,
        description="A push whose signed timestamp (Meituan, Eleme, JD Daojia) is further "
        "than this from the hub's clock, either way, is refused (401 stale_push): a "
        "captured push replayed later. Douyin signs no time into its pushes.",
    )


class WdtCredentials(Credentials):
    sid: OptionalText = Field(
        "", description="旺店通 seller account (sid), given with the ERP; empty: app_id."
    )


class ErpSyncConfig(Strict):
    enabled: bool = Field(True, description="Run the ERP sync at all (false: queue nothing).")
    push_sales: bool = Field(True, description="Picked-up orders and store sales as sales orders.")
    push_refunds: bool = Field(True, description="Refunds as refund orders.")
    push_fees: bool = Field(
        True, description="Platform commission and delivery fee as other-expense entries."
    )
    stock_poll_seconds: float = Field(
        300, ge=5, le=86400, description="How often stores whose stock_source is erp poll it."
    )
    retry_base_seconds: float = Field(
        10, ge=0.01, le=3600, description="First retry delay of a failed push (doubles)."
    )
    retry_max_seconds: float = Field(
        900, ge=0.01, le=86400, description="Longest delay between retries of a push."
    )
    max_refusals: int = Field(
        20,
        ge=1,
        le=1000,
        description="Times the ERP may refuse a push before it is given up (failed); an ERP "
        "that cannot be reached is retried without limit.",
    )


class ErpConfig(Strict):
    wdt: WdtCredentials | None = None
    jst: Credentials | None = None
    sync: ErpSyncConfig = ErpSyncConfig()


class HubConfig(Strict):
    http: HttpConfig
    storage: StorageConfig
    database: DatabaseConfig = DatabaseConfig()
    signing: SigningConfig
    mqtt: MqttConfig
    stores: list[StoreEntry] = Field(default_factory=list)
    merchants: list[MerchantEntry] = Field(default_factory=list)
    platforms: PlatformsConfig = PlatformsConfig()
    erp: ErpConfig = ErpConfig()
    courier: CourierConfig = CourierConfig()
    alerts: AlertsConfig = AlertsConfig()
    payments: PaymentsConfig = PaymentsConfig()
    limits: LimitsConfig = LimitsConfig()
    enrollment: EnrollmentConfig = EnrollmentConfig()

    def database_url(self, override: str | None = None) -> str:
        """The database URL as written (`--db`, else database.url, else the SQLite file)."""
        if override:
            return override
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.storage.dir / SQLITE_FILE_NAME}"


def load_hub_config(path: Path, environ: Mapping[str, str] | None = None) -> HubConfig:
    """The validated hub config in `path`, or ConfigError listing every problem found
    (the agent's loader: line numbers, `${VAR}` expansion, relative paths)."""
    return load_model(
        path,
        HubConfig,
        lambda cfg: [
            *_reference_problems(cfg),
            *_key_problems(cfg),
            *_shop_problems(cfg),
            *_erp_problems(cfg),
            *alert_problems(cfg.alerts, [s.id for s in cfg.stores], [m.id for m in cfg.merchants]),
            *_exposure_problems(cfg),
        ],
        environ,
    )


def check_config_main(path: Path) -> int:
    """`shopgate-hub check-config`: print `ok` (0) or one line per problem (2)."""
    return yaml_check_config_main(path, load_hub_config)


def _reference_problems(cfg: HubConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    store_ids: dict[str, int] = {}
    for i, store in enumerate(cfg.stores):
        if store.id in store_ids:
            out.append((("stores", i, "id"), f"duplicate store id {store.id!r}"))
        store_ids.setdefault(store.id, i)
    merchant_ids: set[str] = set()
    for i, merchant in enumerate(cfg.merchants):
        if merchant.id in merchant_ids:
            out.append((("merchants", i, "id"), f"duplicate merchant id {merchant.id!r}"))
        merchant_ids.add(merchant.id)
        for j, store_id in enumerate(merchant.stores):
            if store_id not in store_ids:
                known = ", ".join(store_ids) or "none configured"
                out.append((("merchants", i, "stores", j), f"no store {store_id!r} ({known})"))
    # A shared token would make a request's caller ambiguous; the message never shows it.
    owners: dict[str, str] = {}
    holders: list[tuple[Loc, str, str]] = [
        *((("stores", i, "token"), f"stores.{i}", s.token) for i, s in enumerate(cfg.stores)),
        *(
            (("merchants", i, "token"), f"merchants.{i}", m.token)
            for i, m in enumerate(cfg.merchants)
        ),
    ]
    for loc, name, token in holders:
        if token in owners:
            out.append((loc, f"the same token as {owners[token]}; each needs its own token"))
        owners.setdefault(token, name)
    return out


def _shop_problems(cfg: HubConfig) -> list[tuple[Loc, str]]:
    """A platform's push names a shop; two stores with one shop id would be ambiguous."""
    out: list[tuple[Loc, str]] = []
    owners: dict[tuple[str, str], str] = {}
    for i, store in enumerate(cfg.stores):
        for name in PLATFORM_NAMES:
            shop = getattr(store.platforms, name)
            if shop is None:
                continue
            if (name, shop) in owners:
                message = f"store {owners[name, shop]!r} already has {name} shop {shop!r}"
                out.append((("stores", i, "platforms", name), message))
            owners.setdefault((name, shop), store.id)
    return out


def _erp_problems(cfg: HubConfig) -> list[tuple[Loc, str]]:
    """A store's ERP must be configured under erp: (its credentials)."""
    out: list[tuple[Loc, str]] = []
    for i, store in enumerate(cfg.stores):
        name = store.erp.system
        if name is not None and getattr(cfg.erp, name) is None:
            out.append((("stores", i, "erp", "system"), f"no erp.{name} credentials configured"))
    return out


def _key_problems(cfg: HubConfig) -> list[tuple[Loc, str]]:
    try:
        signing.load_private_key(cfg.signing.key_file, cfg.signing.kid)
    except signing.SigningError as e:
        hint = ""
        key_file = cfg.signing.key_file
        if not key_file.exists() and key_file.name == signing.PRIVATE_KEY_NAME:
            hint = (
                f" (make one: shopgate-hub keygen --out {cfg.signing.key_file.parent} "
                f"--kid {cfg.signing.kid})"
            )
        return [(("signing", "key_file"), f"{e}{hint}")]
    return []


# -- a hub that other machines reach takes no demo secret (cloud/exposure.py) -------------

_TOKEN_FIX = "give it at least 24 random characters (openssl rand -hex 24)"


def reach(cfg: HubConfig, resolve: exposure.Resolver = exposure.resolve_passive) -> str | None:
    """Why other machines can call this hub (its listen address binds beyond loopback, or
    its public_url names another host, or a reverse proxy forwards to it), or None when it
    serves this machine only."""
    host, port = parse_listen(cfg.http.listen)
    return (
        exposure.listen_reach(host, port, resolve)
        or exposure.public_url_reach(cfg.http.public_url)
        or exposure.proxy_reach(cfg.limits.trusted_proxies)
    )


def weak_settings(cfg: HubConfig) -> list[tuple[Loc, str]]:
    """Every setting fit only for the loopback demo: (where, what is wrong and the fix).
    Messages never quote a secret."""
    out: list[tuple[Loc, str]] = []

    def secret(loc: Loc, value: str, fix: str, *, minimum: int, empty_ok: bool) -> None:
        why = exposure.weakness(value, minimum=minimum, empty_ok=empty_ok)
        if why is not None:
            out.append((loc, f"{why}; {fix}"))

    def demo_only(loc: Loc, value: str, fix: str) -> None:
        secret(loc, value, fix, minimum=0, empty_ok=True)

    if cfg.signing.kid.strip().lower() == exposure.DEMO_KID:
        fix = "make this hub its own key: shopgate-hub keygen --out /etc/shopgate/keys"
        out.append((("signing", "kid"), f"is the demo key's id; {fix} (its kid is derived)"))
    try:
        mode = cfg.signing.key_file.stat().st_mode
    except OSError:
        mode = 0  # _key_problems says why it cannot be read
    if mode & 0o004:
        out.append(
            (
                ("signing", "key_file"),
                f"every user of this machine can read the private key (mode {mode & 0o777:04o});"
                " chmod 0640 it, owned by root and the hub's group",
            )
        )
    for i, store in enumerate(cfg.stores):
        secret(("stores", i, "token"), store.token, _TOKEN_FIX, minimum=24, empty_ok=False)
        if store.mqtt_password is not None:
            # Handed to the store at enrollment: the broker login of a real store.
            secret(
                ("stores", i, "mqtt_password"),
                store.mqtt_password,
                "set the password mosquitto_passwd gave this store (openssl rand -hex 24)",
                minimum=exposure.MIN_SECRET_CHARS,
                empty_ok=False,
            )
    for i, merchant in enumerate(cfg.merchants):
        secret(("merchants", i, "token"), merchant.token, _TOKEN_FIX, minimum=24, empty_ok=False)
    for section, names in (("platforms", PLATFORM_NAMES), ("erp", ERP_NAMES)):
        for name in names:
            creds: Credentials | None = getattr(getattr(cfg, section), name)
            if creds is None:
                continue
            fix = f"set the secret {name} issued for this app"
            min_chars = exposure.MIN_SECRET_CHARS
            secret((section, name, "secret"), creds.secret, fix, minimum=min_chars, empty_ok=False)
            demo_only((section, name, "token"), creds.token, f"set the access token {name} issued")
    if cfg.payments.demo:
        out.append(
            (
                ("payments", "demo"),
                "is on: its 确认支付 button marks a payment paid with no money moving; "
                "set it false",
            )
        )
    secret(
        ("payments", "notify_secret"),
        cfg.payments.notify_secret,
        "set the secret your payment gateway signs with (empty: notifications refused)",
        minimum=exposure.MIN_SECRET_CHARS,
        empty_ok=True,
    )
    secret(
        ("courier", "link_secret"),
        cfg.courier.link_secret,
        "leave it empty (derived from the signing key) or set openssl rand -hex 32",
        minimum=exposure.MIN_SECRET_CHARS,
        empty_ok=True,
    )
    for i, robot in enumerate(cfg.alerts.robots):
        where: Loc = ("alerts", "robots", i)
        secret(
            (*where, "secret"),
            robot.secret,
            "set the robot's 加签 secret (SEC...) from DingTalk, or leave it empty",
            minimum=exposure.MIN_SECRET_CHARS,
            empty_ok=True,
        )
        fix = "set the robot's own webhook from DingTalk"
        demo_only((*where, "access_token"), robot.access_token, fix)
        for token in parse_qs(urlsplit(robot.url).query).get("access_token", []):
            demo_only((*where, "url"), token, fix)
    return out


def _exposure_problems(cfg: HubConfig) -> list[tuple[Loc, str]]:
    weak = weak_settings(cfg)
    where = reach(cfg) if weak else None  # resolves the listen host only when it matters
    if where is None:
        return []
    return [
        (loc, f"{message}; not on a hub other machines reach ({where})") for loc, message in weak
    ]
