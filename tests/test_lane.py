"""The exit lane end to end: a phone on the reader, the decision, the durable commit, the gate's pins, the
receipt on the phone; repeat taps, a second shopper while the gate is open, a phone lifted mid-tap,
maintenance, tailgating and a forced door.

Phones are phone.card.ExitCard (the phone's own card handler) on vpcd through pcscd, or on the
in-process reader where the transport does not matter; the gate's pins are gpiozero's MockFactory. Pin
sequences are compared whole: [s.state for s in pin.states].
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gate.lane import LaneState
from gate.protocol.commands import INS_RECEIPT
from gate.protocol.parties import item
from phone.card import ExitCard
from tests.fixtures.lane import Documents, LaneRig, shopping_list_of, wait_until
from tests.fixtures.store import PEN

LOCKED, OPEN = True, False  # the relay pin under the test config: fail-safe, active high (energized = locked)
INITIAL = False  # a MockPin's level before the GateIO drives it


@pytest.mark.parametrize("transport", ["pcsc", "in-process"])
def test_a_valid_pass_opens_the_gate_once_and_the_phone_keeps_a_receipt_that_verifies(
    lane_rig: Callable[..., LaneRig], transport: str
) -> None:
    rig = lane_rig(transport)
    assert rig.locked_level is LOCKED
    assert rig.states("relay") == [INITIAL, LOCKED]  # locked from the start, before any tap
    phone = rig.shop.exit_card()
    receipt = rig.tap(phone)
    assert receipt.doc.verdict == "pass" and receipt.doc.reasons == ()
    presented = shopping_list_of(phone)
    assert (receipt.doc.list, receipt.doc.total) == (presented.list, presented.total)
    rig.wait_state(LaneState.OPEN)
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]
    assert rig.pin("green").state is True and rig.pin("red").state is False

    rig.pulse("beam")  # one shopper walks through
    rig.wait_state(LaneState.IDLE)
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
    assert rig.pin("green").state is False

    list_id = shopping_list_of(phone).list
    assert rig.outbox_ids() == [list_id]
    decisions = rig.decisions()
    assert [(d.verdict, d.list_id) for d in decisions] == [("pass", list_id)]
    assert rig.lane_events("alarm") == []
    rig.wait_event("transition", to="idle")
    transitions = [e.data["to"] for e in rig.lane_events("transition")]
    assert transitions == ["reading", "deciding", "open", "closing", "idle"]


# -- the same phone twice, and a second shopper while the gate is open -------------------------------------


@pytest.mark.parametrize("transport", ["pcsc", "in-process"])
def test_the_same_phone_tapping_twice_gets_the_same_pass_and_one_charge(
    lane_rig: Callable[..., LaneRig], transport: str
) -> None:
    rig = lane_rig(transport)
    phone = rig.shop.exit_card()
    list_id = shopping_list_of(phone).list
    first = rig.tap(phone)
    rig.wait_state(LaneState.OPEN)
    again = rig.tap(phone)  # the shopper taps again while the gate is still open for them
    assert (first.doc.verdict, again.doc.verdict) == ("pass", "pass")
    assert again.doc.list == list_id and again.doc.total == first.doc.total
    assert again.doc.nonce != first.doc.nonce  # a fresh answer to a fresh challenge, not a replayed one
    assert rig.lane.state == LaneState.OPEN
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]

    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    third = rig.tap(phone)  # once more after the shopper went through: the list left, the gate stays shut
    assert (third.doc.verdict, third.doc.reasons) == ("deny", ("list_used",))
    rig.wait_event("repeat_tap", timeout_s=3)
    wait_until(lambda: len(rig.lane_events("repeat_tap")) == 2, 3, "two repeat taps recorded")
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
    assert rig.outbox_ids() == [list_id]
    assert [(d.verdict, d.list_id) for d in rig.decisions()] == [("pass", list_id), ("deny", list_id)]
    assert [(e.data["list"], e.data["reopened"]) for e in rig.lane_events("repeat_tap")] == [
        (list_id.hex(), True),
        (list_id.hex(), False),
    ]


def test_another_list_tapped_while_the_gate_is_open_is_refused_without_a_charge(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig()
    first, second = rig.shop.exit_card(), rig.shop.exit_card()
    assert rig.tap(first).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)

    refused = rig.tap(second)
    assert refused.doc.verdict == "deny" and refused.doc.list == shopping_list_of(second).list
    event = rig.wait_event("tap_refused")
    assert event.data == {
        "list": shopping_list_of(second).list.hex(),
        "answered": "deny",
        "check": "pass",  # the list itself is fine: the lane is busy
        "codes": [],
    }
    assert rig.lane.state == LaneState.OPEN  # still open for the first shopper
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]
    assert rig.outbox_ids() == [shopping_list_of(first).list]
    # no decision counted for the refused tap
    assert [d.list_id for d in rig.decisions()] == [shopping_list_of(first).list]

    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    assert rig.tap(second).doc.verdict == "pass"  # the refusal used up nothing: the hold is still good
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    assert sorted(rig.outbox_ids()) == sorted([shopping_list_of(first).list, shopping_list_of(second).list])
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED, OPEN, LOCKED]
    assert rig.lane_events("alarm") == []


# -- a phone lifted mid-tap ----------------------------------------------------------------------------------


class LiftedPhone:
    """A phone taken away while it answers the challenge: the gate gets nothing back."""

    def __init__(self, rig: LaneRig) -> None:
        self.rig = rig
        self.lifted = False

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        self.lifted = True
        self.rig.hand.lift()
        return b"\x00" * 600  # an answer nobody reads


@pytest.mark.parametrize("transport", ["pcsc", "in-process"])
def test_a_phone_lifted_mid_exchange_leaves_no_decision_and_the_next_phone_is_served(
    lane_rig: Callable[..., LaneRig], transport: str
) -> None:
    rig = lane_rig(transport)
    lifted = LiftedPhone(rig)
    rig.hand.place(lifted)
    event = rig.wait_event("tap_aborted")
    assert lifted.lifted
    assert event.data["error"] in ("PhoneLost", "ExchangeTimeout")
    rig.wait_state(LaneState.IDLE)
    assert rig.decisions() == [] and rig.outbox_ids() == []
    assert rig.states("relay") == [INITIAL, LOCKED]

    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "pass"
    assert rig.outbox_ids() == [shopping_list_of(phone).list]
    assert [d.verdict for d in rig.decisions()] == ["pass"]


class ReceiptLostPhone:
    """An honest phone lifted just as the receipt arrives: decided and committed, the receipt undelivered."""

    def __init__(self, rig: LaneRig, card: ExitCard) -> None:
        self.rig = rig
        self.card = card

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        if ins == INS_RECEIPT:
            self.rig.hand.lift()
            return b""
        return self.card.handle(ins, p1, p2, data)


@pytest.mark.parametrize("transport", ["pcsc", "in-process"])
def test_a_receipt_that_never_arrives_still_opens_once_and_the_next_tap_gets_it(
    lane_rig: Callable[..., LaneRig], transport: str
) -> None:
    rig = lane_rig(transport)
    card = rig.shop.exit_card()
    list_id = shopping_list_of(card).list
    rig.hand.place(ReceiptLostPhone(rig, card))
    event = rig.wait_event("receipt_undelivered")
    assert event.data == {"list": list_id.hex()}
    assert card.receipt is None
    rig.wait_state(LaneState.OPEN)  # committed before the receipt went out: the gate opens all the same
    assert rig.outbox_ids() == [list_id]

    receipt = rig.tap(card)  # the shopper taps again and gets the pass on the phone, not a second charge
    assert receipt.doc.verdict == "pass" and receipt.doc.list == list_id
    assert rig.outbox_ids() == [list_id]
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]


# -- maintenance ---------------------------------------------------------------------------------------------


def test_maintenance_open_and_locked_with_a_reason_are_lane_events_and_refuse_taps(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig()
    rig.lane.maintenance("open", "cleaning the lane")
    assert rig.lane.state == LaneState.MAINTENANCE
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]
    assert (rig.pin("green").state, rig.pin("red").state) == (True, False)
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "deny"  # no charge for walking through an open lane
    refused = rig.wait_event("tap_refused")
    assert refused.detail == "lane in maintenance (open)"

    rig.lane.maintenance("locked", "card reader swap")
    assert rig.lane.state == LaneState.MAINTENANCE
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
    assert (rig.pin("green").state, rig.pin("red").state) == (False, True)
    rig.pulse("beam")  # the lane's own passage alarm is off while a technician works on it
    assert rig.tap(phone).doc.verdict == "deny"

    rig.lane.maintenance(None, "done")
    assert rig.lane.state == LaneState.IDLE
    assert (rig.pin("green").state, rig.pin("red").state) == (False, False)
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED, OPEN, LOCKED]
    assert rig.outbox_ids() == [shopping_list_of(phone).list]

    rig.wait_event("transition", to="idle", **{"from": "closing"})
    logged = [
        (e.data.get("mode"), e.data.get("reason"))
        for e in rig.lane_events()
        if "reason" in e.data and e.kind in ("transition", "maintenance")
    ]
    assert logged == [("open", "cleaning the lane"), ("locked", "card reader swap"), (None, "done")]
    assert [e.detail for e in rig.lane_events("tap_refused")] == [
        "lane in maintenance (open)",
        "lane in maintenance (locked)",
    ]
    assert rig.lane_events("alarm") == []
    with pytest.raises(ValueError, match="maintenance mode"):
        rig.lane.maintenance("half-open", "typo")


# -- tailgating and a forced door ----------------------------------------------------------------------------


def test_two_people_through_on_one_pass_is_a_tailgating_alarm(lane_rig: Callable[..., LaneRig]) -> None:
    rig = lane_rig()
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.pulse("beam")  # a second person, before the gate closed after the first
    alarm = rig.wait_event("alarm")
    assert alarm.data == {"code": "tailgating", "list": shopping_list_of(phone).list.hex()}
    rig.wait_state(LaneState.IDLE)
    assert [e.data["code"] for e in rig.lane_events("alarm")] == ["tailgating"]
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
    assert len(rig.states("buzzer")) > 1  # sounding
    assert rig.outbox_ids() == [shopping_list_of(phone).list]  # one charge: the second person is an alarm


def test_a_passage_through_the_closed_gate_is_an_alarm(lane_rig: Callable[..., LaneRig]) -> None:
    rig = lane_rig()
    rig.pulse("beam")
    alarm = rig.wait_event("alarm")
    assert alarm.data == {"code": "tailgating"} and alarm.detail == "passage with the gate closed"
    assert rig.lane.state == LaneState.IDLE
    assert rig.states("relay") == [INITIAL, LOCKED]
    assert len(rig.states("buzzer")) > 1


def test_a_door_forced_open_while_locked_is_a_forced_door_alarm(lane_rig: Callable[..., LaneRig]) -> None:
    rig = lane_rig()
    door_fault_s = rig.config.timings.door_fault_ms / 1000
    rig.pin("door").drive_high()
    time.sleep(door_fault_s / 2)
    assert rig.lane_events("alarm") == []  # not yet: a door may bounce open for a moment
    alarm = rig.wait_event("alarm", timeout_s=door_fault_s + 2)
    assert alarm.data == {"code": "forced_door"}
    assert len(rig.states("buzzer")) > 1  # sounding
    rig.pin("door").drive_low()  # the door is shut again: the forced-door fault is over
    time.sleep(0.1)
    sounded = len(rig.states("buzzer"))
    time.sleep(0.6)  # longer than the alarm's on or off half (0.5 s): it would have switched
    assert rig.pin("buzzer").state is False and len(rig.states("buzzer")) == sounded
    assert rig.states("relay") == [INITIAL, LOCKED]


def test_the_door_opening_on_a_pass_is_no_alarm(lane_rig: Callable[..., LaneRig]) -> None:
    rig = lane_rig()
    door_fault_s = rig.config.timings.door_fault_ms / 1000
    assert rig.tap(rig.shop.exit_card()).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pin("door").drive_high()
    rig.pulse("beam")
    time.sleep(door_fault_s + 0.2)
    rig.pin("door").drive_low()
    rig.wait_state(LaneState.IDLE)
    time.sleep(0.1)
    assert rig.lane_events("alarm") == []


# -- a blocked beam ------------------------------------------------------------------------------------------


def test_a_beam_blocked_too_long_is_a_fault_that_clears_when_the_beam_does(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig(timings={"beam_blocked_fault_s": 0.3})
    rig.pin("beam").drive_high()
    rig.wait_state(LaneState.FAULT)
    fault = rig.wait_event("fault")
    assert "beam" in fault.detail
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "deny"  # a lane that cannot count passages takes no pass
    assert rig.outbox_ids() == []
    rig.pin("beam").drive_low()
    rig.wait_state(LaneState.IDLE)
    assert rig.tap(phone).doc.verdict == "pass"
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]


def test_a_shopper_standing_in_the_open_gate_past_the_beam_fault_time_still_gets_it_closed(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig(timings={"beam_blocked_fault_s": 0.3})
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pin("beam").drive_high()  # the shopper stops in the gate with a trolley
    rig.wait_state(LaneState.FAULT)
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]  # never closed on a person
    rig.pin("beam").drive_low()  # and walks on
    rig.wait_state(LaneState.IDLE)
    wait_until(rig.relay_locked, 2, "the gate locked after the shopper went through")
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
    assert rig.lane_events("alarm") == []


def test_another_list_under_an_id_that_passed_here_is_not_a_repeat_tap(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig()
    shop = rig.shop
    first = shop.documents()  # two pens and a milk, 377
    assert rig.tap(shop.exit_card(first)).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    # The same shopper signs a bigger list under the same list id and hold, and taps it.
    bigger = shop.shopping_list([item(PEN, 129, 30)], list=first.list_id, hold=first.voucher.doc.hold)
    receipt = rig.tap(shop.exit_card(Documents(first.voucher, bigger)))
    assert rig.outbox_ids() == [first.list_id]  # no second charge
    assert (receipt.doc.verdict, receipt.doc.reasons) == ("deny", ("list_used",))  # no pass for it
    assert receipt.doc.total == 30 * 129
    assert rig.lane_events("repeat_tap") == []
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN, LOCKED]
