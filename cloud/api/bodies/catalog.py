"""A store's catalog and its platform SKU mapping (docs/stock.md). Prices in yuan."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field, model_validator

from cloud.api.bodies.base import Body, Reply
from cloud.stock.catalog import SkuListing
from cloud.stock.product import Product, ProductError

MAX_PRODUCTS = 5000
_YUAN = "Yuan with 2 decimals (3.5 = ¥3.50)."


class ProductIn(Body):
    """A product as the owner sends it. Checked by the catalog's own rules first
    (cloud/stock/product.py), which also take a spreadsheet's number-typed barcode."""

    barcode: str = Field(max_length=64, description="EAN-13, EAN-8 or UPC-A digits.")
    name: str
    price: float = Field(ge=0, description=_YUAN)
    cost: float | None = Field(default=None, ge=0, description="Unit cost, yuan.")
    shelf: str = Field(default="", description="货架号")
    low_stock: int | None = Field(
        default=None, ge=0, description="库存预警: low at or below this quantity."
    )
    rule_code = "bad_product"

    @model_validator(mode="before")
    @classmethod
    def _catalog_rules(cls, raw: Any) -> Any:
        try:
            return Product.from_json(raw).to_json()
        except ProductError as e:
            raise ValueError(str(e)) from None

    def product(self) -> Product:
        return Product.from_json(self.model_dump())


class ProductsIn(Body):
    """Refused whole if one product is bad, naming it (`index`)."""

    products: list[ProductIn] = Field(min_length=1, max_length=MAX_PRODUCTS)
    messages: ClassVar[dict[str, str]] = {
        "products": f'"products" must be a non-empty list of at most {MAX_PRODUCTS}'
    }
    rule_code = "bad_product"


class ProductOut(Reply):
    barcode: str
    name: str
    price: float = Field(description=_YUAN)
    cost: float | None = Field(description="Unit cost, yuan.")
    shelf: str = Field(description="货架号")
    low_stock: int | None = Field(description="库存预警: low at or below this quantity.")


class ProductStored(ProductOut):
    changed: bool = Field(description="Whether anything changed.")


class ProductWithStock(ProductOut):
    qty: int
    low: bool = Field(description="qty <= low_stock")


class CatalogList(Reply):
    products: list[ProductWithStock]
    delivery: dict[str, Any] = Field(description="Whether the store has the latest catalog.")


class ProductsStored(Reply):
    upserted: int
    changed: int


class ImportRowError(Reply):
    row: int
    reason: str


class CatalogImported(Reply):
    """What was imported, and each row refused."""

    imported: int
    changed: int
    errors: list[ImportRowError]
    encoding: str


class SkuIn(Body):
    # Missing texts are empty and refused by the listing's own rules, as they always were.
    model_config = ConfigDict(json_schema_extra={"required": ["platform", "sku"]})

    platform: str = Field(default="", examples=["meituan"])
    sku: str = Field(default="", description="The platform's SKU id.")
    upc: str = ""
    name: str = ""
    barcode: str = Field(default="", description="The product it is; empty: unmatched.")
    rule_code = "bad_sku"

    @model_validator(mode="after")
    def _listing_rules(self) -> SkuIn:
        try:
            self.listing().check()
        except ProductError as e:
            raise ValueError(str(e)) from None
        return self

    def listing(self) -> SkuListing:
        return SkuListing(
            platform=self.platform, sku=self.sku, upc=self.upc, name=self.name, barcode=self.barcode
        )


class SkusIn(Body):
    skus: list[SkuIn] = Field(min_length=1, max_length=MAX_PRODUCTS)
    messages: ClassVar[dict[str, str]] = {
        "skus": f'"skus" must be a non-empty list of at most {MAX_PRODUCTS}',
        **{
            f"skus.*{field}": "{item} must be an object of texts"
            for field in ("", ".platform", ".sku", ".upc", ".name", ".barcode")
        },
    }
    rule_code = "bad_sku"


class SkuMapping(Reply):
    platform: str
    sku: str
    upc: str
    barcode: str | None
    name: str
    matched: bool


class SkuList(Reply):
    skus: list[SkuMapping]
    unmatched: list[SkuMapping]
