"""Legality test vectors: presentations with the gate's verdict and reasons, and the receipts a phone sees.

Each case is one exit presentation, the challenge it answers, the gate's clock, what the gate's store knows
(used lists, consumed holds, deny lists, the unsettled backlog) and policy changes from the defaults; the
expected verdict and reason codes are what `gate.legality.check` gives for it. Every reason code of
docs/protocol.md section 8 is the expected outcome of at least one case, so an implementer can see each rule
at work, and `run_case` is how the reference code judges one (tests/test_protocol_vectors.py runs them all).

The receipts are the gate-signed answers whose shape docs/protocol.md spells out for the phone: a pass, a
repeat tap within its bound, a repeat after it, and an unreadable presentation.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from gate.barcodes import check_digit, variable_code
from gate.catalog import Bounds, MemoryCatalog, PriceChange
from gate.legality.check import Backlog, GateIdentity, Policy, StateFacts, check
from gate.legality.issue import NO_LIST
from gate.protocol.documents import (
    VERSION,
    ExitChallenge,
    ExitReceipt,
    HoldVoucher,
    Item,
    ShoppingList,
    Signed,
    sign,
)
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.protocol.parties import answer_challenge, issue_voucher, item, present, sign_list

STORE, GATE, CURRENCY = "store-0001", "gate-01", "EUR"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
NOW = T0 + 2000


class Layout:
    """A [[barcodes.gs1]] layout as plain data (the shape gate.barcodes.Layout reads)."""

    def __init__(
        self, prefix: str, kind: str, value_digits: int = 5, value_check_digit: bool = False
    ) -> None:
        self.prefix, self.kind, self.item_digits = prefix, kind, 5
        self.value_digits, self.value_check_digit = value_digits, value_check_digit

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "kind": self.kind,
            "item_digits": self.item_digits,
            "value_digits": self.value_digits,
            "value_check_digit": self.value_check_digit,
        }


WEIGHT, PRICE = Layout("21", "weight"), Layout("22", "price")
PRICE_CHECKED = Layout("23", "price", value_digits=4, value_check_digit=True)
LAYOUTS = (WEIGHT, PRICE, PRICE_CHECKED)

PEN, SOAP, GUM, WHISKY, MILK = "4006381333931", "036000291452", "96385074", "5012345678900", "8712345678906"
CATALOG = (
    PriceChange(PEN, "Stabilo pen", "stationery", "each", 129, CURRENCY, T0 - 86400),
    PriceChange("0" + SOAP, "Imported soap", "household", "each", 250, CURRENCY, T0 - 86400),
    PriceChange(GUM, "Chewing gum", "sweets", "each", 99, CURRENCY, T0 - 86400),
    PriceChange(WHISKY, "Single malt", "age-restricted", "each", 3499, CURRENCY, T0 - 86400),
    PriceChange(MILK, "Milk 1 l", "dairy", "each", 109, CURRENCY, T0 - 86400),
    PriceChange(MILK, "Milk 1 l", "dairy", "each", 119, CURRENCY, NOW - 300),  # 109 still counts (grace)
    PriceChange(
        variable_code(WEIGHT, "00231", 0),
        "Gouda",
        "cheese",
        "kg",
        1590,
        CURRENCY,
        T0 - 86400,
        Bounds(min_grams=50, max_grams=2000),  # plausible labels (from the store's CSV; the feed has none)
    ),
    PriceChange(variable_code(PRICE, "00457", 0), "Deli counter", "deli", "each", 0, CURRENCY, T0 - 86400),
    PriceChange(variable_code(PRICE_CHECKED, "00123", 0), "Cake slice", "bakery", "each", 0, CURRENCY, T0),
)
POLICY = Policy(gs1={layout.prefix: layout for layout in LAYOUTS})


def _fixed(name: str, size: int = 16) -> bytes:
    return hashlib.sha256(f"selfcheckout legality vector: {name}".encode()).digest()[:size]


def _items() -> list[Item]:
    return [
        item(PEN, 129, qty=2),
        item(SOAP, 250),
        item(GUM, 99),
        item(variable_code(WEIGHT, "00231", 412), 1590, grams=412),
        item(variable_code(PRICE, "00457", 1234), 1234),
        item(variable_code(PRICE_CHECKED, "00123", 875), 875),  # price check digit 8 + 4-digit price
    ]


def _wrong_price_check_digit() -> str:
    good = variable_code(PRICE_CHECKED, "00123", 875)
    body = good[:7] + str((int(good[7]) + 1) % 10) + good[8:12]
    return body + check_digit(body)


class _Builder:
    """One good presentation, and the same with exactly one thing changed."""

    def __init__(self, ps: SigningKey, shopper: SigningKey, mallory: SigningKey) -> None:
        self.ps, self.shopper, self.mallory = ps, shopper, mallory
        self.hold = _fixed("hold")
        self.challenge = ExitChallenge(v=VERSION, gate=GATE, store=STORE, nonce=_fixed("nonce", 32), time=NOW)

    def voucher(self, *, key: SigningKey | None = None, **changes: Any) -> Signed[HoldVoucher]:
        fields: dict[str, Any] = {
            "hold": self.hold,
            "shopper": "alice",
            "shopper_key": self.shopper.public_key,
            "store": STORE,
            "currency": CURRENCY,
            "stored_value": 2000,
            "bank": 3000,
            "issued": T0,
            "expires": T0 + 4 * 3600,
        }
        fields.update(changes)
        return issue_voucher(key or self.ps, **fields)

    def slist(self, *, key: SigningKey | None = None, **changes: Any) -> Signed[ShoppingList]:
        fields: dict[str, Any] = {
            "list_id": _fixed("list"),
            "hold": self.hold,
            "store": STORE,
            "currency": CURRENCY,
            "created": NOW - 600,
            "items": _items(),
        }
        fields.update(changes)
        return sign_list(key or self.shopper, **fields)

    def present(
        self,
        *,
        voucher: Signed[HoldVoucher] | None = None,
        slist: Signed[ShoppingList] | None = None,
        answer_key: SigningKey | None = None,
        answer_to: ExitChallenge | None = None,
        answer_list: Signed[ShoppingList] | None = None,
    ) -> bytes:
        voucher = voucher or self.voucher()
        slist = slist or self.slist()
        answer = answer_challenge(
            answer_key or self.shopper, answer_to or self.challenge, answer_list or slist
        )
        return present(voucher, slist, answer).encode()


def cases(ps: SigningKey, shopper: SigningKey, mallory: SigningKey) -> list[dict[str, Any]]:
    """Every case, each named for what it changes from the good presentation."""
    b = _Builder(ps, shopper, mallory)
    good = b.present()
    other_challenge = dataclasses.replace(b.challenge, nonce=_fixed("another nonce", 32))
    out: list[dict[str, Any]] = []

    def case(name: str, raw: bytes, verdict: str, reasons: list[str], **extra: Any) -> None:
        entry: dict[str, Any] = {"name": name, "now": extra.pop("now", NOW)}
        entry.update(extra)
        entry.update({"presentation": raw.hex(), "expect": {"verdict": verdict, "reasons": reasons}})
        out.append(entry)

    one = [item(PEN, 129)]
    case("a good presentation passes", good, "pass", [])
    case(
        "not canonical (a trailing byte): malformed, nothing else judged",
        good + b"\x00",
        "deny",
        ["malformed"],
    )
    case(
        "voucher signed by an untrusted key",
        b.present(voucher=b.voucher(key=mallory)),
        "deny",
        ["voucher_signature"],
    )
    case("voucher expired a second ago", good, "deny", ["voucher_expired"], now=T0 + 4 * 3600 + 1)
    case("voucher expires this very second: still valid", good, "pass", [], now=T0 + 4 * 3600)
    case(
        "voucher issued more than the clock skew ahead",
        b.present(voucher=b.voucher(issued=NOW + 121, expires=NOW + 3600)),
        "deny",
        ["voucher_not_yet_valid"],
    )
    case(
        "voucher for another store",
        b.present(voucher=b.voucher(store="store-0002")),
        "deny",
        ["voucher_wrong_store"],
    )
    case(
        "voucher in another currency",
        b.present(voucher=b.voucher(currency="USD")),
        "deny",
        ["voucher_wrong_currency"],
    )
    case(
        "list signed by another key than the voucher's shopper key (k differs)",
        b.present(slist=b.slist(key=mallory), answer_list=b.slist(key=mallory)),
        "deny",
        ["list_signature"],
    )
    other_hold = b.slist(hold=_fixed("another hold"))
    case("list made for another hold", b.present(slist=other_hold), "deny", ["list_wrong_hold"])
    case("list for another store", b.present(slist=b.slist(store="store-0002")), "deny", ["list_wrong_store"])
    case(
        "list in another currency",
        b.present(slist=b.slist(currency="USD")),
        "deny",
        ["list_wrong_currency"],
    )
    case(
        "list older than max_list_age_s",
        b.present(slist=b.slist(created=NOW - 86401)),
        "deny",
        ["list_stale"],
    )
    case(
        "list created in the future",
        b.present(slist=b.slist(created=NOW + 121)),
        "deny",
        ["list_from_future"],
    )
    case("answer signed by another key", b.present(answer_key=mallory), "deny", ["answer_signature"])
    case(
        "answer for another gate",
        b.present(answer_to=dataclasses.replace(b.challenge, gate="gate-02")),
        "deny",
        ["answer_wrong_gate"],
    )
    case(
        "answer to another challenge (a replayed presentation)",
        b.present(answer_to=other_challenge),
        "deny",
        ["answer_wrong_nonce"],
    )
    case(
        "answer for another list",
        b.present(answer_list=b.slist(list_id=_fixed("x"))),
        "deny",
        ["answer_wrong_list"],
    )
    wrong_total = b.slist(items=one, total=130)
    case(
        "total is not the sum of the line totals (a reason, not a decode error)",
        b.present(slist=wrong_total),
        "deny",
        ["total_mismatch"],
    )
    case(
        "total over the guaranteed amount",
        b.present(voucher=b.voucher(stored_value=0, bank=1000)),
        "deny",
        ["over_guarantee"],
    )
    case(
        "a wrong EAN check digit",
        b.present(slist=b.slist(items=[item("4006381333932", 129)])),
        "deny",
        ["invalid_code"],
    )
    case(
        "a wrong GS1 price check digit (layout 23)",
        b.present(slist=b.slist(items=[item(_wrong_price_check_digit(), 875)])),
        "deny",
        ["invalid_code"],
    )
    case(
        "a code not in the catalog",
        b.present(slist=b.slist(items=[item("4000000000006", 10)])),
        "deny",
        ["unknown_item"],
    )
    case(
        "a price the catalog never had",
        b.present(slist=b.slist(items=[item(PEN, 128)])),
        "deny",
        ["price_mismatch"],
    )
    case(
        "the price a change replaced 5 minutes ago: within price_grace_s",
        b.present(slist=b.slist(items=[item(MILK, 109)])),
        "pass",
        [],
    )
    case(
        "a weight label listed with other grams",
        b.present(slist=b.slist(items=[item(variable_code(WEIGHT, "00231", 412), 1590, grams=400)])),
        "deny",
        ["weight_mismatch"],
    )
    case(
        "more lines than policy.max_items",
        b.present(slist=b.slist(items=one * 3)),
        "deny",
        ["too_many_items"],
        policy={"max_items": 2},
    )
    case(
        "a quantity over policy.max_quantity",
        b.present(slist=b.slist(items=[item(PEN, 129, qty=100)]), voucher=b.voucher(bank=20_000)),
        "deny",
        ["quantity_limit"],
    )
    case("list id used before at this gate", good, "deny", ["list_used"], state={"list_used": True})
    case("hold consumed by another list", good, "deny", ["hold_consumed"], state={"hold_consumed": True})
    case("hold on the deny list", good, "deny", ["hold_denied"], state={"hold_denied": True})
    case("shopper on the deny list", good, "deny", ["shopper_denied"], state={"shopper_denied": True})
    case(
        "unsettled backlog at offline.max_amount",
        good,
        "deny",
        ["offline_limit"],
        state={"backlog": {"count": 1, "amount": 50_000, "oldest_created_at": NOW - 60}},
    )
    case(
        "an age-restricted item: see an attendant",
        b.present(slist=b.slist(items=[item(WHISKY, 3499)]), voucher=b.voucher(bank=5000)),
        "attendant",
        ["attendant_item"],
    )
    case(
        "a weight label outside the product's plausible bounds: see an attendant",
        b.present(slist=b.slist(items=[item(variable_code(WEIGHT, "00231", 2500), 1590, grams=2500)])),
        "attendant",
        ["label_implausible"],
    )
    case(
        "the gate's clock not synchronised since it booted: every time rule would be guessing",
        good,
        "deny",
        ["clock_unsynced"],
        clock_unsynced=True,
    )
    case("drawn for a random audit", good, "attendant", ["audit"], policy={"audit_per_mille": 1000})
    case(
        "five rules broken at once: every reason, in table order",
        good,
        "deny",
        ["voucher_expired", "list_stale", "list_used", "hold_denied", "shopper_denied"],
        now=T0 + 86400 + 3600,
        state={"list_used": True, "hold_denied": True, "shopper_denied": True},
    )
    return out


def receipts(
    gate_key: SigningKey, ps: SigningKey, shopper: SigningKey, mallory: SigningKey
) -> list[Signed[Any]]:
    """The receipt shapes of docs/protocol.md: pass, repeat within the bound, repeat after it, unreadable."""
    b = _Builder(ps, shopper, mallory)
    slist = b.slist().doc
    base = ExitReceipt(
        v=VERSION,
        gate=GATE,
        store=STORE,
        list=slist.list,
        nonce=b.challenge.nonce,
        verdict="pass",
        reasons=(),
        total=slist.total,
        currency=CURRENCY,
        at=NOW,
    )
    again = _fixed("the repeat tap's nonce", 32)
    return [
        sign(base, gate_key),
        sign(dataclasses.replace(base, nonce=again, reasons=("list_used",), at=NOW + 20), gate_key),
        sign(
            dataclasses.replace(base, nonce=again, verdict="deny", reasons=("list_used",), at=NOW + 3600),
            gate_key,
        ),
        sign(
            dataclasses.replace(base, list=NO_LIST, verdict="deny", reasons=("malformed",), total=0), gate_key
        ),
    ]


def run_case(case: dict[str, Any], data: dict[str, Any]) -> tuple[str, list[str]]:
    """Judge one case with the reference check, from the vectors file alone: (verdict, reason codes)."""
    layouts = {
        g["prefix"]: Layout(g["prefix"], g["kind"], g["value_digits"], g["value_check_digit"])
        for g in data["gs1_layouts"]
    }
    catalog = MemoryCatalog(
        [
            PriceChange(**{**entry, "bounds": entry["bounds"] and Bounds(**entry["bounds"])})
            for entry in data["legality"]["catalog"]
        ]
    )
    policy = dataclasses.replace(POLICY, gs1=layouts, **case.get("policy", {}))
    state = case.get("state", {})
    backlog = Backlog(**state.get("backlog", {"count": 0, "amount": 0, "oldest_created_at": None}))
    facts = StateFacts(
        list_used=state.get("list_used", False),
        hold_consumed=state.get("hold_consumed", False),
        hold_denied=state.get("hold_denied", False),
        shopper_denied=state.get("shopper_denied", False),
        backlog=backlog,
    )
    trusted = TrustedKeys(
        [bytes.fromhex(k["public_key"]) for k in data["keys"] if k["name"] == "payment-system"]
    )
    decision = check(
        bytes.fromhex(case["presentation"]),
        ExitChallenge.decode(bytes.fromhex(data["legality"]["challenge"])),
        now=case["now"],
        catalog=catalog,
        state=_State(facts),
        policy=policy,
        trusted=trusted,
        gate=GateIdentity(STORE, GATE, CURRENCY),
        clock_unsynced=case.get("clock_unsynced", False),
    )
    return decision.verdict, list(decision.codes)


class _State:
    def __init__(self, facts: StateFacts) -> None:
        self._facts = facts

    def facts(self, list_id: bytes, hold: bytes, shopper: str) -> StateFacts:
        return self._facts


def catalog_json() -> list[dict[str, Any]]:
    return [dataclasses.asdict(change) for change in CATALOG]


def section(ps: SigningKey, shopper: SigningKey, mallory: SigningKey, gate: SigningKey) -> dict[str, Any]:
    """The `legality` part of the vectors file."""
    b = _Builder(ps, shopper, mallory)
    policy = dataclasses.asdict(POLICY)
    policy.pop("gs1")
    policy["attendant_categories"] = sorted(policy["attendant_categories"])
    return {
        "about": (
            "Each case: the gate judges `presentation` (hex), answering `challenge`, at unix time `now`, "
            "with "
            "`catalog`, the `policy` (changed by the case's `policy`), the trusted payment-system key, this "
            "gate (`store`, `gate`, `currency`) and what its store knows (`state`: used list, consumed hold, "
            "deny lists, unsettled backlog; all false and empty unless given). `expect` is the verdict and "
            "the reason codes in table order. `clock_unsynced`: the lane cannot vouch for its clock. "
            "`mallory` signs what no trusted key signed."
        ),
        "store": STORE,
        "gate": GATE,
        "currency": CURRENCY,
        "mallory_public_key": mallory.public_key.hex(),
        "challenge": b.challenge.encode().hex(),
        "policy": policy,
        "catalog": catalog_json(),
        "cases": cases(ps, shopper, mallory),
    }
