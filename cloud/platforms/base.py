"""What every delivery platform adapter offers: check a push, read it, answer it, call back.

    adapter = PLATFORMS["meituan"](creds)           # cloud/platforms/registry.py
    adapter.verify(request)                          # PlatformAuthError -> 401
    sent = adapter.signed_at(request)                # the signed time of the push, or None
    check_fresh(sent, now=time.time(), max_age=300)  # PlatformStalePush -> 401
    push = adapter.parse_push(request)               # PlatformBadRequest -> 400
    ...                                              # OrderService.ingest(push, ...)
    return adapter.reply_ok(push)                    # the answer the platform expects
    adapter.refusal(status, message, request)        # a refusal's fields, the platform's way

    client = adapter.client(session)                 # calls back, signed as it requires
    await client.confirm_order(order)

A push is read into a `PlatformPush`: a new order (normalized, or only its id when the
platform makes us fetch it), a status change, a cancellation or a refund. Money is in
fen (1/100 yuan) throughout, as integers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from cloud import consttime
from cloud.config import Credentials

log = logging.getLogger("cloud.platforms")

PushKind = Literal["new", "status", "cancelled", "refunded", "ping"]
CALL_TIMEOUT_S = 10.0
# A platform's field longer than this is not an order we can take; bounds what we store.
MAX_TEXT = 2000
# The platforms' own clock: JD Daojia writes its timestamps as local time in China.
CHINA = dt.timezone(dt.timedelta(hours=8))
_CHINA_TIME = "%Y-%m-%d %H:%M:%S"


class PlatformError(Exception):
    """Root of the platform errors."""


class PlatformAuthError(PlatformError):
    """The push is not signed by the platform (401); the message says what was wrong."""


class PlatformStalePush(PlatformAuthError):
    """Signed by the platform, but at a time too far from now: a replay, or a clock off."""


class PlatformBadRequest(PlatformError):
    """The push cannot be read (400); the message is the reason, sent back and recorded."""


class PlatformCallError(PlatformError):
    """A call to the platform failed (transport, HTTP status, or the platform said no)."""


@dataclass(frozen=True, slots=True)
class PushRequest:
    """The parts of an incoming push that adapters look at."""

    url: str  # the URL the platform called, as it sees it, without the query string
    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # keys lower case
    body: bytes
    content_type: str = ""
    # form_params, read once: the signature check and the parse both need it
    _form: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    async def from_request(cls, request: web.Request, public_url: str) -> PushRequest:
        base = public_url.rstrip("/") if public_url else f"{request.scheme}://{request.host}"
        query: dict[str, str] = {}
        for key, value in request.query.items():
            if key in query:
                raise PlatformBadRequest(f"the query string repeats {key!r}")
            query[key] = value
        return cls(
            url=base + request.path,
            method=request.method,
            query=query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
            content_type=request.content_type,
        )


@dataclass(frozen=True, slots=True)
class OrderItem:
    name: str
    qty: int
    price: int = 0  # unit price, fen
    sku: str = ""
    barcode: str = ""
    shelf: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "barcode": self.barcode,
            "name": self.name,
            "qty": self.qty,
            "price": self.price,
            "shelf": self.shelf,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> OrderItem:
        return cls(
            name=str(raw.get("name", "")),
            qty=int(raw.get("qty", 0)),
            price=int(raw.get("price", 0)),
            sku=str(raw.get("sku", "")),
            barcode=str(raw.get("barcode", "")),
            shelf=str(raw.get("shelf", "")),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the order goes and whom the rider calls, as the platform gives it (the
    contact is the platform's masked or virtual number). Shown to the courier only after
    they proved the order is theirs (cloud/couriers)."""

    address: str = ""
    contact: str = ""
    lat: float | None = None
    lng: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "contact": self.contact, "lat": self.lat, "lng": self.lng}


def delivery_from(
    address: object, contact: object, lat: object = None, lng: object = None
) -> Delivery | None:
    """A Delivery from a platform's fields, None when it gives none of them."""

    def number(v: object) -> float | None:
        try:
            f = float(v)  # type: ignore[arg-type]  # str, int or float from the platform
        except (TypeError, ValueError):
            return None
        return f if -180.0 <= f <= 180.0 and f != 0.0 else None

    text = str(address or "").strip()[:300]
    phone = str(contact or "").strip()[:64]
    if not text and not phone:
        return None
    return Delivery(text, phone, number(lat), number(lng))


@dataclass(frozen=True, slots=True)
class NormalizedOrder:
    """An order as any platform describes it, in one shape."""

    platform: str
    platform_order_id: str
    shop_id: str
    day_seq: int
    items: tuple[OrderItem, ...]
    note: str = ""
    total: int = 0  # what the customer paid, fen
    fees: int = 0  # delivery and packing fees, fen
    commission: int = 0  # the platform's commission, fen
    platform_status: str = ""
    cancelled: bool = False  # the platform already reports it cancelled
    view_id: str = ""  # the number the platform shows people, when not the order id
    delivery: Delivery | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "platform_order_id": self.platform_order_id,
            "shop_id": self.shop_id,
            "day_seq": self.day_seq,
            "items": [i.to_json() for i in self.items],
            "note": self.note,
            "total": self.total,
            "fees": self.fees,
            "commission": self.commission,
            "platform_status": self.platform_status,
            "cancelled": self.cancelled,
            "view_id": self.view_id,
        }


@dataclass(frozen=True, slots=True)
class PlatformPush:
    """One push, read. `order` is None for a new order the platform makes us fetch
    (`needs_fetch`), and for anything but a new order."""

    platform: str
    kind: PushKind
    platform_order_id: str = ""
    shop_id: str = ""
    order: NormalizedOrder | None = None
    platform_status: str = ""
    reason: str = ""
    # What the reply must echo (Eleme's cmd and ticket); opaque to everyone else.
    reply_context: Mapping[str, str] = field(default_factory=dict)

    @property
    def needs_fetch(self) -> bool:
        return self.kind == "new" and self.order is None


@dataclass(frozen=True, slots=True)
class OrderRef:
    """What a call back about an order needs: the platform's ids for it."""

    platform_order_id: str
    shop_id: str


@dataclass(frozen=True, slots=True)
class StockLine:
    qty: int
    sku: str = ""
    barcode: str = ""


class PlatformClient(ABC):
    """Calls to one platform's API, signed as it requires, from `base_url`."""

    name: str
    default_url: str

    def __init__(self, creds: Credentials, session: aiohttp.ClientSession | None = None) -> None:
        self.creds = creds
        self._session = session
        self._own_session = session is None
        self.base_url = (creds.url or self.default_url).rstrip("/")

    @property
    def session(self) -> aiohttp.ClientSession:
        """The given session, or one of the client's own, made on first use."""
        if self._session is None or (self._own_session and self._session.closed):
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @abstractmethod
    async def confirm_order(self, order: OrderRef) -> None: ...

    @abstractmethod
    async def picking_done(self, order: OrderRef) -> None: ...

    @abstractmethod
    async def update_stock(self, shop_id: str, items: Sequence[StockLine]) -> None: ...

    async def fetch_order(self, push: PlatformPush) -> NormalizedOrder:
        """The full order behind a push that carries only its id."""
        raise PlatformCallError(f"{self.name} pushes carry the whole order; nothing to fetch")

    async def post(self, url: str, *, what: str, **kwargs: Any) -> Any:
        """POST and read the JSON answer; any failure is a PlatformCallError naming `what`.
        Only the URL's path is quoted in errors: query strings carry signatures."""
        path = url.split("?", 1)[0]
        try:
            async with self.session.post(
                url, timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S), **kwargs
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise PlatformCallError(f"{what}: HTTP {resp.status} from {path}: {text[:200]}")
        except (aiohttp.ClientError, TimeoutError) as e:
            reason = str(e).replace(url, path)
            raise PlatformCallError(f"{what}: {path}: {type(e).__name__}: {reason}") from None
        try:
            return json.loads(text)
        except ValueError:
            raise PlatformCallError(f"{what}: {path} answered no JSON: {text[:200]}") from None


class PlatformAdapter(ABC):
    """One delivery platform, as the hub receives from it."""

    name: str

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds

    @abstractmethod
    def verify(self, request: PushRequest) -> None:
        """Raise PlatformAuthError unless the platform signed this push (or
        PlatformBadRequest when it is too broken to tell)."""

    def signed_at(self, request: PushRequest) -> float | None:
        """When the platform signed this push (Unix seconds), read from a field its
        signature covers; None for a platform that signs no time into its pushes.
        PlatformBadRequest when the field is missing or not a time."""
        return None

    @abstractmethod
    def parse_push(self, request: PushRequest) -> PlatformPush:
        """The push, read; PlatformBadRequest(reason) when it cannot be."""

    def parse_pushes(self, request: PushRequest) -> list[PlatformPush]:
        """Every push in the request (Douyin sends several at once; the others one)."""
        return [self.parse_push(request)]

    @abstractmethod
    def reply_ok(self, push: PlatformPush | None = None) -> web.Response:
        """The answer that tells the platform the push was taken."""

    def refusal(self, status: int, message: str, request: PushRequest | None) -> dict[str, Any]:
        """The fields that tell the platform, in its own answer shape, that a push was not
        taken (`status` is the HTTP status, `request` the push when it could be read);
        the hub adds its own `error` object beside them."""
        return {}

    @abstractmethod
    def client(self, session: aiohttp.ClientSession | None = None) -> PlatformClient:
        """The platform's API client, on the hub's HTTP session."""


# Reading helpers shared by the adapters: each turns a platform's loose value into ours or
# raises PlatformBadRequest naming the field, so no parser can fail in any other way.


def check_signed_form(
    params: Mapping[str, str],
    *,
    app_field: str,
    app_id: str,
    sign_of: Callable[[Mapping[str, str]], str],
) -> None:
    """A form push signed the Eleme / JD Daojia way: an upper-case hex `sign` over the
    other parameters, and the app's id in `app_field`. Raises PlatformAuthError."""
    given = params.get("sign", "")
    if not given:
        raise PlatformAuthError("no sign")
    if params.get(app_field) != app_id:
        raise PlatformAuthError(f"{app_field} {params.get(app_field, '')!r:.70} is not this app's")
    if not consttime.equal(given.upper(), sign_of(params)):
        raise PlatformAuthError("sign does not match")


def check_fresh(signed_at: float, *, now: float, max_age: float) -> None:
    """PlatformStalePush unless `signed_at` is within `max_age` seconds of `now`, either
    way: a push signed long ago is a replay, one signed in the future a clock to fix."""
    age = now - signed_at
    if abs(age) > max_age:
        when = dt.datetime.fromtimestamp(signed_at, dt.UTC).isoformat(timespec="seconds")
        ago = f"{age:.0f} s ago" if age > 0 else f"{-age:.0f} s ahead of the hub's clock"
        raise PlatformStalePush(
            f"signed at {when} ({ago}); pushes are taken within {max_age:g} s "
            "(platforms.push_max_age_seconds): a replay, or a clock that is off"
        )


def push_time(params: Mapping[str, str], key: str, platform: str) -> float:
    """The signed time of a form push: Unix seconds (or milliseconds), or JD Daojia's
    `YYYY-MM-DD HH:MM:SS` in China's time; PlatformBadRequest when missing or unreadable."""
    text = params.get(key, "").strip()
    if not text:
        raise PlatformBadRequest(f"{key} is missing ({platform} signs the time into every push)")
    if text.isascii() and text.isdigit() and len(text) <= 13:
        value = int(text)
        return value / 1000 if len(text) == 13 else float(value)
    try:
        return dt.datetime.strptime(text, _CHINA_TIME).replace(tzinfo=CHINA).timestamp()
    except ValueError:
        raise PlatformBadRequest(
            f"{key} {text!r:.40} is not a time (Unix seconds, or YYYY-MM-DD HH:MM:SS)"
        ) from None


def form_params(request: PushRequest) -> dict[str, str]:
    """The query string and a form-encoded body, as one map; a key given twice is refused
    (which of the two was signed would be a guess)."""
    if request._form is None:
        object.__setattr__(request, "_form", _read_form(request))
    assert request._form is not None
    return dict(request._form)


def _read_form(request: PushRequest) -> dict[str, str]:
    params = dict(request.query)
    if request.body:
        text = utf8(request.body, "the body")
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            raise PlatformBadRequest(f"the body is not form-encoded: {e}") from None
        for key, value in pairs:
            if key in params:
                raise PlatformBadRequest(f"the request repeats {key!r}")
            params[key] = value
    return params


def utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlatformBadRequest(f"{what} is not UTF-8 (byte {e.start})") from None


def json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise PlatformBadRequest(f"{what} is not JSON: {e}") from None


def json_object(text: str, what: str) -> dict[str, Any]:
    value = json_value(text, what)
    if not isinstance(value, dict):
        raise PlatformBadRequest(f"{what} must be a JSON object")
    return value


def required(params: Mapping[str, Any], key: str, where: str = "") -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise PlatformBadRequest(f"{where}{key} is missing")
    return value


def text_field(params: Mapping[str, Any], key: str, where: str = "", *, default: str = "") -> str:
    value = params.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PlatformBadRequest(f"{where}{key} must be text, got {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise PlatformBadRequest(f"{where}{key} is longer than {MAX_TEXT} characters")
    return text


def id_field(params: Mapping[str, Any], key: str, where: str = "") -> str:
    """A platform's id (order, shop): 1-64 printable ASCII characters."""
    text = text_field(params, key, where)
    if not text:
        raise PlatformBadRequest(f"{where}{key} is missing")
    if len(text) > 64 or not (text.isascii() and text.isprintable()) or " " in text:
        raise PlatformBadRequest(f"{where}{key} must be 1-64 printable ASCII characters")
    return text


def int_field(
    params: Mapping[str, Any],
    key: str,
    where: str = "",
    *,
    default: int | None = None,
    minimum: int = 0,
    maximum: int = 10**12,
) -> int:
    value = params.get(key)
    if value is None or value == "":
        if default is None:
            raise PlatformBadRequest(f"{where}{key} is missing")
        return default
    if isinstance(value, bool):
        raise PlatformBadRequest(f"{where}{key} must be a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.isascii():
        value = int(value.strip())
    if not isinstance(value, int):
        raise PlatformBadRequest(f"{where}{key} must be a whole number, got {value!r:.40}")
    if not minimum <= value <= maximum:
        raise PlatformBadRequest(f"{where}{key} must be from {minimum} to {maximum}")
    return value


def list_field(params: Mapping[str, Any], key: str, where: str = "") -> list[Any]:
    value = params.get(key)
    if not isinstance(value, list):
        raise PlatformBadRequest(f"{where}{key} must be a list")
    return value


def object_at(items: Sequence[Any], index: int, where: str) -> Mapping[str, Any]:
    item = items[index]
    if not isinstance(item, Mapping):
        raise PlatformBadRequest(f"{where}[{index}] must be an object")
    return item


MAX_ITEMS = 500  # lines in one order; more is a malformed push, not a shopping trip


def int_price(item: Mapping[str, Any], key: str, where: str) -> int:
    """A price already in fen (Eleme, JD Daojia, Douyin)."""
    return int_field(item, key, where, default=0)


@dataclass(frozen=True, slots=True)
class ItemFields:
    """Where one platform keeps an order line's fields."""

    name: str
    qty: str
    price: str
    sku: tuple[str, ...]  # the first one present wins (the merchant's own SKU first)
    barcode: str
    read_price: Callable[[Mapping[str, Any], str, str], int] = int_price


def read_items(lines: Any, list_name: str, fields: ItemFields) -> tuple[OrderItem, ...]:
    """An order's lines, read with the platform's field names; 400 with the line and
    field for anything malformed."""
    if not isinstance(lines, list) or not lines:
        raise PlatformBadRequest(f"{list_name} must be a non-empty list of items")
    if len(lines) > MAX_ITEMS:
        raise PlatformBadRequest(f"{list_name} has more than {MAX_ITEMS} items")
    items = []
    for i in range(len(lines)):
        where = f"{list_name}[{i}]."
        line = object_at(lines, i, list_name)
        items.append(
            OrderItem(
                name=text_field(line, fields.name, where),
                qty=int_field(line, fields.qty, where, minimum=1, maximum=100000),
                price=fields.read_price(line, fields.price, where),
                sku=next((s for k in fields.sku if (s := text_field(line, k, where))), ""),
                barcode=text_field(line, fields.barcode, where),
                shelf=text_field(line, "shelf", where),
            )
        )
    return tuple(items)
