"""The panel in a real browser (chromium via Playwright, waitress on 127.0.0.1) over a real lane: the fault
banner when the reader goes, letting one person out on the beam, logout killing a copied cookie, the last
tap followed through an approval, filters, and pages usable 390 px wide. Screenshots of every page at
1280 and 390 px go to $PANEL_SHOTS (default /tmp/panel-shots) for a person to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from playwright.sync_api import expect

from gate.lane import LaneState
from gate.panel import Accounts, PanelServer, create_app
from tests.fixtures.lane import LaneRig, running_lane
from tests.fixtures.panel import ANN, TECH, browser_login, new_page
from tests.fixtures.standins import Pcscd
from tests.test_panel import tap_deny, tap_pass
from tests.test_panel_attendant import send_to_attendant

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("PANEL_SHOTS", "/tmp/panel-shots"))
PAGES = ["/", "/decisions", "/events", "/attendant", "/let-out", "/outbox", "/peers", "/maintenance"]


def test_the_fault_banner_appears_live_when_the_reader_goes_and_leaves_when_it_is_back(
    tmp_path: Path,
    mock_factory: MockFactory,
    virtual_phone: Any,
    pcsc: Pcscd,
    panel_accounts: Accounts,
    chromium: Any,
    console_errors: list[str],
) -> None:
    with (
        running_lane(tmp_path, mock_factory, make_card=virtual_phone) as rig,
        PanelServer(
            create_app(rig.service, secret_key=os.urandom(32), accounts=panel_accounts), "127.0.0.1", 0
        ) as server,
    ):
        page = new_page(chromium, console_errors)
        browser_login(page, server.url, TECH[0], TECH[2])
        expect(page.locator("#lane-state")).to_have_text("idle")
        expect(page.locator("#reader-connected")).to_have_text("yes")
        page.locator("#reader-readings summary").click()  # opened by hand: live updates keep it open
        pcsc.kill()  # the reader is gone with pcscd
        expect(page.locator("#problems")).to_have_class("banner bad-banner", timeout=15000)
        expect(page.locator("#lane-state")).to_have_text("fault")
        expect(page.locator("#problems li").first).to_contain_text(
            "No NFC reader is connected, so no phone can be read"
        )
        assert page.locator("#problems").bounding_box()["y"] < 150  # at the top, not under a fold
        expect(page.locator("#reader-readings")).to_have_attribute("open", "")
        pcsc.start()
        expect(page.locator("#lane-state")).to_have_text("idle", timeout=20000)
        expect(page.locator("#problems li")).to_have_count(0)
        page.context.close()
    assert console_errors == []


def test_let_one_out_from_the_panel_lets_exactly_one_person_through_on_the_beam(
    panel_rig: LaneRig, panel_url: str, panel_page: Any
) -> None:
    page = panel_page
    page.get_by_role("link", name="Let one out").click()
    page.get_by_label("a shopper whose phone died").check()
    page.fill("#note", "battery flat")
    page.click("#let-out")
    expect(page.locator(".flash")).to_have_text(
        "the gate is open for one person (a shopper whose phone died)"
    )
    assert not panel_rig.relay_locked() and panel_rig.lane.state == LaneState.OPEN
    event = panel_rig.wait_event("let_out")
    assert event.detail == "one person let out by tess (technician): phone_dead (battery flat)"
    assert (event.data["by"], event.data["why"]) == ("tess (technician)", "phone_dead")

    panel_rig.pulse("beam")  # one person walks through
    panel_rig.wait_state(LaneState.IDLE)
    assert panel_rig.relay_locked()
    assert panel_rig.wait_event("passage").detail == "the person let out walked through"
    panel_rig.pulse("beam")  # a second one behind them: the gate is shut, an alarm
    assert panel_rig.wait_event("alarm").data["code"] == "tailgating"

    page.get_by_role("link", name="Lane events").click()
    expect(page.locator("#lane-events td.detail").filter(has_text="let out by tess")).to_have_count(1)


def test_the_request_to_exit_button_opens_for_one_person_and_is_recorded(panel_rig: LaneRig) -> None:
    panel_rig.pulse("exit")
    panel_rig.wait_state(LaneState.OPEN)
    assert not panel_rig.relay_locked()
    assert panel_rig.wait_event("let_out").data["by"] == "request-to-exit button"
    panel_rig.pulse("beam")
    panel_rig.wait_state(LaneState.IDLE)
    assert panel_rig.relay_locked()
    tap_pass(panel_rig)  # a shopper after them passes as ever


def test_logout_in_the_browser_kills_a_copied_cookie(
    panel_url: str, panel_page: Any, chromium: Any, console_errors: list[str]
) -> None:
    [cookie] = panel_page.context.cookies()
    assert cookie["name"] == "panel_session" and cookie["httpOnly"]
    thief = new_page(chromium, console_errors)
    thief.context.add_cookies([cookie])
    thief.goto(panel_url + "/decisions")
    expect(thief.locator("h1")).to_have_text("Recent decisions")

    panel_page.click("#logout")
    expect(panel_page).to_have_url(panel_url + "/login")
    thief.goto(panel_url + "/decisions")
    expect(thief).to_have_url(panel_url + "/login?next=/decisions")
    thief.context.close()


def test_the_last_tap_follows_an_attendants_approval_live(
    panel_rig: LaneRig, panel_url: str, panel_page: Any
) -> None:
    list_id = send_to_attendant(panel_rig)
    expect(panel_page.locator("#last-outcome")).to_contain_text(
        "Not charged, gate not opened: waiting for an attendant."
    )
    expect(panel_page.locator("#last-tap")).to_contain_text(
        "An item needs a check by staff (age-restricted or security-tagged)."
    )
    panel_rig.lane.approve(list_id, "ann")
    expect(panel_page.locator("#last-outcome")).to_contain_text("Approved by ann at ")
    expect(panel_page.locator("#last-outcome")).to_contain_text("charged, gate opened.")


def test_decisions_filter_by_verdict_reason_and_list(
    panel_rig: LaneRig, panel_url: str, panel_page: Any
) -> None:
    passed = tap_pass(panel_rig)
    tap_deny(panel_rig)
    page = panel_page
    page.goto(panel_url + "/decisions")
    expect(page.locator("#decisions tbody tr")).to_have_count(2)
    page.select_option("select[name=verdict]", "deny")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#decisions tbody tr")).to_have_count(1)
    expect(page.locator("#decisions .verdict")).to_have_text("deny")
    page.goto(panel_url + "/decisions")
    page.select_option("select[name=reason]", "price_mismatch")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#decisions li[data-code=price_mismatch]")).to_contain_text(
        "A price has changed. Refresh the catalog, scan the item again and confirm."
    )
    page.goto(panel_url + "/decisions?list=" + passed._list.doc.list.hex()[:8])
    expect(page.locator("#decisions .verdict")).to_have_text("pass")
    page.goto(panel_url + "/decisions?since=2999-01-01T00:00")
    expect(page.locator("#decisions-live")).to_have_text("No decision matches.")


@pytest.fixture
def busy_lane(panel_rig: LaneRig) -> Iterator[LaneRig]:
    """A lane with a pass, a flagged charge, a denial and a list waiting for an attendant."""
    tap_pass(panel_rig)
    panel_rig.store.outbox_flag(panel_rig.store.outbox_entries()[0].charge_id, "409 conflict: " + "x" * 300)
    tap_deny(panel_rig)
    send_to_attendant(panel_rig)
    yield panel_rig


@pytest.mark.parametrize("width", [390, 1280])
def test_every_page_fits_its_width_and_is_photographed(
    busy_lane: LaneRig, panel_url: str, chromium: Any, console_errors: list[str], width: int
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(chromium, console_errors, width=width)
    page.goto(panel_url + "/login")
    page.screenshot(path=str(SHOTS / f"login-{width}.png"), full_page=True)
    browser_login(page, panel_url, TECH[0], TECH[2])
    paths = [a.get_attribute("href") for a in page.locator("header nav a").all()]
    assert set(PAGES) <= set(paths)  # every page a technician reaches from the menu, the others too
    for path in paths:
        page.goto(panel_url + path)
        name = path.strip("/") or "status"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{path} is {wide} px wide at {width}"
        for link in page.locator("header nav a").all():
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, path
    page.context.close()


def test_an_attendant_sees_their_menu_only(panel_url: str, anon_page: Any) -> None:
    browser_login(anon_page, panel_url, ANN[0], ANN[2])
    links = anon_page.locator("header nav a").all_text_contents()
    assert links == ["Status", "Decisions", "Lane events", "Attendant", "Audit", "Let one out", "Peers"]
