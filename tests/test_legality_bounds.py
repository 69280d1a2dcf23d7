"""Plausible label bounds: a weight or price GS1 label outside its product's bounds sends the list to an
attendant's audit (label_implausible), never to a denial; the bounds come in with the catalog CSV."""

from __future__ import annotations

import io

import pytest

from gate.barcodes import variable_code
from gate.catalog import Bounds, CatalogError, MemoryCatalog, PriceChange, read_csv, write_csv
from gate.protocol.parties import item
from gate.store import GateStore
from tests.fixtures.store import CATALOG, DELI, GOUDA, NOW, PEN, PRICE, PRICE_CHECKED, WEIGHT, Shop

HEADER = "code,name,category,unit,price,currency"


def _csv(text: str) -> io.StringIO:
    f = io.StringIO(text)
    f.name = "catalog.csv"
    return f


def gouda(grams: int) -> object:
    return item(variable_code(WEIGHT, "00231", grams), 1590, grams=grams)


def deli(price: int) -> object:
    return item(variable_code(PRICE, "00457", price), price)


def test_a_home_printed_1_g_gouda_label_goes_to_the_attendant_with_both_weights(shop: Shop) -> None:
    d = shop.decide([item(PEN, 129), gouda(1)])
    assert (d.verdict, d.codes) == ("attendant", ("label_implausible",))
    assert d.reasons[0].message == (
        f"line 2 ({variable_code(WEIGHT, '00231', 1)}): Gouda labelled 1 g, plausible 50 g to 2000 g"
    )


def test_a_deli_salad_labelled_0_01_goes_to_the_attendant(shop: Shop) -> None:
    d = shop.decide([deli(1)])
    assert (d.verdict, d.codes) == ("attendant", ("label_implausible",))
    assert "Deli counter labelled 0.01 EUR, plausible 1.00 EUR to 50.00 EUR" in d.reasons[0].message


@pytest.mark.parametrize("grams", [50, 412, 2000])
def test_weights_within_the_bounds_pass(shop: Shop, grams: int) -> None:
    assert shop.decide([gouda(grams)]).passed


def test_weights_and_prices_just_outside_the_bounds_are_implausible(shop: Shop) -> None:
    lines = [gouda(49), gouda(2001), deli(99), deli(5001), deli(100), deli(5000)]
    d = shop.decide(lines, voucher=shop.voucher(amount=20_000, bank=19_000))
    assert d.codes == ("label_implausible",)
    assert [line.split(":")[0] for line in d.reasons[0].message.split("; ")] == [
        f"line 1 ({variable_code(WEIGHT, '00231', 49)})",
        f"line 2 ({variable_code(WEIGHT, '00231', 2001)})",
        f"line 3 ({variable_code(PRICE, '00457', 99)})",
        "and 1 more",
    ]


def test_a_product_without_bounds_trusts_every_label(shop: Shop) -> None:
    assert shop.decide([item(variable_code(PRICE_CHECKED, "00123", 1), 1)]).passed


def test_an_implausible_label_on_a_list_denied_anyway_is_a_denial_with_both_reasons(shop: Shop) -> None:
    d = shop.decide([gouda(1), item(PEN, 100)])
    assert d.verdict == "deny" and set(d.codes) == {"label_implausible", "price_mismatch"}


def test_a_one_sided_bound(memory_store: GateStore) -> None:
    memory_store.import_catalog(CATALOG)
    memory_store.import_catalog(
        [PriceChange(GOUDA, "Gouda", "cheese", "kg", 1590, "EUR", NOW, Bounds(min_grams=80))]
    )
    product = memory_store.products([GOUDA], now=NOW, grace_s=0, currency="EUR")[GOUDA]
    assert product.bounds == Bounds(min_grams=80)
    assert product.bounds.grams_outside(79) and not product.bounds.grams_outside(10**6)


# -- the catalog CSV ----------------------------------------------------------------------------------


def test_the_csv_carries_bounds_in_optional_columns_in_any_order() -> None:
    text = (
        f"{HEADER},max_grams,min_grams,valid_from\n"
        f"{GOUDA},Gouda,cheese,kg,1590,EUR,2000,50,\n"
        f"{PEN},Pen,,each,129,EUR,,,{NOW}\n"
    )
    rows = list(read_csv(_csv(text), default_valid_from=7))
    assert [(r.code, r.valid_from, r.bounds) for r in rows] == [
        (GOUDA, 7, Bounds(min_grams=50, max_grams=2000)),
        (PEN, NOW, Bounds()),
    ]
    without = list(read_csv(_csv(f"{HEADER}\n{PEN},Pen,,each,129,EUR\n"), default_valid_from=7))
    assert without[0].bounds is None  # a file without bound columns leaves bounds alone


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (
            ",min_grams,max_grams",
            f"{GOUDA},Gouda,,kg,1590,EUR,2000,50",
            "catalog.csv:2: min_grams 2000 is over max_grams 50",
        ),
        (
            ",min_grams",
            f"{PEN},Pen,,each,129,EUR,10",
            "catalog.csv:2: min_grams/max_grams are for products sold by weight",
        ),
        (
            ",max_price",
            f"{GOUDA},Gouda,,kg,1590,EUR,10",
            "catalog.csv:2: min_price/max_price are for price-embedded",
        ),
        (
            ",min_grams",
            f"{GOUDA},Gouda,,kg,1590,EUR,0.5",
            "catalog.csv:2: min_grams '0.5' is not a whole number of grams",
        ),
        (
            ",max_price",
            f"{DELI},Deli,,each,0,EUR,-1",
            "catalog.csv:2: max_price '-1' is not an integer amount",
        ),
        (
            ",max_grams",
            f"{GOUDA},Gouda,,kg,1590,EUR,1000001",
            "catalog.csv:2: max_grams 1000001 is not an integer",
        ),
        (",min_grams,min_grams", f"{GOUDA},Gouda,,kg,1590,EUR,1,2", "catalog.csv: header"),
        (",weight", f"{GOUDA},Gouda,,kg,1590,EUR,1", "catalog.csv: header"),
    ],
)
def test_bad_bounds_name_the_line_and_column(header: str, row: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        list(read_csv(_csv(f"{HEADER}{header}\n{row}\n"), default_valid_from=NOW))


def test_write_csv_and_read_csv_round_trip_the_bounds() -> None:
    out = io.StringIO()
    write_csv(CATALOG, out)
    assert out.getvalue().startswith(f"{HEADER},valid_from,min_grams,max_grams,min_price,max_price\n")
    back = list(read_csv(_csv(out.getvalue()), default_valid_from=0))
    assert {r.code: r.bounds for r in back if r.bounds != Bounds()} == {
        c.code: c.bounds for c in CATALOG if c.bounds is not None
    }


def test_bounds_are_set_by_a_file_with_bound_columns_and_kept_by_one_without_and_by_the_feed(
    memory_store: GateStore,
) -> None:
    def bounds() -> Bounds:
        return memory_store.products([GOUDA], now=NOW + 10, grace_s=0, currency="EUR")[GOUDA].bounds

    memory_store.import_catalog(
        read_csv(
            _csv(f"{HEADER},min_grams,max_grams\n{GOUDA},Gouda,,kg,1590,EUR,50,2000\n"),
            default_valid_from=NOW,
        )
    )
    assert bounds() == Bounds(50, 2000)
    memory_store.import_catalog(
        read_csv(_csv(f"{HEADER}\n{GOUDA},Gouda,,kg,1690,EUR\n"), default_valid_from=NOW + 1)
    )
    memory_store.apply_feed(
        1, set(), set(), [], [PriceChange(GOUDA, "Gouda", "cheese", "kg", 1790, "EUR", NOW + 2)]
    )
    assert bounds() == Bounds(50, 2000)
    memory_store.import_catalog(
        read_csv(
            _csv(f"{HEADER},min_grams,max_grams\n{GOUDA},Gouda,,kg,1790,EUR,,\n"), default_valid_from=NOW + 3
        )
    )
    assert bounds() == Bounds()


def test_the_memory_catalog_keeps_bounds_like_the_store() -> None:
    catalog = MemoryCatalog(CATALOG)
    catalog.add(PriceChange(GOUDA, "Gouda", "cheese", "kg", 1690, "EUR", NOW))
    assert catalog.products([GOUDA], now=NOW, grace_s=0, currency="EUR")[GOUDA].bounds == Bounds(50, 2000)
