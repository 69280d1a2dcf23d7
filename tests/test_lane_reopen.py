"""The gate never closes on a person in the beam, and a pass whose shopper never went through opens again
on the same phone's second tap (no second charge), but only until the beam has counted them through."""

from __future__ import annotations

import time
from collections.abc import Callable

from gate.lane import LaneState
from gate.legality import GateIdentity, Policy, build_charge, check, new_challenge
from gate.protocol.commands import INS_CHALLENGE
from gate.protocol.keys import TrustedKeys
from gate.protocol.parties import item
from tests.fixtures.lane import LaneRig, shopping_list_of
from tests.fixtures.store import CURRENCY, PEN, STORE_ID, WHISKY, keys

LOCKED, OPEN = True, False  # the relay pin under the test config: fail-safe, active high
INITIAL = False


def test_the_open_timeout_waits_for_a_person_still_in_the_beam(lane_rig: Callable[..., LaneRig]) -> None:
    rig = lane_rig(timings={"open_timeout_s": 0.3})
    assert rig.tap(rig.shop.exit_card()).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pin("beam").drive_high()  # a shopper with a trolley, slow through the beam
    time.sleep(0.6)  # past the open timeout
    assert rig.lane.state == LaneState.OPEN and not rig.relay_locked()
    rig.pin("beam").drive_low()
    rig.wait_state(LaneState.IDLE)
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]


def test_a_second_tap_opens_again_for_a_shopper_who_never_went_through_and_charges_once(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig(timings={"open_timeout_s": 0.2})
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.wait_state(LaneState.IDLE)  # the open timeout ran out: nobody went through
    again = rig.tap(phone)
    assert (again.doc.verdict, again.doc.reasons) == ("pass", ("list_used",))
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    list_id = again.doc.list
    assert rig.outbox_ids() == [list_id]
    assert [e.data["reopened"] for e in rig.lane_events("repeat_tap")] == [True]
    rig.wait_event("passage", list=list_id.hex())
    # Through now: a third tap is a list that left, denied list_used, and the gate stays shut.
    third = rig.tap(phone)
    assert (third.doc.verdict, third.doc.reasons) == ("deny", ("list_used",))
    event = rig.wait_event("repeat_tap", reopened=False)
    assert "already walked through" in event.detail
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED, OPEN, LOCKED]
    assert rig.outbox_ids() == [list_id]


def test_a_repeat_past_the_repeat_window_is_list_used_and_the_gate_stays_shut(
    lane_rig: Callable[..., LaneRig],
) -> None:
    later = [0.0]
    rig = lane_rig(
        timings={"open_timeout_s": 0.2, "repeat_window_s": 60},
        lane_overrides={"clock": lambda: time.time() + later[0]},
    )
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.wait_state(LaneState.IDLE)  # nobody went through
    later[0] = 61.0  # the lane's clock a minute on: the pass is past its window
    late = rig.tap(phone)
    assert (late.doc.verdict, late.doc.reasons) == ("deny", ("list_used",))
    event = rig.wait_event("repeat_tap", reopened=False)
    assert "past the 60 s repeat window" in event.detail
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
    assert rig.outbox_ids() == [late.doc.list]


def test_a_repeat_within_the_window_after_the_hold_expired_and_was_denied_still_opens(
    lane_rig: Callable[..., LaneRig],
) -> None:
    """What moved on since the pass (the voucher expired, the shopper was put on the deny list) does not
    take back a pass already committed: within its window the receipt is pass with exactly list_used."""
    later = [0.0]
    rig = lane_rig(timings={"open_timeout_s": 0.2}, lane_overrides={"clock": lambda: time.time() + later[0]})
    docs = rig.shop.documents(voucher={"expires": int(time.time()) + 30})
    phone = rig.shop.exit_card(docs)
    voucher = docs.voucher
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.wait_state(LaneState.IDLE)
    rig.store.apply_feed(rig.store.feed_version() + 1, {voucher.doc.hold}, {voucher.doc.shopper}, [], [])
    later[0] = 45.0  # past the voucher's expiry, within the 120 s window
    again = rig.tap(phone)
    assert (again.doc.verdict, again.doc.reasons) == ("pass", ("list_used",))
    event = rig.wait_event("repeat_tap", reopened=True)
    assert {"voucher_expired", "hold_denied", "shopper_denied"} <= set(event.data["codes"])
    rig.wait_state(LaneState.OPEN)
    assert rig.outbox_ids() == [again.doc.list]


def test_a_list_that_passed_at_another_gate_of_the_store_does_not_open_this_one(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig()
    phone = rig.shop.exit_card()
    other = GateIdentity(STORE_ID, "gate-02", CURRENCY)
    challenge = new_challenge(other, time.time())
    presentation = phone.handle(INS_CHALLENGE, 0, 0, challenge.encode())
    decision = check(
        presentation,
        challenge,
        now=time.time(),
        catalog=rig.store,
        state=rig.store,
        policy=Policy.from_config(rig.config),
        trusted=TrustedKeys([keys()["ps"].public_key]),
        gate=other,
    )
    assert decision.passed
    # The pass as the store knows it once it is shared: gate-02 gave it, under the same list id.
    rig.store.record_pass(decision, build_charge(decision, keys()["gate"]).encode())
    here = rig.tap(phone)
    assert (here.doc.verdict, here.doc.reasons) == ("deny", ("list_used",))
    event = rig.wait_event("repeat_tap", reopened=False)
    assert "passed at gate gate-02, not here" in event.detail
    assert rig.states("relay") == [INITIAL, LOCKED]


def test_a_list_an_attendant_let_out_reopens_on_a_repeat_tap_without_a_second_check(
    lane_rig: Callable[..., LaneRig],
) -> None:
    """Its attendant codes are part of what was cleared: the repeat is the same pass, not a new check. The
    window counts from the approval, which may come minutes after the check."""
    later = [0.0]
    rig = lane_rig(
        timings={"open_timeout_s": 0.2, "repeat_window_s": 60},
        lane_overrides={"clock": lambda: time.time() + later[0]},
    )
    phone = rig.shop.exit_card(items=[item(PEN, 129), item(WHISKY, 3499)])
    assert rig.tap(phone).doc.verdict == "attendant"
    later[0] = 90.0  # the attendant came a minute and a half later
    rig.lane.approve(shopping_list_of(phone).list, "Dana")
    rig.wait_state(LaneState.OPEN)
    rig.wait_state(LaneState.IDLE)  # the phone was lifted before the shopper went through
    again = rig.tap(phone)
    assert (again.doc.verdict, again.doc.reasons) == ("pass", ("list_used",))
    event = rig.wait_event("repeat_tap", reopened=True)
    assert "attendant_item" in event.data["codes"]
    rig.wait_state(LaneState.OPEN)
    assert rig.outbox_ids() == [again.doc.list]
