"""The feed document (gate/protocol/feed.py): its shape and limits, and the gate keys it carries to phones.

Both verifiers are exercised on the same bytes: the gate's (gate.sync.verify_feed) and the phone's
(phone.checks.check_feed).
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from gate.errors import DecodeError, SignatureError
from gate.protocol import encoding
from gate.protocol.documents import VERSION, open_signed, sign
from gate.protocol.feed import MAX_GATES, GateFeed, GateKey, Gs1Entry, PriceEntry
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.sync import verify_feed
from phone.checks import check_feed
from phone.errors import Refused

PS = SigningKey.generate()
GATE_01, GATE_02 = SigningKey.generate(), SigningKey.generate()
NONCE = bytes(range(32))
STORE = "store-0001"


def feed(**changes: Any) -> GateFeed:
    fields: dict[str, Any] = {
        "v": VERSION,
        "store": STORE,
        "nonce": NONCE,
        "since": 0,
        "version": 3,
        "latest": 3,
        "issued": 1_767_225_600,
        "deny_holds": (),
        "deny_shoppers": (),
        "consumed": (),
        "prices": (PriceEntry("4006381333931", "Stabilo pen", "stationery", "each", 129, "EUR", 0),),
        "gates": (GateKey("gate-01", GATE_01.public_key), GateKey("gate-02", GATE_02.public_key)),
        "gs1": (Gs1Entry("21", "weight", 5, 5, 0), Gs1Entry("23", "price", 5, 4, 1)),
    }
    return GateFeed(**{**fields, **changes})


def body_map(doc: GateFeed) -> dict[str, Any]:
    return encoding.decode(doc.encode())


def test_the_feed_round_trips_with_its_gate_keys() -> None:
    doc = feed()
    assert GateFeed.decode(doc.encode()) == doc
    assert doc.gate_keys() == {"gate-01": (GATE_01.public_key,), "gate-02": (GATE_02.public_key,)}
    # A PS that overlaps a rotation may list a gate with two keys; the phone pins both.
    two = feed(gates=(GateKey("gate-01", GATE_01.public_key), GateKey("gate-01", GATE_02.public_key)))
    assert GateFeed.decode(two.encode()).gate_keys() == {"gate-01": (GATE_01.public_key, GATE_02.public_key)}
    assert GateFeed.decode(feed(gates=()).encode()).gate_keys() == {}


def _too_many(m: dict[str, Any]) -> dict[str, Any]:
    key = m["gates"][0]["public_key"]
    return {**m, "gates": [{"gate": f"g{i}", "public_key": key} for i in range(MAX_GATES + 1)]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {k: v for k, v in m.items() if k != "gates"}, "missing field 'gates'"),
        (lambda m: {**m, "gates": [m["gates"][0], m["gates"][0]]}, "listed before for gate gate-01"),
        (
            lambda m: {**m, "gates": [m["gates"][0], {**m["gates"][0], "gate": "gate-02"}]},
            "listed before for gate gate-01",
        ),
        (_too_many, f"{MAX_GATES + 1} entries, expected 0..{MAX_GATES}"),
        (lambda m: {**m, "gates": [{"gate": "gate-01", "public_key": bytes(32)}]}, "gates[0].public_key"),
        (lambda m: {**m, "gates": [{"gate": "gate 01", "public_key": GATE_01.public_key}]}, "gates[0].gate"),
        (lambda m: {**m, "gates": [{"gate": "gate-01"}]}, "missing field 'public_key'"),
        (lambda m: {**m, "gates": [{**m["gates"][0], "key_id": "00"}]}, "unknown field 'key_id'"),
    ],
    ids=[
        "absent",
        "twice",
        "one key two gates",
        "too many",
        "small-order key",
        "bad name",
        "no key",
        "extra",
    ],
)
def test_a_malformed_gate_list_does_not_decode(change: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        GateFeed.from_map(change(body_map(feed())))


def tampered(signed_bytes: bytes, **changes: Any) -> bytes:
    """The envelope with body fields changed and the PS's signature kept: what a man in the middle can do."""
    envelope = encoding.decode(signed_bytes)
    envelope["b"] = encoding.encode({**encoding.decode(envelope["b"]), **changes})
    return encoding.encode(envelope)


def test_a_feed_with_a_tampered_gate_key_fails_the_signature_at_gate_and_phone() -> None:
    mallory = SigningKey.generate()
    genuine = sign(feed(), PS).encode()
    gates = body_map(feed())["gates"]
    forged = tampered(genuine, gates=[gates[0], {"gate": "gate-02", "public_key": mallory.public_key}])
    assert open_signed(forged, GateFeed).doc.gate_keys()["gate-02"] == (mallory.public_key,)  # it decodes
    trusted = TrustedKeys([PS.public_key])
    assert verify_feed(genuine, trusted=trusted, store_id=STORE, since=0, nonce=NONCE).gates == feed().gates
    with pytest.raises(SignatureError):
        verify_feed(forged, trusted=trusted, store_id=STORE, since=0, nonce=NONCE)
    assert check_feed(genuine, trusted, store=STORE, nonce=NONCE, since=0).doc.gate_keys()["gate-02"] == (
        GATE_02.public_key,
    )
    with pytest.raises(Refused, match=r"store feed refused: .*signature"):
        check_feed(forged, trusted, store=STORE, nonce=NONCE, since=0)
    # The whole list is signed: dropping a gate (to make the phone refuse its receipts) is caught as well.
    with pytest.raises(Refused, match=r"store feed refused: .*signature"):
        check_feed(tampered(genuine, gates=gates[:1]), trusted, store=STORE, nonce=NONCE, since=0)


def test_the_gs1_layouts_are_signed_with_the_page() -> None:
    """A label layout moved on the way (a price label read as a weight) breaks the signature at the phone."""
    genuine = sign(feed(), PS).encode()
    trusted = TrustedKeys([PS.public_key])
    page = check_feed(genuine, trusted, store=STORE, nonce=NONCE, since=0).doc
    assert [(g.prefix, g.kind, g.value_check_digit) for g in page.gs1] == [
        ("21", "weight", 0),
        ("23", "price", 1),
    ]
    layouts = body_map(feed())["gs1"]
    forged = tampered(genuine, gs1=[layouts[0], {**layouts[1], "kind": "weight"}])
    with pytest.raises(Refused, match=r"store feed refused: .*signature"):
        check_feed(forged, trusted, store=STORE, nonce=NONCE, since=0)


def test_a_recorded_feed_cannot_bring_a_revoked_gate_back() -> None:
    """An old page listing gate-02 (revoked since) answers another nonce: the phone refuses it."""
    old = sign(feed(nonce=os.urandom(32)), PS).encode()
    with pytest.raises(Refused, match="nonce is"):
        check_feed(old, TrustedKeys([PS.public_key]), store=STORE, nonce=NONCE, since=0)
