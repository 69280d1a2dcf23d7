"""The payment system over real HTTP: enrolment, holds, charges, notices, debts; every answer is checked
against docs/payments-openapi.yaml by the `api` client, and the ledger is reconciled after each scenario.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import threading

import pytest
import requests

from gate.barcodes import check_digit
from gate.protocol import encoding
from gate.protocol.documents import Charge, DeductionNotice, HoldRequest, HoldVoucher, open_signed, sign
from gate.protocol.feed import MAX_GATES, GateFeed, GateKey
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.protocol.notice_request import authorization
from gate.sync import verify_feed
from payments.app import MAX_BODY_BYTES
from payments.local import LocalStack, SimGate, SimShopper, make_exit
from tests.fixtures.payments import CheckedClient, assert_reconciled, basket, engine_fixture, get, start_stack

ps_engine = engine_fixture()  # every test here on SQLite and on PostgreSQL


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def alice(payments_stack: LocalStack) -> SimShopper:
    shopper = SimShopper("alice")
    payments_stack.enrol_shopper(shopper, bank_account="DE-0001")
    payments_stack.top_up("alice", 500)
    return shopper


@pytest.fixture
def gate(payments_stack: LocalStack) -> SimGate:
    gate = SimGate("gate-01", payments_stack.store_id)
    payments_stack.enrol_gate(gate)
    return gate


def hold(api: CheckedClient, stack: LocalStack, shopper: SimShopper, estimate: int, **kw: object):
    raw = shopper.hold_request(stack.store_id, stack.currency, estimate, int(kw.get("at", stack.now())))
    return api.post("/v1/holds", json={"request": b64(raw)}, admin=False), raw


def charge(api: CheckedClient, body: bytes):
    return api.post("/v1/charges", json={"charge": b64(body)}, admin=False)


def test_health_keys_and_admin_auth(api: CheckedClient, payments_stack: LocalStack) -> None:
    assert api.get("/v1/health", admin=False).json() == {
        "status": "ok",
        "store": "store-0001",
        "currency": "EUR",
        "bank": {"reachable": True},
    }
    keys = api.get("/v1/keys", admin=False).json()
    assert keys["current"] == payments_stack.key.key_id
    assert keys["keys"] == [
        {"key_id": payments_stack.key.key_id, "public_key": payments_stack.key.public_key.hex()}
    ]
    body = {"shopper": "bob", "public_key": SigningKey.generate().public_key.hex()}
    missing = api.post("/v1/shoppers", json=body, admin=False)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = api.post("/v1/shoppers", json=body, admin=False, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_enrolment_is_idempotent_and_refuses_another_key(api: CheckedClient) -> None:
    key = SigningKey.generate().public_key.hex()
    body = {"shopper": "bob", "public_key": key, "bank_account": "DE-9"}
    first = api.post("/v1/shoppers", json=body)
    assert first.status_code == 201 and first.json()["balance"] == 0
    assert api.post("/v1/shoppers", json=body).status_code == 200
    other = api.post("/v1/shoppers", json={**body, "public_key": SigningKey.generate().public_key.hex()})
    assert other.status_code == 409 and other.json()["error"] == "enrolled"
    bad = api.post("/v1/shoppers", json={**body, "shopper": "carol", "public_key": "00" * 32})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_key"


@pytest.mark.parametrize(
    ("public_key", "found"),
    [
        ("zz" * 32, "found 64 characters, not all hex digits"),
        ("ab" * 31, "found 62 hex digits"),
        ("ab" * 33, "found 66 hex digits"),
        (None, "it is missing"),
        (42, "found a number"),
    ],
    ids=["not-hex", "short", "long", "missing", "number"],
)
def test_an_enrolment_key_that_is_not_64_hex_digits_is_bad_key(
    api: CheckedClient, public_key: object, found: str
) -> None:
    for path, body, whose in (
        ("/v1/shoppers", {"shopper": "carol", "bank_account": "DE-9"}, "the phone's"),
        ("/v1/gates", {"gate": "gate-07"}, "the gate's"),
    ):
        if public_key is not None:
            body["public_key"] = public_key
        answer = api.post(path, json=body)
        assert (answer.status_code, answer.json()) == (
            400,
            {
                "error": "bad_key",
                "message": f"public_key must be 64 hex digits ({whose} Ed25519 public key); {found}",
            },
        ), path
    assert api.get("/v1/gates").json()["gates"] == []
    assert api.get("/v1/shoppers/carol").status_code == 404  # nothing was enrolled


def test_top_up_is_idempotent_by_reference(api: CheckedClient, alice: SimShopper) -> None:
    first = api.post("/v1/shoppers/alice/top-ups", json={"amount": 250, "reference": "till-1"})
    assert first.status_code == 201 and first.json()["balance"] == 750
    again = api.post("/v1/shoppers/alice/top-ups", json={"amount": 250, "reference": "till-1"})
    assert again.status_code == 200 and again.json()["balance"] == 750
    clash = api.post("/v1/shoppers/alice/top-ups", json={"amount": 999, "reference": "till-1"})
    assert clash.status_code == 409
    assert api.post("/v1/shoppers/alice/top-ups", json={"amount": 0, "reference": "x"}).status_code == 400
    assert api.post("/v1/shoppers/nobody/top-ups", json={"amount": 5, "reference": "y"}).status_code == 404


def test_hold_reserves_stored_value_then_bank(api: CheckedClient, payments_stack: LocalStack, alice) -> None:
    response, _ = hold(api, payments_stack, alice, 3000)
    assert response.status_code == 201
    answer = response.json()
    assert (answer["amount"], answer["stored_value"], answer["bank"]) == (3000, 500, 2500)
    voucher = open_signed(base64.b64decode(answer["voucher"]), HoldVoucher).verify_with(
        payments_stack.key.public_key
    )
    assert voucher.hold.hex() == answer["hold"] and voucher.shopper_key == alice.key.public_key
    assert (voucher.stored_value, voucher.bank, voucher.expires) == (500, 2500, answer["expires"])
    assert payments_stack.bank.sim.hold(answer["hold"])["amount"] == 2500
    shopper = api.get("/v1/shoppers/alice").json()
    assert (shopper["balance"], shopper["reserved"], shopper["available"]) == (500, 500, 0)
    view = api.get(f"/v1/holds/{answer['hold']}", admin=False).json()
    assert (view["state"], view["reason"]) == ("open", "awaiting_charge")
    report = assert_reconciled(payments_stack)
    assert report["holds"]["open_reasons"] == {"awaiting_charge": 1}


def test_hold_request_is_idempotent_by_request_id(
    api: CheckedClient, payments_stack: LocalStack, alice
) -> None:
    first, raw = hold(api, payments_stack, alice, 1000)
    again = api.post("/v1/holds", json={"request": b64(raw)}, admin=False)
    assert again.status_code == 201 and again.text == first.text
    signed = open_signed(raw, HoldRequest)
    other = sign(dataclasses.replace(signed.doc, estimate=1001), alice.key).encode()
    clash = api.post("/v1/holds", json={"request": b64(other)}, admin=False)
    assert clash.status_code == 409 and clash.json()["error"] == "request_conflict"
    assert payments_stack.bank.summary()["holds"] == 1


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [({"decline": ["hold"]}, 402, "bank_declined"), ({"outage": ["hold"]}, 503, "bank_unavailable")],
)
def test_hold_refused_by_bank_leaves_no_reservation(
    api: CheckedClient, payments_stack: LocalStack, alice, fault, status, code
) -> None:
    payments_stack.bank.faults(**fault)
    response, raw = hold(api, payments_stack, alice, 3000)
    assert (response.status_code, response.json()["error"]) == (status, code)
    shopper = api.get("/v1/shoppers/alice").json()
    assert (shopper["reserved"], shopper["available"]) == (0, 500)
    assert payments_stack.bank.summary()["open"] == 0
    report = assert_reconciled(payments_stack)
    assert report["holds"]["by_state"]["failed"] == 1
    payments_stack.bank.faults(decline="none", outage="none")
    retry = api.post(
        "/v1/holds", json={"request": b64(raw)}, admin=False
    )  # the same request may be sent again
    assert retry.status_code == 201 and retry.json()["stored_value"] == 500
    assert_reconciled(payments_stack)


def test_hold_beyond_stored_value_without_bank_account(
    api: CheckedClient, payments_stack: LocalStack
) -> None:
    carol = SimShopper("carol")
    payments_stack.enrol_shopper(carol, bank_account=None)
    payments_stack.top_up("carol", 400)
    response, _ = hold(api, payments_stack, carol, 500)
    assert (response.status_code, response.json()["error"]) == (402, "insufficient_funds")
    ok, _ = hold(api, payments_stack, carol, 400)
    assert ok.status_code == 201 and ok.json()["bank"] == 0
    assert payments_stack.bank.summary()["holds"] == 0
    assert_reconciled(payments_stack)


def test_hold_requests_that_are_not_the_shoppers(
    api: CheckedClient, payments_stack: LocalStack, alice
) -> None:
    mallory = SimShopper("alice")  # same name, another key
    response, _ = hold(api, payments_stack, mallory, 100)
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    stranger = SimShopper("stranger")
    response, _ = hold(api, payments_stack, stranger, 100)
    assert (response.status_code, response.json()["error"]) == (401, "unknown_shopper")
    response, _ = hold(api, payments_stack, alice, 100, at=payments_stack.now() - 3600)
    assert (response.status_code, response.json()["error"]) == (422, "stale_request")
    raw = alice.hold_request("store-9999", "EUR", 100, payments_stack.now())
    response = api.post("/v1/holds", json={"request": b64(raw)}, admin=False)
    assert (response.status_code, response.json()["error"]) == (403, "wrong_store")
    body = open_signed(alice.hold_request("store-0001", "EUR", 100, payments_stack.now()), HoldRequest)
    unsigned = api.post("/v1/holds", json={"request": b64(body.body)}, admin=False)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "unsigned")
    garbage = api.post("/v1/holds", json={"request": "not base64!"}, admin=False)
    assert (garbage.status_code, garbage.json()["error"]) == (400, "bad_base64")
    assert (
        api.post("/v1/holds", data="{", admin=False, headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert payments_stack.bank.summary()["holds"] == 0
    assert_reconciled(payments_stack)


def ask_notice(
    api: CheckedClient, stack: LocalStack, shopper: SimShopper, charge_hex: str, *, at: int | None = None
) -> requests.Response:
    """GET /v1/notices/{charge} as the shopper's phone asks it: signed with the shopper's key."""
    signed = authorization(stack.store_id, shopper.name, charge_hex, at or stack.now(), shopper.key)
    return api.get(f"/v1/notices/{charge_hex}", admin=False, headers={"Authorization": signed})


def test_charge_takes_stored_value_first_then_the_bank(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    lines = basket(pens=3, milk=2)  # 3 * 129 + 2 * 119 = 625
    signed = make_exit(alice, gate, voucher, lines, now=payments_stack.now())
    response = charge(api, signed.encode())
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "settled"
    assert (answer["total"], answer["stored_value"], answer["bank"], answer["debt"]) == (625, 500, 125, 0)
    assert answer["released"] == 3000 - 625
    notice = open_signed(base64.b64decode(answer["notice"]), DeductionNotice).verify_with(
        payments_stack.key.public_key
    )
    assert (notice.charge, notice.total, notice.stored_value, notice.bank) == (
        signed.doc.charge,
        625,
        500,
        125,
    )
    assert notice.bank_ref == answer["bank_ref"] != ""
    # the phone fetches the same notice with the charge id (= its list id), by a request its key signed
    charge_hex = signed.doc.charge.hex()
    assert ask_notice(api, payments_stack, alice, charge_hex).json() == answer
    assert api.get(f"/v1/notices/{charge_hex}").json() == answer  # the back office, by its token
    unsigned = api.get(f"/v1/notices/{charge_hex}", admin=False)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "unauthorized")
    stranger = SimShopper("bob")
    payments_stack.enrol_shopper(stranger, bank_account="DE-0002")
    other = ask_notice(api, payments_stack, stranger, charge_hex)  # another shopper's signed request
    assert (other.status_code, other.json()["error"]) == (404, "not_found")
    forged = ask_notice(api, payments_stack, SimShopper("alice"), charge_hex)  # alice's name, another key
    assert (forged.status_code, forged.json()["error"]) == (401, "bad_signature")
    stale = ask_notice(api, payments_stack, alice, charge_hex, at=payments_stack.now() - 301)
    assert (stale.status_code, stale.json()["error"]) == (401, "stale_request")
    bank = payments_stack.bank.summary()
    assert (bank["captured"], bank["released"], bank["open"]) == (125, 2375, 0)
    shopper = api.get("/v1/shoppers/alice").json()
    assert (shopper["balance"], shopper["reserved"], shopper["debt"]) == (0, 0, 0)
    view = api.get(f"/v1/holds/{notice.hold.hex()}", admin=False).json()
    assert (view["state"], view["captured"], view["released"]) == ("closed", 625, 2375)
    recorded = api.get(f"/v1/charges/{signed.doc.charge.hex()}").json()
    assert (recorded["state"], recorded["gate"]) == ("settled", "gate-01")
    report = assert_reconciled(payments_stack)
    assert report["money"] == {
        "stored_value": 500,
        "bank": 125,
        "debt": 0,
        "debt_repaid": 0,
        "debt_outstanding": 0,
    }
    assert report["holds"]["open"] == []


def test_same_charge_again_gets_the_same_answer_and_moves_nothing(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    body = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now()).encode()
    first = charge(api, body)
    for _ in range(3):
        again = charge(api, body)
        assert (again.status_code, again.text) == (first.status_code, first.text)
    bank = payments_stack.bank.summary()
    assert bank["capture_count"] == 1 and bank["replays"] == 0
    report = assert_reconciled(payments_stack)
    assert report["charges"]["count"] == 1


def test_concurrent_copies_of_one_charge_capture_once(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    body = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now()).encode()
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        with CheckedClient(api.base_url, api.checker) as client:
            response = charge(client, body)
        with lock:
            answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(answers)) == 1 and answers[0][0] == 200
    assert payments_stack.bank.summary()["capture_count"] == 1
    assert_reconciled(payments_stack)


def test_same_charge_id_with_another_body_is_a_conflict(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    signed = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now())
    assert charge(api, signed.encode()).status_code == 200
    before = (payments_stack.reconcile(), payments_stack.bank.summary())
    other = sign(dataclasses.replace(signed.doc, decided=signed.doc.decided + 1), gate.key).encode()
    response = charge(api, other)
    assert (response.status_code, response.json()["error"]) == (409, "charge_conflict")
    assert (payments_stack.reconcile(), payments_stack.bank.summary()) == before


def test_charges_not_signed_by_an_enrolled_gate_are_refused(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    signed = make_exit(alice, gate, voucher, basket(pens=2), now=payments_stack.now())
    before = (payments_stack.reconcile(), payments_stack.bank.summary())

    unsigned = charge(api, signed.body)  # the Charge body alone, no envelope
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "unsigned")
    stranger = SimGate("gate-01", payments_stack.store_id)  # right name, key never enrolled
    response = charge(api, sign(signed.doc, stranger.key).encode())
    assert (response.status_code, response.json()["error"]) == (401, "unknown_key")
    forged = encoding.encode({**signed.to_map(), "s": bytes(64)})
    response = charge(api, forged)
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    other_gate = SimGate("gate-02", payments_stack.store_id)
    payments_stack.enrol_gate(other_gate)
    response = charge(api, sign(signed.doc, other_gate.key).encode())  # names gate-01, signed by gate-02
    assert (response.status_code, response.json()["error"]) == (403, "gate_mismatch")
    not_cbor = charge(api, b"\xff\x00")
    assert (not_cbor.status_code, not_cbor.json()["error"]) == (400, "malformed_document")
    assert charge(api, signed.encode()[:-1]).status_code == 400

    api.delete("/v1/gates/gate-01")
    response = charge(api, signed.encode())
    assert (response.status_code, response.json()["error"]) == (403, "gate_revoked")
    assert (payments_stack.reconcile(), payments_stack.bank.summary()) == before
    payments_stack.enrol_gate(gate)  # re-activated: the same charge now goes through
    assert charge(api, signed.encode()).status_code == 200
    assert_reconciled(payments_stack)


def test_inner_signatures_and_bindings_are_checked_again(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    now = payments_stack.now()
    good = make_exit(alice, gate, voucher, basket(pens=2), now=now)
    mallory = SimShopper("alice")
    bad_list = make_exit(mallory, gate, voucher, basket(pens=2), now=now)  # list signed by another key
    forged_voucher_key = SigningKey.generate()
    forged = sign(open_signed(voucher, HoldVoucher).doc, forged_voucher_key).encode()
    bad_voucher = make_exit(alice, gate, forged, basket(pens=2), now=now)
    wrong_answer = dataclasses.replace(
        good.doc, answer=make_exit(alice, gate, voucher, basket(), now=now).doc.answer
    )
    for doc in (bad_list.doc, bad_voucher.doc, wrong_answer):
        response = charge(api, sign(doc, gate.key).encode())
        assert (response.status_code, response.json()["error"]) == (422, "invalid_charge"), response.text
    assert payments_stack.bank.summary()["capture_count"] == 0
    report = assert_reconciled(payments_stack)
    assert report["charges"]["count"] == 0


def test_declined_capture_becomes_a_debt_until_paid(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    payments_stack.bank.faults(decline=["capture"])
    signed = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now())  # 1161
    answer = charge(api, signed.encode()).json()
    assert (answer["status"], answer["stored_value"], answer["bank"], answer["debt"]) == ("debt", 500, 0, 661)
    shopper = api.get("/v1/shoppers/alice").json()
    assert (shopper["debt"], shopper["denied"]) == (661, True)
    assert payments_stack.bank.summary()["open"] == 0  # the hold was released all the same
    nonce = os.urandom(32)
    page = verify_feed(  # the gate's own check of the feed
        base64.b64decode(payments_stack.system.feed(0, nonce)["feed"]),
        trusted=TrustedKeys([payments_stack.key.public_key]),
        store_id="store-0001",
        since=0,
        nonce=nonce,
    )
    assert page.deny_shoppers == ("alice",) and page.deny_holds == (signed.doc.voucher.doc.hold,)
    denied, _ = hold(api, payments_stack, alice, 100)
    assert (denied.status_code, denied.json()["error"]) == (403, "shopper_denied")
    report = assert_reconciled(payments_stack)
    assert report["money"]["debt_outstanding"] == 661

    paid = api.post("/v1/shoppers/alice/top-ups", json={"amount": 1000, "reference": "pay-debt"}).json()
    assert (paid["debt_repaid"], paid["debt"], paid["balance"], paid["denied"]) == (661, 0, 339, False)
    page = payments_stack.system.feed(0, os.urandom(32))
    assert open_signed(base64.b64decode(page["feed"]), GateFeed).doc.deny_shoppers == ()
    payments_stack.bank.faults(decline="none")
    assert hold(api, payments_stack, alice, 100)[0].status_code == 201
    report = assert_reconciled(payments_stack)
    assert report["money"]["debt_repaid"] == 661 and report["money"]["debt_outstanding"] == 0


def test_bank_outage_at_capture_answers_503_and_the_retry_settles_once(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    body = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now()).encode()
    payments_stack.bank.faults(outage=["capture"])
    response = charge(api, body)
    assert (response.status_code, response.json()["error"]) == (503, "bank_unavailable")
    assert charge(api, body).status_code == 503
    report = assert_reconciled(payments_stack)
    assert [p["state"] for p in report["charges"]["pending"]] == ["capture_pending"]
    assert report["holds"]["open_reasons"] == {"capture_pending": 1}
    assert (
        ask_notice(api, payments_stack, alice, open_signed(body, Charge).doc.charge.hex()).json()["error"]
        == "pending"
    )
    payments_stack.bank.faults(outage="none")
    settled = charge(api, body)
    assert settled.status_code == 200 and settled.json()["bank"] == 661
    assert payments_stack.bank.summary()["capture_count"] == 1
    report = assert_reconciled(payments_stack)
    assert report["charges"]["pending"] == [] and report["holds"]["open"] == []


def test_sweep_finishes_what_the_bank_outage_left(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    body = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now()).encode()
    payments_stack.bank.faults(outage=["capture", "release"])
    assert charge(api, body).status_code == 503
    payments_stack.bank.faults(outage=["release"], decline=["capture"])
    assert api.post("/v1/sweep").json()["charges"] == 1  # declined: a debt, settled; release still pending
    report = assert_reconciled(payments_stack)
    assert report["holds"]["open_reasons"] == {"bank_release_pending": 1}
    first = charge(api, body)
    assert first.status_code == 200
    payments_stack.bank.faults(outage="none", decline="none")
    assert api.post("/v1/sweep").json()["releases"] == 1
    assert charge(api, body).text == first.text
    report = assert_reconciled(payments_stack)
    assert report["holds"]["open"] == [] and payments_stack.bank.summary()["open"] == 0


def test_charge_above_the_hold_is_a_debt(api: CheckedClient, payments_stack: LocalStack, alice, gate) -> None:
    voucher = payments_stack.place_hold(alice, 600)  # 500 stored value + 100 bank
    signed = make_exit(alice, gate, voucher, basket(pens=6), now=payments_stack.now())  # 774
    answer = charge(api, signed.encode()).json()
    assert (answer["stored_value"], answer["bank"], answer["debt"], answer["status"]) == (
        500,
        100,
        174,
        "debt",
    )
    assert answer["released"] == 0
    report = assert_reconciled(payments_stack)
    assert report["money"]["debt"] == 174


def test_a_second_charge_on_a_consumed_hold_takes_free_stored_value_then_debt(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 400)  # stored value only
    now = payments_stack.now()
    first = make_exit(alice, gate, voucher, basket(pens=1), now=now)  # 129
    second = make_exit(alice, gate, voucher, basket(pens=2), now=now)  # 258: two gates offline, one hold
    assert charge(api, first.encode()).json()["stored_value"] == 129
    answer = charge(api, second.encode()).json()
    assert (answer["stored_value"], answer["bank"], answer["debt"]) == (258, 0, 0)  # 371 was free
    payments_stack.top_up("alice", 1, "tiny")
    third = make_exit(alice, gate, voucher, basket(pens=1), now=now)
    answer = charge(api, third.encode()).json()
    assert (answer["stored_value"], answer["debt"]) == (114, 15)
    assert_reconciled(payments_stack)


def test_notices_are_found_by_charge_id_only(api: CheckedClient) -> None:
    response = api.get(f"/v1/notices/{os.urandom(16).hex()}")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert api.get(f"/v1/holds/{os.urandom(16).hex()}", admin=False).status_code == 404


def test_expired_holds_are_released_by_the_sweep(tmp_path) -> None:
    now = [1_800_000_000.0]
    with start_stack(tmp_path, clock=lambda: now[0], hold_ttl_s=3600, charge_grace_s=600) as stack:
        shopper = SimShopper("dave")
        stack.enrol_shopper(shopper)
        stack.top_up("dave", 300)
        stack.place_hold(shopper, 1000)
        assert stack.system.sweep()["expired"] == 0
        now[0] += 3600 + 601
        assert stack.system.sweep()["expired"] == 1
        assert stack.system.shopper("dave")["reserved"] == 0
        assert stack.bank.summary()["released"] == 700
        report = assert_reconciled(stack)
        assert report["holds"]["by_state"]["closed"] == 1


def test_feed_pages_prices_and_consumed_holds(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    codes = [f"{400000000000 + i}" for i in range(1500)]
    items = [
        {
            "code": c + check_digit(c),
            "name": f"Item {i}",
            "category": "grocery",
            "unit": "each",
            "price": 100 + i,
        }
        for i, c in enumerate(codes)
    ]
    for start in range(0, len(items), 500):
        assert api.post("/v1/catalog/prices", json={"items": items[start : start + 500]}).status_code == 201
    voucher = payments_stack.place_hold(alice, 3000)
    charge(api, make_exit(alice, gate, voucher, basket(), now=payments_stack.now()).encode())
    since, prices, consumed, pages = 0, [], [], 0
    while True:
        nonce = os.urandom(32)
        answer = api.get("/v1/feed", params={"since": since, "nonce": nonce.hex()}, admin=False).json()
        raw = base64.b64decode(answer["feed"])
        assert len(raw) < 64 * 1024
        page = verify_feed(
            raw,
            trusted=TrustedKeys([payments_stack.key.public_key]),
            store_id="store-0001",
            since=since,
            nonce=nonce,
        )
        pages += 1
        assert page.gates == (GateKey("gate-01", gate.key.public_key),)  # the whole list on every page
        prices += page.prices
        consumed += page.consumed
        since = page.version
        if page.version == page.latest:
            break
    assert pages > 1
    assert len(prices) == 1500 + 3  # the fixture's catalog and these
    assert consumed == [open_signed(voucher, HoldVoucher).doc.hold]
    ahead = api.get("/v1/feed", params={"since": since + 1, "nonce": "00" * 32}, admin=False)
    assert (ahead.status_code, ahead.json()["error"]) == (400, "feed_ahead")
    assert api.get("/v1/feed", params={"since": 0, "nonce": "00"}, admin=False).status_code == 400
    bad = api.post("/v1/catalog/prices", json={"items": [{**items[0], "code": "4000000000001"}]})
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_price")


def feed_gates(stack: LocalStack) -> dict[str, tuple[bytes, ...]]:
    nonce = os.urandom(32)
    raw = base64.b64decode(stack.system.feed(0, nonce)["feed"])
    trusted = TrustedKeys([stack.key.public_key])
    return verify_feed(raw, trusted=trusted, store_id=stack.store_id, since=0, nonce=nonce).gate_keys()


def test_the_feed_lists_the_active_gates_and_their_keys(
    api: CheckedClient, payments_stack: LocalStack, gate
) -> None:
    """Phones pin gate keys from the signed feed: enrolled, re-keyed and revoked gates show at once."""
    second, third = SimGate("gate-02", payments_stack.store_id), SimGate("gate-03", payments_stack.store_id)
    payments_stack.enrol_gate(second)
    payments_stack.enrol_gate(third)
    version = payments_stack.system.feed(0, os.urandom(32))["latest"]
    assert feed_gates(payments_stack) == {
        "gate-01": (gate.key.public_key,),
        "gate-02": (second.key.public_key,),
        "gate-03": (third.key.public_key,),
    }
    api.delete("/v1/gates/gate-02")
    new_key = SigningKey.generate()
    api.post("/v1/gates", json={"gate": "gate-03", "public_key": new_key.public_key.hex()})
    assert feed_gates(payments_stack) == {"gate-01": (gate.key.public_key,), "gate-03": (new_key.public_key,)}
    # Gate changes are not versioned changes: the list is whole on every page, even an empty one.
    assert payments_stack.system.feed(version, os.urandom(32))["latest"] == version
    payments_stack.enrol_gate(second)  # re-activated
    assert set(feed_gates(payments_stack)) == {"gate-01", "gate-02", "gate-03"}


def test_the_store_has_at_most_max_gates_active_and_their_feed_fits(
    api: CheckedClient, payments_stack: LocalStack
) -> None:
    names = [f"gate-{i:02d}-" + "x" * 56 for i in range(MAX_GATES)]  # the longest names there are
    keys = [SigningKey.generate().public_key for _ in names]
    for name, key in zip(names, keys, strict=True):
        assert api.post("/v1/gates", json={"gate": name, "public_key": key.hex()}).status_code == 201
    one_more = api.post(
        "/v1/gates", json={"gate": "gate-99", "public_key": SigningKey.generate().public_key.hex()}
    )
    assert (one_more.status_code, one_more.json()["error"]) == (409, "too_many_gates")
    # Enrolling one of them again, or re-keying it, is not one more.
    assert api.post("/v1/gates", json={"gate": names[0], "public_key": keys[0].hex()}).status_code == 200
    rekeyed = SigningKey.generate().public_key
    assert api.post("/v1/gates", json={"gate": names[0], "public_key": rekeyed.hex()}).status_code == 201
    api.delete(f"/v1/gates/{names[1]}")
    back = api.post(
        "/v1/gates", json={"gate": "gate-99", "public_key": SigningKey.generate().public_key.hex()}
    )
    assert back.status_code == 201
    again = api.post("/v1/gates", json={"gate": names[1], "public_key": keys[1].hex()})  # re-activation
    assert (again.status_code, again.json()["error"]) == (409, "too_many_gates")
    nonce = os.urandom(32)
    raw = base64.b64decode(payments_stack.system.feed(0, nonce)["feed"])
    assert len(raw) < 64 * 1024
    page = verify_feed(
        raw, trusted=TrustedKeys([payments_stack.key.public_key]), store_id="store-0001", since=0, nonce=nonce
    )
    assert len(page.gates) == MAX_GATES and page.gate_keys()[names[0]] == (rekeyed,)


def test_unknown_routes_answer_json(payments_stack: LocalStack) -> None:
    response = get(payments_stack.url + "/v1/nothing")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_the_bank_captures_and_its_answer_is_lost_the_retry_captures_nothing_more(
    api: CheckedClient, payments_stack: LocalStack, alice, gate
) -> None:
    voucher = payments_stack.place_hold(alice, 3000)
    body = make_exit(alice, gate, voucher, basket(pens=9), now=payments_stack.now()).encode()
    payments_stack.bank.faults(lost=["capture", "release"])
    assert charge(api, body).status_code == 503  # captured (and the rest released) at the bank, unheard
    assert payments_stack.bank.summary()["capture_count"] == 1
    payments_stack.bank.faults(lost="none")
    answer = charge(api, body)
    assert answer.status_code == 200 and answer.json()["bank"] == 661  # the bank answered its first capture
    bank = payments_stack.bank.summary()
    assert (bank["capture_count"], bank["replays"], bank["open"]) == (1, 1, 0)  # one final capture
    assert assert_reconciled(payments_stack)["holds"]["open"] == []


def test_the_bank_places_a_hold_and_its_answer_is_lost(
    api: CheckedClient, payments_stack: LocalStack, alice
) -> None:
    payments_stack.bank.faults(lost=["hold"])
    response, _ = hold(api, payments_stack, alice, 3000)
    assert (response.status_code, response.json()["error"]) == (503, "bank_unavailable")
    bank = payments_stack.bank.summary()
    assert (bank["holds"], bank["open"]) == (1, 0)  # placed, then released by the PS just in case
    shopper = api.get("/v1/shoppers/alice").json()
    assert (shopper["reserved"], shopper["available"]) == (0, 500)
    assert_reconciled(payments_stack)


def test_a_charge_decided_after_its_voucher_expired_is_refused_with_a_signed_reason(
    tmp_path, ps_database: str
) -> None:
    import hashlib
    import time

    from gate.protocol.documents import ChargeRefusal

    now = [float(int(time.time()))]
    with start_stack(tmp_path / "ps", database=ps_database, clock=lambda: now[0], hold_ttl_s=600) as stack:
        shopper = SimShopper("olga")
        stack.enrol_shopper(shopper)
        gate = SimGate("gate-01", stack.store_id)
        stack.enrol_gate(gate)
        voucher = stack.place_hold(shopper, 3000)
        now[0] += 600 + 400  # within the grace time for late charges, but decided after the expiry
        late = make_exit(shopper, gate, voucher, basket(), now=int(now[0]) - 50).encode()
        answer = stack.post_charge(late)
        assert (answer.status_code, answer.json()["error"]) == (422, "voucher_expired")
        refusal = open_signed(base64.b64decode(answer.json()["refusal"]), ChargeRefusal)
        assert refusal.verify_with(stack.key.public_key).body_hash == hashlib.sha256(late).digest()
        future = make_exit(shopper, gate, voucher, basket(), now=2**40 - 1).encode()
        answer = stack.post_charge(future)
        assert (answer.status_code, answer.json()["error"]) == (422, "decided_in_future")
        assert stack.reconcile()["charges"]["count"] == 0


def test_what_a_fuzzer_found_is_answered_in_one_clear_line(payments_stack: LocalStack) -> None:
    url = payments_stack.url
    with requests.Session() as http:
        wrong_method = http.put(url + "/v1/charges", timeout=5)
        assert wrong_method.status_code == 405
        assert sorted(wrong_method.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
        no_since = http.get(url + "/v1/feed", params={"nonce": os.urandom(32).hex()}, timeout=5)
        assert no_since.status_code == 400 and "since" in no_since.json()["message"]
        deep = "[" * 50_000 + "]" * 50_000
        nested = http.post(
            url + "/v1/holds", data=deep, headers={"Content-Type": "application/json"}, timeout=5
        )
        assert (nested.status_code, nested.json()["error"]) == (400, "bad_request")
        # Only the headers of a body over the limit: the answer comes before any of it is read.
        with socket.create_connection(("127.0.0.1", payments_stack.server.port), timeout=5) as raw:
            head = f"POST /v1/charges HTTP/1.1\r\nHost: ps\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
            raw.sendall(head.encode())
            assert raw.recv(100).startswith(b"HTTP/1.1 413")
        assert http.get(url + "/v1/health", timeout=5).json()["status"] in ("ok", "degraded")
