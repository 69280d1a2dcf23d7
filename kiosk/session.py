"""What the kiosk screen shows, as one object every part changes under one lock: the shopper's session.

A session starts when a phone's hold was read, grows a line per scan, and ends when the phone signed the
list (or the shopper cancels, or walks away). It is a draft, never money: nothing in it is charged, and a
session lost to a power cut costs the shopper a rescan, nothing else. So the only thing written to disk is
a marker that a session was open, for the screen to say so after a restart.

Every change bumps `version` and wakes `wait_change`, which the screen's event stream waits on: the page is
re-rendered from `view()` and pushed, never reloaded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from gate.barcodes import BarcodeError, Layout, parse_scan, resolve
from gate.catalog import Product
from gate.protocol.documents import VERSION, HoldVoucher, ShoppingList, Signed, line_total
from gate.protocol.kiosk import ProposedList
from gate.protocol.parties import item
from kiosk.marker import SessionMarker

MAX_QTY = 99  # per line at the kiosk (the gate's default policy.max_quantity)


class Products(Protocol):
    """The store's catalog as the kiosk reads it: products by catalog key, and the GS1 label layouts."""

    def products(self, keys: set[str]) -> dict[str, Product]: ...

    def layouts(self) -> Mapping[str, Layout]: ...


@dataclass(frozen=True)
class KioskLine:
    """One line on the screen: what the list will carry, and what the shopper and the attendant see."""

    id: int
    code: str  # the list code, as scanned (a label's full 13 digits)
    key: str  # the catalog key it is priced under
    name: str
    category: str
    qty: int
    unit_price: int  # per piece, or per kilogram with grams
    grams: int | None = None
    label: bool = False  # a weight or price label: one line per label, no quantity to change
    attendant: bool = False  # staff checks it at the exit (policy.attendant_categories)

    @property
    def total(self) -> int:
        return line_total(self.qty, self.unit_price, self.grams)


@dataclass(frozen=True)
class Notice:
    """A sentence for the screen: `code` picks it (kiosk/texts.py), `params` fill it in."""

    code: str
    level: str = "info"  # "info", "warn" or "error"
    params: Mapping[str, Any] = field(default_factory=dict)
    at: float = 0.0


class Kiosk:
    """The kiosk's state: attract -> shopping -> confirming -> done, with a notice and an idle warning."""

    def __init__(
        self,
        *,
        kiosk_id: str,
        store_id: str,
        currency: str,
        catalog: Products,
        attendant_categories: Collection[str] = (),
        blocked_codes: Collection[str] = (),
        idle_warning_s: float = 90.0,
        idle_clear_s: float = 120.0,
        done_display_s: float = 15.0,
        languages: tuple[str, ...] = ("en",),
        marker: SessionMarker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kiosk_id = kiosk_id
        self.store_id = store_id
        self.currency = currency
        self._catalog = catalog
        self._attendant = frozenset(attendant_categories)
        self._blocked = frozenset(blocked_codes)
        self._idle_warning_s = idle_warning_s
        self._idle_clear_s = idle_clear_s
        self._done_display_s = done_display_s
        self.languages = languages
        self._marker = marker
        self._clock = clock
        self._changed = threading.Condition(threading.RLock())
        self.version = 0
        self.line_change: tuple[int, int] | None = None  # (version, line id) of a one-line change
        self.closed = False
        self.state = "attract"
        self.language = languages[0]
        self.voucher: Signed[HoldVoucher] | None = None
        self.session_id = b""
        self.lines: tuple[KioskLine, ...] = ()
        self.last_line: int | None = None
        self.signed: ShoppingList | None = None
        self.notice: Notice | None = None
        self.idle_warning = False
        self.scanner_ok = True
        self.catalog_ok = True
        self._next_id = 1
        self._since = clock()
        if marker is not None and marker.pending():
            self._note("restarted", "warn")
            marker.clear()

    # -- waiting for changes (the screen's event stream) ---------------------------------------------------

    def wait_change(self, seen: int, timeout_s: float) -> int:
        """The version once it is not `seen` (or after timeout_s, or at close)."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen or self.closed, timeout_s)
            return self.version

    def close(self) -> None:
        """Wake every waiter for the last time: the screen's event streams end."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def _bump(self, line: int | None = None) -> None:
        """A new version of the screen; `line`: only that line (and the totals and notice) changed."""
        self.version += 1
        self.line_change = (self.version, line) if line is not None else None
        self._changed.notify_all()

    def _note(self, what: str, level: str = "info", /, **params: Any) -> None:
        self.notice = Notice(what, level, params, self._clock())

    def _activity(self) -> None:
        self._since = self._clock()
        self.idle_warning = False

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def hold_amount(self) -> int:
        return self.voucher.doc.amount if self.voucher is not None else 0

    # -- taps ---------------------------------------------------------------------------------------------

    def start(self, voucher: Signed[HoldVoucher], session_id: bytes) -> None:
        """A phone's hold was read: a new session (the one before, if any, is dropped)."""
        with self._changed:
            self.state, self.voucher, self.session_id = "shopping", voucher, session_id
            self.lines, self.last_line, self.signed, self.notice = (), None, None, None
            self._activity()
            if self._marker is not None:
                self._marker.write(self.session_id)
            self._bump()

    def problem(self, what: str, level: str = "error", /, **params: Any) -> None:
        """A tap or a device went wrong: say so, keep the session as it is."""
        with self._changed:
            self._note(what, level, **params)
            self._bump()

    def proposal(self) -> ProposedList | None:
        """The list to propose at the finishing tap; None (and a notice saying why) if it cannot be."""
        with self._changed:
            if self.voucher is None or self.state not in ("shopping", "confirming"):
                return None
            if not self.lines:
                self.problem("empty", "warn")
                return None
            if self.total > self.hold_amount:
                self.problem("over_hold_total", "error", total=self.total, hold=self.hold_amount)
                return None
            items = tuple(
                item(line.code, line.unit_price, qty=line.qty, grams=line.grams) for line in self.lines
            )
            doc = self.voucher.doc
            return ProposedList(
                v=VERSION,
                kiosk=self.kiosk_id,
                session=self.session_id,
                hold=doc.hold,
                store=doc.store,
                currency=doc.currency,
                items=items,
                total=sum(i.line_total for i in items),
            )

    def confirming(self) -> None:
        with self._changed:
            self.state, self.notice = "confirming", None
            self._activity()
            self._bump()

    def back_to_shopping(self, what: str, level: str = "warn", /, **params: Any) -> None:
        """The finishing tap did not end in a signed list: the lines stay, the screen says why."""
        with self._changed:
            if self.state == "confirming":
                self.state = "shopping"
            self._activity()
            self._note(what, level, **params)
            self._bump()

    def finished(self, signed: ShoppingList) -> None:
        with self._changed:
            self.state, self.signed, self.notice = "done", signed, None
            self._activity()
            if self._marker is not None:
                self._marker.clear()
            self._bump()

    # -- the shopper at the screen and the scanner --------------------------------------------------------

    def scan(self, raw: str) -> None:
        """One line from the scanner: a new line, a piece more, or a notice saying why not."""
        with self._changed:
            self._bump(self._scan(raw))

    def _scan(self, raw: str) -> int | None:
        """The id of the line the scan added or changed, None if it changed no line."""
        if self.state == "confirming":
            self._note("confirm_first", "warn")
            return None
        if self.state != "shopping" or self.voucher is None:
            self._note("tap_first", "warn")
            return None
        self._activity()
        try:
            code = parse_scan(raw).code
            resolved = resolve(code, self._catalog.layouts())
        except BarcodeError:
            self._note("invalid_scan", "error")
            return None
        product = self._catalog.products({resolved.key}).get(resolved.key)
        price = product.current_price() if product is not None else None
        if product is None or price is None:
            self._note("unknown_code", "error", code=code)
            return None
        if code in self._blocked or resolved.key in self._blocked:
            self._note("blocked_code", "error", name=product.name)
            return None
        measure = resolved.measure
        new = KioskLine(
            id=self._next_id,
            code=code,
            key=resolved.key,
            name=product.name,
            category=product.category,
            qty=1,
            unit_price=price,
            attendant=product.category in self._attendant,
        )
        if measure is not None and measure.value == 0:
            self._note("weigh_first", "error", name=product.name)
            return None
        if measure is not None and measure.kind == "price":
            new = replace(new, unit_price=measure.value, label=True)
        elif measure is not None:
            if product.unit != "kg":
                self._note("unknown_code", "error", code=code)
                return None
            new = replace(new, grams=measure.value, label=True)
        elif product.unit == "kg":
            self._note("weigh_first", "error", name=product.name)
            return None
        same = next(
            (line for line in self.lines if not new.label and line.code == code and not line.label), None
        )
        if same is not None:
            return self._change_qty(same, same.qty + 1)
        if self.total + new.total > self.hold_amount:
            self._note(
                "over_hold", "error", name=new.name, total=self.total + new.total, hold=self.hold_amount
            )
            return None
        self._next_id += 1
        self.lines = (*self.lines, new)
        self.last_line = new.id
        if new.attendant:
            self._note("attendant_item", "warn", name=new.name)
        else:
            self._note("added", "info", name=new.name)
        return new.id

    def _change_qty(self, line: KioskLine, qty: int) -> int | None:
        if not 1 <= qty <= MAX_QTY:
            self._note("qty_limit", "warn", name=line.name, max=MAX_QTY)
            return None
        total = self.total - line.total + line_total(qty, line.unit_price, line.grams)
        if total > self.hold_amount:
            self._note("over_hold", "error", name=line.name, total=total, hold=self.hold_amount)
            return None
        changed = replace(line, qty=qty)
        self.lines = tuple(changed if x.id == line.id else x for x in self.lines)
        self.last_line = line.id
        self._note("added" if qty > line.qty else "fewer", "info", name=line.name)
        return line.id

    def set_qty(self, line_id: int, qty: int) -> None:
        with self._changed:
            line = self._line(line_id)
            changed = None
            if line is not None and not line.label:
                self._activity()
                changed = self._change_qty(line, qty)
            self._bump(changed)

    def remove(self, line_id: int) -> None:
        with self._changed:
            line = self._line(line_id)
            if line is not None:
                self._activity()
                self.lines = tuple(x for x in self.lines if x.id != line_id)
                self._note("removed", "info", name=line.name)
            self._bump()

    def _line(self, line_id: int) -> KioskLine | None:
        if self.state != "shopping":
            return None
        return next((x for x in self.lines if x.id == line_id), None)

    def cancel(self, code: str = "cancelled") -> None:
        """The shopper (or the idle timer) ends the session; nothing was signed, nothing is charged."""
        with self._changed:
            self._clear()
            self._note(code, "info")
            self._bump()

    def _clear(self) -> None:
        self.state, self.voucher, self.session_id, self.lines = "attract", None, b"", ()
        self.last_line, self.signed, self.idle_warning = None, None, False
        if self._marker is not None:
            self._marker.clear()

    def still_here(self) -> None:
        with self._changed:
            self._activity()
            self._bump()

    def set_language(self, language: str) -> None:
        with self._changed:
            if language in self.languages:
                self.language = language
                self._activity()
            self._bump()

    # -- time, devices, catalog ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: the idle warning, then the clearing; the done screen back to attract."""
        with self._changed:
            idle = self._clock() - self._since
            if self.state == "done" and idle >= self._done_display_s:
                self._clear()
                self.notice = None
                self._bump()
            elif self.state in ("shopping", "confirming"):
                if idle >= self._idle_clear_s:
                    self._clear()
                    self._note("idle_cleared", "warn", seconds=int(self._idle_clear_s))
                    self._bump()
                elif idle >= self._idle_warning_s and not self.idle_warning:
                    self.idle_warning = True
                    self._bump()
            if self.notice is not None and self.notice.code == "restarted" and self.state != "attract":
                self.notice = None

    @property
    def idle_left_s(self) -> int:
        return max(0, int(self._idle_clear_s - (self._clock() - self._since)))

    def scanner_status(self, connected: bool) -> None:
        with self._changed:
            if connected != self.scanner_ok:
                self.scanner_ok = connected
                self._note("scanner_back" if connected else "scanner_lost", "info" if connected else "error")
                self._bump()

    def catalog_status(self, ok: bool) -> None:
        with self._changed:
            if ok != self.catalog_ok:
                self.catalog_ok = ok
                self._bump()

    def catalog_changed(self, keys: set[str]) -> None:
        """New prices came in the feed: lines priced from the catalog take the new price while shopping."""
        with self._changed:
            if self.state != "shopping" or not keys:
                return
            touched = {line.key for line in self.lines if line.key in keys}
            products = self._catalog.products(touched) if touched else {}
            lines = []
            for line in self.lines:
                product = products.get(line.key)
                price = product.current_price() if product is not None else None
                price_label = line.label and line.grams is None
                if price is not None and price != line.unit_price and not price_label:
                    line = replace(line, unit_price=price)
                    self._note("price_changed", "warn", name=line.name, price=price, unit=product.unit)
                lines.append(line)
            if tuple(lines) != self.lines:
                self.lines = tuple(lines)
                self._bump()
