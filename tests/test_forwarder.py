"""The forwarder against the real payment system and bank: backoff, answer classes, outages, lost answers,
restarts, and the feed it pulls. Passes are made through the real legality check and recorded with
record_pass; after every scenario the PS's ledger is reconciled against the gate's passes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import time

import pytest

from gate.errors import ProtocolError, SignatureError
from gate.forwarder import Forwarder, full_jitter
from gate.payment_answers import classify
from gate.protocol import encoding
from gate.protocol.documents import Charge, ChargeRefusal, DeductionNotice, open_signed, sign
from gate.protocol.feed import Gs1Entry
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.sync import SyncError, verify_feed
from payments.errors import Conflict
from payments.local import LocalStack, SimShopper
from payments.serving import ServerThread
from tests.fixtures.payments import (
    FaultProxy,
    GateSide,
    assert_reconciled,
    basket,
    engine_fixture,
    settle_all,
    shoppers_out,
    wait_until,
)
from tests.fixtures.store import LAYOUTS

ps_engine = engine_fixture()  # every test here on SQLite and on PostgreSQL


class ExtremeRandom(random.Random):
    """Randomness pinned to one end of the interval (injected into the forwarder)."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return b if self.end == "high" else a


def test_full_jitter_stays_within_its_bounds() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        ceiling = min(60.0, 0.5 * 2**attempt)
        samples = [full_jitter(attempt, 0.5, 60.0, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8 and min(samples) < ceiling * 0.2  # spread over the whole range
    assert full_jitter(10_000, 0.5, 60.0, ExtremeRandom("high")) == 60.0
    assert full_jitter(3, 0.5, 60.0, ExtremeRandom("high")) == 4.0
    assert full_jitter(3, 0.5, 60.0, ExtremeRandom("low")) == 0.0


def test_only_a_refusal_the_payment_system_signed_for_this_body_flags_a_charge(
    payments_stack: LocalStack,
) -> None:
    system = payments_stack.system
    trusted = TrustedKeys([payments_stack.key.public_key])
    body, other = b"the charge as the gate stored it", b"another charge"
    refusal = system.intake.refusal(
        body, Conflict("already received with another body", code="charge_conflict")
    )
    refused = {"status": "refused", "refusal": base64.b64encode(refusal).decode()}

    def verdict(raw: bytes, answer: object, status: int | None = 200) -> str:
        return classify(
            raw, b"\x00" * 16, answer, trusted=trusted, store_id="store-0001", status=status
        ).result

    assert verdict(body, refused) == "flagged"
    assert verdict(other, refused) == "retry"  # a real refusal, but of other bytes
    forged = sign(
        ChargeRefusal.decode(open_signed(refusal, ChargeRefusal).body), SigningKey.generate()
    ).encode()
    assert verdict(body, {"status": "refused", "refusal": base64.b64encode(forged).decode()}) == "retry"
    assert verdict(body, {"status": "accepted"}) == "accepted"
    assert verdict(body, None, 404) == "retry"  # a proxy's 404, a captive portal's page
    assert verdict(body, None, None) == "retry"  # no answer at all
    assert verdict(body, {"status": "settled", "notice": "bm90IGEgbm90aWNl"}) == "retry"


def test_a_proxy_answering_404_for_the_payment_system_flags_nothing(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    shoppers_out(payments_stack, gate_side, 2)
    with gate_side.forwarder(url=payments_stack.bank.url) as forwarder:  # answers 404 to /v1/charges
        outcomes = forwarder.drain_once()
        assert [(o.result, o.status) for o in outcomes] == [("retry", 404)] * 2
    assert gate_side.outbox_states() == {"pending": 2}
    with gate_side.forwarder() as forwarder:
        settle_all(forwarder, gate_side, 2)
    assert_reconciled(payments_stack, gate_side, settled=2)


def test_a_smaller_body_limit_on_the_way_halves_the_requests_and_loses_nothing(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    # A second door to the same payment system that refuses a body over 10 kB while reading it (413), as
    # a proxy in front of the payment system, or an older one, does: 12 charges need about 17 kB.
    shoppers_out(payments_stack, gate_side, 12)
    with (
        ServerThread(payments_stack.app, max_body=10_000) as narrow,
        gate_side.forwarder(url=narrow.url) as forwarder,
    ):
        outcomes = forwarder.drain_once()
        assert forwarder.request_bytes < 10_000
        while batch := forwarder.drain_once():
            outcomes += batch
    assert [o.result for o in outcomes] == ["accepted"] * 12
    assert gate_side.outbox_states() == {"accepted": 12}
    with gate_side.forwarder() as forwarder:
        settle_all(forwarder, gate_side, 12)
    assert_reconciled(payments_stack, gate_side, settled=12)


def test_an_unreachable_payment_system_is_retried_at_the_feed_interval(gate_side: GateSide) -> None:
    now = [1000.0]
    rng = ExtremeRandom("low")
    with gate_side.forwarder(
        url="http://127.0.0.1:9",
        clock=lambda: now[0],
        rng=rng,
        sync_interval_s=60.0,
        backoff_base_s=0.5,
        backoff_cap_s=60.0,
    ) as forwarder:
        for _ in range(3):  # no charge waits; every failed pull is followed by one feed interval
            forwarder._round()
            assert forwarder.last_sync_error
            assert forwarder._next_sync == now[0] + 60.0 * 0.8
            now[0] = forwarder._next_sync


def test_retry_times_follow_the_injected_randomness_and_clock(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    shoppers_out(payments_stack, gate_side, 1)
    now = [time.time() + 1]
    rng = ExtremeRandom("high")
    payments_stack.down()
    try:
        with gate_side.forwarder(
            clock=lambda: now[0], rng=rng, backoff_base_s=0.5, backoff_cap_s=3.0
        ) as forwarder:
            for attempt in range(5):
                (outcome,) = forwarder.drain_once()
                assert outcome.result == "retry" and outcome.status is None
                assert outcome.next_attempt_at == now[0] + min(3.0, 0.5 * 2**attempt)
                assert forwarder.drain_once() == []  # not due yet
                now[0] = outcome.next_attempt_at
            (entry,) = gate_side.store.outbox_entries()
            assert (entry.attempts, entry.state) == (5, "pending") and "no answer" in entry.last_error
            assert rng.calls == [(0.0, min(3.0, 0.5 * 2**a)) for a in range(5)]
    finally:
        payments_stack.up()


def test_a_pass_is_accepted_then_settled_with_the_signed_notice(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    (_, charge_id), *_ = shoppers_out(payments_stack, gate_side, 3)
    with gate_side.forwarder() as forwarder:
        outcomes = forwarder.drain_once()
        assert [o.result for o in outcomes] == ["accepted"] * 3
        assert gate_side.store.outbox_backlog().count == 0  # out of the offline budget once accepted
        settle_all(forwarder, gate_side, 3)
    notice = open_signed(gate_side.store.outbox_notice(charge_id), DeductionNotice)
    assert notice.verify_with(payments_stack.key.public_key).charge == charge_id
    assert gate_side.store.outbox_backlog().count == 0
    assert_reconciled(payments_stack, gate_side, settled=3)


def test_notices_come_only_to_the_gate_that_signs_the_pull_with_its_enrolled_key(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    shoppers_out(payments_stack, gate_side, 2)
    with gate_side.forwarder(gate_key=SigningKey.generate()) as impostor:  # gate-01's id, not its key
        assert [o.result for o in impostor.drain_once()] == ["accepted"] * 2
        wait_until(lambda: payments_stack.system.db.one(
            "select count(*) n from charges where state = 'settled'"
        )["n"] == 2)  # fmt: skip
        with pytest.raises(SyncError, match="401 bad_signature: the request is not signed by gate"):
            impostor.collect_notices()
    assert gate_side.outbox_states()["accepted"] == 2  # still waiting for their notices
    payments_stack.system.revoke_gate(gate_side.gate_id)
    refused = r"403 gate_revoked: gate \S+ is revoked"
    with gate_side.forwarder() as revoked, pytest.raises(SyncError, match=refused):
        revoked.collect_notices()
    assert gate_side.outbox_states()["accepted"] == 2


def test_ps_down_for_the_whole_run_then_up_every_charge_settles_once(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    shoppers_out(payments_stack, gate_side, 6)
    payments_stack.down()
    try:
        with gate_side.forwarder(backoff_base_s=0.01, backoff_cap_s=0.05) as forwarder:
            forwarder.start()
            wait_until(lambda: forwarder.unreachable_streak >= 5, what="failed rounds against a dead PS")
            assert all(e.state == "pending" for e in gate_side.store.outbox_entries())
            assert gate_side.store.outbox_backlog().count == 6
            assert payments_stack.reconcile()["charges"]["count"] == 0
            payments_stack.up()
            wait_until(lambda: gate_side.outbox_states()["settled"] == 6, what="all six settled")
            assert forwarder.status()["backlog_count"] == 0
    finally:
        payments_stack.up()
    assert payments_stack.bank.summary()["replays"] == 0
    assert_reconciled(payments_stack, gate_side, settled=6)


def test_the_server_commits_and_the_answer_is_lost_the_retry_captures_nothing_more(
    payments_stack: LocalStack, gate_side: GateSide, fault_proxy: FaultProxy
) -> None:
    shoppers_out(payments_stack, gate_side, 3, top_up=0)  # every charge has a bank part
    fault_proxy.plan("drop_answer")
    with gate_side.forwarder(url=fault_proxy.url, batch=2) as forwarder:
        assert [o.result for o in forwarder.drain_once()] == ["retry", "retry"]  # recorded, answer lost
        settle_all(forwarder, gate_side, 3)
    assert fault_proxy.dropped_answers == 1
    entries = {e.charge_id: e for e in gate_side.store.outbox_entries()}
    assert sorted(e.attempts for e in entries.values()) == [0, 1, 1]
    bank = payments_stack.bank.summary()
    assert bank["capture_count"] == 3 and bank["replays"] == 0  # the PS replayed its answer, not the bank
    assert_reconciled(payments_stack, gate_side, settled=3)


def test_a_timeout_is_retried_and_settles_once(
    payments_stack: LocalStack, gate_side: GateSide, fault_proxy: FaultProxy
) -> None:
    shoppers_out(payments_stack, gate_side, 1, top_up=0)
    fault_proxy.plan("hold_answer")
    with gate_side.forwarder(url=fault_proxy.url, timeout_s=0.3) as forwarder:
        (outcome,) = forwarder.drain_once()
        assert outcome.result == "retry" and "Timeout" in outcome.detail
        fault_proxy.release.set()
        settle_all(forwarder, gate_side, 1)
    assert payments_stack.bank.summary()["capture_count"] == 1
    assert_reconciled(payments_stack, gate_side, settled=1)


def test_the_request_never_arrives_and_is_sent_again(
    payments_stack: LocalStack, gate_side: GateSide, fault_proxy: FaultProxy
) -> None:
    shoppers_out(payments_stack, gate_side, 2)
    fault_proxy.plan("drop_request")
    with gate_side.forwarder(url=fault_proxy.url) as forwarder:
        assert [o.result for o in forwarder.drain_once()] == ["retry", "retry"]
        assert payments_stack.reconcile()["charges"]["count"] == 0
        settle_all(forwarder, gate_side, 2)
    assert_reconciled(payments_stack, gate_side, settled=2)


def test_a_conflicting_charge_is_a_settled_replay_incident_outside_the_offline_budget(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    (_, charge_id), *_ = shoppers_out(payments_stack, gate_side, 2, top_up=0)
    (entry,) = [e for e in gate_side.store.outbox_entries() if e.charge_id == charge_id]
    signed = open_signed(entry.body, Charge)
    other = sign(dataclasses.replace(signed.doc, decided=signed.doc.decided - 5), gate_side.key).encode()
    assert payments_stack.post_charge(other).status_code == 200  # e.g. a restored backup sent it first
    with gate_side.forwarder() as forwarder:
        results = {o.charge_id: o for o in forwarder.drain_once()}
    assert results[charge_id].result == "conflict"
    (conflict,) = gate_side.store.outbox_entries(state="conflict")
    assert conflict.charge_id == charge_id and "replay incident" in conflict.last_error
    assert gate_side.store.outbox_backlog().count == 0  # a settled fact: out of the offline budget
    (incident,) = [e for e in gate_side.store.recent_lane_events() if e.kind == "replay_incident"]
    assert incident.data["won_gate"] == gate_side.gate_id and incident.data["list"] == charge_id.hex()
    assert incident.data["won"] == hashlib.sha256(other).hexdigest()
    wait_until(lambda: payments_stack.bank.summary()["capture_count"] == 2, what="the other charge settled")


def test_a_refused_gate_is_flagged_and_every_flagged_charge_settles_after_one_requeue(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    shoppers_out(payments_stack, gate_side, 3)
    payments_stack.admin("DELETE", f"/v1/gates/{gate_side.gate_id}")
    with gate_side.forwarder() as forwarder:
        outcomes = forwarder.drain_once()
        assert [o.result for o in outcomes] == ["flagged"] * 3
        assert all("gate_revoked" in o.detail for o in outcomes)
        assert forwarder.drain_once() == []  # a flagged charge is not retried by itself
        payments_stack.admin(
            "POST", "/v1/gates", json={"gate": "gate-01", "public_key": gate_side.key.public_key.hex()}
        )
        assert gate_side.store.outbox_requeue_flagged(time.time()) == 3
        settle_all(forwarder, gate_side, 3)
    assert_reconciled(payments_stack, gate_side, settled=3)


@pytest.mark.parametrize("fault", [{"outage": ["capture"]}, {"decline": ["capture"]}])
def test_bank_faults_at_capture_time(payments_stack: LocalStack, gate_side: GateSide, fault: dict) -> None:
    shoppers_out(payments_stack, gate_side, 2, top_up=100)
    payments_stack.bank.faults(**fault)
    with gate_side.forwarder() as forwarder:
        outcomes = forwarder.drain_once()
        assert [o.result for o in outcomes] == ["accepted", "accepted"]  # intake needs no bank
        if "outage" in fault:  # the bank part waits in the settlement queue; stored value taken once
            wait_until(lambda: payments_stack.system.db.one(
                "select count(*) n from charges where state = 'capture_pending' and last_error is not null"
            )["n"] == 2)  # fmt: skip
            assert forwarder.collect_notices() == 0
            payments_stack.bank.faults(outage="none")
            payments_stack.system.sweep()
            settle_all(forwarder, gate_side, 2)
            report = assert_reconciled(payments_stack, gate_side, settled=2)
            assert report["money"]["debt"] == 0
        else:  # declined: settled as a debt, the shopper goes on the deny list
            settle_all(forwarder, gate_side, 2)
            report = assert_reconciled(payments_stack, gate_side, settled=2)
            assert report["money"]["bank"] == 0 and report["money"]["debt"] > 0
            forwarder.sync_once()
            holds, shoppers = gate_side.store.deny_lists()
            assert shoppers == {"shopper-0", "shopper-1"} and len(holds) == 2


def test_bank_faults_at_hold_time_give_no_voucher(payments_stack: LocalStack) -> None:
    shopper = SimShopper("erin")
    payments_stack.enrol_shopper(shopper)
    for fault in ({"decline": ["hold"]}, {"outage": ["hold"]}):
        payments_stack.bank.faults(**fault)
        with pytest.raises(AssertionError, match=r"402|503"):
            payments_stack.place_hold(shopper, 1000)
        payments_stack.bank.faults(decline="none", outage="none")
    report = assert_reconciled(payments_stack)
    assert report["holds"]["by_state"]["failed"] == 2 and report["stored_value"]["reserved"] == 0


def test_a_restarted_forwarder_finishes_what_the_first_left(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    shoppers_out(payments_stack, gate_side, 4)
    with gate_side.forwarder() as first:
        assert [o.result for o in first.drain_once(limit=2)] == ["accepted", "accepted"]
    payments_stack.down()
    with gate_side.forwarder() as second:
        assert [o.result for o in second.drain_once()] == ["retry", "retry"]
    payments_stack.up()
    time.sleep(0.25)  # past the backoff cap
    with gate_side.forwarder() as third:
        third.start()
        wait_until(lambda: gate_side.outbox_states()["settled"] == 4)
    assert_reconciled(payments_stack, gate_side, settled=4)


def test_the_thread_drains_what_the_lane_adds_and_stops_cleanly(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    with gate_side.forwarder(idle_poll_s=5.0) as forwarder:
        forwarder.start()
        shoppers_out(payments_stack, gate_side, 2)
        forwarder.notify()  # the lane wakes it after record_pass
        wait_until(lambda: gate_side.outbox_states()["settled"] == 2, timeout_s=3)
        forwarder.stop()
        assert not forwarder.status()["running"]
    assert_reconciled(payments_stack, gate_side, settled=2)


def test_the_feed_brings_consumed_holds_deny_lists_and_prices(
    payments_stack: LocalStack, gate_side: GateSide, tmp_path
) -> None:
    other = GateSide(payments_stack, tmp_path / "gate-02", "gate-02")
    try:
        shopper = SimShopper("frank")
        payments_stack.enrol_shopper(shopper)
        voucher = payments_stack.place_hold(shopper, 2000)
        other.exit(shopper, voucher, basket(pens=1))  # used at gate-02
        with other.forwarder() as forwarder:
            assert [o.result for o in forwarder.drain_once()] == ["accepted"]
    finally:
        other.close()
    payments_stack.admin(
        "POST",
        "/v1/catalog/prices",
        json={
            "items": [
                {
                    "code": "4006381333931",
                    "name": "Stabilo pen",
                    "category": "stationery",
                    "unit": "each",
                    "price": 139,
                }
            ]
        },
    )
    with gate_side.forwarder() as forwarder:
        before = gate_side.store.feed_version()
        result = forwarder.sync_once()
    assert result.version > before and result.consumed == 1 and result.prices == 1
    decision = gate_side.decide(shopper, voucher, basket(pens=1))
    assert decision.verdict == "deny" and "hold_consumed" in decision.codes
    products = gate_side.store.products(["4006381333931"], now=time.time() + 1, grace_s=0, currency="EUR")
    assert products["4006381333931"].history[-1][1] == 139


def test_a_feed_not_signed_by_a_trusted_key_is_refused(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    version = gate_side.store.feed_version()
    stranger = TrustedKeys([SigningKey.generate().public_key])
    with gate_side.forwarder(trusted=stranger) as forwarder, pytest.raises(SyncError, match="not a trusted"):
        forwarder.sync_once()
    assert gate_side.store.feed_version() == version


def test_a_replayed_or_foreign_feed_is_refused(payments_stack: LocalStack) -> None:
    trusted = TrustedKeys([payments_stack.key.public_key])
    nonce = bytes(32)
    raw = base64.b64decode(payments_stack.system.feed(0, nonce)["feed"])
    assert (
        verify_feed(raw, trusted=trusted, store_id="store-0001", since=0, nonce=nonce).store == "store-0001"
    )
    with pytest.raises(ProtocolError, match="nonce"):
        verify_feed(raw, trusted=trusted, store_id="store-0001", since=0, nonce=b"\x01" * 32)
    with pytest.raises(ProtocolError, match="store"):
        verify_feed(raw, trusted=trusted, store_id="store-0002", since=0, nonce=nonce)
    with pytest.raises(ProtocolError, match="version"):
        verify_feed(raw, trusted=trusted, store_id="store-0001", since=1, nonce=nonce)
    envelope = encoding.decode(raw)
    forged = encoding.encode({**envelope, "s": bytes(64)})
    with pytest.raises(SignatureError):
        verify_feed(forged, trusted=trusted, store_id="store-0001", since=0, nonce=nonce)


def test_from_config(lane_config_dir, payments_stack: LocalStack) -> None:
    from gate import config as lane_config
    from gate.protocol.keys import write_public_key
    from gate.store import GateStore

    write_public_key(lane_config_dir / "keys" / "ps.pub", payments_stack.key.public_key)
    cfg = lane_config.load(lane_config_dir / "lane.toml", check_key_files=False)
    with (
        GateStore(":memory:") as store,
        Forwarder.from_config(cfg, store, url=payments_stack.url) as forwarder,
    ):
        assert (forwarder.backoff_base_s, forwarder.backoff_cap_s) == (0.5, 60.0)
        assert forwarder.trusted.ids() == [payments_stack.key.key_id]
        assert forwarder.sync_once().version >= 1


def test_a_technician_requeues_every_flagged_charge_from_the_command_line(
    payments_stack: LocalStack, gate_side: GateSide, tmp_path
) -> None:
    from click.testing import CliRunner

    from gate.config import example_with
    from selfcheckout.cli import main

    shoppers_out(payments_stack, gate_side, 2)
    payments_stack.admin("DELETE", f"/v1/gates/{gate_side.gate_id}")
    with gate_side.forwarder() as forwarder:
        assert [o.result for o in forwarder.drain_once()] == ["flagged", "flagged"]
    config = tmp_path / "lane.toml"
    config.write_text(example_with(lane={"database": str(gate_side.database)}))
    runner = CliRunner()
    neither = runner.invoke(main, ["gate", "requeue", "--config", str(config)])
    assert neither.exit_code == 2 and "--all" in neither.output
    done = runner.invoke(main, ["gate", "requeue", "--all", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "2 flagged charge(s) queued to send again" in done.output
    assert gate_side.outbox_states() == {"pending": 2}


def test_a_feed_whose_gs1_layouts_differ_from_the_lanes_is_a_fault_said_once(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    """Phones take the layouts from the feed: a lane configured otherwise would deny their label lines."""
    same = tuple(Gs1Entry.of(layout) for layout in LAYOUTS.values())
    with gate_side.forwarder(gs1=same) as forwarder:
        forwarder.sync_once()
        assert forwarder.status()["gs1_mismatch"] == ""
    lane_only_21 = tuple(g for g in same if g.prefix == "21")
    with gate_side.forwarder(gs1=lane_only_21) as forwarder:
        forwarder.sync_once()
        forwarder.sync_once()
        message = forwarder.status()["gs1_mismatch"]
    assert "differ from this lane's [[barcodes.gs1]] (21 weight 5/5)" in message
    assert "23 price 5/4+check" in message
    faults = [e for e in gate_side.store.recent_lane_events() if e.data.get("code") == "gs1_mismatch"]
    assert [e.detail for e in faults] == [message]  # said once, not at every sync
