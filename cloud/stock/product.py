"""A catalog product as the hub keeps it, and the checks every way in (API, CSV) shares.

Money is kept in fen (integers) and shown in yuan (numbers with 2 decimals), as the
agent's `catalog.upsert` carries it (CONTRACTS section 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from storerules.gtin import gtin_check_digit_ok

MAX_NAME = 200
MAX_SHELF = 32
MAX_FEN = 10**10  # ¥100,000,000: more is a typo


class ProductError(ValueError):
    """A field that cannot be taken; the message names it and says what is wanted."""


@dataclass(frozen=True, slots=True)
class Product:
    barcode: str
    name: str
    price: int  # fen
    cost: int | None = None  # fen
    shelf: str = ""  # 货架号
    low_stock: int | None = None  # 库存预警: alert at or below this quantity

    def to_agent(self) -> dict[str, Any]:
        """As `catalog.upsert` carries it."""
        return {
            "barcode": self.barcode,
            "name": self.name,
            "price": fen_to_yuan(self.price),
            "shelf": self.shelf,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.to_agent(),
            "cost": None if self.cost is None else fen_to_yuan(self.cost),
            "low_stock": self.low_stock,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Product:
        return cls(
            barcode=row["barcode"],
            name=row["name"],
            price=int(row["price"]),
            cost=None if row["cost"] is None else int(row["cost"]),
            shelf=row["shelf"],
            low_stock=row["low_stock"],
        )

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], barcode: str | None = None) -> Product:
        """A product from an API body (yuan); ProductError naming the field."""
        if not isinstance(raw, Mapping):
            raise ProductError("a product must be a JSON object")
        return cls(
            barcode=check_barcode(barcode if barcode is not None else raw.get("barcode")),
            name=check_name(raw.get("name")),
            price=yuan_to_fen(raw.get("price"), "price", required=True) or 0,
            cost=yuan_to_fen(raw.get("cost"), "cost"),
            shelf=check_shelf(raw.get("shelf")),
            low_stock=check_low_stock(raw.get("low_stock")),
        )


def fen_to_yuan(fen: int) -> float:
    return float(Decimal(fen) / 100)


def check_barcode(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ProductError("barcode (条码) is missing")
    text = value.strip()
    if "E+" in text.upper() and text.replace(".", "").upper().split("E+")[0].isdigit():
        raise ProductError(
            f"barcode {text!r} was turned into scientific notation by Excel; "
            "format the column as text and export again"
        )
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # a spreadsheet's number column: exact, so safe to undo
    # The store scans and takes only these (CONTRACTS section 2), so the catalog holds only these.
    if not (text.isascii() and text.isdigit() and len(text) in (8, 12, 13)):
        raise ProductError(f"barcode {text[:40]!r} must be an EAN-13, EAN-8 or UPC-A (digits)")
    if not gtin_check_digit_ok(text):
        raise ProductError(f"barcode {text} has a wrong check digit (a typo?)")
    return text


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProductError("name (商品名称) is missing")
    text = value.strip()
    if len(text) > MAX_NAME:
        raise ProductError(f"name (商品名称) is longer than {MAX_NAME} characters")
    return text


def check_shelf(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ProductError("shelf (货架号) must be text")
    text = value.strip()
    if len(text) > MAX_SHELF:
        raise ProductError(f"shelf (货架号) is longer than {MAX_SHELF} characters")
    return text


def check_low_stock(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(".0"):
            text = text[:-2]
        if not (text.isascii() and text.isdigit()):
            raise ProductError(f"low_stock (库存预警) must be a whole number, got {text[:20]!r}")
        value = int(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise ProductError("low_stock (库存预警) must be a whole number from 0")
    return value


def yuan_to_fen(value: Any, field: str, *, required: bool = False) -> int | None:
    """¥ amounts as people write them ("3.5", "¥3.50", "3.50元", 3.5) in fen."""
    label = {"price": "price (售价)", "cost": "cost (成本)"}.get(field, field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ProductError(f"{label} is missing")
        return None
    if isinstance(value, bool):
        raise ProductError(f"{label} must be an amount in yuan")
    text = str(value).strip().lstrip("¥￥").removesuffix("元").replace(",", "").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ProductError(f"{label} must be an amount in yuan, got {str(value)[:20]!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ProductError(f"{label} must be an amount from 0, got {str(value)[:20]!r}")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ProductError(f"{label} has more than 2 decimals: {str(value)[:20]!r}")
    if fen > MAX_FEN:
        raise ProductError(f"{label} is too large: {str(value)[:20]!r}")
    return int(fen)
