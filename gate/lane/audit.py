"""The attendant's audit: the basket re-scanned at the lane's scanner and compared with the signed list.

A list goes to an audit when the store's random draw picks it (`audit`), when a weight or price label on it
is implausible (`label_implausible`), or when the attendant asks for one. The lane holds the gate meanwhile.

The comparison is per product, unit by unit: codes are compared in their catalog spelling (a UPC-A and its
EAN-13 spelling are one product), and a weight or price label is a product of its own, since its code
carries its value. Money is counted at the list's own prices for goods it lists and at the catalog's for
goods it does not, so the difference is what the basket holds beyond (or short of) what was signed.

The charge is never changed by an audit: the shopper signed the list, and only the signed list can be
charged. Letting the shopper out records the scanned list beside the signed one, for the store to follow up;
calling a manager records it and leaves the gate shut.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gate.barcodes import BarcodeError, catalog_key, parse_scan, resolve
from gate.catalog import Catalog
from gate.legality import Decision, Policy, Reason, verdict_of
from gate.protocol.documents import line_total

AUDIT_CODES = frozenset({"audit", "label_implausible"})
MAX_SCANS = 500  # a basket; more is a stuck scanner, and the audit stops growing
OUTCOMES = ("let_out", "manager")


def needs_audit(decision: Decision) -> bool:
    """True when the check itself sent the list to an audit (drawn, or an implausible label)."""
    return bool(AUDIT_CODES & set(decision.codes))


def asked_for(decision: Decision, by: str) -> Decision:
    """The decision with the attendant's own request added as an `audit` reason (a denial stays one)."""
    reasons = (*decision.reasons, Reason("audit", f"asked for by the attendant {by}"))
    return dataclasses.replace(
        decision, verdict=verdict_of(frozenset(r.code for r in reasons)), reasons=reasons
    )


@dataclass(frozen=True)
class AuditLine:
    """One product: units listed and scanned, and the money of the difference (None: price unknown)."""

    code: str
    name: str
    listed: int
    scanned: int
    unit_price: int | None  # per unit: the list's, else the catalog's; None when the catalog has none
    implausible: bool = False  # a weight or price label outside its product's bounds: look at the item

    @property
    def difference(self) -> int | None:
        if self.listed == self.scanned:
            return 0
        return None if self.unit_price is None else (self.scanned - self.listed) * self.unit_price

    @property
    def matches(self) -> bool:
        return self.listed == self.scanned

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "listed": self.listed,
            "scanned": self.scanned,
            "unit_price": self.unit_price,
            "difference": self.difference,
            "implausible": self.implausible,
        }


@dataclass(frozen=True)
class Comparison:
    """Scanned against listed, line by line, and in money."""

    lines: tuple[AuditLine, ...]
    listed_total: int
    currency: str

    @property
    def scanned_total(self) -> int:
        """The scanned units that have a price (see `unpriced` for the others)."""
        return sum((line.unit_price or 0) * line.scanned for line in self.lines)

    @property
    def difference(self) -> int:
        """Money of the basket beyond what was listed (negative: less in the basket than listed)."""
        return sum(line.difference or 0 for line in self.lines)

    @property
    def unpriced(self) -> int:
        return sum(line.scanned - line.listed for line in self.lines if line.difference is None)

    @property
    def matches(self) -> bool:
        return all(line.matches for line in self.lines)

    @property
    def scanned_units(self) -> int:
        return sum(line.scanned for line in self.lines)


@dataclass
class Audit:
    """One audit in progress: whose list, why, and what the attendant scanned so far."""

    decision: Decision
    started_at: float
    asked_by: str | None = None
    scans: list[str] = field(default_factory=list)  # list codes, in scan order
    unreadable: list[str] = field(default_factory=list)  # what the scanner sent that is no product code
    notes: list[str] = field(default_factory=list)  # the scanner's troubles during the audit

    @property
    def list_id(self) -> bytes:
        assert self.decision.list_id is not None
        return self.decision.list_id

    def health(self) -> dict[str, Any]:
        """For the lane's health: changes with every read, so a page showing the audit can follow it."""
        return {"list": self.list_id.hex(), "scans": len(self.scans), "unreadable": len(self.unreadable)}

    def add_scan(self, code: str, symbology: str | None) -> str | None:
        """Count one scanned unit; the reason it was not counted, or None."""
        if len(self.scans) >= MAX_SCANS:
            return f"over {MAX_SCANS} scans: the audit takes no more"
        try:
            scanned = parse_scan((symbology or "") + code).code
        except BarcodeError as exc:
            self.unreadable.append(code[:40])
            return str(exc)
        self.scans.append(scanned)
        return None

    def undo_scan(self, code: str) -> bool:
        """Take back the last scan of this code (scanned twice by mistake); False if it was not scanned."""
        key = _key(code)
        for i in range(len(self.scans) - 1, -1, -1):
            if _key(self.scans[i]) == key:
                del self.scans[i]
                return True
        return False

    def compare(self, catalog: Catalog, policy: Policy, *, now: float) -> Comparison:
        """Scanned against listed: listed products first, in list order, then what only the scan found."""
        slist = self.decision.list
        assert slist is not None
        listed: dict[str, list[int]] = {}  # key -> [units, money of the first line per unit]
        codes: dict[str, str] = {}
        for it in slist.items:
            key = _key(it.code)
            codes.setdefault(key, it.code)
            entry = listed.setdefault(key, [0, it.line_total // it.qty])
            entry[0] += it.qty
        scanned: dict[str, int] = {}
        for code in self.scans:
            key = _key(code)
            codes.setdefault(key, code)
            scanned[key] = scanned.get(key, 0) + 1
        resolved = {key: _resolve(code, policy) for key, code in codes.items()}
        products = catalog.products(
            {r[0] for r in resolved.values() if r is not None},
            now=now,
            grace_s=policy.price_grace_s,
            currency=slist.currency,
        )
        lines = []
        for key, code in codes.items():
            product = products.get(resolved[key][0]) if resolved[key] is not None else None
            name = product.name if product is not None else "not in the catalog"
            if key in listed:
                price: int | None = listed[key][1]
            else:
                price = _catalog_price(product, resolved[key])
            implausible = _implausible(product, resolved[key])
            lines.append(
                AuditLine(code, name, listed.get(key, [0])[0], scanned.get(key, 0), price, implausible)
            )
        return Comparison(tuple(lines), slist.total, slist.currency)


def _key(code: str) -> str:
    try:
        return catalog_key(code)
    except BarcodeError:
        return code


def _resolve(code: str, policy: Policy) -> tuple[str, str | None, int] | None:
    """(catalog key, kind of embedded value or None, the value) or None for a code that is no product's."""
    try:
        r = resolve(code, policy.gs1)
    except BarcodeError:
        return None
    if r.measure is None:
        return r.key, None, 0
    return r.key, r.measure.kind, r.measure.value


def _implausible(product: Any, resolved: tuple[str, str | None, int] | None) -> bool:
    if product is None or resolved is None or resolved[1] is None:
        return False
    _, kind, value = resolved
    return product.bounds.grams_outside(value) if kind == "weight" else product.bounds.price_outside(value)


def _catalog_price(product: Any, resolved: tuple[str, str | None, int] | None) -> int | None:
    if product is None or resolved is None:
        return None
    _, kind, value = resolved
    if kind == "price":
        return value
    current = product.current_price()
    if current is None:
        return None
    return line_total(1, current, value) if kind == "weight" else current
