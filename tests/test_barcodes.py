"""Barcodes: check digits, UPC-E, AIM prefixes, catalog keys, GS1 price and weight codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate.barcodes import (
    BarcodeError,
    catalog_key,
    check_digit,
    expand_upce,
    has_valid_check_digit,
    parse_scan,
    price_check_digit,
    resolve,
    variable_code,
    variable_measure,
)
from tests.fixtures.store import LAYOUTS, PRICE, PRICE_CHECKED, WEIGHT


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        ("400638133393", "1"),  # EAN-13
        ("950110153100", "0"),  # GS1's own example GTIN-13
        ("9501234", "6"),  # EAN-8
        ("03600029145", "2"),  # UPC-A
        ("0950110153000", "3"),  # GTIN-14
    ],
)
def test_known_check_digits(body: str, digit: str) -> None:
    assert check_digit(body) == digit
    assert has_valid_check_digit(body + digit)


digits = st.text(alphabet="0123456789", min_size=7, max_size=13)


@given(digits)
def test_a_computed_check_digit_makes_a_valid_code(body: str) -> None:
    code = body + check_digit(body)
    assert has_valid_check_digit(code) == (len(code) in (8, 12, 13, 14))


@given(digits, st.data())
def test_any_single_digit_error_is_detected(body: str, data: st.DataObject) -> None:
    code = body + check_digit(body)
    if len(code) not in (8, 12, 13, 14):
        return
    i = data.draw(st.integers(0, len(code) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != code[i]]))
    assert not has_valid_check_digit(code[:i] + wrong + code[i + 1 :])


@pytest.mark.parametrize(
    ("upce", "upca"),
    [
        ("04252614", "042100005264"),  # last digit 0-2
        ("01234565", "012345000065"),  # last digit 5-9
        ("01234531", "012300000451"),  # last digit 3
        ("01234543", "012340000053"),  # last digit 4
    ],
)
def test_upce_expands_to_upca(upce: str, upca: str) -> None:
    assert has_valid_check_digit(upca)
    assert expand_upce(upce) == upca


def test_upce_refuses_a_bad_check_digit_or_number_system() -> None:
    with pytest.raises(BarcodeError, match="check digit"):
        expand_upce("04252615")
    with pytest.raises(BarcodeError, match="number system"):
        expand_upce("24252614")


@pytest.mark.parametrize(
    ("raw", "code", "symbology"),
    [
        ("4006381333931", "4006381333931", None),
        ("]E04006381333931", "4006381333931", "]E0"),
        ("]E004252614", "042100005264", "]E0"),  # UPC-E expanded
        ("]E496385074", "96385074", "]E4"),  # EAN-8
        ("96385074", "96385074", None),  # 8 digits without AIM: EAN-8
        ("]E3400638133393112", "4006381333931", "]E3"),  # with a 2-digit add-on
        ("]C10104006381333931", "4006381333931", "]C1"),  # GS1-128 with AI 01
        ("]C101000000963850741715", "96385074", "]C1"),  # GTIN-14 padding an EAN-8
        ("036000291452\r\n", "036000291452", None),
        (b"]A0036000291452", "036000291452", "]A0"),
    ],
)
def test_parse_scan(raw: str | bytes, code: str, symbology: str | None) -> None:
    scan = parse_scan(raw)
    assert (scan.code, scan.symbology) == (code, symbology)


@pytest.mark.parametrize("raw", ["4006381333932", "12345", "abc", "]E0abc", "]C1991234", b"\xff12", ""])
def test_bad_scans_are_refused(raw: str | bytes) -> None:
    with pytest.raises(BarcodeError):
        parse_scan(raw)


def test_catalog_keys_give_one_spelling_per_item() -> None:
    assert catalog_key("036000291452") == "0036000291452" == catalog_key("0036000291452")
    assert catalog_key("00036000291452") == "0036000291452"
    assert catalog_key("96385074") == "96385074"
    assert catalog_key("10036000291459") == "10036000291459"
    with pytest.raises(BarcodeError, match="check digit"):
        catalog_key("0036000291453")
    with pytest.raises(BarcodeError):
        catalog_key("1234567")


def test_gs1_price_check_digits_from_the_general_specifications() -> None:
    assert price_check_digit("2875") == "9"
    assert price_check_digit("14685") == "6"
    with pytest.raises(BarcodeError):
        price_check_digit("123")


def test_a_weight_code_is_taken_apart() -> None:
    code = variable_code(WEIGHT, "00231", 412)
    assert code.startswith("2100231") and code[7:12] == "00412" and has_valid_check_digit(code)
    m = variable_measure(code, LAYOUTS)
    assert m is not None and (m.kind, m.item, m.value) == ("weight", "00231", 412)
    assert m.base_code == variable_code(WEIGHT, "00231", 0)
    assert resolve(code, LAYOUTS).key == m.base_code


def test_a_price_code_with_a_price_check_digit() -> None:
    code = variable_code(PRICE_CHECKED, "00123", 2875)
    assert code[7] == "9"
    m = variable_measure(code, LAYOUTS)
    assert m is not None and (m.kind, m.value) == ("price", 2875)
    body = code[:7] + "0" + code[8:12]
    with pytest.raises(BarcodeError, match="price check digit"):
        variable_measure(body + check_digit(body), LAYOUTS)


def test_codes_without_a_layout_are_ordinary() -> None:
    assert variable_measure("4006381333931", LAYOUTS) is None
    unconfigured = "2900000000003"[:12]
    code = unconfigured + check_digit(unconfigured)
    assert variable_measure(code, LAYOUTS) is None
    assert resolve(code, LAYOUTS).key == code


@given(
    st.sampled_from([WEIGHT, PRICE, PRICE_CHECKED]),
    st.integers(0, 99999).map(lambda i: f"{i:05d}"),
    st.integers(0, 9999),
)
def test_variable_codes_round_trip(layout, item: str, value: int) -> None:
    code = variable_code(layout, item, value)
    assert len(code) == 13 and has_valid_check_digit(code)
    m = variable_measure(code, LAYOUTS)
    assert m is not None and (m.item, m.value, m.kind) == (item, value, layout.kind)
    assert m.base_code == variable_code(layout, item, 0)


def test_variable_code_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(BarcodeError):
        variable_code(PRICE_CHECKED, "00123", 10000)
    with pytest.raises(BarcodeError):
        variable_code(WEIGHT, "123", 1)
