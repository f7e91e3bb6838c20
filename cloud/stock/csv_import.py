"""Reading a product list the owner exported from a spreadsheet: pure, bytes in.

    result = parse_products(data)    # ImportResult(products=[...], errors=[RowError(3, "...")])

Accepted: CSV in UTF-8 (with or without the BOM Excel writes), GBK/GB18030 (what Excel
on a Chinese Windows saves as "CSV"), or UTF-16 (Excel's "Unicode text", tab-separated);
comma, semicolon or tab separated. Headers in Chinese or English, in any order:
条码 / 商品名称 / 售价 / 成本 / 货架号 / 库存预警 (barcode, name, price, cost, shelf,
low_stock); other columns are ignored. Each bad row is reported with its row number as
the spreadsheet shows it (the header is row 1) and the reason; the good rows are taken.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field

from cloud.stock.product import (
    Product,
    ProductError,
    check_barcode,
    check_low_stock,
    check_name,
    check_shelf,
    yuan_to_fen,
)

MAX_ROWS = 50_000

HEADERS: dict[str, tuple[str, ...]] = {
    "barcode": ("条码", "条形码", "商品条码", "商品条形码", "国际条码", "barcode", "upc", "ean"),
    "name": ("商品名称", "名称", "品名", "商品名", "name", "product"),
    "price": ("售价", "零售价", "销售价", "价格", "单价", "price"),
    "cost": ("成本", "成本价", "进价", "进货价", "cost"),
    "shelf": ("货架号", "货架", "货位", "shelf"),
    "low_stock": ("库存预警", "预警库存", "安全库存", "库存下限", "low_stock", "low stock"),
}
REQUIRED = ("barcode", "name", "price")


class CatalogFileError(ValueError):
    """The file as a whole cannot be read (no header, unknown encoding)."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    reason: str

    def to_json(self) -> dict[str, int | str]:
        return {"row": self.row, "reason": self.reason}


@dataclass
class ImportResult:
    products: list[Product] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    encoding: str = ""


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK and GB2312: one try covers all three.
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as e:
        raise CatalogFileError(
            f"the file is neither UTF-8 nor GBK/GB18030 text (byte {e.start}); "
            "save it from the spreadsheet as CSV"
        ) from None


def _column_of(header: str) -> str | None:
    key = header.strip().strip("*").strip().lower()
    for column, names in HEADERS.items():
        if key in names:
            return column
    # "售价(元)", "成本价（元）": the unit in brackets
    for bracket in ("(", "（"):
        if bracket in key:
            return _column_of(key.split(bracket, 1)[0])
    return None


def parse_products(data: bytes) -> ImportResult:
    text, encoding = decode(data)
    if not text.strip():
        raise CatalogFileError("the file is empty")
    first_line = text.splitlines()[0]
    delimiter = max(",\t;", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as e:
        raise CatalogFileError(f"row 1 is not CSV: {e}") from None
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        column = _column_of(name)
        if column is not None and column not in columns:
            columns[column] = index
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        wanted = ", ".join(f"{HEADERS[c][0]} ({c})" for c in missing)
        raise CatalogFileError(f"row 1 has no column for {wanted}; found {header[:12]}")
    result = ImportResult(encoding=encoding)
    seen: dict[str, int] = {}
    row_number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            row_number += 1
            result.errors.append(RowError(row_number, f"not CSV: {e}"))
            continue
        row_number += 1  # records, as the spreadsheet numbers its rows
        if not any(c.strip() for c in cells):
            continue
        if row_number > MAX_ROWS + 1:
            result.errors.append(
                RowError(row_number, f"more than {MAX_ROWS} rows; import the rest")
            )
            break

        def cell(column: str, cells: list[str] = cells) -> str | None:
            index = columns.get(column)
            return cells[index] if index is not None and index < len(cells) else None

        try:
            product = Product(
                barcode=check_barcode(cell("barcode")),
                name=check_name(cell("name")),
                price=yuan_to_fen(cell("price"), "price", required=True) or 0,
                cost=yuan_to_fen(cell("cost"), "cost"),
                shelf=check_shelf(cell("shelf")),
                low_stock=check_low_stock(cell("low_stock")),
            )
        except ProductError as e:
            result.errors.append(RowError(row_number, str(e)))
            continue
        if product.barcode in seen:
            reason = f"barcode {product.barcode} repeats row {seen[product.barcode]}"
            result.errors.append(RowError(row_number, reason))
            continue
        seen[product.barcode] = row_number
        result.products.append(product)
    return result
