"""The settlement queue as the store's back office sees it: charges the gates delivered, recorded at intake
and not yet settled, are a stated part of a balanced ledger, not a problem (and `payments reconcile` does
not fail while they wait). The real payment system and bank on both databases; the real forwarder."""

from __future__ import annotations

from payments.local import LocalStack
from tests.fixtures.payments import (
    CheckedClient,
    GateSide,
    OpenApiChecker,
    assert_reconciled,
    engine_fixture,
    load_spec,
    settle_all,
    shoppers_out,
    start_stack,
)

ps_engine = engine_fixture()


def test_charges_waiting_for_a_worker_keep_the_ledger_balanced(tmp_path, ps_database: str) -> None:
    with start_stack(tmp_path / "ps", database=ps_database, settle_workers=0) as stack:
        gate = GateSide(stack, tmp_path / "gate")
        try:
            shoppers_out(stack, gate, 3)
            with gate.forwarder() as forwarder:
                assert [o.result for o in forwarder.drain_once()] == ["accepted"] * 3
            report = stack.reconcile()
            assert report["balanced"], report["problems"]
            waiting = [h for h in report["holds"]["open"] if h["reason"] == "charge_received"]
            assert len(waiting) == 3
            assert all("settlement queue" in h["explanation"] for h in waiting)
            assert stack.system.sweep()["charges"] == 3  # the back office settles them now
            with gate.forwarder() as forwarder:
                settle_all(forwarder, gate, 3)
            assert_reconciled(stack, gate, settled=3)
        finally:
            gate.close()


def test_a_waiting_charge_is_received_in_the_admin_views_as_the_openapi_file_says(
    payments_stack: LocalStack, tmp_path
) -> None:
    payments_stack.system.settlement.close()  # no worker: the charge stays queued
    gate = GateSide(payments_stack, tmp_path / "gate")
    checker = OpenApiChecker(load_spec())
    try:
        shoppers_out(payments_stack, gate, 1)
        with gate.forwarder() as forwarder:
            [outcome] = forwarder.drain_once()
        with CheckedClient(payments_stack.url, checker, payments_stack.admin_token) as client:
            view = client.get(f"/v1/charges/{outcome.charge_id.hex()}").json()
            assert view["state"] == "received" and view["settled"] is None
            report = client.get("/v1/reconciliation").json()
        assert report["balanced"] and [c["state"] for c in report["charges"]["pending"]] == ["received"]
        assert [h["reason"] for h in report["holds"]["open"]] == ["charge_received"]
    finally:
        gate.close()
