"""The catalog tables: products and their price history, imported in bulk and read per list."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from sqlite_utils import Database

from gate.catalog import NO_BOUNDS, Bounds, PriceChange, Product
from gate.store.database import StoreBase
from gate.store.records import ImportResult

_IN_CHUNK = 500  # codes per catalog query; far below SQLite's parameter limit


class CatalogTables(StoreBase):
    """Products and prices: a price is added as history, never overwritten."""

    def import_catalog(
        self,
        changes: Iterable[PriceChange],
        *,
        progress: Callable[[int], None] | None = None,
        batch: int = 5000,
    ) -> ImportResult:
        """Add products and price changes in one transaction; `progress(n)` after each batch of n rows.

        A product's name, category and unit are replaced, and so are its bounds when the change carries
        them; a price row is added only where the price differs from the one in force at its valid_from,
        so importing the same file twice adds nothing.
        """
        started = time.perf_counter()
        with self._write() as db:
            result = import_rows(db, changes, progress, batch)
        self.checkpoint()
        return ImportResult(result[0], result[1], result[2], time.perf_counter() - started)

    def products(
        self, keys: Collection[str], *, now: float, grace_s: int, currency: str
    ) -> dict[str, Product]:
        """The catalog entries for these keys, with the price rows that matter around `now` (one query).

        History returned per product: the row in force at now - grace and every later row up to now.
        """
        keys = list(set(keys))
        out: dict[str, Product] = {}
        if not keys:
            return out
        cutoff = now - grace_s
        with self._read() as db:
            for start in range(0, len(keys), _IN_CHUNK):
                part = keys[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    "SELECT d.code, d.name, d.category, d.unit, b.min_grams, b.max_grams, b.min_price,"
                    " b.max_price, h.valid_from, h.price FROM products d"
                    " LEFT JOIN product_bounds b ON b.code = d.code"
                    " LEFT JOIN prices h ON h.code = d.code AND h.currency = ? AND h.valid_from <= ?"
                    "  AND h.valid_from >= coalesce((SELECT max(q.valid_from) FROM prices q"
                    "   WHERE q.code = d.code AND q.currency = ? AND q.valid_from <= ?), 0)"
                    f" WHERE d.code IN ({marks}) ORDER BY d.code, h.valid_from",
                    [currency, now, currency, cutoff, *part],
                ).fetchall()
                _collect(rows, currency, out)
        return out

    def catalog_counts(self) -> tuple[int, int]:
        """(products, price rows)."""
        with self._read() as db:
            return (
                db.execute("SELECT count(*) FROM products").fetchone()[0],
                db.execute("SELECT count(*) FROM prices").fetchone()[0],
            )


def import_rows(
    db: Database,
    changes: Iterable[PriceChange],
    progress: Callable[[int], None] | None,
    batch: int,
) -> tuple[int, int, int]:
    db.execute("DROP TABLE IF EXISTS temp.import_rows")
    db.execute(
        "CREATE TEMP TABLE import_rows (seq INTEGER PRIMARY KEY, code TEXT, name TEXT, category TEXT,"
        " unit TEXT, price INTEGER, currency TEXT, valid_from INTEGER, bounded INTEGER,"
        " min_grams INTEGER, max_grams INTEGER, min_price INTEGER, max_price INTEGER)"
    )
    insert = (
        "INSERT INTO temp.import_rows (code, name, category, unit, price, currency, valid_from, bounded,"
        " min_grams, max_grams, min_price, max_price) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    rows = 0
    chunk: list[tuple[Any, ...]] = []
    for change in changes:
        c = change.checked()
        bounds = (c.bounds or NO_BOUNDS).as_tuple()
        chunk.append(
            (
                c.code,
                c.name,
                c.category,
                c.unit,
                c.price,
                c.currency,
                c.valid_from,
                c.bounds is not None,
                *bounds,
            )
        )
        if len(chunk) >= batch:
            db.conn.executemany(insert, chunk)
            rows += len(chunk)
            if progress:
                progress(len(chunk))
            chunk = []
    if chunk:
        db.conn.executemany(insert, chunk)
        rows += len(chunk)
        if progress:
            progress(len(chunk))
    before = db.execute("SELECT count(*) FROM products").fetchone()[0]
    # Later rows of the file win for a product's description (ORDER BY seq).
    db.execute(
        "INSERT INTO products (code, name, category, unit)"
        " SELECT code, name, category, unit FROM temp.import_rows WHERE true ORDER BY seq"
        " ON CONFLICT (code) DO UPDATE SET"
        " name = excluded.name, category = excluded.category, unit = excluded.unit"
    )
    added_products = db.execute("SELECT count(*) FROM products").fetchone()[0] - before
    db.execute(
        "INSERT INTO product_bounds (code, min_grams, max_grams, min_price, max_price)"
        " SELECT code, min_grams, max_grams, min_price, max_price FROM temp.import_rows WHERE bounded"
        " ORDER BY seq ON CONFLICT (code) DO UPDATE SET min_grams = excluded.min_grams,"
        " max_grams = excluded.max_grams, min_price = excluded.min_price, max_price = excluded.max_price"
    )
    cursor = db.execute(
        "INSERT INTO prices (code, currency, valid_from, price)"
        " SELECT i.code, i.currency, i.valid_from, i.price FROM temp.import_rows i"
        " WHERE i.price IS NOT (SELECT p.price FROM prices p WHERE p.code = i.code"
        "   AND p.currency = i.currency AND p.valid_from <= i.valid_from"
        "   ORDER BY p.valid_from DESC LIMIT 1)"
        " ORDER BY i.seq"
        " ON CONFLICT (code, currency, valid_from) DO UPDATE SET price = excluded.price"
    )
    added_prices = cursor.rowcount
    db.execute("DROP TABLE temp.import_rows")
    return rows, added_products, added_prices


def _collect(rows: list[tuple[Any, ...]], currency: str, out: dict[str, Product]) -> None:
    current: str | None = None
    history: list[tuple[int, int]] = []
    desc: tuple[str, str, str] = ("", "", "")
    bounds = NO_BOUNDS

    def flush() -> None:
        if current is not None:
            out[current] = Product(current, desc[0], desc[1], desc[2], currency, tuple(history), bounds)

    for code, name, category, unit, min_g, max_g, min_p, max_p, valid_from, price in rows:
        if code != current:
            flush()
            current, desc, history = code, (name, category, unit), []
            bounds = (
                NO_BOUNDS
                if (min_g, max_g, min_p, max_p) == (None,) * 4
                else Bounds(min_g, max_g, min_p, max_p)
            )
        if valid_from is not None:
            history.append((valid_from, price))
    flush()
