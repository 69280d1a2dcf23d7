"""The list being built (claim 4): lines added one scan at a time, a running total in minor units.

The basket is the shopper's draft; it becomes a `ShoppingList` only when the shopper confirms it
(claim 2, `Phone.confirm`), with a fresh random list id, the hold it is paid from and a total that is the
sum of its lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from gate.errors import ProtocolError
from gate.protocol.documents import MAX_LIST_ITEMS, VERSION, Item, ShoppingList, line_total
from gate.protocol.parties import new_id
from phone.errors import ScanError, StateError

MAX_QTY = 10_000  # the format's limit per line (Item.qty); a store's policy may set a lower one


@dataclass(frozen=True)
class Line:
    """One line as the shopper sees it: the catalog's name beside what goes into the signed list."""

    code: str
    name: str
    qty: int
    unit_price: int  # minor units per piece, or per kilogram when grams is set
    grams: int | None = None

    @property
    def total(self) -> int:
        return line_total(self.qty, self.unit_price, self.grams)

    def item(self) -> Item:
        return Item(
            code=self.code, qty=self.qty, unit_price=self.unit_price, line_total=self.total, grams=self.grams
        )


@dataclass(frozen=True)
class Basket:
    """An ordered, immutable draft of lines; every change returns a new basket."""

    currency: str
    lines: tuple[Line, ...] = ()

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def count(self) -> int:
        """Pieces, counting a weighed line as one."""
        return sum(line.qty for line in self.lines)

    def add(self, line: Line) -> Basket:
        """Add a scan. A piece scanned again adds to its line; weighed or priced labels stay separate."""
        if line.grams is None:
            for i, old in enumerate(self.lines):
                if old.code == line.code and old.grams is None and old.unit_price == line.unit_price:
                    if old.qty + line.qty > MAX_QTY:
                        raise ScanError(f"{line.code}: more than {MAX_QTY} on one line")
                    merged = replace(old, qty=old.qty + line.qty)
                    return replace(self, lines=(*self.lines[:i], merged, *self.lines[i + 1 :]))
        if len(self.lines) >= MAX_LIST_ITEMS:
            raise ScanError(f"a list holds at most {MAX_LIST_ITEMS} lines")
        return replace(self, lines=(*self.lines, line))

    def remove(self, code: str, qty: int = 1) -> Basket:
        """Take qty pieces of the last line with this code back out (a weighed line goes whole)."""
        for i in range(len(self.lines) - 1, -1, -1):
            old = self.lines[i]
            if old.code != code:
                continue
            if old.grams is None and old.qty > qty:
                return replace(
                    self, lines=(*self.lines[:i], replace(old, qty=old.qty - qty), *self.lines[i + 1 :])
                )
            return replace(self, lines=self.lines[:i] + self.lines[i + 1 :])
        raise ScanError(f"{code} is not in the list")

    def items(self) -> tuple[Item, ...]:
        """The lines as the list carries them."""
        return tuple(line.item() for line in self.lines)

    def shopping_list(
        self, *, hold: bytes, store: str, created: int, list_id: bytes | None = None
    ) -> ShoppingList:
        """The document the shopper signs: a new random 16-byte list id unless one is given, the total the
        sum of the lines. It is decoded back strictly, so what is signed is what every verifier accepts."""
        if not self.lines:
            raise StateError("the list is empty: scan something first")
        items = self.items()
        doc = ShoppingList(
            v=VERSION,
            list=list_id if list_id is not None else new_id(),
            hold=hold,
            store=store,
            currency=self.currency,
            created=created,
            items=items,
            total=sum(item.line_total for item in items),
        )
        try:
            return ShoppingList.decode(doc.encode())
        except ProtocolError as exc:
            raise StateError(f"the list cannot be signed: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "lines": [asdict(line) for line in self.lines]}

    @classmethod
    def from_json(cls, value: Any) -> Basket:
        try:
            lines = tuple(Line(**line) for line in value["lines"])
            return cls(currency=value["currency"], lines=lines)
        except (KeyError, TypeError) as exc:
            raise StateError(f"the saved list is unreadable: {exc}") from exc
