"""One signed list tapped at two lanes of a store at the same moment (a cloned phone, before the lanes could
tell each other) passes at both. The payment system takes one charge; its signed refusal of the other names
the charge that won. The losing lane records that as a settled replay incident, out of its offline budget,
shown to the technician, and goes on letting honest shoppers out."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from gate.forwarder import Forwarder
from gate.lane import LaneState
from gate.panel import Accounts, create_app
from gate.protocol.documents import HoldVoucher, Signed, open_signed
from gate.protocol.keys import SigningKey, TrustedKeys, write_secret_key
from payments.local import LocalStack, SimShopper
from phone.card import ExitCard
from tests.fixtures.lane import LaneRig, running_lane
from tests.fixtures.panel import QUICK_HASH, TECH, login
from tests.fixtures.payments import start_stack
from tests.fixtures.store import PEN, keys

GATES = ("gate-01", "gate-02")
PENS = 10
TOTAL = PENS * 129  # the list's total is the lanes' whole offline budget, as 500.00 is the example's


def phones(
    stack: LocalStack, name: str, gate_keys: dict[str, TrustedKeys], copies: int = 1
) -> list[ExitCard]:
    """An enrolled shopper with a hold from the payment system and a signed list of pens, on `copies`
    phones (more than one: a cloned phone)."""
    shopper = SimShopper(name)
    stack.enrol_shopper(shopper, bank_account=f"DE-{name}")
    voucher: Signed[HoldVoucher] = open_signed(stack.place_hold(shopper, 2000), HoldVoucher)
    signed_list = shopper.sign_list(voucher.doc, [(PEN, PENS, 129)], int(time.time()) - 60)
    return [ExitCard(shopper.key, voucher, signed_list, gate_keys) for _ in range(copies)]


@contextlib.contextmanager
def two_lanes(
    tmp_path: Path, stack: LocalStack
) -> Iterator[tuple[dict[str, LaneRig], dict[str, TrustedKeys]]]:
    """Two lanes of the store, each with its own key and database, enrolled at the payment system; and the
    gate keys a phone pins from the feed."""
    with contextlib.ExitStack() as lanes:
        rigs, gate_keys = {}, {}
        for gate in GATES:
            folder = tmp_path / gate
            key = SigningKey.generate()
            write_secret_key(folder / "own" / "gate.key", key)
            stack.admin("POST", "/v1/gates", json={"gate": gate, "public_key": key.public_key.hex()})
            gate_keys[gate] = TrustedKeys([key.public_key])
            rigs[gate] = lanes.enter_context(
                running_lane(
                    folder,
                    MockFactory(),
                    lane={"gate_id": gate, "gate_key_file": str(folder / "own" / "gate.key")},
                    payments={"url": stack.url},
                    offline={"max_amount": TOTAL},
                )
            )
        yield rigs, gate_keys


def test_a_list_passed_at_two_lanes_is_charged_once_and_the_losing_lane_keeps_passing_shoppers(
    tmp_path: Path,
) -> None:
    with start_stack(tmp_path / "ps", key=keys()["ps"]) as stack, two_lanes(tmp_path, stack) as (lanes, pins):
        # The same signed list on two phones (a clone), tapped at both lanes before either could sync.
        cloned, copy = phones(stack, "mallory", pins, copies=2)
        first, second = lanes["gate-01"].tap(cloned), lanes["gate-02"].tap(copy)
        assert (first.doc.verdict, second.doc.verdict) == ("pass", "pass")
        list_id = first.doc.list

        forwarders = {
            gate: Forwarder.from_config(rig.config, rig.store, sync_interval_s=None)
            for gate, rig in lanes.items()
        }
        with forwarders["gate-01"] as winner, forwarders["gate-02"] as loser:
            assert [o.result for o in winner.drain_once()] == ["accepted"]
            (lost,) = loser.drain_once()
        assert lost.result == "conflict"
        # The payment system took one charge for the list: gate-01's.
        taken = stack.system.db.all("SELECT gate, amount FROM charges WHERE charge = ?", [list_id.hex()])
        assert [(r["gate"], r["amount"]) for r in taken] == [("gate-01", TOTAL)]

        losing = lanes["gate-02"]
        (entry,) = losing.store.outbox_entries()
        assert (entry.charge_id, entry.state) == (list_id, "conflict")
        assert losing.store.outbox_backlog().count == 0  # a settled fact, not a debt to the budget
        incident = losing.wait_event("replay_incident")
        assert incident.data["won_gate"] == "gate-01" and incident.data["amount"] == TOTAL
        # The technician sees it as a replay incident on the panel's outbox page, nothing to requeue.
        with Accounts(tmp_path / "panel.db", hasher=QUICK_HASH) as accounts:
            accounts.add(*TECH)
            app = create_app(losing.service, secret_key=os.urandom(32), accounts=accounts)
            panel = app.test_client()
            assert login(panel, TECH[0], TECH[2]).status_code == 303
            page = panel.get("/outbox").text
            app.extensions["selfcheckout.watch"].close()
        assert "Replay incidents" in page and list_id.hex() in page and "gate gate-01" in page
        assert "0 charges not yet settled" in page

        # Honest shoppers at the losing lane are let out, one after another, their lists as large as
        # the whole budget: each is charged in turn, none is denied offline_limit.
        losing.pulse("beam")  # mallory's copy walked out here
        losing.wait_state(LaneState.IDLE)
        for name in ("alice", "bob"):
            (honest,) = phones(stack, name, pins)
            receipt = losing.tap(honest)
            assert (receipt.doc.verdict, receipt.doc.reasons) == ("pass", ())
            losing.pulse("beam")
            losing.wait_state(LaneState.IDLE)
            with Forwarder.from_config(losing.config, losing.store, sync_interval_s=None) as forwarder:
                assert [o.result for o in forwarder.drain_once()] == ["accepted"]
