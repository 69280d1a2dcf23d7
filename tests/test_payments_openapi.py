"""docs/payments-openapi.yaml is a valid OpenAPI document, covers what the server serves, and every answer of
one walk through every operation matches its response schema. docs/payments-api.md names every endpoint.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from openapi_spec_validator import validate

from gate.protocol.notice_request import gate_notices_message
from gate.recovery import recovery_message
from payments.app import create_app
from payments.context import PaymentsConfig
from payments.local import LocalStack, SimGate, SimShopper, make_exit
from tests.fixtures.payments import CheckedClient, OpenApiChecker, basket, engine_fixture, load_spec

DOC = Path(__file__).resolve().parents[1] / "docs" / "payments-api.md"

ps_engine = engine_fixture()  # every test here on SQLite and on PostgreSQL


def operations() -> set[tuple[str, str]]:
    spec = load_spec()
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }


def test_the_spec_is_valid_openapi() -> None:
    validate(load_spec())


def test_the_spec_and_the_server_have_the_same_routes() -> None:
    app = create_app(PaymentsConfig(database=":memory:", store_id="s", currency="EUR"))
    try:
        served = {
            (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in rule.methods or ()
            if method not in ("HEAD", "OPTIONS")
        }
    finally:
        app.extensions["payments"].close()
    spec_ops = {(m, re.sub(r"\{\w+\}", "{}", p)) for m, p in operations()}
    served_ops = {(m, re.sub(r"\{\w+\}", "{}", p)) for m, p in served}
    assert spec_ops == served_ops


def test_the_integrator_guide_names_every_endpoint() -> None:
    text = DOC.read_text()
    for method, path in sorted(operations()):
        assert f"{method} {path}" in text, f"docs/payments-api.md does not describe {method} {path}"


def test_a_walk_through_every_operation_matches_the_schemas(payments_stack: LocalStack) -> None:
    checker = OpenApiChecker(load_spec())
    stack = payments_stack
    with CheckedClient(stack.url, checker, stack.admin_token) as api:
        api.get("/v1/health", admin=False)
        api.get("/v1/keys", admin=False)
        shopper = SimShopper("walker")
        body = {"shopper": "walker", "public_key": shopper.key.public_key.hex(), "bank_account": "DE-1"}
        assert api.post("/v1/shoppers", json=body).status_code == 201
        api.post("/v1/shoppers", json=body)
        api.get("/v1/shoppers/walker")
        api.post("/v1/shoppers/walker/top-ups", json={"amount": 200, "reference": "t-1"})
        api.post("/v1/shoppers/walker/top-ups", json={"amount": 200, "reference": "t-1"})
        gate = SimGate("gate-77", stack.store_id)
        api.post("/v1/gates", json={"gate": "gate-77", "public_key": gate.key.public_key.hex()})
        api.get("/v1/gates")
        item = {
            "code": "4006381333931",
            "name": "Pen",
            "category": "stationery",
            "unit": "each",
            "price": 129,
        }
        api.post("/v1/catalog/prices", json={"items": [item]})
        raw = shopper.hold_request(stack.store_id, stack.currency, 1500, stack.now())
        answer = api.post("/v1/holds", json={"request": base64.b64encode(raw).decode()}, admin=False).json()
        api.get(f"/v1/holds/{answer['hold']}", admin=False)
        charge = make_exit(
            shopper, gate, base64.b64decode(answer["voucher"]), basket(pens=2), now=stack.now()
        )
        body64 = base64.b64encode(charge.encode()).decode()
        api.post("/v1/charges", json={"charge": body64}, admin=False)
        api.get(f"/v1/notices/{charge.doc.charge.hex()}", admin=False)  # 401: not signed
        api.get(f"/v1/notices/{charge.doc.charge.hex()}")  # the back office
        api.get(f"/v1/charges/{charge.doc.charge.hex()}")
        api.get("/v1/feed", params={"since": 0, "nonce": os.urandom(32).hex()}, admin=False)
        api.get("/v1/reconciliation")
        api.post("/v1/sweep")
        instance, at = "cd" * 16, stack.now()
        signature = gate.key.sign(recovery_message(stack.store_id, "gate-77", instance, at)).hex()
        recovery = {"instance": instance, "at": at, "signature": signature, "limit": 1}
        page = api.post("/v1/gates/gate-77/recovery", json=recovery, admin=False).json()
        assert page["charges"] == [body64] and page["next"] is None
        ids = [charge.doc.charge.hex()]
        signature = gate.key.sign(gate_notices_message(stack.store_id, "gate-77", ids, at)).hex()
        pulled = {"gate": "gate-77", "at": at, "signature": signature, "charges": ids}
        assert len(api.post("/v1/notices", json=pulled, admin=False).json()["notices"]) == 1
        api.delete("/v1/gates/gate-77")
        api.get(f"/v1/notices/{os.urandom(16).hex()}")
        api.post("/v1/charges", json={"charges": [body64]}, admin=False)
        api.post("/v1/notices", json={"charges": [charge.doc.charge.hex()]}, admin=False)
        api.post("/v1/notices", json={"charges": []}, admin=False)
        api.post("/v1/charges", json={"charge": body64[:-8]}, admin=False)
    assert {(m, p) for m, p, _ in checker.seen} == operations()
