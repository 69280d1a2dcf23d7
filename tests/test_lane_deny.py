"""Every deny reason of gate/legality/reasons.py end to end: a phone on vpcd through pcscd presents a list
with that one fault, and the lane shows red, answers with a receipt the phone verifies saying "deny" with
that code, charges nothing and never releases the relay.

The faults are made as tests/test_legality.py makes them, with the Shop builder's knobs (LiveShop: dated
now); a fault in the phone's own answer, or a voucher for another store (the phone's ExitCard refuses such a
challenge itself), needs a ScriptedPhone. State faults (a used list, a consumed hold, the deny lists, the
offline budget) are set up in the lane's own store first.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gate.lane import LaneState
from gate.legality import build_charge
from gate.legality.reasons import DENY, RULES
from gate.protocol.parties import item, new_id
from tests.fixtures.lane import Documents, LaneRig, LiveShop, ScriptedPhone
from tests.fixtures.store import EAN8, PEN

LOCKED, INITIAL = True, False
DENY_CODES = [r.code for r in RULES if r.kind == DENY]


def scripted(shop: LiveShop, docs: Documents, **answer: Any) -> ScriptedPhone:
    """A phone presenting `docs` with an answer changed by `answer` (fields, or key=)."""

    def respond(challenge: Any) -> bytes:
        raw, _ = shop.present(
            voucher=docs.voucher,
            signed_list=docs.signed_list,
            challenge=challenge,
            answer=shop.answer(challenge, docs.signed_list, **answer) if answer else None,
        )
        return raw

    return ScriptedPhone(docs.signed_list, respond)


def seed_pass(rig: LaneRig, docs: Documents) -> bytes:
    """A pass of `docs` already committed in the lane's store (as an earlier tap would have); its bytes."""
    shop = rig.shop
    raw, challenge = shop.present(
        voucher=docs.voucher, signed_list=docs.signed_list, challenge=shop.challenge(os.urandom(32))
    )
    decision = shop.check(raw, challenge, now=time.time())
    assert decision.passed, decision.reasons
    rig.store.record_pass(decision, build_charge(decision, shop.keys["gate"]).encode())
    return raw


@dataclass
class Case:
    """How to make a phone whose tap is denied with `code`; `also` are codes that come with it."""

    phone: Callable[[LaneRig], Any]
    also: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)


def _card(**knobs: Any) -> Callable[[LaneRig], Any]:
    return lambda rig: rig.shop.exit_card(**knobs)


def _mallory(part: str) -> Callable[[LaneRig], Any]:
    return lambda rig: rig.shop.exit_card(**{part: {"key": rig.shop.keys["mallory"]}})


def _answer(**fields: Any) -> Callable[[LaneRig], Any]:
    def make(rig: LaneRig) -> Any:
        extra = {"key": rig.shop.keys["mallory"]} if fields.get("key") == "mallory" else fields
        return scripted(rig.shop, rig.shop.documents(), **extra)

    return make


def _malformed(rig: LaneRig) -> Any:
    return ScriptedPhone(rig.shop.documents().signed_list, lambda challenge: b"not cbor at all")


def _voucher_for_another_store(rig: LaneRig) -> Any:
    return scripted(rig.shop, rig.shop.documents(voucher={"store": "store-0002"}))


def _replayed(rig: LaneRig) -> Any:
    """A recording of a presentation that passed here, played back to a fresh challenge."""
    docs = rig.shop.documents()
    recorded = seed_pass(rig, docs)
    return ScriptedPhone(docs.signed_list, lambda challenge: recorded)


def _second_list_on_a_consumed_hold(rig: LaneRig) -> Any:
    first = rig.shop.documents()
    seed_pass(rig, first)
    hold = first.voucher.doc.hold
    second = Documents(first.voucher, rig.shop.shopping_list([item(EAN8, 99)], list=new_id(), hold=hold))
    return rig.shop.exit_card(second)


def _on_deny_list(what: str) -> Callable[[LaneRig], Any]:
    def make(rig: LaneRig) -> Any:
        docs = rig.shop.documents()
        holds = {docs.voucher.doc.hold} if what == "hold" else set()
        shoppers = {docs.voucher.doc.shopper} if what == "shopper" else set()
        rig.store.apply_feed(1, holds, shoppers, [], [])
        return rig.shop.exit_card(docs)

    return make


def _over_the_offline_budget(rig: LaneRig) -> Any:
    seed_pass(rig, rig.shop.documents())  # one unsettled charge: the whole budget of this config
    return rig.shop.exit_card()


def _now() -> int:
    return int(time.time())


CASES: dict[str, Case] = {
    "malformed": Case(_malformed),
    "voucher_signature": Case(_mallory("voucher")),
    "voucher_expired": Case(
        lambda rig: rig.shop.exit_card(voucher={"issued": _now() - 7200, "expires": _now() - 60})
    ),
    "voucher_not_yet_valid": Case(lambda rig: rig.shop.exit_card(voucher={"issued": _now() + 600})),
    "voucher_wrong_store": Case(_voucher_for_another_store),
    "voucher_wrong_currency": Case(_card(voucher={"currency": "USD"})),
    "list_signature": Case(_mallory("shopping_list")),
    "list_wrong_hold": Case(lambda rig: rig.shop.exit_card(shopping_list={"hold": new_id()})),
    "list_wrong_store": Case(_card(shopping_list={"store": "store-0002"})),
    "list_wrong_currency": Case(_card(shopping_list={"currency": "USD"})),
    "list_stale": Case(lambda rig: rig.shop.exit_card(shopping_list={"created": _now() - 86400 - 600})),
    "list_from_future": Case(lambda rig: rig.shop.exit_card(shopping_list={"created": _now() + 600})),
    "answer_signature": Case(_answer(key="mallory")),
    "answer_wrong_gate": Case(_answer(gate="gate-02")),
    "answer_wrong_nonce": Case(_answer(nonce=b"\x07" * 32)),
    "answer_wrong_list": Case(_answer(list_hash=hashlib.sha256(b"another list").digest())),
    "total_mismatch": Case(_card(shopping_list={"total": 2 * 129 + 119 - 1})),
    "over_guarantee": Case(
        _card(items=[item(PEN, 129, 38)], voucher={"amount": 4901, "stored_value": 901, "bank": 4000})
    ),
    "invalid_code": Case(_card(items=[item("4006381333932", 129)])),
    "unknown_item": Case(_card(items=[item("4000000000006", 10)])),
    "price_mismatch": Case(_card(items=[item(PEN, 128)])),
    "weight_mismatch": Case(_card(items=[item(PEN, 129, grams=10)])),
    "too_many_items": Case(_card(items=[item(EAN8, 99)] * 11)),  # the test config allows 10 lines
    "quantity_limit": Case(_card(items=[item(EAN8, 99, 41)])),  # and 40 of one thing
    "list_used": Case(_replayed, also=("answer_wrong_nonce",)),
    "hold_consumed": Case(_second_list_on_a_consumed_hold),
    "hold_denied": Case(_on_deny_list("hold")),
    "shopper_denied": Case(_on_deny_list("shopper")),
    "offline_limit": Case(_over_the_offline_budget, config={"offline": {"max_count": 1}}),
    # A Pi booted with no time service reachable: its lane clock vouches for no time (gate.clock.LaneClock).
    "clock_unsynced": Case(_card(), config={"lane_overrides": {"clock_trusted": lambda: False}}),
}


def test_every_deny_code_has_a_case() -> None:
    assert sorted(CASES) == sorted(DENY_CODES)


@pytest.mark.parametrize("code", DENY_CODES)
def test_each_deny_reason_end_to_end_through_pcscd(lane_rig: Callable[..., LaneRig], code: str) -> None:
    case = CASES[code]
    timings = {"denied_display_ms": 5000}  # the red light stays on while the test looks
    rig = lane_rig("pcsc", timings=timings, **case.config)
    phone = case.phone(rig)
    outbox_before = rig.outbox_ids()

    receipt = rig.tap(phone)  # the phone's own check verified the receipt before keeping it
    assert receipt.doc.verdict == "deny"
    assert sorted(receipt.doc.reasons) == sorted((code, *case.also))
    rig.wait_state(LaneState.DENIED)
    assert rig.states("red") == [False, True] and rig.states("green") == [False]
    assert len(rig.states("buzzer")) > 1
    assert rig.states("relay") == [INITIAL, LOCKED]
    assert rig.outbox_ids() == outbox_before
    decision = rig.decisions()[-1]
    assert decision.verdict == "deny" and sorted(decision.codes) == sorted(receipt.doc.reasons)
