"""Test vectors for docs/protocol.md: fixed seeds -> keys -> documents -> exact bytes and signatures.

    python -m gate.protocol.vectors > docs/test-vectors.json

The output is deterministic (Ed25519 signatures are; no clock, no randomness), so the file in docs/ can be
regenerated and compared byte for byte, and an implementer in any language can check their encoder,
decoder and verifier against it. Byte strings are lowercase hex; `diagnostic` is RFC 8949 section 8
diagnostic notation of the body, for reading.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from gate.barcodes import variable_code
from gate.protocol import encoding
from gate.protocol.documents import (
    SIGNING_CONTEXT,
    VERSION,
    Charge,
    DeductionNotice,
    Document,
    ExitChallenge,
    ExitPresentation,
    ExitReceipt,
    HoldRequest,
    HoldVoucher,
    ShoppingList,
    Signed,
    sign,
    signing_input,
)
from gate.protocol.feed import GateFeed, GateKey, PriceEntry
from gate.protocol.keys import SigningKey
from gate.protocol.kiosk import KioskHello, KioskPoll, KioskReply, ProposedList
from gate.protocol.parties import answer_challenge, issue_voucher, item, sign_list

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point
SMALL_ORDER_KEYS = {
    "identity (order 1)": "01" + "00" * 31,
    "order 2": "ec" + "ff" * 30 + "7f",
    "order 4": "00" * 32,
    "order 8": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
}
NON_CANONICAL_KEY = "ed" + "ff" * 30 + "7f"  # y = p: an out-of-range encoding

STORE, GATE, KIOSK, CURRENCY = "store-0001", "gate-01", "kiosk-01", "EUR"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


class _Layout:
    def __init__(self, prefix: str, kind: str) -> None:
        self.prefix, self.kind = prefix, kind
        self.item_digits, self.value_digits, self.value_check_digit = 5, 5, False


WEIGHT, PRICE = _Layout("21", "weight"), _Layout("22", "price")


def seed(name: str) -> bytes:
    return hashlib.sha256(f"selfcheckout test vector: {name}".encode()).digest()


def fixed_id(name: str, size: int = 16) -> bytes:
    return hashlib.sha256(f"selfcheckout test id: {name}".encode()).digest()[:size]


def diagnostic(value: Any) -> str:
    """RFC 8949 diagnostic notation of a protocol value."""
    if isinstance(value, bytes):
        return f"h'{value.hex()}'"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(diagnostic(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{diagnostic(k)}: {diagnostic(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _signed_entry(name: str, signer: str, signed: Signed[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "type": signed.type,
        "signer": signer,
        "key_id": signed.kid,
        "diagnostic": diagnostic(encoding.decode(signed.body)),
        "body": signed.body.hex(),
        "body_sha256": hashlib.sha256(signed.body).hexdigest(),
        "signing_input": signing_input(signed.type, signed.kid, signed.body).hex(),
        "signature": signed.sig.hex(),
        "envelope": signed.encode().hex(),
    }


def _plain_entry(name: str, doc: Document) -> dict[str, Any]:
    body = doc.encode()
    return {
        "name": name,
        "type": doc.TYPE,
        "diagnostic": diagnostic(encoding.decode(body)),
        "bytes": body.hex(),
    }


def build() -> dict[str, Any]:
    ps = SigningKey.from_seed(seed("payment-system"))
    shopper = SigningKey.from_seed(seed("shopper"))
    gate = SigningKey.from_seed(seed("gate"))
    keys = [
        {"name": name, "seed": k.seed.hex(), "public_key": k.public_key.hex(), "key_id": k.key_id}
        for name, k in (("payment-system", ps), ("shopper", shopper), ("gate", gate))
    ]
    hold = fixed_id("hold")
    request = sign(
        HoldRequest(
            v=VERSION,
            request=fixed_id("request"),
            shopper="alice",
            store=STORE,
            currency=CURRENCY,
            estimate=5000,
            at=T0,
        ),
        shopper,
    )
    voucher = issue_voucher(
        ps,
        hold=hold,
        shopper="alice",
        shopper_key=shopper.public_key,
        store=STORE,
        currency=CURRENCY,
        stored_value=1200,
        bank=3800,
        issued=T0 + 5,
        expires=T0 + 4 * 3600,
    )
    items = [
        item("4006381333931", 129, qty=2),  # EAN-13
        item("036000291452", 250),  # UPC-A (a UPC-E scan is expanded to this form)
        item("96385074", 99),  # EAN-8
        item(variable_code(WEIGHT, "00231", 412), 1590, grams=412),  # weight-embedded: 412 g at 15.90/kg
        item(variable_code(PRICE, "00457", 1234), 1234),  # price-embedded: 12.34
    ]
    slist = sign_list(
        shopper,
        list_id=fixed_id("list"),
        hold=hold,
        store=STORE,
        currency=CURRENCY,
        created=T0 + 1800,
        items=items,
    )
    challenge = ExitChallenge(v=VERSION, gate=GATE, store=STORE, nonce=fixed_id("nonce", 32), time=T0 + 2000)
    answer = answer_challenge(shopper, challenge, slist)
    presentation = ExitPresentation(v=VERSION, voucher=voucher, list=slist, answer=answer)
    receipt = sign(
        ExitReceipt(
            v=VERSION,
            gate=GATE,
            store=STORE,
            list=slist.doc.list,
            nonce=challenge.nonce,
            verdict="pass",
            reasons=(),
            total=slist.doc.total,
            currency=CURRENCY,
            at=T0 + 2000,
        ),
        gate,
    )
    charge = sign(
        Charge(
            v=VERSION,
            charge=slist.doc.list,
            gate=GATE,
            store=STORE,
            challenge=challenge,
            voucher=voucher,
            list=slist,
            answer=answer,
            amount=slist.doc.total,
            currency=CURRENCY,
            decided=T0 + 2000,
        ),
        gate,
    )
    notice = sign(
        DeductionNotice(
            v=VERSION,
            charge=slist.doc.list,
            hold=hold,
            shopper="alice",
            currency=CURRENCY,
            total=slist.doc.total,
            stored_value=1200,
            bank=slist.doc.total - 1200,
            bank_ref="SIM-000042",
            released=voucher.doc.amount - slist.doc.total,
            debt=0,
            settled=T0 + 2100,
        ),
        ps,
    )
    feed = sign(
        GateFeed(
            v=VERSION,
            store=STORE,
            nonce=fixed_id("feed nonce", 32),
            since=0,
            version=3,
            latest=3,
            issued=T0 + 60,
            deny_holds=(fixed_id("denied hold"),),
            deny_shoppers=("mallory",),
            consumed=(fixed_id("hold at another gate"),),
            prices=(
                PriceEntry(
                    code="4006381333931",
                    name="Stabilo pen",
                    category="stationery",
                    unit="each",
                    price=129,
                    currency=CURRENCY,
                    valid_from=T0 - 86400,
                ),
                PriceEntry(
                    code=variable_code(WEIGHT, "00231", 0),
                    name="Gouda",
                    category="cheese",
                    unit="kg",
                    price=1590,
                    currency=CURRENCY,
                    valid_from=T0 - 86400,
                ),
            ),
            gates=(GateKey(gate=GATE, public_key=gate.public_key),),
        ),
        ps,
    )
    documents = [
        _signed_entry("hold request (phone -> payment system)", "shopper", request),
        _signed_entry("hold voucher (payment system -> phone)", "payment-system", voucher),
        _signed_entry("shopping list (signed by the shopper)", "shopper", slist),
        _plain_entry("exit challenge (gate -> phone, INS 0x10 data)", challenge),
        _signed_entry("exit answer (signed by the shopper)", "shopper", answer),
        _plain_entry("exit presentation (phone -> gate, INS 0x10 response)", presentation),
        _signed_entry("exit receipt (gate -> phone, INS 0x20 data)", "gate", receipt),
        _signed_entry("charge (gate -> payment system)", "gate", charge),
        _signed_entry("deduction notice (payment system -> phone)", "payment-system", notice),
        _signed_entry(
            "feed (payment system -> gate and phone; the asker's nonce echoed)", "payment-system", feed
        ),
        *_kiosk_entries(slist),
    ]
    return {
        "about": (
            "Test vectors for docs/protocol.md, generated by `python -m gate.protocol.vectors`. "
            "Every byte string is lowercase hex. A conforming implementation: derives each public key "
            "and key id from its seed; encodes each document's fields to exactly `body` (or `bytes`); "
            "builds exactly `signing_input` and produces exactly `signature` (Ed25519 is deterministic); "
            "encodes exactly `envelope`; and refuses every entry of `negative`."
        ),
        "version": VERSION,
        "signing_context": SIGNING_CONTEXT,
        "keys": keys,
        "gs1_layouts": [
            {
                "prefix": "21",
                "kind": "weight",
                "item_digits": 5,
                "value_digits": 5,
                "value_check_digit": False,
            },
            {
                "prefix": "22",
                "kind": "price",
                "item_digits": 5,
                "value_digits": 5,
                "value_check_digit": False,
            },
        ],
        "documents": documents,
        "negative": _negatives(ps, shopper, voucher),
    }


def _kiosk_entries(slist: Signed[ShoppingList]) -> list[dict[str, Any]]:
    """The kiosk exchange (protocol.md section 12) around the same list: the kiosk proposes its lines."""
    session = fixed_id("kiosk session")
    hello = KioskHello(v=VERSION, kiosk=KIOSK, store=STORE, session=session, time=T0 + 600)
    doc = slist.doc
    proposal = ProposedList(
        v=VERSION,
        kiosk=KIOSK,
        session=session,
        hold=doc.hold,
        store=doc.store,
        currency=doc.currency,
        items=doc.items,
        total=doc.total,
    )
    poll = KioskPoll(v=VERSION, session=session, proposal=proposal.hash())
    return [
        _plain_entry(
            "kiosk hello (kiosk -> phone, INS 0x30 data; the answer is the voucher envelope)", hello
        ),
        _plain_entry("proposed list (kiosk -> phone, INS 0x31 data)", proposal),
        _plain_entry("kiosk reply: shown (phone -> kiosk, INS 0x31 response)", _reply(session, "shown")),
        _plain_entry("kiosk poll (kiosk -> phone, INS 0x32 data; proposal = SHA-256 of its bytes)", poll),
        _plain_entry("kiosk reply: waiting (INS 0x32 response)", _reply(session, "waiting")),
        _plain_entry(
            "kiosk reply: signed, with the list (INS 0x32 response)", _reply(session, "signed", slist)
        ),
        _plain_entry("kiosk reply: refused (INS 0x31 or 0x32 response)", _reply(session, "refused")),
    ]


def _reply(session: bytes, status: str, slist: Signed[ShoppingList] | None = None) -> KioskReply:
    reason = "over_hold" if status == "refused" else None
    return KioskReply(v=VERSION, session=session, status=status, reason=reason, list=slist)


def _envelope(t: str, kid: str, body: bytes, sig: bytes) -> bytes:
    return encoding.encode({"b": body, "k": kid, "s": sig, "t": t})


def _resign(key: SigningKey, t: str, body: bytes) -> bytes:
    return _envelope(t, key.key_id, body, key.sign(signing_input(t, key.key_id, body)))


def _negatives(ps: SigningKey, shopper: SigningKey, voucher: Signed[HoldVoucher]) -> list[dict[str, Any]]:
    """Envelopes (all signed by the key they name unless said otherwise) that must be refused."""
    t = HoldVoucher.TYPE
    fields = encoding.decode(voucher.body)
    body = voucher.body
    out: list[dict[str, Any]] = []

    def decode_error(name: str, raw_body: bytes) -> None:
        out.append(
            {"name": name, "type": t, "expect": "decode_error", "envelope": _resign(ps, t, raw_body).hex()}
        )

    # Not canonical CBOR (the body bytes differ from the deterministic encoding of what they say).
    v_at = body.index(b"\x61v\x01")
    decode_error("non-minimal integer (v as 0x18 0x01)", body[:v_at] + b"\x61v\x18\x01" + body[v_at + 3 :])
    items = list(fields.items())
    swapped = dict([items[1], items[0], *items[2:]])
    decode_error("map keys out of order", b"\xab" + _pairs(swapped))
    decode_error(
        "duplicate map key", bytes([0xAC]) + _pairs(fields) + encoding.encode("v") + encoding.encode(1)
    )
    decode_error("indefinite-length map", b"\xbf" + _pairs(fields) + b"\xff")
    decode_error("trailing byte after the document", body + b"\x00")
    # Not the protocol's value types.
    decode_error("float value (amount 5000.0)", _replace(fields, "amount", b"\xf9\x6c\xe2"))
    decode_error(
        "tagged value (tag 1 on issued)", _replace(fields, "issued", b"\xc1" + encoding.encode(T0 + 5))
    )
    decode_error("boolean value", _replace(fields, "v", b"\xf5"))
    # Not the document's shape.
    decode_error("unknown field", encoding.encode({**fields, "extra": 0}))
    decode_error(
        "missing field (expires)", encoding.encode({k: v for k, v in fields.items() if k != "expires"})
    )
    decode_error("wrong type (amount as text)", encoding.encode({**fields, "amount": "5000"}))
    decode_error("unsupported version 2", encoding.encode({**fields, "v": 2}))
    decode_error(
        "amount is not stored_value + bank", encoding.encode({**fields, "amount": fields["amount"] + 1})
    )
    decode_error("hold id of 15 bytes", encoding.encode({**fields, "hold": fields["hold"][:15]}))
    for name, key in SMALL_ORDER_KEYS.items():
        decode_error(
            f"shopper key of small order: {name}",
            encoding.encode({**fields, "shopper_key": bytes.fromhex(key)}),
        )
    decode_error(
        "shopper key not canonically encoded (y = p)",
        encoding.encode({**fields, "shopper_key": bytes.fromhex(NON_CANONICAL_KEY)}),
    )
    env = encoding.decode(voucher.encode())
    out.append(
        {
            "name": "envelope with an extra key",
            "type": t,
            "expect": "decode_error",
            "envelope": encoding.encode({**env, "x": 0}).hex(),
        }
    )
    out.append(
        {
            "name": "envelope of another document type",
            "type": t,
            "expect": "decode_error",
            "envelope": encoding.encode({**env, "t": ShoppingList.TYPE}).hex(),
        }
    )

    # Decodes, but the signature must not verify with the payment system's key.
    def bad_signature(name: str, envelope: bytes) -> None:
        out.append({"name": name, "type": t, "expect": "signature_error", "envelope": envelope.hex()})

    sig = voucher.sig
    s = int.from_bytes(sig[32:], "little") + L
    bad_signature(
        "non-canonical signature (S + L)",
        _envelope(t, voucher.kid, body, sig[:32] + s.to_bytes(32, "little")),
    )
    bad_signature(
        "one signature bit flipped", _envelope(t, voucher.kid, body, sig[:-1] + bytes([sig[-1] ^ 1]))
    )
    changed = encoding.encode({**fields, "bank": fields["bank"] + 1000, "amount": fields["amount"] + 1000})
    bad_signature("amount raised, signature kept", _envelope(t, voucher.kid, changed, sig))
    bad_signature(
        "signed by the shopper key under the payment system's key id",
        _envelope(t, voucher.kid, body, shopper.sign(signing_input(t, voucher.kid, body))),
    )
    bad_signature(
        "signature over the body alone, not the signing input",
        _envelope(t, voucher.kid, body, ps.sign(body)),
    )
    return out


def _pairs(fields: dict[str, Any]) -> bytes:
    return b"".join(encoding.encode(k) + encoding.encode(v) for k, v in fields.items())


def _replace(fields: dict[str, Any], name: str, raw_value: bytes) -> bytes:
    """The canonical map with one value swapped for raw bytes that no canonical encoder would write."""
    out = bytes([0xA0 + len(fields)])
    for k, v in fields.items():
        out += encoding.encode(k) + (raw_value if k == name else encoding.encode(v))
    return out


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
