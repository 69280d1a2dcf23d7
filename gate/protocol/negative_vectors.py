"""The negative test vectors: documents every implementation must refuse, one family of fault at a time.

Each entry names its document `type`, its `family` (which kind of rule it breaks) and what a verifier
must do with it: `decode_error` (the strict decoder refuses it) or `signature_error` (it decodes, and the
signature does not verify with the key named in `verify_with`). Signed documents are given as `envelope`,
plain ones (the challenge and the presentation) as `bytes`. Unless its name says otherwise an envelope is
signed correctly by the key it names, so the fault it holds is the only one.

`encoding` holds bare CBOR items at the edges of the encoding's own limits (nesting, key length, integer
range), each `ok` or `decode_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    HoldVoucher,
    ShoppingList,
    Signed,
    signing_input,
)
from gate.protocol.feed import GateFeed
from gate.protocol.keys import SigningKey

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point
SMALL_ORDER_KEYS = {
    "identity (order 1)": "01" + "00" * 31,
    "order 2": "ec" + "ff" * 30 + "7f",
    "order 4": "00" * 32,
    "order 8": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
}
NON_CANONICAL_KEY = "ed" + "ff" * 30 + "7f"  # y = p: an out-of-range encoding

FAMILIES = (
    "encoding",  # not the deterministic encoding of what it says
    "value type",  # a CBOR value the protocol does not allow (float, tag, boolean)
    "shape",  # an unknown, missing or wrongly typed field, a bad version or a bad text or byte length
    "range",  # a number or a count outside its inclusive range
    "cross-field rule",  # a rule that ties fields of one document together (checked when decoding)
    "public key",  # a key that is not a valid Ed25519 point of the prime-order subgroup
    "envelope",  # the signed envelope itself is wrong, or an embedded one is not a map
    "signature",  # decodes, but must not verify
)


@dataclass(frozen=True)
class Parties:
    ps: SigningKey
    shopper: SigningKey
    gate: SigningKey


def envelope_bytes(t: str, kid: str, body: bytes, sig: bytes) -> bytes:
    return encoding.encode({"b": body, "k": kid, "s": sig, "t": t})


def resign(key: SigningKey, t: str, body: bytes) -> bytes:
    """An envelope of these exact body bytes, correctly signed by key: only the body can be at fault."""
    return envelope_bytes(t, key.key_id, body, key.sign(signing_input(t, key.key_id, body)))


def _pairs(fields: dict[str, Any]) -> bytes:
    return b"".join(encoding.encode(k) + encoding.encode(v) for k, v in fields.items())


def _replace(fields: dict[str, Any], name: str, raw_value: bytes) -> bytes:
    """The canonical map with one value swapped for raw bytes that no canonical encoder would write."""
    out = bytes([0xA0 + len(fields)])
    for k, v in fields.items():
        out += encoding.encode(k) + (raw_value if k == name else encoding.encode(v))
    return out


class _Out:
    def __init__(self, parties: Parties) -> None:
        self.parties = parties
        self.entries: list[dict[str, Any]] = []

    def signed(self, t: str, family: str, name: str, key: SigningKey, body: bytes) -> None:
        self.entries.append(
            {
                "name": name,
                "type": t,
                "family": family,
                "expect": "decode_error",
                "envelope": resign(key, t, body).hex(),
            }
        )

    def envelope(self, t: str, family: str, name: str, raw: bytes) -> None:
        self.entries.append(
            {"name": name, "type": t, "family": family, "expect": "decode_error", "envelope": raw.hex()}
        )

    def plain(self, t: str, family: str, name: str, raw: bytes) -> None:
        self.entries.append(
            {"name": name, "type": t, "family": family, "expect": "decode_error", "bytes": raw.hex()}
        )

    def bad_signature(self, t: str, name: str, raw: bytes, verify_with: str) -> None:
        self.entries.append(
            {
                "name": name,
                "type": t,
                "family": "signature",
                "expect": "signature_error",
                "verify_with": verify_with,
                "envelope": raw.hex(),
            }
        )


def negatives(parties: Parties, docs: dict[str, Any], kiosk: dict[str, bytes]) -> list[dict[str, Any]]:
    """Every negative vector. `docs` maps a document type to the good document the faults are made from,
    `kiosk` the kiosk exchange's plain documents (protocol.md section 12) to their good bytes."""
    out = _Out(parties)
    _voucher(out, docs[HoldVoucher.TYPE])
    _hold_request(out, docs[HoldRequest.TYPE])
    _shopping_list(out, docs[ShoppingList.TYPE])
    _challenge(out, docs[ExitChallenge.TYPE])
    _answer(out, docs[ExitAnswer.TYPE])
    _presentation(out, docs[ExitPresentation.TYPE])
    _receipt(out, docs[ExitReceipt.TYPE])
    _charge(out, docs[Charge.TYPE])
    _notice(out, docs[DeductionNotice.TYPE])
    _feed(out, docs[GateFeed.TYPE])
    _refusal(out, docs[ChargeRefusal.TYPE])
    _kiosk(out, kiosk)
    return out.entries


def _voucher(out: _Out, voucher: Signed[HoldVoucher]) -> None:
    """The hold voucher carries the encoding-level faults: every rule of section 2 once."""
    ps, shopper = out.parties.ps, out.parties.shopper
    t = HoldVoucher.TYPE
    fields = encoding.decode(voucher.body)
    body = voucher.body

    def refuse(family: str, name: str, raw_body: bytes) -> None:
        out.signed(t, family, name, ps, raw_body)

    v_at = body.index(b"\x61v\x01")
    refuse(
        "encoding", "non-minimal integer (v as 0x18 0x01)", body[:v_at] + b"\x61v\x18\x01" + body[v_at + 3 :]
    )
    items = list(fields.items())
    refuse("encoding", "map keys out of order", b"\xab" + _pairs(dict([items[1], items[0], *items[2:]])))
    refuse(
        "encoding",
        "duplicate map key",
        bytes([0xAC]) + _pairs(fields) + encoding.encode("v") + encoding.encode(1),
    )
    refuse("encoding", "indefinite-length map", b"\xbf" + _pairs(fields) + b"\xff")
    refuse("encoding", "trailing byte after the document", body + b"\x00")
    refuse("value type", "float value (amount 5000.0)", _replace(fields, "amount", b"\xf9\x6c\xe2"))
    refuse(
        "value type",
        "tagged value (tag 1 on issued)",
        _replace(fields, "issued", b"\xc1" + encoding.encode(fields["issued"])),
    )
    refuse("value type", "boolean value", _replace(fields, "v", b"\xf5"))
    refuse("shape", "unknown field", encoding.encode({**fields, "extra": 0}))
    refuse(
        "shape",
        "missing field (expires)",
        encoding.encode({k: v for k, v in fields.items() if k != "expires"}),
    )
    refuse("shape", "wrong type (amount as text)", encoding.encode({**fields, "amount": "5000"}))
    refuse("shape", "unsupported version 2", encoding.encode({**fields, "v": 2}))
    refuse("shape", "hold id of 15 bytes", encoding.encode({**fields, "hold": fields["hold"][:15]}))
    refuse(
        "cross-field rule",
        "amount is not stored_value + bank",
        encoding.encode({**fields, "amount": fields["amount"] + 1}),
    )
    refuse(
        "cross-field rule",
        "expires not after issued",
        encoding.encode({**fields, "expires": fields["issued"]}),
    )
    refuse(
        "range",
        "bank of 10^10 + 1 (amounts are 0 ... 10^10 inclusive)",
        encoding.encode({**fields, "bank": 10**10 + 1, "amount": fields["stored_value"] + 10**10 + 1}),
    )
    refuse(
        "range",
        "expires at 2^40 + 1 (times are 0 ... 2^40 inclusive)",
        encoding.encode({**fields, "expires": 2**40 + 1}),
    )
    for name, key in SMALL_ORDER_KEYS.items():
        refuse(
            "public key",
            f"shopper key of small order: {name}",
            encoding.encode({**fields, "shopper_key": bytes.fromhex(key)}),
        )
    refuse(
        "public key",
        "shopper key not canonically encoded (y = p)",
        encoding.encode({**fields, "shopper_key": bytes.fromhex(NON_CANONICAL_KEY)}),
    )
    env = encoding.decode(voucher.encode())
    out.envelope(t, "envelope", "envelope with an extra key", encoding.encode({**env, "x": 0}))
    out.envelope(
        t, "envelope", "envelope of another document type", encoding.encode({**env, "t": "shopping-list"})
    )
    out.envelope(
        t, "envelope", "envelope with a key id of 15 hex digits", encoding.encode({**env, "k": env["k"][:15]})
    )

    sig = voucher.sig
    s = int.from_bytes(sig[32:], "little") + L
    kid = voucher.kid
    out.bad_signature(
        t,
        "non-canonical signature (S + L)",
        envelope_bytes(t, kid, body, sig[:32] + s.to_bytes(32, "little")),
        "payment-system",
    )
    out.bad_signature(
        t,
        "one signature bit flipped",
        envelope_bytes(t, kid, body, sig[:-1] + bytes([sig[-1] ^ 1])),
        "payment-system",
    )
    changed = encoding.encode({**fields, "bank": fields["bank"] + 1000, "amount": fields["amount"] + 1000})
    out.bad_signature(
        t, "amount raised, signature kept", envelope_bytes(t, kid, changed, sig), "payment-system"
    )
    out.bad_signature(
        t,
        "signed by the shopper key under the payment system's key id",
        envelope_bytes(t, kid, body, shopper.sign(signing_input(t, kid, body))),
        "payment-system",
    )
    out.bad_signature(
        t,
        "signature over the body alone, not the signing input",
        envelope_bytes(t, kid, body, out.parties.ps.sign(body)),
        "payment-system",
    )


def _hold_request(out: _Out, request: Signed[HoldRequest]) -> None:
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


def _shopping_list(out: _Out, slist: Signed[ShoppingList]) -> None:
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


def _challenge(out: _Out, challenge: ExitChallenge) -> None:
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
    return _replace(fields, "time", value)


def _answer(out: _Out, answer: Signed[ExitAnswer]) -> None:
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


def _presentation(out: _Out, presentation: ExitPresentation) -> None:
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


def _receipt(out: _Out, receipt: Signed[ExitReceipt]) -> None:
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


def _charge(out: _Out, charge: Signed[Charge]) -> None:
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


def _notice(out: _Out, notice: Signed[DeductionNotice]) -> None:
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


def _feed(out: _Out, feed: Signed[GateFeed]) -> None:
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


def _refusal(out: _Out, refusal: Signed[ChargeRefusal]) -> None:
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


def _kiosk(out: _Out, kiosk: dict[str, bytes]) -> None:
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


def encoding_edges() -> list[dict[str, Any]]:
    """Bare CBOR items at the encoding's limits (section 2), each `ok` or `decode_error`."""

    def nested(levels: int) -> bytes:
        """An empty array at the given level, inside arrays of one item each."""
        return b"\x81" * (levels - 1) + b"\x80"

    return [
        {"name": "8 levels: seven arrays around an empty one", "cbor": nested(8).hex(), "expect": "ok"},
        {
            "name": "9 levels: eight arrays around an empty one",
            "cbor": nested(9).hex(),
            "expect": "decode_error",
        },
        {"name": "map key of 23 bytes", "cbor": encoding.encode({"k" * 23: 0}).hex(), "expect": "ok"},
        {
            "name": "map key of 24 bytes",
            "cbor": (b"\xa1\x78\x18" + b"k" * 24 + b"\x00").hex(),
            "expect": "decode_error",
        },
        {"name": "integer 2^63 - 1", "cbor": encoding.encode(2**63 - 1).hex(), "expect": "ok"},
        {
            "name": "integer 2^63 (over the 64-bit signed range)",
            "cbor": ("1b" + (2**63).to_bytes(8, "big").hex()),
            "expect": "decode_error",
        },
        {"name": "integer -2^63", "cbor": encoding.encode(-(2**63)).hex(), "expect": "ok"},
        {
            "name": "integer -2^63 - 1",
            "cbor": ("3b" + (2**63).to_bytes(8, "big").hex()),
            "expect": "decode_error",
        },
        {"name": "null", "cbor": "f6", "expect": "decode_error"},
        {"name": "text that is not UTF-8", "cbor": "61ff", "expect": "decode_error"},
    ]
