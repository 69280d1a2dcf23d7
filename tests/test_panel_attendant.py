"""The attendant check: a list with goods only staff may release is sent to an attendant, who approves it in
the panel; then the charge is committed with their name and the gate opens. Over a real running lane."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from gate.lane import LaneState
from gate.protocol.parties import item
from tests.fixtures.lane import LaneRig, shopping_list_of
from tests.fixtures.panel import csrf_token, refusal
from tests.fixtures.store import PEN, WHISKY


def send_to_attendant(rig: LaneRig) -> bytes:
    phone = rig.shop.exit_card(items=[item(PEN, 129), item(WHISKY, 3499)])
    receipt = rig.tap(phone)
    assert (receipt.doc.verdict, receipt.doc.reasons) == ("attendant", ("attendant_item",))
    return shopping_list_of(phone).list


def test_an_attendant_approves_and_the_gate_opens_with_the_charge_committed_in_their_name(
    panel_rig: LaneRig, panel_client: FlaskClient
) -> None:
    list_id = send_to_attendant(panel_rig)
    assert panel_rig.outbox_ids() == [] and panel_rig.relay_locked()
    page = panel_client.get("/attendant").text
    assert list_id.hex() in page and "attendant_item" in page and "36.28 EUR" in page
    assert "An item needs a check by staff (age-restricted or security-tagged)." in page
    assert 'name="attendant"' not in page  # the name is the account's, not typed
    response = panel_client.post(
        "/attendant/approve",
        data={"csrf_token": csrf_token(page), "list_id": list_id.hex()},
    )
    assert response.status_code == 303
    panel_rig.wait_state(LaneState.OPEN)
    assert not panel_rig.relay_locked()
    assert panel_rig.outbox_ids() == [list_id]
    passed = [e for e in panel_rig.decisions() if e.verdict == "pass"]
    assert [(e.list_id, e.attendant) for e in passed] == [(list_id, "tess")]  # the logged-in account
    assert panel_rig.wait_event("attendant_approved", attendant="tess").data["list"] == list_id.hex()
    after = panel_client.get("/attendant").text
    assert "approved by tess" in after and 'id="waiting"' not in after  # approved once, gone from the list
    again = panel_client.post(
        "/attendant/approve",
        data={"csrf_token": csrf_token(page), "list_id": list_id.hex()},
    )
    assert again.status_code == 409
    assert refusal(again.text) == f"no attendant check is waiting for list {list_id.hex()}"
    assert panel_rig.outbox_ids() == [list_id]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("attendant", "Dana", "unexpected field 'attendant'"),
        ("list_id", "zz", "list_id: 'zz' is not 32 hexadecimal digits"),
    ],
)
def test_a_hostile_approval_is_refused_and_nothing_is_charged(
    panel_rig: LaneRig, panel_client: FlaskClient, field: str, value: str, message: str
) -> None:
    list_id = send_to_attendant(panel_rig)
    page = panel_client.get("/attendant").text
    data = {"csrf_token": csrf_token(page), "list_id": list_id.hex(), field: value}
    response = panel_client.post("/attendant/approve", data=data)
    assert response.status_code == 400
    assert refusal(response.text) == message
    assert panel_rig.outbox_ids() == [] and panel_rig.relay_locked()
    assert list_id.hex() in panel_client.get("/attendant").text  # still waiting
