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
from gate.legality import vectors as legality
from gate.legality.vectors import LAYOUTS, PRICE, WEIGHT
from gate.protocol import encoding
from gate.protocol.documents import (
    CONFLICT,
    SIGNING_CONTEXT,
    VERSION,
    Charge,
    ChargeRefusal,
    DeductionNotice,
    Document,
    ExitAnswer,
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
from gate.protocol.feed import GateFeed, GateKey, Gs1Entry, PriceEntry
from gate.protocol.keys import SigningKey
from gate.protocol.kiosk import KioskHello, KioskPoll, KioskReply, ProposedList
from gate.protocol.negative_vectors import Parties, encoding_edges, negatives
from gate.protocol.parties import answer_challenge, issue_voucher, item, sign_list

STORE, GATE, KIOSK, CURRENCY = "store-0001", "gate-01", "kiosk-01", "EUR"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


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
    mallory = SigningKey.from_seed(seed("mallory"))
    keys = [
        {"name": name, "seed": k.seed.hex(), "public_key": k.public_key.hex(), "key_id": k.key_id}
        for name, k in (("payment-system", ps), ("shopper", shopper), ("gate", gate), ("mallory", mallory))
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
            gs1=tuple(Gs1Entry.of(layout) for layout in LAYOUTS),
        ),
        ps,
    )
    conflict = sign(
        ChargeRefusal(
            v=VERSION,
            store=STORE,
            body_hash=hashlib.sha256(charge.encode()).digest(),
            code=CONFLICT,
            message="already received with another body, from gate gate-02; this copy moved nothing",
            at=T0 + 2100,
            won=fixed_id("the copy gate-02 sent", 32),
            won_gate="gate-02",
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
            "charge refusal: a conflict naming the copy that won (payment system -> gate)",
            "payment-system",
            conflict,
        ),
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
        "gs1_layouts": [layout.to_json() for layout in LAYOUTS],
        "documents": documents,
        "receipts": [
            _signed_entry(name, "gate", receipt)
            for name, receipt in zip(
                (
                    "pass",
                    "repeat tap within its bound: pass, exactly [list_used], no new charge",
                    "repeat tap after its bound (or after the shopper walked through): deny, list_used",
                    "unreadable presentation: list 00...00, total 0, the lane's currency",
                ),
                legality.receipts(gate, ps, shopper, mallory),
                strict=True,
            )
        ],
        "encoding": encoding_edges(),
        "negative": negatives(
            Parties(ps=ps, shopper=shopper, gate=gate),
            {
                HoldRequest.TYPE: request,
                HoldVoucher.TYPE: voucher,
                ShoppingList.TYPE: slist,
                ExitChallenge.TYPE: challenge,
                ExitAnswer.TYPE: answer,
                ExitPresentation.TYPE: presentation,
                ExitReceipt.TYPE: receipt,
                Charge.TYPE: charge,
                DeductionNotice.TYPE: notice,
                GateFeed.TYPE: feed,
                ChargeRefusal.TYPE: conflict,
            },
            {
                entry["type"]: bytes.fromhex(entry["bytes"])
                for entry in documents
                if entry["type"].startswith("kiosk-") or entry["type"] == "proposed-list"
                if not entry["name"].startswith("kiosk reply:") or "signed" in entry["name"]
            },
        ),
        "legality": legality.section(ps, shopper, mallory, gate),
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


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
