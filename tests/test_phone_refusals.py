"""The phone refuses what it cannot verify: forged vouchers, exit receipts, deduction notices and feeds, and
wrong or malformed answers. Each refusal is one line, and the state folder is left exactly as it was.

The forgeries come from a man in the middle between the phone and the real payment system, and from a
gate that signs what it should not; some are signed with the real keys, to show that the phone checks the
content and not only the signature.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from drivers.errors import ApduStatusError
from gate.protocol import encoding
from gate.protocol.documents import DeductionNotice, ExitReceipt, HoldVoucher, Signed
from gate.protocol.feed import GateFeed
from gate.protocol.keys import SigningKey
from phone.card import SW_SECURITY_NOT_SATISFIED
from tests.fixtures.payments import MILK, PEN
from tests.fixtures.phone import PhoneShop, TamperingProxy, resign, rewrite_document, state_files

MALLORY = SigningKey.generate()


def flip_signature(signed: Signed[Any]) -> bytes:
    envelope = encoding.decode(signed.encode())
    envelope["s"] = bytes([envelope["s"][0] ^ 1]) + envelope["s"][1:]
    return encoding.encode(envelope)


def one_line_error(output: str, starts: str) -> None:
    assert output.startswith(f"Error: {starts}"), output
    assert output.count("\n") == 1, output


# -- hold vouchers ----------------------------------------------------------------------------------------

VOUCHER_FORGERIES: dict[str, tuple[Callable[[Signed[HoldVoucher], SigningKey], bytes], str]] = {
    "signed by another key": (lambda v, ps: resign(v, MALLORY), "is not a trusted key"),
    "signature flipped": (lambda v, ps: flip_signature(v), "signature does not verify"),
    "another shopper's key": (
        lambda v, ps: resign(v, ps, shopper_key=MALLORY.public_key),
        "shopper key is",
    ),
    "another shopper": (lambda v, ps: resign(v, ps, shopper="mallory"), "shopper is mallory, expected alice"),
    "another store": (lambda v, ps: resign(v, ps, store="store-0002"), "store is store-0002"),
    "less than asked": (
        lambda v, ps: resign(v, ps, amount=v.doc.amount - 100, bank=v.doc.bank - 100),
        "amount is 1900, expected 2000",
    ),
    "amounts that do not add up": (
        lambda v, ps: resign(v, ps, bank=v.doc.bank + 1),
        "!= stored_value + bank",
    ),
    "unknown field": (lambda v, ps: resign(v, ps, bonus=1), "unknown field 'bonus'"),
    "already expired": (lambda v, ps: resign(v, ps, issued=1000, expires=2000), "already expired"),
    "another kind of document": (lambda v, ps: _as_other_type(v, ps), "expected a hold-voucher document"),
}


def _as_other_type(voucher: Signed[HoldVoucher], ps: SigningKey) -> bytes:
    envelope = encoding.decode(resign(voucher, ps))
    envelope["t"] = "deduction-notice"
    return encoding.encode(envelope)


@pytest.mark.parametrize("forgery", sorted(VOUCHER_FORGERIES))
def test_a_forged_voucher_is_refused_and_nothing_changes(
    phone_shop: PhoneShop, tampering_proxy: TamperingProxy, forgery: str
) -> None:
    phone = phone_shop.enrolled(top_up=500, ps_url=tampering_proxy.url)
    forge, message = VOUCHER_FORGERIES[forgery]
    ps_key = phone_shop.stack.key
    tampering_proxy.rewrites["/v1/holds"] = rewrite_document(
        "voucher", HoldVoucher, lambda v: forge(v, ps_key)
    )
    before = state_files(phone_shop.state)
    result = phone_shop.cli("hold", "--estimate", "20", ok=False)
    one_line_error(result.output, "hold voucher refused: ")
    assert message in result.output
    after = state_files(phone_shop.state)
    assert after.pop("pending-hold.cbor")  # the signed request, kept to be sent again as it is
    assert after == before
    assert phone.visit() is None
    # Without the attacker the same request is sent again and the PS answers the same, genuine voucher.
    tampering_proxy.rewrites.clear()
    phone_shop.cli("hold", "--estimate", "20")
    assert phone.visit() is not None
    assert phone_shop.stack.admin("GET", "/v1/shoppers/alice")["reserved"] == 500  # one hold, not two


def test_a_voucher_answer_without_a_document_is_refused(
    phone_shop: PhoneShop, tampering_proxy: TamperingProxy
) -> None:
    phone_shop.enrolled(top_up=500, ps_url=tampering_proxy.url)
    for answer, message in [({}, "has no 'voucher' document"), ({"voucher": "!!"}, "is not base64")]:
        tampering_proxy.rewrites["/v1/holds"] = lambda _, a=answer: a
        one_line_error(phone_shop.cli("hold", "--estimate", "20", ok=False).output, "payment system answer")
        assert message in phone_shop.cli("hold", "--estimate", "20", ok=False).output


# -- exit receipts ----------------------------------------------------------------------------------------

RECEIPT_FORGERIES: dict[str, tuple[Callable[[Signed[ExitReceipt], SigningKey], bytes], str]] = {
    "signed by a key no gate has": (lambda r, g: resign(r, MALLORY), "is not a trusted key"),
    "signature flipped": (lambda r, g: flip_signature(r), "signature does not verify"),
    "another gate's name": (lambda r, g: resign(r, MALLORY, gate="gate-99"), "gate is gate-99"),
    "another tap's nonce": (lambda r, g: resign(r, g, nonce=os.urandom(32)), "nonce is"),
    "another list": (lambda r, g: resign(r, g, list=os.urandom(16)), "list is"),
    "another total": (lambda r, g: resign(r, g, total=1), "total is 1, expected"),
    "another store": (lambda r, g: resign(r, g, store="store-0002"), "store is store-0002"),
    "unknown field": (lambda r, g: resign(r, g, bonus=1), "unknown field 'bonus'"),
    "unknown verdict": (lambda r, g: resign(r, g, verdict="maybe"), "is not one of"),
    # An "unreadable presentation" receipt has one shape: deny, exactly malformed, total 0, the currency.
    "unreadable, with another reason": (
        lambda r, g: resign(r, g, list=bytes(16), verdict="deny", reasons=["list_used"], total=0),
        "reasons of an unreadable presentation is",
    ),
    "unreadable, with a total": (
        lambda r, g: resign(r, g, list=bytes(16), verdict="deny", reasons=["malformed"]),
        "total of an unreadable presentation is 248, expected 0",
    ),
}


@pytest.mark.parametrize("forgery", sorted(RECEIPT_FORGERIES))
def test_a_forged_exit_receipt_is_refused_over_nfc_and_nothing_is_kept(
    phone_shop: PhoneShop, forgery: str
) -> None:
    phone = phone_shop.enrolled(top_up=500)
    phone_shop.cli("hold", "--estimate", "20")
    phone_shop.cli("scan", PEN, MILK, "--done", "--yes")
    forge, message = RECEIPT_FORGERIES[forgery]
    gate_key = phone_shop.gate.side.key
    before = state_files(phone_shop.state)
    card = phone.card()
    phone_shop.reader.place(card)
    try:
        tap = phone_shop.gate.serve(forge=lambda r: forge(r, gate_key))
    finally:
        phone_shop.reader.lift()
    assert tap.decision.verdict == "pass"  # the gate let the shopper out ...
    assert isinstance(tap.receipt_error, ApduStatusError)  # ... and the phone refused its receipt
    assert tap.receipt_error.sw == SW_SECURITY_NOT_SATISFIED
    assert card.receipt is None and card.refused is not None
    assert card.refused.startswith("exit receipt refused: ") and message in card.refused
    assert state_files(phone_shop.state) == before
    assert "no exit receipt yet" in phone_shop.cli("receipt", ok=False).output
    # Tapped again, the lane recognises the list it passed and answers genuinely: kept, never charged twice.
    again = phone_shop.tap()
    assert again.receipt_error is None and again.verdict == "pass" and "list_used" in again.decision.codes
    assert phone.visit().receipt == again.receipt  # type: ignore[union-attr]
    assert "verdict: PASS" in phone_shop.cli("receipt").output
    assert len(phone_shop.gate.side.passes) == 1


# -- deduction notices ------------------------------------------------------------------------------------

NOTICE_FORGERIES: dict[str, tuple[Callable[[Signed[DeductionNotice], SigningKey], bytes], str]] = {
    "signed by another key": (lambda n, ps: resign(n, MALLORY), "is not a trusted key"),
    "signature flipped": (lambda n, ps: flip_signature(n), "signature does not verify"),
    "another charge": (lambda n, ps: resign(n, ps, charge=os.urandom(16)), "charge is"),
    "another hold": (lambda n, ps: resign(n, ps, hold=os.urandom(16)), "hold is"),
    "another shopper": (lambda n, ps: resign(n, ps, shopper="bob"), "shopper is bob"),
    "more than the list": (
        lambda n, ps: resign(n, ps, total=n.doc.total + 500, bank=n.doc.bank + 500),
        "total is 877, expected 377",
    ),
    "parts that do not add up": (lambda n, ps: resign(n, ps, bank=n.doc.bank + 1), "!= total"),
    "more from the bank than held": (
        lambda n, ps: resign(n, ps, stored_value=0, bank=n.doc.total),
        "takes 377 from the bank, the hold there was 300",
    ),
    "releases more than was left": (lambda n, ps: resign(n, ps, released=2000), "releases 2000"),
    "unknown field": (lambda n, ps: resign(n, ps, bonus=1), "unknown field 'bonus'"),
}


@pytest.mark.parametrize("forgery", sorted(NOTICE_FORGERIES))
def test_a_forged_deduction_notice_is_refused_and_nothing_changes(
    phone_shop: PhoneShop, tampering_proxy: TamperingProxy, forgery: str
) -> None:
    phone = phone_shop.enrolled(top_up=1700, ps_url=tampering_proxy.url)
    phone_shop.cli("hold", "--estimate", "20")  # 17.00 stored value + 3.00 at the bank
    phone_shop.cli("scan", PEN, PEN, MILK, "--done", "--yes")
    assert phone_shop.tap().decision.verdict == "pass"
    phone_shop.gate.settle()
    forge, message = NOTICE_FORGERIES[forgery]
    ps_key = phone_shop.stack.key
    tampering_proxy.rewrites["/v1/notices/"] = rewrite_document(
        "notice", DeductionNotice, lambda n: forge(n, ps_key)
    )
    before = state_files(phone_shop.state)
    result = phone_shop.cli("notice", ok=False)
    one_line_error(result.output, "deduction notice refused: ")
    assert message in result.output
    assert state_files(phone_shop.state) == before
    tampering_proxy.rewrites.clear()
    assert "charged        3.77 EUR" in phone_shop.cli("notice").output
    assert phone.visit().notice is not None  # type: ignore[union-attr]


# -- the catalog feed and the enrolment -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda f, ps: resign(f, MALLORY), "is not a trusted key"),
        (lambda f, ps: resign(f, ps, nonce=os.urandom(32)), "nonce is"),  # a recorded feed, replayed
        (lambda f, ps: resign(f, ps, store="store-0002"), "store is store-0002"),
    ],
)
def test_a_forged_catalog_feed_is_refused_and_the_catalog_kept(
    phone_shop: PhoneShop, tampering_proxy: TamperingProxy, forge: Any, message: str
) -> None:
    phone_shop.enrolled(ps_url=tampering_proxy.url)
    ps_key = phone_shop.stack.key
    tampering_proxy.rewrites["/v1/feed"] = rewrite_document("feed", GateFeed, lambda f: forge(f, ps_key))
    before = state_files(phone_shop.state)
    result = phone_shop.cli("sync", ok=False)
    one_line_error(result.output, "store feed refused: ")
    assert message in result.output
    assert state_files(phone_shop.state) == before


def swap_gate_key(feed: Signed[GateFeed], key: SigningKey) -> bytes:
    """The feed with gate-01's key replaced by `key` in its body, the PS's signature kept as it was."""
    body = encoding.decode(feed.body)
    body["gates"] = [
        {**g, "public_key": key.public_key} if g["gate"] == "gate-01" else g for g in body["gates"]
    ]
    return encoding.encode({**encoding.decode(feed.encode()), "b": encoding.encode(body)})


def test_a_feed_with_a_tampered_gate_key_fails_the_signature_and_the_pinned_keys_are_kept(
    phone_shop: PhoneShop, tampering_proxy: TamperingProxy
) -> None:
    """A man in the middle puts his own key in for gate-01, to have the phone take his receipts."""
    phone = phone_shop.enrolled(top_up=500, ps_url=tampering_proxy.url)
    pinned = phone.profile.gates
    assert pinned == {"gate-01": (phone_shop.gate.side.key.public_key,)}
    tampering_proxy.rewrites["/v1/feed"] = rewrite_document(
        "feed", GateFeed, lambda f: swap_gate_key(f, MALLORY)
    )
    before = state_files(phone_shop.state)
    result = phone_shop.cli("sync", ok=False)
    one_line_error(result.output, "store feed refused: ")
    assert "signature does not verify" in result.output
    assert state_files(phone_shop.state) == before and phone.profile.gates == pinned
    # His receipt for gate-01 is refused at the tap, as before.
    phone_shop.cli("hold", "--estimate", "20")
    phone_shop.cli("scan", PEN, "--done", "--yes")
    tap = phone_shop.tap(forge=lambda r: resign(r, MALLORY))
    assert isinstance(tap.receipt_error, ApduStatusError)
    assert phone.visit().receipt is None  # type: ignore[union-attr]


def test_enrolment_refuses_keys_that_do_not_match_their_ids(
    phone_shop: PhoneShop, tampering_proxy: TamperingProxy
) -> None:
    phone_shop.cli("init")
    tampering_proxy.rewrites["/v1/keys"] = lambda a: {
        **a,
        "keys": [{"key_id": a["keys"][0]["key_id"], "public_key": MALLORY.public_key.hex()}],
    }
    before = state_files(phone_shop.state)
    result = phone_shop.cli("enrol", "--ps", tampering_proxy.url, "--user", "alice", ok=False)
    one_line_error(result.output, "payment system keys refused: ")
    assert state_files(phone_shop.state) == before


def test_an_unreachable_payment_system_is_one_line(phone_shop: PhoneShop) -> None:
    phone_shop.enrolled(top_up=500)
    phone_shop.stack.down()
    try:
        result = phone_shop.cli("hold", "--estimate", "20", ok=False)
    finally:
        phone_shop.stack.up()
    one_line_error(result.output, "payment system at http://127.0.0.1:")
    assert "connection refused" in result.output
