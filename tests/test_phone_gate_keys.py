"""The phone pins the store's gate keys from the payment system's signed feed: no admin token, no unsigned
answer. A revoked gate disappears at the next sync, a re-keyed gate is trusted with its new key only.

Real payment system on 127.0.0.1, gate-01's real lane on the in-process reader (tests/fixtures/phone.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from drivers.errors import ApduStatusError
from gate.protocol.keys import SigningKey
from phone.card import SW_SECURITY_NOT_SATISFIED
from phone.terminal import Phone
from tests.fixtures.payments import MILK, PEN
from tests.fixtures.phone import PhoneShop


def recording_session(seen: list[tuple[str, str, str | None]]) -> requests.Session:
    """A session that notes every request's method, path and Authorization header."""
    session = requests.Session()

    def note(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        seen.append(
            (str(request.method), urlsplit(str(request.url)).path, request.headers.get("Authorization"))
        )

    session.hooks["response"].append(note)
    return session


def shop_and_tap(shop: PhoneShop) -> tuple[Any, Any]:
    """A hold, two items, the signed list, and a tap at gate-01: (the tap, the phone's card)."""
    shop.cli("hold", "--estimate", "20")
    shop.cli("scan", PEN, MILK, "--done", "--yes")
    card = shop.phone.card()
    shop.reader.place(card)
    try:
        return shop.gate.serve(), card
    finally:
        shop.reader.lift()


def test_a_phone_enrolled_without_the_admin_token_pins_the_gate_keys_and_verifies_a_receipt(
    phone_shop: PhoneShop,
) -> None:
    stack, gate_key = phone_shop.stack, phone_shop.gate.side.key
    phone = Phone.init(phone_shop.state)
    # The store enrolled this phone's key at its desk (the reference PS takes the admin token for that);
    # the phone itself never sees a token.
    stack.admin(
        "POST",
        "/v1/shoppers",
        json={"shopper": "alice", "public_key": phone.public_key.hex(), "bank_account": "DE-0001"},
    )
    seen: list[tuple[str, str, str | None]] = []
    with recording_session(seen) as session:
        profile = Phone(phone_shop.state, session=session).enrol(
            stack.url, "alice", "DE-0001", ps_key_id=stack.key.key_id
        )
    assert profile.gates == {"gate-01": (gate_key.public_key,)}
    assert {path for _, path, _ in seen} == {"/v1/health", "/v1/keys", "/v1/feed"}  # no /v1/gates
    assert all(auth is None for _, _, auth in seen)
    assert "pinned gate key(s) of gate-01" in phone_shop.cli("sync").output

    tap, card = shop_and_tap(phone_shop)
    assert tap.decision.verdict == "pass" and tap.receipt_error is None and card.refused is None
    receipt = phone.visit().receipt  # type: ignore[union-attr]
    assert receipt is not None and receipt.kid == gate_key.key_id and receipt.doc.verdict == "pass"


def test_a_revoked_gates_receipts_are_refused_after_a_sync(phone_shop: PhoneShop) -> None:
    stack = phone_shop.stack
    phone = phone_shop.enrolled(top_up=500)
    assert set(phone.profile.gates) == {"gate-01"}
    gate_02 = SigningKey.generate()
    stack.admin("POST", "/v1/gates", json={"gate": "gate-02", "public_key": gate_02.public_key.hex()})
    stack.admin("DELETE", "/v1/gates/gate-01")
    assert "pinned gate key(s) of gate-02" in phone_shop.cli("sync").output
    assert phone.profile.gates == {"gate-02": (gate_02.public_key,)}

    tap, card = shop_and_tap(phone_shop)
    assert tap.decision.verdict == "pass"  # gate-01 decides offline, it does not know it was revoked ...
    assert isinstance(tap.receipt_error, ApduStatusError)  # ... and the phone refuses its receipt
    assert tap.receipt_error.sw == SW_SECURITY_NOT_SATISFIED
    assert card.refused is not None and "gate gate-01 is not an enrolled gate of this store" in card.refused
    assert phone.visit().receipt is None  # type: ignore[union-attr]

    # With every gate revoked the phone pins none, and says so.
    stack.admin("DELETE", "/v1/gates/gate-02")
    assert "no gate keys published to this phone" in phone_shop.cli("sync").output
    assert phone.profile.gates == {}


def test_a_rekeyed_gate_is_trusted_with_its_new_key_only_after_a_sync(phone_shop: PhoneShop) -> None:
    stack = phone_shop.stack
    phone = phone_shop.enrolled(top_up=500)
    new_key = SigningKey.generate()
    stack.admin("POST", "/v1/gates", json={"gate": "gate-01", "public_key": new_key.public_key.hex()})
    phone_shop.cli("sync")
    assert phone.profile.gates == {"gate-01": (new_key.public_key,)}
    tap, card = shop_and_tap(phone_shop)  # the lane still signs with its old key
    assert isinstance(tap.receipt_error, ApduStatusError)
    assert card.refused is not None and "is not a trusted key" in card.refused
