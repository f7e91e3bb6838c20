"""The catalog: spreadsheet imports (Chinese headers, GBK, UTF-8 with BOM) report each bad
row by number and take the good ones; products and SKU mappings through the hub API."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.stock.csv_import import CatalogFileError, parse_products
from cloud.stock.product import Product
from tests.cloud.stock.stock_hub import COLA, WATER, stock_hub

BASE = "/api/v1/stores/demo-001"

SHEET = (
    "条码,商品名称,售价,成本,货架号,库存预警,备注\n"
    "6901234567892,可口可乐 330ml,3.50,2.10,A1,5,热卖\n"
    "4006381333931,矿泉水 550ml,￥2,1.2,A2,,\n"
    "6901234567890,雪碧,3.5,2,A1,3,\n"  # wrong check digit
    "6.90123E+12,芬达,3.5,2,A1,3,\n"  # Excel turned it into a number
    "9787111213826,红牛,六块,4,B1,2,\n"  # price in words
    "6901234567892,可口可乐 again,3.5,2,A1,5,\n"  # repeated barcode
    ",,,,,,\n"  # an empty line: skipped, not an error
    "73513537,口香糖,1.999,1,C1,10,\n"  # three decimals
    "73513537,口香糖,2,1,C1,10,\n"
)


def test_a_gbk_sheet_with_chinese_headers_reports_bad_rows_by_number() -> None:
    result = parse_products(SHEET.encode("gbk"))
    assert result.encoding == "gb18030"
    assert result.products == [
        Product(COLA, "可口可乐 330ml", 350, 210, "A1", 5),
        Product(WATER, "矿泉水 550ml", 200, 120, "A2", None),
        Product("73513537", "口香糖", 200, 100, "C1", 10),
    ]
    errors = {e.row: e.reason for e in result.errors}
    assert sorted(errors) == [4, 5, 6, 7, 9]
    assert "check digit" in errors[4]
    assert "scientific notation" in errors[5]
    assert "price (售价)" in errors[6]
    assert "repeats row 2" in errors[7]
    assert "2 decimals" in errors[9]


def test_utf8_with_bom_utf16_tabs_and_english_headers_read_alike() -> None:
    expected = [Product(COLA, "可口可乐", 350, None, "", None)]
    for data in (
        "\ufeff条形码,名称,零售价\n6901234567892,可口可乐,3.5\n".encode(),
        "barcode\tname\tprice(元)\r\n6901234567892\t可口可乐\t3.50\r\n".encode("utf-16"),
        "Barcode;Name;Price\n6901234567892.0;可口可乐;3.5\n".encode(),
    ):
        result = parse_products(data)
        assert (result.products, result.errors) == (expected, []), data


def test_a_file_without_the_needed_columns_is_refused_whole() -> None:
    with pytest.raises(CatalogFileError, match="售价"):
        parse_products("条码,商品名称\n6901234567892,可乐\n".encode("gbk"))
    with pytest.raises(CatalogFileError, match="neither UTF-8 nor GBK"):
        parse_products(b"\x81\x30\xff\xff")


gtins = st.sampled_from([COLA, WATER, "73513537", "9787111213826", "036000291452"])
names = st.text(
    alphabet=st.characters(codec="gbk", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(gtins, names, st.integers(0, 10**6), st.text("AB12-", max_size=5)),
        unique_by=lambda r: r[0],
        max_size=5,
    ),
    encoding=st.sampled_from(["gbk", "utf-8-sig", "utf-8", "gb18030"]),
)
def test_any_sheet_written_by_a_spreadsheet_reads_back(
    rows: list[tuple[str, str, int, str]], encoding: str
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["条码", "商品名称", "售价", "货架号"])
    for barcode, name, fen, shelf in rows:
        writer.writerow([barcode, name, f"{fen / 100:.2f}", shelf])
    result = parse_products(out.getvalue().encode(encoding))
    assert result.errors == []
    assert result.products == [Product(b, n, f, None, s, None) for b, n, f, s in rows]


async def test_catalog_api_import_products_and_sku_matching(tmp_path: Path) -> None:
    async with stock_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}") as hub:
        # Platform SKUs listed before the products exist: unmatched, listed for the owner.
        skus = {
            "skus": [
                {"platform": "meituan", "sku": "sku-cola", "upc": COLA},
                {"platform": "jddj", "sku": COLA},  # the barcode as the merchant's code
                {"platform": "eleme", "sku": "e-1", "upc": "0000"},
            ]
        }
        status, body = await hub.call("POST", BASE + "/skus", skus)
        assert status == 200 and len(body["unmatched"]) == 3, body
        status, body = await hub.call("POST", BASE + "/catalog/import", data=SHEET.encode("gbk"))
        assert status == 200, body
        assert (body["imported"], body["changed"]) == (3, 3)
        assert [e["row"] for e in body["errors"]] == [4, 5, 6, 7, 9]
        # Importing the same sheet again changes nothing.
        status, body = await hub.call("POST", BASE + "/catalog/import", data=SHEET.encode("gbk"))
        assert (body["imported"], body["changed"]) == (3, 0)
        status, body = await hub.call("GET", BASE + "/skus")
        assert [(s["platform"], s["sku"]) for s in body["unmatched"]] == [("eleme", "e-1")]
        # The owner maps it by hand; a barcode not in the catalog is refused.
        fix = {"skus": [{"platform": "eleme", "sku": "e-1", "barcode": "4006381333932"}]}
        status, body = await hub.call("POST", BASE + "/skus", fix)
        assert status == 400 and body["error"]["code"] == "bad_sku"
        fix["skus"][0]["barcode"] = WATER
        status, body = await hub.call("POST", BASE + "/skus", fix)
        assert status == 200 and body["unmatched"] == []

        status, body = await hub.call("GET", f"{BASE}/catalog/{COLA}")
        assert body == {
            "barcode": COLA,
            "name": "可口可乐 330ml",
            "price": 3.5,
            "shelf": "A1",
            "cost": 2.1,
            "low_stock": 5,
            "qty": 0,
            "low": True,
        }
        status, body = await hub.call("PUT", f"{BASE}/catalog/{COLA}", {"name": "可乐", "price": 4})
        assert status == 200 and body["changed"] and body["price"] == 4.0
        status, body = await hub.call(
            "PUT", f"{BASE}/catalog/{COLA}", {"name": "可乐", "price": -1}
        )
        assert status == 400 and "price" in body["error"]["message"]
        bad = {"products": [{"barcode": WATER, "name": "水", "price": 2}, {"barcode": "1"}]}
        status, body = await hub.call("POST", BASE + "/catalog", bad)
        assert status == 400 and body["error"]["index"] == 1
        status, body = await hub.call("GET", BASE + "/catalog")
        assert [p["barcode"] for p in body["products"]] == [COLA, WATER, "73513537"]
        # No MQTT bus in this hub: the store could not be told, and that shows.
        assert body["delivery"]["outcome"] == "unsent"
        # Another store's token may not touch this catalog.
        headers = {"Authorization": "Bearer tok-store-two-0123456789abcdef"}
        async with hub.client.get(BASE + "/catalog", headers=headers) as resp:
            assert resp.status == 403
