"""What every ERP client offers, in the hub's own terms; one module per ERP speaks its API.

    client = WdtClient(creds)                  # cloud/erp/wdt.py, cloud/erp/jst.py
    await client.push_sales_order(order)       # ErpRefused: the ERP said no (its message kept)
    await client.upload_stock(shop, [StockLevel("690...", 12)])   # ErpUnavailable: not reached
    await client.close()

Money is in fen (integers) here, as everywhere in the hub; each client writes the ERP's
yuan with `yuan()`. Each object carries its own id, which the ERP is given as the
document's number, so a document pushed twice is recognised by the ERP as well.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp

CALL_TIMEOUT_S = 15.0


class ErpError(Exception):
    """Root of the ERP errors."""


class ErpUnavailable(ErpError):
    """The ERP could not be reached or answered with an HTTP error: try again later."""


class ErpRefused(ErpError):
    """The ERP answered and said no (code != 0); the message is the ERP's own."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code


class ErpUnsupported(ErpError):
    """This ERP has no API for that document; retrying would not help."""


def yuan(fen: int) -> str:
    """1250 -> "12.50"."""
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def fen(amount: Any) -> int:
    """3.5 or "3.50" (yuan) -> 350."""
    value = (Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(value)


@dataclass(frozen=True, slots=True)
class ErpLine:
    barcode: str
    name: str
    qty: int
    price: int  # fen, unit price

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ErpLine:
        return cls(str(raw["barcode"]), str(raw["name"]), int(raw["qty"]), int(raw["price"]))


@dataclass(frozen=True, slots=True)
class SalesOrder:
    """A sale that left the store: a platform order picked up, or a store sale."""

    order_id: str  # the ERP's document number (tid / so_id)
    shop: str
    channel: str  # meituan | eleme | jddj | douyin | checkout | vend | locker | local
    at: str  # RFC 3339 UTC, when it was sold
    lines: tuple[ErpLine, ...]
    total: int  # fen, what the customer paid
    buyer: str = ""
    note: str = ""
    address: str = ""
    mobile: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SalesOrder:
        fields = dict(raw)
        fields["lines"] = tuple(ErpLine.from_json(line) for line in raw["lines"])
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class RefundOrder:
    """Money given back for a sales order already pushed (the goods are not returned)."""

    refund_id: str
    order_id: str
    shop: str
    at: str
    lines: tuple[ErpLine, ...]
    amount: int  # fen
    reason: str = ""
    buyer: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RefundOrder:
        fields = dict(raw)
        fields["lines"] = tuple(ErpLine.from_json(line) for line in raw["lines"])
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class ExpenseEntry:
    """An "other expense" of an order: the platform's commission or the delivery fee.
    A reversal (the order refunded) has a negative amount and its own id."""

    entry_id: str
    order_id: str
    shop: str
    kind: str  # commission | delivery_fee
    amount: int  # fen; negative: money back
    at: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ExpenseEntry:
        return cls(**dict(raw))


@dataclass(frozen=True, slots=True)
class Product:
    barcode: str
    name: str
    price: int  # fen
    cost: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Product:
        cost = raw.get("cost")
        return cls(
            str(raw["barcode"]),
            str(raw["name"]),
            int(raw["price"]),
            None if cost is None else int(cost),
        )


@dataclass(frozen=True, slots=True)
class StockLevel:
    barcode: str
    qty: int
    version: str = ""  # the ERP's modification time (or counter) of this quantity


@dataclass(frozen=True, slots=True)
class StockScope:
    """Where stock is counted in the ERP: the store's shop and warehouse."""

    shop: str
    warehouse: str = ""
    barcodes: tuple[str, ...] = field(default_factory=tuple)


class ErpClient(ABC):
    """One ERP account. Every push is idempotent on the ERP's side by its document id."""

    name: str

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    @abstractmethod
    async def push_sales_order(self, order: SalesOrder) -> None: ...

    @abstractmethod
    async def push_refund_order(self, refund: RefundOrder) -> None: ...

    @abstractmethod
    async def push_expenses(self, entries: Sequence[ExpenseEntry]) -> None: ...

    @abstractmethod
    async def push_products(self, shop: str, products: Sequence[Product]) -> None: ...

    @abstractmethod
    async def query_stock(self, scope: StockScope) -> list[StockLevel]: ...

    @abstractmethod
    async def upload_stock(self, scope: StockScope, levels: Sequence[StockLevel], ref: str) -> None:
        """Set the ERP's count of these items (`ref`: this upload's unique number)."""

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def post_form(self, url: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST a urlencoded form; the JSON object answered. ErpUnavailable when the ERP
        is not reached, answers an HTTP error, or answers something that is not JSON."""
        try:
            async with self.session().post(url, data=dict(form)) as response:
                text = await response.text()
                if response.status >= 400:
                    raise ErpUnavailable(f"{self.name} answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise ErpUnavailable(f"{self.name} not reached: {type(e).__name__}: {e}") from None
        try:
            body = json.loads(text)
        except ValueError:
            raise ErpUnavailable(f"{self.name} answered something that is not JSON") from None
        if not isinstance(body, dict):
            raise ErpUnavailable(f"{self.name} answered JSON that is not an object")
        return body
