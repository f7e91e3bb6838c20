"""The ERP sync's failures, and the owner's product push. Prices in fen."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cloud.api.bodies.base import Body, Reply, Timestamp
from cloud.erp.base import Product

MAX_PRODUCTS = 5000


class ErpProduct(Body):
    barcode: str = Field(min_length=1)
    name: str
    price: int = Field(ge=0, description="Fen.")
    cost: int | None = Field(default=None, description="Fen.")

    def product(self) -> Product:
        return Product.from_json(self.model_dump())


class ErpProducts(Body):
    """Without a body (or one without `products`), the store's hub catalog is pushed."""

    products: list[ErpProduct] = Field(max_length=MAX_PRODUCTS)
    messages: ClassVar[dict[str, str]] = {
        "products": f"products must be a list of at most {MAX_PRODUCTS}",
        "products.*": "{item} needs barcode, name and price (fen, a whole number)",
        **{
            f"products.*.{field}": "{item} needs barcode, name and price (fen, a whole number)"
            for field in ("barcode", "name", "price", "cost")
        },
    }


class ErpQueued(Reply):
    queued: bool = Field(description="False: the same list was queued already.")
    products: int


class ErpFailure(Reply):
    key: str = Field(examples=["wdt:trade:meituan-1001"])
    erp: Literal["wdt", "jst"]
    store: str
    kind: Literal["sales_order", "refund_order", "expenses", "products", "stock_upload"]
    ref: str = Field(description="The order, sale or item it is about.")
    status: Literal["pending", "failed", "unsupported"] = Field(
        description="pending: retried at next_try; failed: refused too often, given up; "
        "unsupported: the ERP has no API for it."
    )
    attempts: int
    error: str = Field(description="The last reason (the ERP's message).")
    next_try: Timestamp | None
    since: Timestamp


class ErpFailures(Reply):
    """Newest first."""

    failures: list[ErpFailure]
