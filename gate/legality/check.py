"""The legality check: is this presentation, answering this challenge, good for an exit now?

A pure function of its inputs: it reads the clock only to time its own steps, never to decide. Every rule
is evaluated even after one has failed, so the panel and the phone see every reason at once, not one per
tap. The catalog and the store state are read through two narrow protocols (gate.catalog.Catalog and
StoreState below), each in one round trip, so the hot path does no per-item queries.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gate.barcodes import BarcodeError, Layout, VariableMeasure, layouts_by_prefix, resolve
from gate.catalog import Catalog
from gate.errors import DecodeError, SignatureError
from gate.legality.reasons import ORDER, Reason, verdict_of
from gate.money import format_amount
from gate.protocol.documents import ExitChallenge, ExitPresentation, HoldVoucher, ShoppingList
from gate.protocol.keys import TrustedKeys

if TYPE_CHECKING:
    from gate.config import LaneConfig

STEPS = ("decode", "voucher_signature", "list_signature", "answer_signature", "catalog", "state")
_DETAILS_SHOWN = 3


@dataclass(frozen=True)
class GateIdentity:
    """Who is deciding: the store, this gate, and the one currency the lane takes."""

    store: str
    gate: str
    currency: str

    @classmethod
    def from_config(cls, config: LaneConfig) -> GateIdentity:
        return cls(config.lane.store_id, config.lane.gate_id, config.lane.currency)


@dataclass(frozen=True)
class Policy:
    """The store's rules as the check uses them: [policy], [offline] and [[barcodes.gs1]] of the config."""

    price_grace_s: int = 900
    max_items: int = 200
    max_quantity: int = 99
    max_list_age_s: int = 86400
    clock_skew_s: int = 120
    audit_per_mille: int = 0
    audit_seed: int = 0
    attendant_categories: frozenset[str] = frozenset({"age-restricted", "security-tagged"})
    offline_max_amount: int = 50_000
    offline_max_count: int = 500
    offline_max_age_s: int = 86_400
    gs1: Mapping[str, Layout] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_config(cls, config: LaneConfig) -> Policy:
        p, o = config.policy, config.offline
        return cls(
            price_grace_s=p.price_grace_s,
            max_items=p.max_items,
            max_quantity=p.max_quantity,
            max_list_age_s=p.max_list_age_s,
            clock_skew_s=p.clock_skew_s,
            audit_per_mille=p.audit_per_mille,
            audit_seed=p.audit_seed,
            attendant_categories=frozenset(p.attendant_categories),
            offline_max_amount=o.max_amount,
            offline_max_count=o.max_count,
            offline_max_age_s=o.max_age_s,
            gs1=layouts_by_prefix(config.barcodes.gs1),
        )


@dataclass(frozen=True)
class Backlog:
    """Charges decided here and not yet settled by the payment system (pending and flagged)."""

    count: int
    amount: int
    oldest_created_at: float | None


@dataclass(frozen=True)
class StateFacts:
    """What the gate's store knows about one presentation, read in one round trip."""

    list_used: bool
    hold_consumed: bool
    hold_denied: bool
    shopper_denied: bool
    backlog: Backlog


class StoreState(Protocol):
    """What the legality check needs from the gate's store; gate.store.GateStore is one."""

    def facts(self, list_id: bytes, hold: bytes, shopper: str) -> StateFacts: ...


@dataclass(frozen=True, eq=False)
class Decision:
    """The outcome of one check: verdict, every reason that applied, and what each step cost."""

    verdict: str  # "pass", "deny" or "attendant"
    reasons: tuple[Reason, ...]
    timings: Mapping[str, float]  # seconds per step of STEPS, and "total"
    decided_at: float
    gate: GateIdentity
    challenge: ExitChallenge
    presentation_bytes: bytes
    presentation: ExitPresentation | None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def list(self) -> ShoppingList | None:
        return self.presentation.list.doc if self.presentation else None

    @property
    def voucher(self) -> HoldVoucher | None:
        return self.presentation.voucher.doc if self.presentation else None

    @property
    def list_id(self) -> bytes | None:
        return self.presentation.list.doc.list if self.presentation else None

    @property
    def hold(self) -> bytes | None:
        return self.presentation.voucher.doc.hold if self.presentation else None

    @property
    def shopper(self) -> str | None:
        return self.presentation.voucher.doc.shopper if self.presentation else None

    @property
    def total(self) -> int:
        return self.presentation.list.doc.total if self.presentation else 0

    @property
    def currency(self) -> str:
        return self.presentation.list.doc.currency if self.presentation else self.gate.currency

    def to_json(self) -> dict[str, Any]:
        """A plain dict for `gate check --json`, the panel and logs."""
        return {
            "verdict": self.verdict,
            "reasons": [{"code": r.code, "kind": r.kind, "message": r.message} for r in self.reasons],
            "timings_ms": {k: round(v * 1000, 3) for k, v in self.timings.items()},
            "decided_at": self.decided_at,
            "gate": self.gate.gate,
            "store": self.gate.store,
            "list": self.list_id.hex() if self.list_id else None,
            "hold": self.hold.hex() if self.hold else None,
            "shopper": self.shopper,
            "total": self.total,
            "currency": self.currency,
            "items": len(self.list.items) if self.list else 0,
        }


def audit_draw(seed: int, list_id: bytes) -> int:
    """A number 0-999 fixed by the seed and the list id: the list is audited when it is < audit_per_mille.

    SHA-256 over "selfcheckout-audit/1|<seed in decimal>|" and the 16 list id bytes; the first 8 bytes of the
    digest, big-endian, modulo 1000. Deterministic, so a test (or a dispute) can replay the draw.
    """
    digest = hashlib.sha256(b"selfcheckout-audit/1|%d|" % seed + list_id).digest()
    return int.from_bytes(digest[:8], "big") % 1000


class _Findings:
    """Reasons gathered per code, with details per line, turned into one sentence per code."""

    def __init__(self) -> None:
        self._by_code: dict[str, list[str]] = {}

    def add(self, code: str, detail: str) -> None:
        self._by_code.setdefault(code, []).append(detail)

    def codes(self) -> frozenset[str]:
        return frozenset(self._by_code)

    def reasons(self) -> tuple[Reason, ...]:
        out = []
        for code in sorted(self._by_code, key=ORDER.__getitem__):
            details = self._by_code[code]
            text = "; ".join(details[:_DETAILS_SHOWN])
            if len(details) > _DETAILS_SHOWN:
                text += f"; and {len(details) - _DETAILS_SHOWN} more"
            out.append(Reason(code, text))
        return tuple(out)


def check(
    presentation: bytes | ExitPresentation,
    challenge: ExitChallenge,
    *,
    now: float,
    catalog: Catalog,
    state: StoreState,
    policy: Policy,
    trusted: TrustedKeys,
    gate: GateIdentity,
    clock_unsynced: bool = False,
) -> Decision:
    """Judge one exit presentation; see docs/protocol.md, "The legality check", for every rule.

    `clock_unsynced`: the lane cannot vouch for `now` (gate.clock.LaneClock): every rule that reads the
    time would be guessing, so the presentation is denied with `clock_unsynced` beside what else is found.
    """
    clock = time.perf_counter
    timings: dict[str, float] = {}
    started = clock()
    found = _Findings()

    def done(p: ExitPresentation | None, raw: bytes) -> Decision:
        timings["total"] = clock() - started
        reasons = found.reasons()
        return Decision(verdict_of(found.codes()), reasons, timings, now, gate, challenge, raw, p)

    # 1. decode: one canonical document of the right shape, or nothing else can be judged.
    if isinstance(presentation, ExitPresentation):
        p: ExitPresentation = presentation
        raw = presentation.encode()
    else:
        raw = bytes(presentation) if isinstance(presentation, bytes | bytearray | memoryview) else b""
        try:
            p = ExitPresentation.decode(raw)
        except DecodeError as exc:
            timings["decode"] = clock() - started
            found.add("malformed", str(exc))
            return done(None, raw)
    t = clock()
    timings["decode"] = t - started
    voucher, slist, answer = p.voucher.doc, p.list.doc, p.answer.doc

    # 2-4. the three signatures.
    try:
        p.voucher.verify_with(trusted.get(p.voucher.kid))
    except SignatureError as exc:
        found.add("voucher_signature", f"hold voucher: {exc}")
    t, timings["voucher_signature"] = _lap(clock, t)
    try:
        p.list.verify_with(voucher.shopper_key)
    except SignatureError as exc:
        found.add("list_signature", f"shopping list: {exc} (expected the voucher's shopper key)")
    t, timings["list_signature"] = _lap(clock, t)
    try:
        p.answer.verify_with(voucher.shopper_key)
    except SignatureError as exc:
        found.add("answer_signature", f"challenge answer: {exc} (expected the voucher's shopper key)")
    t, timings["answer_signature"] = _lap(clock, t)

    # Fields of the voucher, the list and the answer.
    if clock_unsynced:
        found.add("clock_unsynced", "the gate's clock is not synchronised, and was not since the gate booted")
    skew = policy.clock_skew_s
    if now > voucher.expires:
        found.add("voucher_expired", f"hold voucher expired at {voucher.expires}, it is now {int(now)}")
    if voucher.issued > now + skew:
        found.add("voucher_not_yet_valid", f"hold voucher issued at {voucher.issued}, in the future")
    if voucher.store != gate.store:
        found.add("voucher_wrong_store", f"hold voucher is for store {voucher.store}, this is {gate.store}")
    if voucher.currency != gate.currency:
        found.add("voucher_wrong_currency", f"voucher is in {voucher.currency}, lane takes {gate.currency}")
    if slist.hold != voucher.hold:
        found.add("list_wrong_hold", f"list names hold {slist.hold.hex()}, voucher is {voucher.hold.hex()}")
    if slist.store != gate.store:
        found.add("list_wrong_store", f"list is for store {slist.store}, this is {gate.store}")
    if slist.currency != gate.currency:
        found.add("list_wrong_currency", f"list is in {slist.currency}, lane takes {gate.currency}")
    if slist.created < now - policy.max_list_age_s:
        found.add("list_stale", f"list created at {slist.created}, over {policy.max_list_age_s} s ago")
    if slist.created > now + skew:
        found.add("list_from_future", f"list created at {slist.created}, in the future")
    if answer.gate != gate.gate:
        found.add("answer_wrong_gate", f"answer names gate {answer.gate}, this is {gate.gate}")
    if answer.nonce != challenge.nonce:
        found.add("answer_wrong_nonce", "answer is for another challenge than the one this gate sent")
    if answer.list_hash != hashlib.sha256(p.list.body).digest():
        found.add("answer_wrong_list", "answer is for another list than the one presented")
    lines_sum = sum(item.line_total for item in slist.items)
    if slist.total != lines_sum:
        found.add("total_mismatch", f"list total {slist.total} is not the sum of its lines ({lines_sum})")
    if slist.total > voucher.amount:
        found.add("over_guarantee", f"list total {slist.total} is over the guaranteed {voucher.amount}")
    if len(slist.items) > policy.max_items:
        found.add("too_many_items", f"{len(slist.items)} lines, the store allows {policy.max_items}")

    # 5. catalog: one lookup for every code of the list.
    _check_items(slist, now, catalog, policy, gate, found)
    t, timings["catalog"] = _lap(clock, t)

    # 6. the store's state: used lists, consumed holds, deny lists, the unsettled backlog.
    facts = state.facts(slist.list, voucher.hold, voucher.shopper)
    if facts.list_used:
        found.add("list_used", f"list {slist.list.hex()} was already used")
    if facts.hold_consumed:
        found.add("hold_consumed", f"hold {voucher.hold.hex()} was already consumed")
    if facts.hold_denied:
        found.add("hold_denied", f"hold {voucher.hold.hex()} is on the deny list")
    if facts.shopper_denied:
        found.add("shopper_denied", f"shopper {voucher.shopper} is on the deny list")
    _check_backlog(facts.backlog, now, policy, found)
    t, timings["state"] = _lap(clock, t)

    # A random share of otherwise good lists goes to an attendant.
    if policy.audit_per_mille and verdict_of(found.codes()) != "deny":
        draw = audit_draw(policy.audit_seed, slist.list)
        if draw < policy.audit_per_mille:
            found.add("audit", f"drawn for a random check ({draw} < {policy.audit_per_mille} per mille)")
    return done(p, raw)


def _lap(clock: Any, since: float) -> tuple[float, float]:
    t = clock()
    return t, t - since


def _check_items(
    slist: ShoppingList,
    now: float,
    catalog: Catalog,
    policy: Policy,
    gate: GateIdentity,
    found: _Findings,
) -> None:
    resolved: list[tuple[int, Any, str | None, VariableMeasure | None]] = []
    for n, item in enumerate(slist.items, 1):
        if item.qty > policy.max_quantity:
            found.add("quantity_limit", f"line {n} ({item.code}): qty {item.qty} over {policy.max_quantity}")
        try:
            r = resolve(item.code, policy.gs1)
        except BarcodeError as exc:
            found.add("invalid_code", f"line {n}: {exc}")
            resolved.append((n, item, None, None))
            continue
        resolved.append((n, item, r.key, r.measure))
    keys = {key for _, _, key, _ in resolved if key is not None}
    products = {}
    if keys:
        products = catalog.products(keys, now=now, grace_s=policy.price_grace_s, currency=gate.currency)
    attendant = policy.attendant_categories
    for n, item, key, measure in resolved:
        if key is None:
            continue
        product = products.get(key)
        if product is None:
            found.add("unknown_item", f"line {n}: {item.code} is not in the catalog")
            continue
        if product.category in attendant:
            found.add("attendant_item", f"line {n}: {product.name} ({product.category})")
        if measure is not None and measure.kind == "price":
            if item.grams is not None:
                found.add("weight_mismatch", f"line {n} ({item.code}): a price code carries no grams")
            if item.unit_price != measure.value:
                found.add(
                    "price_mismatch",
                    f"line {n} ({item.code}): listed at {item.unit_price}, the code says {measure.value}",
                )
            b = product.bounds
            if b.price_outside(measure.value):
                show = functools.partial(_money, gate.currency)
                _implausible(found, n, item.code, product.name, measure.value, b.min_price, b.max_price, show)
            continue
        b = product.bounds
        if product.unit == "kg" and item.grams is not None and b.grams_outside(item.grams):
            _implausible(found, n, item.code, product.name, item.grams, b.min_grams, b.max_grams, _grams)
        if measure is not None:  # weight-embedded: grams from the code, price per kg from the catalog
            if product.unit != "kg":
                found.add("weight_mismatch", f"line {n} ({item.code}): {product.name} is not sold by weight")
            if item.grams != measure.value:
                found.add(
                    "weight_mismatch",
                    f"line {n} ({item.code}): listed {item.grams} g, the code says {measure.value} g",
                )
        elif product.unit == "kg" and item.grams is None:
            found.add("weight_mismatch", f"line {n} ({item.code}): {product.name} is sold by weight")
        elif product.unit == "each" and item.grams is not None:
            found.add("weight_mismatch", f"line {n} ({item.code}): {product.name} is not sold by weight")
        prices = product.acceptable_prices(now, policy.price_grace_s)
        if item.unit_price not in prices:
            current = product.current_price()
            found.add(
                "price_mismatch",
                f"line {n} ({item.code}): listed at {item.unit_price}, catalog price "
                + (f"{current}" if current is not None else f"unknown in {gate.currency}"),
            )


def _implausible(
    found: _Findings,
    n: int,
    code: str,
    name: str,
    value: int,
    low: int | None,
    high: int | None,
    show: Callable[[int], str],
) -> None:
    """A label outside its product's bounds, said with both, so the attendant knows what to look for."""
    if low is not None and high is not None:
        plausible = f"{show(low)} to {show(high)}"
    else:
        plausible = f"at least {show(low)}" if low is not None else f"at most {show(high or 0)}"
    found.add("label_implausible", f"line {n} ({code}): {name} labelled {show(value)}, plausible {plausible}")


def _money(currency: str, minor: int) -> str:
    return format_amount(minor, currency)


def _grams(grams: int) -> str:
    return f"{grams} g"


def _check_backlog(backlog: Backlog, now: float, policy: Policy, found: _Findings) -> None:
    if backlog.count >= policy.offline_max_count:
        found.add("offline_limit", f"{backlog.count} charges unsettled (limit {policy.offline_max_count})")
    if backlog.amount >= policy.offline_max_amount:
        found.add("offline_limit", f"{backlog.amount} not yet settled (limit {policy.offline_max_amount})")
    if backlog.oldest_created_at is not None and now - backlog.oldest_created_at > policy.offline_max_age_s:
        found.add(
            "offline_limit",
            f"oldest unsettled charge is {int(now - backlog.oldest_created_at)} s old "
            f"(limit {policy.offline_max_age_s})",
        )
