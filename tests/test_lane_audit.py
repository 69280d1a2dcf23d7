"""The attendant's audit through a running lane: the lane's scanner is a socat pty pair, the phone taps the
in-process reader. A list picked for an audit holds the gate; the basket re-scanned at the scanner is
compared with the signed list; the attendant lets the shopper out or calls a manager, and the scanned list is
recorded beside the signed one. (The panel's side, in a browser: tests/test_panel_audit.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gate.barcodes import variable_code
from gate.errors import LaneError
from gate.lane import LaneState
from gate.protocol.parties import item
from phone.card import ExitCard
from tests.fixtures.lane import LaneRig, running_lane, shopping_list_of, wait_until
from tests.fixtures.standins import PtyPair
from tests.fixtures.store import EAN8, MILK, PEN, WEIGHT, WHISKY

GOUDA_1G = variable_code(WEIGHT, "00231", 1)


def scanner_section(pty: PtyPair) -> dict[str, Any]:
    """The lane's [scanner]: the pty, no AIM prefix, no debounce (the attendant scans two pens in a row)."""
    return {"port_url": str(pty.device), "aim_prefix": False, "debounce_ms": 0, "reconnect_max_s": 0.1}


@pytest.fixture
def audit_rig(tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair) -> Iterator[LaneRig]:
    with running_lane(
        tmp_path, mock_factory, scanner=scanner_section(pty_pair), policy={"audit_per_mille": 1000}
    ) as rig:
        wait_until(lambda: rig.service.scanner.health()["connected"], 3, "the lane's scanner open")
        yield rig


def audited(rig: LaneRig, *items: Any) -> ExitCard:
    """A phone with these lines taps; its list is drawn for an audit, which holds the gate."""
    phone = rig.shop.exit_card(items=list(items))
    assert rig.tap(phone).doc.verdict == "attendant"
    rig.wait_state(LaneState.AUDIT)
    return phone


def scan(rig: LaneRig, pty: PtyPair, *codes: str) -> None:
    """Scan codes at the lane's scanner; until the lane has taken each (counted, or noted as unreadable)."""
    audit = rig.lane.audit
    before = len(audit.scans) + len(audit.unreadable)
    pty.write(b"".join(code.encode() + b"\r" for code in codes))
    wait_until(lambda: len(audit.scans) + len(audit.unreadable) == before + len(codes), 3, f"{codes} taken")


def test_a_list_picked_by_the_policy_holds_the_gate_until_the_scan_matches_and_the_attendant_lets_out(
    audit_rig: LaneRig, pty_pair: PtyPair
) -> None:
    rig = audit_rig
    phone = rig.shop.exit_card(items=[item(PEN, 129, 2), item(MILK, 119)])
    receipt = rig.tap(phone)
    list_id = shopping_list_of(phone).list
    assert (receipt.doc.verdict, receipt.doc.reasons) == ("attendant", ("audit",))
    rig.wait_state(LaneState.AUDIT)
    assert rig.relay_locked() and rig.outbox_ids() == []

    scan(rig, pty_pair, PEN, MILK, PEN)
    comparison = rig.lane.audit_comparison()
    assert comparison.matches and comparison.difference == 0
    assert [(line.name, line.listed, line.scanned) for line in comparison.lines] == [
        ("Stabilo pen", 2, 2),
        ("Milk 1 l", 1, 1),
    ]
    record = rig.lane.audit_let_out("Dana")
    rig.wait_state(LaneState.OPEN)
    assert not rig.relay_locked() and rig.outbox_ids() == [list_id]
    [stored] = rig.store.recent_audits()
    assert stored == record.__class__(**{**record.__dict__, "id": stored.id})
    assert (stored.outcome, stored.attendant, stored.scanned) == ("let_out", "Dana", (PEN, MILK, PEN))
    assert [e.attendant for e in rig.decisions() if e.verdict == "pass"] == ["Dana"]


def test_another_shoppers_tap_during_an_audit_is_refused_and_the_audited_list_cannot_skip_it(
    audit_rig: LaneRig, pty_pair: PtyPair
) -> None:
    rig = audit_rig
    phone = audited(rig, item(PEN, 129))
    other = rig.shop.exit_card(items=[item(EAN8, 99)])
    assert rig.tap(other).doc.verdict == "deny"
    assert rig.wait_event("tap_refused").detail == "attendant audit in progress: tap again once it is over"
    with pytest.raises(LaneError, match="is in progress: end it first"):
        rig.lane.approve(shopping_list_of(phone).list, "Dana")
    assert rig.relay_locked() and rig.outbox_ids() == []


def test_scanned_more_than_listed_is_shown_in_money_and_a_manager_call_keeps_the_gate_shut(
    audit_rig: LaneRig, pty_pair: PtyPair
) -> None:
    rig = audit_rig
    phone = audited(rig, item(PEN, 129))
    scan(rig, pty_pair, PEN, WHISKY, EAN8, "4006381333932")  # the last one is misread: not counted
    comparison = rig.lane.audit_comparison()
    assert not comparison.matches
    assert [(line.name, line.listed, line.scanned, line.difference) for line in comparison.lines] == [
        ("Stabilo pen", 1, 1, 0),
        ("Single malt", 0, 1, 3499),
        ("Chewing gum", 0, 1, 99),
    ]
    assert comparison.difference == 3598
    record = rig.lane.audit_call_manager("Dana")
    rig.wait_state(LaneState.IDLE)
    assert rig.relay_locked() and rig.outbox_ids() == []
    assert (record.outcome, record.difference, record.scanned) == ("manager", 3598, (PEN, WHISKY, EAN8))
    assert any("check digit" in note for note in record.notes)
    assert rig.store.recent_audits()[0].outcome == "manager"
    # the manager sorts it out and lets the shopper out by name: the audit is on record already
    rig.lane.approve(shopping_list_of(phone).list, "Manager Kim")
    rig.wait_state(LaneState.OPEN)
    assert rig.outbox_ids() == [shopping_list_of(phone).list]


def test_scanner_unplugged_mid_audit_keeps_the_scans_and_counts_again_once_back(
    audit_rig: LaneRig, pty_pair: PtyPair
) -> None:
    rig = audit_rig
    audited(rig, item(PEN, 129), item(MILK, 119))
    scan(rig, pty_pair, PEN)
    pty_pair.kill()
    wait_until(lambda: not rig.service.health()["scanner"]["connected"], 3, "the scanner seen unplugged")
    pty_pair.start()
    wait_until(lambda: rig.service.health()["scanner"]["connected"], 3, "the scanner back")
    scan(rig, pty_pair, MILK)
    assert rig.lane.audit_comparison().matches
    wait_until(
        lambda: any(e.data.get("kind") == "reconnected" for e in rig.lane_events("scanner")),
        3,
        "replug saved",
    )
    # A failed reopen is told once per outage; on a busy machine the reopen may find a pty at once.
    kinds = [e.data.get("kind") for e in rig.lane_events("scanner")]
    outage = kinds[kinds.index("port-lost") :]
    assert [k for k in outage if k != "open-failed"][:2] == ["port-lost", "reconnected"]
    assert outage.count("open-failed") <= 1
    record = rig.lane.audit_let_out("Dana")
    notes = [n.split(":")[0] for n in record.notes if "open-failed" not in n]
    assert notes == ["scanner port-lost", "scanner reconnected"]


def test_an_implausible_label_goes_to_the_audit_with_its_reason(
    tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair
) -> None:
    with running_lane(tmp_path, mock_factory, scanner=scanner_section(pty_pair)) as rig:
        phone = rig.shop.exit_card(items=[item(PEN, 129), item(GOUDA_1G, 1590, grams=1)])
        receipt = rig.tap(phone)
        assert (receipt.doc.verdict, receipt.doc.reasons) == ("attendant", ("label_implausible",))
        rig.wait_state(LaneState.AUDIT)
        assert "Gouda labelled 1 g" in rig.lane.audit.decision.reasons[0].message


def test_the_attendant_asks_to_audit_the_next_shopper(
    tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair
) -> None:
    with running_lane(tmp_path, mock_factory, scanner=scanner_section(pty_pair)) as rig:
        rig.lane.request_audit("Dana")
        receipt = rig.tap(rig.shop.exit_card(items=[item(PEN, 129)]))
        assert (receipt.doc.verdict, receipt.doc.reasons) == ("attendant", ("audit",))
        rig.wait_state(LaneState.AUDIT)
        assert rig.lane.audit.asked_by == "Dana" and rig.lane.audit_requested_by is None
        assert rig.lane.audit.decision.reasons[-1].message == "asked for by the attendant Dana"
        rig.lane.audit_call_manager("Dana")
        rig.wait_state(LaneState.IDLE)
        assert rig.tap(rig.shop.exit_card(items=[item(PEN, 129)])).doc.verdict == "pass"  # once only


def test_a_fire_alarm_mid_audit_opens_the_gate_and_the_audit_holds_it_again_once_cleared(
    audit_rig: LaneRig, pty_pair: PtyPair
) -> None:
    rig = audit_rig
    phone = audited(rig, item(PEN, 129))
    scan(rig, pty_pair, PEN)
    rig.pin("fire").drive_high()
    rig.wait_state(LaneState.EMERGENCY)
    assert not rig.relay_locked()  # egress first, whatever the audit
    rig.pin("fire").drive_low()
    rig.wait_state(LaneState.AUDIT)
    assert rig.relay_locked() and rig.lane.audit.scans == [PEN]
    rig.lane.maintenance("locked", "checking the scanner")
    rig.lane.maintenance(None, "scanner fine")
    assert rig.lane.state == LaneState.AUDIT
    rig.lane.audit_let_out("Dana")
    rig.wait_state(LaneState.OPEN)
    assert rig.outbox_ids() == [shopping_list_of(phone).list]
