from hypothesis import given
from hypothesis import strategies as st

from agent.rules.scan import (
    MalformedScan,
    PassScan,
    PickupCodeScan,
    ProductScan,
    classify,
    gtin_check_digit_ok,
)


def with_check_digit(body: str) -> str:
    for d in "0123456789":
        if gtin_check_digit_ok(body + d):
            return body + d
    raise AssertionError


def test_known_barcodes():
    assert classify("6901028075022", code_length=6) == ProductScan("6901028075022")  # a real EAN-13
    assert classify("96385074", code_length=6) == ProductScan("96385074")  # EAN-8
    assert classify("036000291452", code_length=6) == ProductScan("036000291452")  # UPC-A
    assert isinstance(classify("6901028075023", code_length=6), MalformedScan)


def test_pickup_code_wins_over_a_barcode_of_the_same_length():
    assert classify("96385074", code_length=8) == PickupCodeScan("96385074")


def test_lines_are_trimmed_and_passes_recognised():
    assert classify(" 123456\r\n", code_length=6) == PickupCodeScan("123456")
    assert classify("eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.c2ln", code_length=6) == PassScan(
        "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.c2ln"
    )
    for junk in ("", "   ", "hello", "12345", "１２３４５６", "eyJ.abc", "a.b.c"):
        assert isinstance(classify(junk, code_length=6), MalformedScan), junk


@given(
    st.sampled_from([7, 11, 12]).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
)
def test_every_gtin_with_a_valid_check_digit_is_a_product(body):
    code = with_check_digit(body)
    assert classify(code, code_length=6) == ProductScan(code)


@given(st.text(max_size=300))
def test_classify_is_total(text):
    result = classify(text, code_length=6)
    assert isinstance(result, PassScan | PickupCodeScan | ProductScan | MalformedScan)
