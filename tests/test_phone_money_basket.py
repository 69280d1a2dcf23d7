"""The phone's money parsing and list building: integers in minor units, lists that verify."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate.money import format_amount
from gate.protocol.documents import ShoppingList, open_signed
from gate.protocol.keys import SigningKey
from gate.protocol.parties import sign_list
from phone.basket import Basket, Line
from phone.errors import AmountError, ScanError, StateError
from phone.money import parse_amount
from phone.storage import StateDir


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("25", "EUR", 2500),
        ("25.5", "EUR", 2550),
        ("25,50", "EUR", 2550),
        ("0.01", "EUR", 1),
        ("1500", "JPY", 1500),
    ],
)
def test_parse_amount(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [("0", "EUR"), ("-1", "EUR"), ("1.001", "EUR"), ("1.5", "JPY"), ("1e3", "EUR"), ("", "EUR")],
)
def test_parse_amount_refuses(text: str, currency: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text, currency)


@given(st.integers(min_value=1, max_value=10**10), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_format_then_parse_round_trips(minor: int, currency: str) -> None:
    assert parse_amount(format_amount(minor, currency).split()[0], currency) == minor


def test_format_amount() -> None:
    assert format_amount(2550, "EUR") == "25.50 EUR"
    assert format_amount(5, "EUR") == "0.05 EUR"
    assert format_amount(1500, "JPY") == "1500 JPY"


MILK = Line(code="4006381333931", name="Milk", qty=1, unit_price=119)
APPLES = Line(code="2100012004567", name="Apples", qty=1, unit_price=299, grams=1456)


def test_same_piece_scanned_twice_adds_to_its_line_weighed_goods_stay_apart() -> None:
    basket = Basket("EUR").add(MILK).add(MILK).add(APPLES).add(APPLES)
    assert [(line.code, line.qty) for line in basket.lines] == [
        (MILK.code, 2),
        (APPLES.code, 1),
        (APPLES.code, 1),
    ]
    assert basket.total == 2 * 119 + 2 * 435  # 2.99/kg x 1.456 kg = 4.35344 -> 435
    assert basket.remove(MILK.code).lines[0].qty == 1
    assert len(basket.remove(APPLES.code).lines) == 2
    with pytest.raises(ScanError):
        basket.remove("5901234123457")


def test_the_basket_lines_are_the_items_of_a_list_that_verifies() -> None:
    basket = Basket("EUR").add(MILK).add(APPLES)
    items = basket.items()
    assert [(i.code, i.qty, i.unit_price, i.grams, i.line_total) for i in items] == [
        (MILK.code, 1, 119, None, 119),
        (APPLES.code, 1, 299, 1456, 435),
    ]
    key = SigningKey.generate()
    signed = sign_list(
        key,
        list_id=os.urandom(16),
        hold=os.urandom(16),
        store="store-1",
        currency="EUR",
        created=1,
        items=items,
    )
    assert open_signed(signed.encode(), ShoppingList).verify_with(key.public_key).total == basket.total == 554


def test_shopping_list_is_the_sum_of_its_lines_with_a_fresh_random_id() -> None:
    basket = Basket("EUR").add(MILK).add(APPLES)
    hold = os.urandom(16)
    first = basket.shopping_list(hold=hold, store="store-1", created=1_700_000_000)
    second = basket.shopping_list(hold=hold, store="store-1", created=1_700_000_000)
    assert len(first.list) == 16 and first.list != second.list
    assert first.total == sum(item.line_total for item in first.items) == 119 + 435
    assert first.items == basket.items()
    with pytest.raises(StateError):
        Basket("EUR").shopping_list(hold=hold, store="s", created=1)


def test_basket_json_round_trip() -> None:
    basket = Basket("EUR").add(MILK).add(APPLES)
    assert Basket.from_json(basket.to_json()) == basket
    with pytest.raises(StateError):
        Basket.from_json({"currency": "EUR", "lines": [{"code": "1"}]})


def test_state_files_are_replaced_whole_and_the_key_is_private(tmp_path) -> None:
    state = StateDir(tmp_path / "phone")
    state.create()
    key = SigningKey.generate()
    state.write_secret_key(key)
    assert stat.S_IMODE((state.path / "shopper.key").stat().st_mode) == 0o600
    assert state.read_secret_key().public_key == key.public_key
    state.write_json("a.json", {"x": 1})
    state.write_json("a.json", {"x": 2})
    assert state.read_json("a.json") == {"x": 2}
    assert sorted(p.name for p in state.path.iterdir()) == ["a.json", "shopper.key"]  # no temporary left
    (state.path / "shopper.key").chmod(0o644)
    with pytest.raises(StateError, match="readable by others"):
        state.read_secret_key()
