"""Negative test vectors for each document type but the voucher (which carries the encoding-level faults,
gate/protocol/negative_vectors.py): its own fields out of shape or range, its decode rules broken, and a
signature by the wrong party.
"""

from __future__ import annotations

from typing import Any

from gate.protocol import encoding
from gate.protocol.documents import (
    Charge,
    ChargeRefusal,
    DeductionNotice,
    ExitAnswer,
    ExitChallenge,
    ExitPresentation,
    ExitReceipt,
    HoldRequest,
    ShoppingList,
    Signed,
)
from gate.protocol.faults import Out, envelope_bytes, replace_raw, resign
from gate.protocol.feed import GateFeed


def hold_request_faults(out: Out, request: Signed[HoldRequest]) -> None:
    t, shopper = HoldRequest.TYPE, out.parties.shopper
    fields = encoding.decode(request.body)
    out.signed(t, "range", "estimate 0 (at least 1)", shopper, encoding.encode({**fields, "estimate": 0}))
    out.signed(t, "shape", "currency in lower case", shopper, encoding.encode({**fields, "currency": "eur"}))
    out.bad_signature(
        t,
        "signed by the payment system's key (k is not the enrolled shopper key)",
        resign(out.parties.ps, t, request.body),
        "shopper",
    )


def shopping_list_faults(out: Out, slist: Signed[ShoppingList]) -> None:
    t, shopper = ShoppingList.TYPE, out.parties.shopper
    fields = encoding.decode(slist.body)
    first = fields["items"][0]

    def with_first(**changes: Any) -> bytes:
        return encoding.encode({**fields, "items": [{**first, **changes}, *fields["items"][1:]]})

    out.signed(
        t,
        "cross-field rule",
        "line_total is not qty x unit_price",
        shopper,
        with_first(line_total=first["line_total"] + 1),
    )
    weighed = next(i for i, line in enumerate(fields["items"]) if "grams" in line)
    items = list(fields["items"])
    items[weighed] = {**items[weighed], "line_total": items[weighed]["line_total"] - 1}
    out.signed(
        t,
        "cross-field rule",
        "weighed line_total rounded down instead of half up",
        shopper,
        encoding.encode({**fields, "items": items}),
    )
    out.signed(
        t,
        "shape",
        "a code of 7 digits (list codes have 8, 12, 13 or 14)",
        shopper,
        with_first(code="4006381"),
    )
    out.signed(t, "shape", "a code with a letter", shopper, with_first(code="400638133393X"))
    out.signed(t, "range", "qty 0 (1 ... 10000)", shopper, with_first(qty=0, line_total=0))
    out.signed(
        t, "range", "no items (1 ... 1000)", shopper, encoding.encode({**fields, "items": [], "total": 0})
    )
    out.signed(t, "shape", "an item with an unknown field", shopper, with_first(note="x"))
    out.bad_signature(
        t,
        "signed by the payment system's key: k is not the voucher's shopper key",
        resign(out.parties.ps, t, slist.body),
        "shopper",
    )


def challenge_faults(out: Out, challenge: ExitChallenge) -> None:
    t = ExitChallenge.TYPE
    fields = challenge.to_map()
    out.plain(t, "shape", "nonce of 31 bytes", encoding.encode({**fields, "nonce": fields["nonce"][:31]}))
    out.plain(t, "shape", "gate id with a space", encoding.encode({**fields, "gate": "gate 01"}))
    out.plain(t, "range", "time 2^40 + 1", encoding.encode({**fields, "time": 2**40 + 1}))
    out.plain(t, "encoding", "a value at level 9 (at most 8 levels; the map is level 1)", _deep(fields))


def _deep(fields: dict[str, Any]) -> bytes:
    """The challenge with `time` replaced by seven nested arrays (levels 2-8) around an integer (level 9)."""
    value = encoding.encode(0)
    for _ in range(7):
        value = b"\x81" + value
    return replace_raw(fields, "time", value)


def answer_faults(out: Out, answer: Signed[ExitAnswer]) -> None:
    t, shopper = ExitAnswer.TYPE, out.parties.shopper
    fields = encoding.decode(answer.body)
    out.signed(
        t,
        "shape",
        "list_hash of 31 bytes",
        shopper,
        encoding.encode({**fields, "list_hash": fields["list_hash"][:31]}),
    )
    out.bad_signature(
        t,
        "nonce changed, signature kept",
        envelope_bytes(t, answer.kid, encoding.encode({**fields, "nonce": bytes(32)}), answer.sig),
        "shopper",
    )


def presentation_faults(out: Out, presentation: ExitPresentation) -> None:
    t = ExitPresentation.TYPE
    fields = encoding.decode(presentation.encode())
    out.plain(
        t,
        "envelope",
        "the voucher envelope as a byte string, not a map",
        encoding.encode({**fields, "voucher": encoding.encode(fields["voucher"])}),
    )
    out.plain(
        t, "shape", "answer missing", encoding.encode({k: v for k, v in fields.items() if k != "answer"})
    )
    out.plain(
        t,
        "envelope",
        "a list envelope whose body is not canonical (trailing byte)",
        encoding.encode({**fields, "list": {**fields["list"], "b": fields["list"]["b"] + b"\x00"}}),
    )


def receipt_faults(out: Out, receipt: Signed[ExitReceipt]) -> None:
    t, gate = ExitReceipt.TYPE, out.parties.gate
    fields = encoding.decode(receipt.body)
    out.signed(
        t,
        "shape",
        "verdict 'open' (pass, deny, attendant or emergency)",
        gate,
        encoding.encode({**fields, "verdict": "open"}),
    )
    out.signed(
        t,
        "shape",
        "reason code with an upper-case letter ([a-z][a-z0-9_]{0,39})",
        gate,
        encoding.encode({**fields, "reasons": ["List_used"]}),
    )
    out.signed(
        t, "range", "65 reasons (0 ... 64)", gate, encoding.encode({**fields, "reasons": ["audit"] * 65})
    )
    out.bad_signature(
        t, "signed by the shopper key (not a gate's)", resign(out.parties.shopper, t, receipt.body), "gate"
    )


def charge_faults(out: Out, charge: Signed[Charge]) -> None:
    t, gate = Charge.TYPE, out.parties.gate
    fields = encoding.decode(charge.body)
    out.signed(
        t,
        "cross-field rule",
        "charge id is not the list id",
        gate,
        encoding.encode({**fields, "charge": bytes(16)}),
    )
    out.signed(
        t,
        "cross-field rule",
        "amount is not the list total",
        gate,
        encoding.encode({**fields, "amount": fields["amount"] + 1}),
    )
    out.bad_signature(t, "signed by the payment system's key", resign(out.parties.ps, t, charge.body), "gate")


def notice_faults(out: Out, notice: Signed[DeductionNotice]) -> None:
    t, ps = DeductionNotice.TYPE, out.parties.ps
    fields = encoding.decode(notice.body)
    out.signed(
        t,
        "cross-field rule",
        "stored_value + bank + debt is not total",
        ps,
        encoding.encode({**fields, "debt": 1}),
    )
    out.signed(
        t, "shape", "bank reference with a space", ps, encoding.encode({**fields, "bank_ref": "SIM 42"})
    )
    out.bad_signature(
        t, "signed by the gate's key", resign(out.parties.gate, t, notice.body), "payment-system"
    )


def feed_faults(out: Out, feed: Signed[GateFeed]) -> None:
    t, ps = GateFeed.TYPE, out.parties.ps
    fields = encoding.decode(feed.body)
    price = fields["prices"][0]

    def with_name(name: str) -> bytes:
        return encoding.encode({**fields, "prices": [{**price, "name": name}, *fields["prices"][1:]]})

    out.signed(t, "cross-field rule", "since after version", ps, encoding.encode({**fields, "since": 4}))
    gate = fields["gates"][0]
    out.signed(
        t,
        "cross-field rule",
        "one public key listed for two gates",
        ps,
        encoding.encode({**fields, "gates": [gate, {**gate, "gate": "gate-02"}]}),
    )
    out.signed(t, "range", "a product name of 81 code points (1 ... 80)", ps, with_name("\u00e9" * 81))
    out.signed(
        t, "shape", "a product name holding U+202E (right-to-left override)", ps, with_name("Pen \u202e99.0")
    )
    out.signed(t, "shape", "a product name holding U+0085 (a C1 control)", ps, with_name("Pen\u0085"))
    out.signed(t, "shape", "an empty product name", ps, with_name(""))
    layout = fields["gs1"][0]

    def with_gs1(*layouts: dict[str, Any]) -> bytes:
        return encoding.encode({**fields, "gs1": list(layouts)})

    out.signed(
        t,
        "cross-field rule",
        "a GS1 layout of 14 digits (2 + item + check digit + value + 1 must be 13)",
        ps,
        with_gs1({**layout, "item_digits": layout["item_digits"] + 1}),
    )
    out.signed(t, "cross-field rule", "one GS1 prefix listed twice", ps, with_gs1(layout, layout))
    out.signed(t, "shape", "a GS1 prefix outside 20-29", ps, with_gs1({**layout, "prefix": "30"}))
    out.signed(t, "range", "value_check_digit 2 (0 or 1)", ps, with_gs1({**layout, "value_check_digit": 2}))
    out.bad_signature(t, "signed by the gate's key", resign(out.parties.gate, t, feed.body), "payment-system")


def refusal_faults(out: Out, refusal: Signed[ChargeRefusal]) -> None:
    t, ps = ChargeRefusal.TYPE, out.parties.ps
    fields = encoding.decode(refusal.body)
    out.signed(
        t,
        "cross-field rule",
        "won without won_gate",
        ps,
        encoding.encode({k: v for k, v in fields.items() if k != "won_gate"}),
    )
    out.signed(
        t,
        "cross-field rule",
        "the copy that won is the refused one",
        ps,
        encoding.encode({**fields, "won": fields["body_hash"]}),
    )
    out.signed(
        t,
        "cross-field rule",
        "a winner named by a refusal other than charge_conflict",
        ps,
        encoding.encode({**fields, "code": "invalid_charge"}),
    )
    out.bad_signature(
        t, "signed by the gate's key", resign(out.parties.gate, t, refusal.body), "payment-system"
    )


def kiosk_faults(out: Out, kiosk: dict[str, bytes]) -> None:
    hello = encoding.decode(kiosk["kiosk-hello"])
    out.plain(
        "kiosk-hello", "shape", "session id of 15 bytes", encoding.encode({**hello, "session": bytes(15)})
    )
    proposal = encoding.decode(kiosk["proposed-list"])
    out.plain(
        "proposed-list",
        "cross-field rule",
        "total is not the sum of the line totals",
        encoding.encode({**proposal, "total": proposal["total"] + 1}),
    )
    poll = encoding.decode(kiosk["kiosk-poll"])
    out.plain(
        "kiosk-poll", "shape", "proposal hash of 31 bytes", encoding.encode({**poll, "proposal": bytes(31)})
    )
    reply = encoding.decode(kiosk["kiosk-reply"])
    out.plain(
        "kiosk-reply",
        "cross-field rule",
        "status signed without a list",
        encoding.encode({k: v for k, v in reply.items() if k != "list"}),
    )
    out.plain(
        "kiosk-reply",
        "envelope",
        "the signed list as a byte string, not a map",
        encoding.encode({**reply, "list": encoding.encode(reply["list"])}),
    )
