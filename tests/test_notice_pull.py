"""A gate's batch pull of notices (`POST /v1/notices`) over real HTTP: only a pull signed by an enrolled,
active gate is answered, and only with the notices of charges that gate sent. Answers are checked against
docs/payments-openapi.yaml by the `api` client."""

from __future__ import annotations

import base64

import pytest
import requests

from gate.protocol.documents import DeductionNotice, open_signed
from gate.protocol.keys import SigningKey
from gate.protocol.notice_request import gate_notices_message
from payments.local import LocalStack, SimGate, SimShopper, make_exit
from tests.fixtures.payments import CheckedClient, basket, engine_fixture

ps_engine = engine_fixture()  # on SQLite and on PostgreSQL


def pull(
    api: CheckedClient,
    stack: LocalStack,
    gate: str,
    key: SigningKey,
    charges: list[str],
    *,
    at: int | None = None,
) -> requests.Response:
    """POST /v1/notices as gate `gate` asks it, signed with `key`."""
    at = stack.now() if at is None else at
    signature = key.sign(gate_notices_message(stack.store_id, gate, charges, at)).hex()
    body = {"gate": gate, "at": at, "signature": signature, "charges": charges}
    return api.post("/v1/notices", json=body, admin=False)


def error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


@pytest.fixture
def two_charges(payments_stack: LocalStack) -> tuple[SimGate, SimGate, str, str]:
    """gate-01 and gate-02 each sent one settled charge of alice's."""
    alice = SimShopper("alice")
    payments_stack.enrol_shopper(alice, bank_account="DE-0001")
    gates = SimGate("gate-01", payments_stack.store_id), SimGate("gate-02", payments_stack.store_id)
    ids = []
    for gate in gates:
        payments_stack.enrol_gate(gate)
        voucher = payments_stack.place_hold(alice, 1000)
        signed = make_exit(alice, gate, voucher, basket(pens=1), now=payments_stack.now())
        assert payments_stack.post_charge(signed.encode()).json()["status"] == "settled"
        ids.append(signed.doc.charge.hex())
    return gates[0], gates[1], ids[0], ids[1]


def test_a_gate_pulls_its_own_charges_notices_and_not_another_gates(
    api: CheckedClient, payments_stack: LocalStack, two_charges
) -> None:
    first, second, mine, theirs = two_charges
    both = [mine, theirs]
    answer = pull(api, payments_stack, "gate-01", first.key, both)
    assert answer.status_code == 200
    [notice] = answer.json()["notices"]
    assert notice["charge"] == mine
    signed = open_signed(base64.b64decode(notice["notice"]), DeductionNotice)
    assert signed.verify_with(payments_stack.key.public_key).charge.hex() == mine
    other = pull(api, payments_stack, "gate-02", second.key, both).json()["notices"]
    assert [n["charge"] for n in other] == [theirs]
    # another gate's charge is left out exactly as an unknown one is
    assert pull(api, payments_stack, "gate-01", first.key, [theirs]).json() == {"notices": []}
    assert pull(api, payments_stack, "gate-01", first.key, ["ab" * 16]).json() == {"notices": []}


def test_an_unsigned_or_wrongly_signed_pull_is_refused_with_its_reason(
    api: CheckedClient, payments_stack: LocalStack, two_charges
) -> None:
    first, second, mine, _ = two_charges
    unsigned = api.post("/v1/notices", json={"charges": [mine]}, admin=False)
    assert error(unsigned) == (401, "unauthorized")
    assert "sign the pull with the gate's enrolled key" in unsigned.json()["message"]
    forged = pull(api, payments_stack, "gate-01", second.key, [mine])  # gate-01's name, gate-02's key
    assert error(forged) == (401, "bad_signature")
    assert forged.json()["message"] == "the request is not signed by gate gate-01's key"
    # a signature over other charge ids does not answer for these
    at = payments_stack.now()
    signature = first.key.sign(gate_notices_message(payments_stack.store_id, "gate-01", ["ab" * 16], at))
    body = {"gate": "gate-01", "at": at, "signature": signature.hex(), "charges": [mine]}
    assert error(api.post("/v1/notices", json=body, admin=False)) == (401, "bad_signature")
    stale = pull(api, payments_stack, "gate-01", first.key, [mine], at=payments_stack.now() - 301)
    assert error(stale) == (401, "stale_request")
    assert error(pull(api, payments_stack, "gate-99", first.key, [mine])) == (404, "not_found")


def test_a_revoked_gate_pulls_no_notices(api: CheckedClient, payments_stack: LocalStack, two_charges) -> None:
    first, _, mine, _ = two_charges
    assert api.delete("/v1/gates/gate-01").status_code == 200
    refused = pull(api, payments_stack, "gate-01", first.key, [mine])
    assert error(refused) == (403, "gate_revoked")
    assert refused.json()["message"] == "gate gate-01 is revoked"
