"""The cart's money and barcodes: fen inside, yuan with 2 decimals outside."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from agent.services.cart import Cart, find_product, product_barcode, to_fen, yuan

fen = st.integers(min_value=0, max_value=10_000_00)


@given(scans=st.lists(st.tuples(st.integers(0, 6), fen), min_size=1, max_size=30))
def test_the_total_is_exact_and_survives_the_trip_through_yuan(
    scans: list[tuple[int, int]],
) -> None:
    cart = Cart("c")
    prices: dict[int, int] = {}
    for code, p in scans:
        # The catalog carries yuan (12.34); the first price seen is the product's.
        first = to_fen(float(Decimal(p) / 100))
        assert first == p
        price = prices.setdefault(code, first)
        cart.add(str(code), "x", price)
    assert cart.total_fen == sum(prices[code] for code, _ in scans)
    assert cart.count == len(scans)
    assert to_fen(yuan(cart.total_fen)) == cart.total_fen
    assert sum(i["qty"] for i in cart.items()) == len(scans)


def test_prices_that_are_not_money_are_refused() -> None:
    assert [to_fen(v) for v in (3.5, "12", 0, 1.005, -1, "abc", None, True)] == [
        350,
        1200,
        0,
        None,
        None,
        None,
        None,
        None,
    ]


def test_product_barcodes_need_a_valid_check_digit() -> None:
    assert product_barcode(" 6901234567892\r") == "6901234567892"
    assert product_barcode("6901234567893") is None
    assert product_barcode("96385074") == "96385074"
    assert product_barcode("036000291452") == "036000291452"  # UPC-A
    assert product_barcode("eyJhbGciOi.x.y") is None


def test_a_upc_a_finds_its_ean_13_spelling_and_back() -> None:
    catalog = {"0036000291452": {"name": "a"}, "614141000036": {"name": "b"}}
    assert find_product(catalog, "036000291452") == {"name": "a"}
    assert find_product(catalog, "0614141000036") == {"name": "b"}
    assert find_product(catalog, "96385074") is None
