"""Requeueing every flagged charge at once from the panel's Outbox page, as `selfcheckout gate requeue --all`
does, over a real running lane (InProcessReader, MockFactory pins, a file GateStore): what the technician
sees before (a button with the count), what the POST does (every flagged charge pending again, one event
naming the technician, the forwarder woken) and what it says after the redirect (a flash with the real
number). Attendants, a post without its CSRF token and a hostile count are refused and change nothing."""

from __future__ import annotations

import html
import os
import re
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect

from gate.forwarder import Forwarder
from gate.panel import Accounts, create_app
from tests.fixtures.lane import LaneRig, wait_until
from tests.fixtures.panel import ANN, TECH, browser_login, csrf_token, login, new_page, refusal
from tests.test_panel import tap_pass

_BUTTON = re.compile(r'<form method="post" action="/outbox/requeue-all" id="requeue-all">(.*?)</form>', re.S)
_FLASH = re.compile(r'<p class="flash ok" role="status">(.*?)</p>')


def flagged(rig: LaneRig, n: int) -> list[bytes]:
    """n charges of real passes, each then refused for good by the payment system (flagged)."""
    charges = []
    for i in range(n):
        charge = tap_pass(rig)._list.doc.list
        rig.store.outbox_flag(charge, f"402 declined: card {i} blocked")
        charges.append(charge)
    return charges


def states(rig: LaneRig) -> dict[bytes, str]:
    return {e.charge_id: e.state for e in rig.store.outbox_entries(limit=1000)}


def button(page: str) -> str | None:
    """The requeue-all form's visible text (its button), or None when the page has no such form."""
    found = _BUTTON.search(page)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else None


def shown_count(page: str) -> str:
    found = re.search(r'<input type="hidden" name="shown" value="(\d+)">', page)
    assert found, "the requeue-all form posts no count"
    return found.group(1)


def flash(page: str) -> str:
    found = _FLASH.search(page)
    assert found, "no flash on the page"
    return html.unescape(found.group(1))


def requeue_all(client: FlaskClient) -> Any:
    """What the technician's click sends: the page's token and the count the button showed."""
    page = client.get("/outbox").text
    return client.post(
        "/outbox/requeue-all", data={"csrf_token": csrf_token(page), "shown": shown_count(page)}
    )


def test_the_button_counts_the_flagged_charges_and_requeues_every_one(
    panel_rig: LaneRig, panel_client: FlaskClient
) -> None:
    charges = flagged(panel_rig, 3)
    page = panel_client.get("/outbox").text
    assert button(page) == "Requeue all 3 flagged"
    assert page.index('id="requeue-all"') < page.index('id="flagged"')  # above the table
    assert all(f'name="charge_id" value="{c.hex()}"' in page for c in charges)

    response = requeue_all(panel_client)
    assert response.status_code == 303 and response.headers["Location"] == "/outbox"
    assert states(panel_rig) == dict.fromkeys(charges, "pending")

    after = panel_client.get("/outbox").text
    assert flash(after) == "3 flagged charges requeued: the forwarder sends them again"
    flagged_section = after[after.index("Flagged for a technician") : after.index("Replay incidents")]
    assert 'id="flagged"' not in flagged_section and "None." in flagged_section
    assert button(after) is None
    assert all(f'<code class="id">{c.hex()}</code>' in after for c in charges)  # now in the pending table

    [event] = panel_rig.lane_events("technician")
    assert event.detail == "3 flagged charges requeued from the panel (by tess, technician)"
    assert (event.data["count"], event.data["by"], event.data["role"]) == (3, "tess", "technician")
    assert (
        "3 flagged charges requeued from the panel (by tess, technician)" in panel_client.get("/events").text
    )


def test_one_flagged_charge_is_said_in_the_singular(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    [charge] = flagged(panel_rig, 1)
    assert button(panel_client.get("/outbox").text) == "Requeue all 1 flagged"
    assert requeue_all(panel_client).status_code == 303
    assert states(panel_rig) == {charge: "pending"}
    assert (
        flash(panel_client.get("/outbox").text) == "1 flagged charge requeued: the forwarder sends it again"
    )
    assert panel_rig.lane_events("technician")[-1].detail.startswith(
        "1 flagged charge requeued from the panel"
    )


def test_a_charge_flagged_after_the_page_loaded_is_requeued_too_and_the_flash_says_the_real_number(
    panel_rig: LaneRig, panel_client: FlaskClient
) -> None:
    charges = flagged(panel_rig, 2)
    page = panel_client.get("/outbox").text
    assert button(page) == "Requeue all 2 flagged"
    charges += flagged(panel_rig, 1)  # the forwarder flagged another one meanwhile
    response = panel_client.post("/outbox/requeue-all", data={"csrf_token": csrf_token(page), "shown": "2"})
    assert response.status_code == 303
    assert states(panel_rig) == dict.fromkeys(charges, "pending")
    message = "3 flagged charges requeued (2 when the page was loaded): the forwarder sends them again"
    assert flash(panel_client.get("/outbox").text) == message
    event = panel_rig.lane_events("technician")[-1]
    assert (event.data["count"], event.data["shown"]) == (3, 2)


def test_when_someone_else_requeued_them_first_nothing_is_requeued_and_nothing_recorded(
    panel_rig: LaneRig, panel_app: Flask, panel_client: FlaskClient
) -> None:
    flagged(panel_rig, 2)
    page = panel_client.get("/outbox").text
    other = panel_app.test_client()
    login(other, TECH[0], TECH[2])
    assert requeue_all(other).status_code == 303  # another browser got there first
    response = panel_client.post("/outbox/requeue-all", data={"csrf_token": csrf_token(page), "shown": "2"})
    assert response.status_code == 303
    assert flash(panel_client.get("/outbox").text) == "no charge was flagged: nothing was requeued"
    assert len(panel_rig.lane_events("technician")) == 1  # the other browser's


def test_with_nothing_flagged_there_is_no_button(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    tap_pass(panel_rig)  # one charge waiting, none flagged
    page = panel_client.get("/outbox").text
    assert button(page) is None and "Requeue all" not in page
    assert "1 charge not yet settled" in page


def test_an_attendant_gets_a_403_and_the_charges_stay_flagged(
    panel_rig: LaneRig, panel_app: Flask, panel_client: FlaskClient
) -> None:
    charges = flagged(panel_rig, 2)
    attendant = panel_app.test_client()
    assert login(attendant, ANN[0], ANN[2]).status_code == 303
    assert attendant.get("/outbox").status_code == 403
    token = csrf_token(attendant.get("/").text)
    refused = attendant.post("/outbox/requeue-all", data={"csrf_token": token, "shown": "2"})
    assert refused.status_code == 403 and refusal(refused.text) == "only a technician may do this"
    assert states(panel_rig) == dict.fromkeys(charges, "flagged")
    assert panel_rig.lane_events("technician") == []


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("none", "missing CSRF token: reload the page and submit again"),
        ("forged", "CSRF token is not valid here: reload the page and submit again"),
        ("another session's", "CSRF token does not match this session: reload the page and submit again"),
    ],
)
def test_a_post_without_the_sessions_csrf_token_is_refused(
    panel_rig: LaneRig, panel_app: Flask, panel_client: FlaskClient, token: str, message: str
) -> None:
    charges = flagged(panel_rig, 2)
    panel_client.get("/outbox")
    tokens = {"forged": "A" * 43, "another session's": csrf_token(panel_app.test_client().get("/login").text)}
    data = {"shown": "2"} | ({"csrf_token": tokens[token]} if token in tokens else {})
    refused = panel_client.post("/outbox/requeue-all", data=data)
    assert refused.status_code == 400 and refusal(refused.text) == message
    assert states(panel_rig) == dict.fromkeys(charges, "flagged")
    assert panel_rig.lane_events("technician") == []


@pytest.mark.parametrize(
    ("shown", "message"),
    [
        (None, "shown: missing; expected the number of flagged charges the page showed"),
        ("", "shown: '' is not a whole number"),
        ("-1", "shown: '-1' is not a whole number"),
        ("2.0", "shown: '2.0' is not a whole number"),
        ("<b>2</b>", "shown: '<b>2</b>' is not a whole number"),
        ("1" * 7, f"shown: {'1' * 7!r} is not a whole number"),
    ],
)
def test_a_hostile_count_is_refused_and_the_charges_stay_flagged(
    panel_rig: LaneRig, panel_client: FlaskClient, shown: str | None, message: str
) -> None:
    charges = flagged(panel_rig, 1)
    token = csrf_token(panel_client.get("/outbox").text)
    data = {"csrf_token": token} if shown is None else {"csrf_token": token, "shown": shown}
    refused = panel_client.post("/outbox/requeue-all", data=data)
    assert refused.status_code == 400 and refusal(refused.text) == message
    assert states(panel_rig) == dict.fromkeys(charges, "flagged")


def test_the_requeue_wakes_the_forwarder_which_sends_them_again_at_once(
    panel_rig: LaneRig, panel_accounts: Accounts
) -> None:
    charges = flagged(panel_rig, 2)
    dead = "http://127.0.0.1:1"  # nothing listens on port 1: each send is a failed attempt, counted
    # Idle, it would look again only in a minute: sending within seconds means the panel woke it.
    with Forwarder.from_config(
        panel_rig.config, panel_rig.store, url=dead, timeout_s=1, idle_poll_s=60
    ) as fwd:
        app = create_app(
            replace(panel_rig.service, forwarder=fwd), secret_key=os.urandom(32), accounts=panel_accounts
        )
        client = app.test_client()
        login(client, TECH[0], TECH[2])
        fwd.start()
        wait_until(lambda: fwd.last_sync_error, 5, "the forwarder's first round (its feed pull fails)")
        assert all(e.attempts == 0 for e in panel_rig.store.outbox_entries(limit=10))
        assert requeue_all(client).status_code == 303

        def sent_again() -> list[Any] | None:
            entries = panel_rig.store.outbox_entries(limit=10)
            return entries if all(e.attempts >= 1 for e in entries) else None

        sent = wait_until(sent_again, 5, "the requeued charges to be sent again")
        assert {e.charge_id for e in sent} == set(charges)
        assert all(e.state == "pending" and e.last_error.startswith("no answer") for e in sent)
        app.extensions["selfcheckout.watch"].close()


@pytest.mark.browser
def test_a_technician_on_a_phone_requeues_every_flagged_charge_with_one_click(
    panel_rig: LaneRig, panel_url: str, chromium: Any, console_errors: list[str]
) -> None:
    charges = flagged(panel_rig, 3)
    page = new_page(chromium, console_errors, width=390)
    try:
        browser_login(page, panel_url, TECH[0], TECH[2])
        page.get_by_role("link", name="Outbox").click()
        expect(page.locator("#flagged tbody tr")).to_have_count(3)
        click = page.get_by_role("button", name="Requeue all 3 flagged")
        expect(click).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the screen
        click.click()
        expect(page.locator(".flash")).to_have_text(
            "3 flagged charges requeued: the forwarder sends them again"
        )
        expect(page).to_have_url(panel_url + "/outbox")
        expect(page.locator("#flagged")).to_have_count(0)
        expect(page.get_by_role("button", name=re.compile("Requeue all"))).to_have_count(0)
        expect(page.locator("#pending tbody tr")).to_have_count(3)
        assert states(panel_rig) == dict.fromkeys(charges, "pending")
    finally:
        page.context.close()
    assert console_errors == [], f"browser console errors: {console_errors}"
