"""The gate never closes on a person in the beam, and a pass whose shopper never went through opens again
on the same phone's second tap (no second charge), but only until the beam has counted them through."""

from __future__ import annotations

import time
from collections.abc import Callable

from gate.lane import LaneState
from tests.fixtures.lane import LaneRig

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
    # Through now: a third tap answers the same, and the gate stays shut.
    third = rig.tap(phone)
    assert third.doc.verdict == "pass"
    rig.wait_event("repeat_tap", reopened=False)
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED, OPEN, LOCKED]
    assert rig.outbox_ids() == [list_id]
