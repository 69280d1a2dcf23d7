"""The catalog: CSV import with price history, lookups around a moment, the grace period."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gate.catalog import CatalogError, MemoryCatalog, PriceChange, Product, count_rows, read_csv, write_csv
from gate.store import GateStore
from tests.fixtures.store import CATALOG, NOW, PEN, UPC_A

HEADER = "code,name,category,unit,price,currency,valid_from\n"


def _csv(text: str) -> io.StringIO:
    f = io.StringIO(text)
    f.name = "catalog.csv"
    return f


def test_read_csv_normalises_codes_and_defaults_valid_from() -> None:
    rows = list(
        read_csv(
            _csv("code,name,category,unit,price,currency\n036000291452,Soap,household,each,250,EUR\n"),
            default_valid_from=NOW,
        )
    )
    assert rows == [PriceChange("0036000291452", "Soap", "household", "each", 250, "EUR", NOW)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("code,name\n", "header"),
        (HEADER + "4006381333932,Pen,,each,129,EUR,\n", "catalog.csv:2: code"),
        (HEADER + "4006381333931,Pen,,box,129,EUR,\n", "catalog.csv:2: unit"),
        (HEADER + "4006381333931,Pen,,each,1.29,EUR,\n", "catalog.csv:2: price"),
        (HEADER + "4006381333931,Pen,,each,129,eur,\n", "catalog.csv:2: currency"),
        (HEADER + "4006381333931,Pen,,each,129,EUR,yesterday\n", "catalog.csv:2: valid_from"),
        (HEADER + "4006381333931,Pen,,each,129,EUR\n", "catalog.csv:2: 6 columns"),
        (HEADER + "\n4006381333931,Pen,,each,129,EUR,1\n96385075,Gum,,each,1,EUR,1\n", "catalog.csv:4"),
    ],
)
def test_bad_csv_names_the_line_and_column(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        list(read_csv(_csv(text), default_valid_from=NOW))


def test_a_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        list(read_csv(tmp_path / "none.csv", default_valid_from=NOW))


def test_import_twice_adds_nothing_and_a_price_change_adds_history(memory_store: GateStore) -> None:
    first = memory_store.import_catalog(CATALOG)
    assert (first.rows, first.products_added, first.prices_added) == (len(CATALOG), 10, len(CATALOG))
    again = memory_store.import_catalog(CATALOG)
    assert (again.products_added, again.prices_added) == (0, 0)
    later = PriceChange(PEN, "Stabilo pen (new)", "stationery", "each", 139, "EUR", NOW + 100)
    third = memory_store.import_catalog([later])
    assert (third.products_added, third.prices_added) == (0, 1)
    product = memory_store.products([PEN], now=NOW + 200, grace_s=150, currency="EUR")[PEN]
    assert product.name == "Stabilo pen (new)"
    assert product.acceptable_prices(NOW + 200, 150) == {129, 139}
    assert product.acceptable_prices(NOW + 200, 50) == {139}
    assert memory_store.catalog_counts() == (10, len(CATALOG) + 1)


def test_lookups_return_only_the_rows_that_matter(memory_store: GateStore) -> None:
    changes = [PriceChange(PEN, "Pen", "", "each", 100 + i, "EUR", NOW - 1000 * (10 - i)) for i in range(10)]
    changes.append(PriceChange(PEN, "Pen", "", "each", 500, "EUR", NOW + 1000))
    changes.append(PriceChange(PEN, "Pen", "", "each", 900, "USD", NOW - 5))
    memory_store.import_catalog(changes)
    product = memory_store.products([PEN, UPC_A], now=NOW, grace_s=1500, currency="EUR")
    assert list(product) == [PEN]  # UPC_A is not in this catalog
    # The row in force at now - grace, and every later one up to now; none from the future or in USD.
    assert product[PEN].history == ((NOW - 2000, 108), (NOW - 1000, 109))
    assert product[PEN].acceptable_prices(NOW, 1500) == {108, 109}


def test_a_product_without_a_price_in_the_lane_currency_has_none(memory_store: GateStore) -> None:
    memory_store.import_catalog([PriceChange(PEN, "Pen", "", "each", 900, "USD", NOW - 5)])
    product = memory_store.products([PEN], now=NOW, grace_s=0, currency="EUR")[PEN]
    assert (
        product.history == ()
        and product.current_price() is None
        and product.acceptable_prices(NOW, 0) == set()
    )


def test_the_memory_catalog_agrees_with_the_store(memory_store: GateStore) -> None:
    memory_store.import_catalog(CATALOG)
    memory = MemoryCatalog(CATALOG)
    keys = {c.code for c in CATALOG}
    for now, grace in ((NOW, 900), (NOW, 0), (NOW - 4000, 100)):
        a = memory_store.products(keys, now=now, grace_s=grace, currency="EUR")
        b = memory.products(keys, now=now, grace_s=grace, currency="EUR")
        assert {k: p.acceptable_prices(now, grace) for k, p in a.items()} == {
            k: p.acceptable_prices(now, grace) for k, p in b.items()
        }


def test_acceptable_prices_around_a_change() -> None:
    p = Product("x", "x", "", "each", "EUR", ((0, 100), (1000, 120)))
    assert p.acceptable_prices(999, 0) == {100}
    assert p.acceptable_prices(1000, 0) == {120}
    assert p.acceptable_prices(1500, 600) == {100, 120}
    assert p.acceptable_prices(1600, 600) == {120}


def test_a_large_csv_imports_in_one_transaction_with_progress(
    tmp_path: Path, memory_store: GateStore
) -> None:
    from gate.barcodes import check_digit

    changes = []
    for n in range(20_000):
        body = f"20{n:010d}"
        changes.append(
            PriceChange(body + check_digit(body), f"item {n}", "", "each", n % 997 + 1, "EUR", NOW)
        )
    path = tmp_path / "catalog.csv"
    with path.open("w") as f:
        write_csv(changes, f)
    assert count_rows(path) == 20_000
    seen = []
    result = memory_store.import_catalog(read_csv(path, default_valid_from=0), progress=seen.append)
    assert result.rows == sum(seen) == 20_000 and result.products_added == 20_000
    assert memory_store.catalog_counts() == (20_000, 20_000)
