"""The gate's catalog: products with a price history, from a store's CSV export or the payment system's feed.

A price is never overwritten: a change adds a row valid from a moment on, so the gate can accept a list
priced a few minutes before a change (policy.price_grace_s) and a technician can see what was charged when.

CSV format (UTF-8, header row required, unknown columns refused):

    code,name,category,unit,price,currency[,valid_from][,min_grams,max_grams][,min_price,max_price]
    4006381333931,Stabilo pen,,each,129,EUR
    2100231000003,Gouda (per kg),cheese,kg,1590,EUR,1767225600,50,2000

`code` is a GTIN (8, 12, 13 or 14 digits with its check digit) or a GS1 base code (prefix 20-29, value
zero); it is stored under its catalog key (gate.barcodes.catalog_key). `unit` is `each` or `kg` (then `price`
is per kilogram). `price` is an integer in minor units. `valid_from` is unix seconds; empty means "from the
import on".

The gate cannot weigh, so the weight or price a GS1 label embeds is taken on trust; the optional bounds say
what a real label of the product can plausibly carry: `min_grams`/`max_grams` for a product sold by weight,
`min_price`/`max_price` (minor units) for a price-embedded one. A line outside them is not refused (scales and
labels vary) but sent to an attendant's audit (reason `label_implausible`). A file with bound columns sets
each product's bounds (empty cells: no bound); a file without them, and the payment system's feed, leave the
bounds as they are.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from gate.barcodes import BarcodeError, catalog_key
from gate.errors import GateError

UNITS = ("each", "kg")
MAX_PRICE = 10**10
COLUMNS = ("code", "name", "category", "unit", "price", "currency")
BOUND_COLUMNS = ("min_grams", "max_grams", "min_price", "max_price")
OPTIONAL_COLUMNS = ("valid_from", *BOUND_COLUMNS)
MAX_GRAMS = 10**6  # the protocol's largest `grams`
_CURRENCY = re.compile(r"[A-Z]{3}")


class CatalogError(GateError, ValueError):
    """A catalog file or feed entry is malformed (the message names the line and the column)."""


@dataclass(frozen=True)
class Bounds:
    """What a real label of one product may carry: grams for a weighed product, a price for a price-embedded
    one. None is no bound on that side."""

    min_grams: int | None = None
    max_grams: int | None = None
    min_price: int | None = None
    max_price: int | None = None

    def checked(self, where: str, unit: str) -> None:
        """CatalogError naming the column when a bound is not a sane amount, or does not fit the unit."""
        for column, value, top in zip(
            BOUND_COLUMNS, self.as_tuple(), (MAX_GRAMS, MAX_GRAMS, MAX_PRICE, MAX_PRICE), strict=True
        ):
            if value is not None and (not _is_int(value) or not 0 <= value <= top):
                raise CatalogError(f"{where}: {column} {value!r} is not an integer 0-{top}")
        for low, high in (("min_grams", "max_grams"), ("min_price", "max_price")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise CatalogError(f"{where}: {low} {lo} is over {high} {hi}")
        if unit != "kg" and (self.min_grams is not None or self.max_grams is not None):
            raise CatalogError(f"{where}: min_grams/max_grams are for products sold by weight (unit kg)")
        if unit == "kg" and (self.min_price is not None or self.max_price is not None):
            raise CatalogError(f"{where}: min_price/max_price are for price-embedded products (unit each)")

    def as_tuple(self) -> tuple[int | None, int | None, int | None, int | None]:
        return (self.min_grams, self.max_grams, self.min_price, self.max_price)

    def grams_outside(self, grams: int) -> bool:
        return (self.min_grams is not None and grams < self.min_grams) or (
            self.max_grams is not None and grams > self.max_grams
        )

    def price_outside(self, price: int) -> bool:
        return (self.min_price is not None and price < self.min_price) or (
            self.max_price is not None and price > self.max_price
        )


NO_BOUNDS = Bounds()


@dataclass(frozen=True)
class PriceChange:
    """One product at one price from one moment on: a CSV row, or an entry of the payment system's feed.

    `bounds` None leaves the product's plausible bounds as they are (the feed carries none)."""

    code: str
    name: str
    category: str
    unit: str
    price: int
    currency: str
    valid_from: int
    bounds: Bounds | None = None

    def checked(self, where: str = "price change") -> PriceChange:
        """This change with its code as a catalog key; CatalogError naming what is wrong."""
        try:
            key = catalog_key(self.code)
        except BarcodeError as exc:
            raise CatalogError(f"{where}: code {exc}") from exc
        if self.unit not in UNITS:
            raise CatalogError(f"{where}: unit {self.unit!r} is not 'each' or 'kg'")
        if not _is_int(self.price) or not 0 <= self.price <= MAX_PRICE:
            raise CatalogError(f"{where}: price {self.price!r} is not an integer amount in minor units")
        if not _CURRENCY.fullmatch(self.currency):
            raise CatalogError(f"{where}: currency {self.currency!r} is not an ISO 4217 code")
        if not _is_int(self.valid_from) or self.valid_from < 0:
            raise CatalogError(f"{where}: valid_from {self.valid_from!r} is not unix seconds")
        if len(self.name) > 200 or len(self.category) > 64:
            raise CatalogError(f"{where}: name or category too long")
        if self.bounds is not None:
            self.bounds.checked(where, self.unit)
        if key == self.code:
            return self
        return dataclasses.replace(self, code=key)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Product:
    """A catalog entry as the legality check sees it: the prices it may carry around a moment."""

    code: str
    name: str
    category: str
    unit: str
    currency: str
    history: tuple[tuple[int, int], ...]  # (valid_from, price), oldest first, none after the lookup time
    bounds: Bounds = NO_BOUNDS

    def current_price(self) -> int | None:
        return self.history[-1][1] if self.history else None

    def acceptable_prices(self, now: float, grace_s: int) -> frozenset[int]:
        """Prices valid at some instant of [now - grace, now]: the current one and those it just replaced."""
        cutoff = now - grace_s
        out = set()
        for i, (valid_from, price) in enumerate(self.history):
            if valid_from > now:
                break
            next_from = self.history[i + 1][0] if i + 1 < len(self.history) else None
            if next_from is None or next_from > cutoff:
                out.add(price)
        return frozenset(out)


class Catalog(Protocol):
    """What the legality check needs from a catalog; gate.store.GateStore is one."""

    def products(
        self, keys: Collection[str], *, now: float, grace_s: int, currency: str
    ) -> dict[str, Product]: ...


class MemoryCatalog:
    """A catalog held in a dict, for tools and tests that have no database."""

    def __init__(self, changes: Sequence[PriceChange] = ()) -> None:
        self._products: dict[str, tuple[str, str, str]] = {}
        self._bounds: dict[str, Bounds] = {}
        self._prices: dict[tuple[str, str], dict[int, int]] = {}
        for change in changes:
            self.add(change)

    def add(self, change: PriceChange) -> None:
        change = change.checked()
        self._products[change.code] = (change.name, change.category, change.unit)
        if change.bounds is not None:
            self._bounds[change.code] = change.bounds
        self._prices.setdefault((change.code, change.currency), {})[change.valid_from] = change.price

    def products(
        self, keys: Collection[str], *, now: float, grace_s: int, currency: str
    ) -> dict[str, Product]:
        out = {}
        for key in set(keys):
            if key not in self._products:
                continue
            name, category, unit = self._products[key]
            prices = self._prices.get((key, currency), {})
            history = tuple(sorted(kv for kv in prices.items() if kv[0] <= now))
            out[key] = Product(key, name, category, unit, currency, history, self._bounds.get(key, NO_BOUNDS))
        return out


def read_csv(source: str | os.PathLike[str] | IO[str], *, default_valid_from: int) -> Iterator[PriceChange]:
    """Parse a catalog CSV lazily, row by row; CatalogError names the first bad line and column."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            handle: IO[str] = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read catalog: {exc.strerror or exc}") from exc
        name = str(path)
    else:
        handle, name = source, getattr(source, "name", "<catalog>")
    try:
        yield from _rows(handle, name, default_valid_from)
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise CatalogError(f"{name}: not a CSV file: {exc}") from exc
    finally:
        if handle is not source:
            handle.close()


def _rows(handle: IO[str], name: str, default_valid_from: int) -> Iterator[PriceChange]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise CatalogError(f"{name}: empty file, expected a header {','.join(COLUMNS)}")
    header = [h.strip() for h in header]
    extra = header[len(COLUMNS) :]
    if (
        tuple(header[: len(COLUMNS)]) != COLUMNS
        or not set(extra) <= set(OPTIONAL_COLUMNS)
        or len(set(extra)) != len(extra)
    ):
        raise CatalogError(
            f"{name}: header is {','.join(header)!r}, expected {','.join(COLUMNS)} and any of "
            f"{','.join(OPTIONAL_COLUMNS)}"
        )
    width = len(header)
    has_bounds = any(c in BOUND_COLUMNS for c in extra)
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise CatalogError(f"{name}:{line}: {len(row)} columns, expected {width}")
        code, pname, category, unit, price, currency = (c.strip() for c in row[:6])
        optional = {column: cell.strip() for column, cell in zip(extra, row[6:], strict=True)}
        where = f"{name}:{line}"
        for column, cell in [("price", price), *optional.items()]:
            if (cell or column == "price") and not (cell.isdecimal() and cell.isascii()):
                what = "unix seconds" if column == "valid_from" else "an integer amount in minor units"
                if column.endswith("grams"):
                    what = "a whole number of grams"
                raise CatalogError(f"{where}: {column} {cell!r} is not {what}")
        ints = {column: int(cell) for column, cell in optional.items() if cell}
        bounds = Bounds(*(ints.get(c) for c in BOUND_COLUMNS)) if has_bounds else None
        yield PriceChange(
            code,
            pname,
            category,
            unit,
            int(price),
            currency,
            ints.get("valid_from", default_valid_from),
            bounds,
        ).checked(where)


def write_csv(changes: Sequence[PriceChange], out: IO[str]) -> None:
    """Write price changes in the import format (for exports, tests and the benchmark); bound columns
    only when some change carries bounds."""
    writer = csv.writer(out, lineterminator="\n")
    bounded = any(c.bounds is not None for c in changes)
    writer.writerow((*COLUMNS, "valid_from", *(BOUND_COLUMNS if bounded else ())))
    for c in changes:
        bounds = ["" if v is None else v for v in (c.bounds or NO_BOUNDS).as_tuple()] if bounded else []
        writer.writerow((c.code, c.name, c.category, c.unit, c.price, c.currency, c.valid_from, *bounds))


def count_rows(path: Path) -> int:
    """Data rows of a CSV file, counted quickly, so a progress bar knows its length."""
    with path.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        f.seek(0, io.SEEK_END)
        if f.tell() and _last_byte(f) != b"\n":
            lines += 1
    return max(0, lines - 1)


def _last_byte(f: IO[bytes]) -> bytes:
    f.seek(-1, io.SEEK_END)
    return f.read(1)
