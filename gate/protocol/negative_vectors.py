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

from typing import Any

from gate.protocol import document_faults, encoding
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
from gate.protocol.faults import (
    NON_CANONICAL_KEY,
    SMALL_ORDER_KEYS,
    L,
    Out,
    Parties,
    envelope_bytes,
    pairs,
    replace_raw,
)
from gate.protocol.feed import GateFeed


def negatives(parties: Parties, docs: dict[str, Any], kiosk: dict[str, bytes]) -> list[dict[str, Any]]:
    """Every negative vector. `docs` maps a document type to the good document the faults are made from,
    `kiosk` the kiosk exchange's plain documents (protocol.md section 12) to their good bytes."""
    out = Out(parties)
    _voucher(out, docs[HoldVoucher.TYPE])
    document_faults.hold_request_faults(out, docs[HoldRequest.TYPE])
    document_faults.shopping_list_faults(out, docs[ShoppingList.TYPE])
    document_faults.challenge_faults(out, docs[ExitChallenge.TYPE])
    document_faults.answer_faults(out, docs[ExitAnswer.TYPE])
    document_faults.presentation_faults(out, docs[ExitPresentation.TYPE])
    document_faults.receipt_faults(out, docs[ExitReceipt.TYPE])
    document_faults.charge_faults(out, docs[Charge.TYPE])
    document_faults.notice_faults(out, docs[DeductionNotice.TYPE])
    document_faults.feed_faults(out, docs[GateFeed.TYPE])
    document_faults.refusal_faults(out, docs[ChargeRefusal.TYPE])
    document_faults.kiosk_faults(out, kiosk)
    return out.entries


def _voucher(out: Out, voucher: Signed[HoldVoucher]) -> None:
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
    refuse("encoding", "map keys out of order", b"\xab" + pairs(dict([items[1], items[0], *items[2:]])))
    refuse(
        "encoding",
        "duplicate map key",
        bytes([0xAC]) + pairs(fields) + encoding.encode("v") + encoding.encode(1),
    )
    refuse("encoding", "indefinite-length map", b"\xbf" + pairs(fields) + b"\xff")
    refuse("encoding", "trailing byte after the document", body + b"\x00")
    refuse("value type", "float value (amount 5000.0)", replace_raw(fields, "amount", b"\xf9\x6c\xe2"))
    refuse(
        "value type",
        "tagged value (tag 1 on issued)",
        replace_raw(fields, "issued", b"\xc1" + encoding.encode(fields["issued"])),
    )
    refuse("value type", "boolean value", replace_raw(fields, "v", b"\xf5"))
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
