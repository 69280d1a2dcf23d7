"""Catalog import: 100k products from CSV into a file database, products per second and bytes on disk."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.stats import metric
from gate.barcodes import check_digit
from gate.catalog import PriceChange, read_csv, write_csv
from gate.store import GateStore

PRODUCTS = 100_000
CATEGORIES = ("grocery", "dairy", "household", "stationery", "age-restricted", "security-tagged")
T0 = 1_767_225_600


def synthetic_catalog(n: int = PRODUCTS, *, valid_from: int = T0 - 86400) -> list[PriceChange]:
    """n distinct EAN-13 products with plausible names and prices, the same every run."""
    out = []
    for i in range(n):
        body = f"40{i:010d}"
        out.append(
            PriceChange(
                body + check_digit(body),
                f"Product {i} {CATEGORIES[i % 6]} 500 g",
                CATEGORIES[i % 6] if i % 50 == 0 else CATEGORIES[i % 4],
                "each",
                49 + (i * 7919) % 2000,
                "EUR",
                valid_from,
            )
        )
    return out


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "catalog.csv"
        with csv_path.open("w") as f:
            write_csv(synthetic_catalog(), f)
        db_path = Path(tmp) / "gate.db"
        with GateStore(db_path) as store:
            started = time.perf_counter()
            result = store.import_catalog(read_csv(csv_path, default_valid_from=T0))
            elapsed = time.perf_counter() - started
            assert result.products_added == PRODUCTS
            yield metric("catalog.import_100k.seconds", elapsed, "s")
            yield metric("catalog.import.rate", PRODUCTS / elapsed, "products/s")
            again = time.perf_counter()
            store.import_catalog(read_csv(csv_path, default_valid_from=T0))
            yield metric(
                "catalog.reimport_unchanged.rate", PRODUCTS / (time.perf_counter() - again), "products/s"
            )
            with store._use() as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield metric("catalog.db_size_100k", os.path.getsize(db_path), "bytes")
        yield metric("catalog.csv_size_100k", os.path.getsize(csv_path), "bytes")
