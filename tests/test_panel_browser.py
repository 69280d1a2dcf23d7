"""The panel in a real browser: chromium (Playwright) against the panel served by waitress on 127.0.0.1,
over a real lane (InProcessReader, MockFactory pins, a file GateStore). A CSP violation or any script
error in the browser's console fails the test (tests.fixtures.panel.panel_page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from gate.lane import LaneState
from tests.fixtures.lane import LaneRig
from tests.test_panel import tap_deny, tap_pass

pytestmark = pytest.mark.browser


def test_after_taps_the_decisions_page_shows_each_verdict_and_its_reason_codes(
    panel_rig: LaneRig, panel_url: str, panel_page: Any
) -> None:
    passed = tap_pass(panel_rig)
    tap_deny(panel_rig)
    panel_page.goto(panel_url + "/")
    panel_page.get_by_role("link", name="Decisions").click()
    rows = panel_page.locator("#decisions tbody tr")
    expect(rows).to_have_count(2)
    denied, ok = rows.nth(0), rows.nth(1)
    expect(denied.locator(".verdict")).to_have_text("deny")
    assert set(denied.locator("ul.reasons code").all_text_contents()) == {"price_mismatch", "over_guarantee"}
    expect(ok.locator(".verdict")).to_have_text("pass")
    expect(ok.locator("td.num")).to_have_text("3.77 EUR")
    expect(ok.locator("td.shopper")).to_have_text(passed._voucher.doc.shopper)
    expect(ok).to_contain_text("verify ")
    # the stylesheet came through the CSP: the verdict badge is coloured
    assert denied.locator(".verdict").evaluate("e => getComputedStyle(e).textTransform") == "uppercase"


def test_hold_open_and_back_in_service_from_the_browser_move_the_relay_and_are_lane_events(
    panel_rig: LaneRig, panel_url: str, panel_page: Any
) -> None:
    page = panel_page
    page.goto(panel_url + "/maintenance")
    relay_before = panel_rig.states("relay")

    page.click("#hold-open")  # no reason: the browser's own check keeps the form from being sent
    expect(page).to_have_url(panel_url + "/maintenance")
    assert panel_rig.relay_locked() and panel_rig.lane_events("technician") == []

    page.fill("#reason", "mopping the floor")
    page.click("#hold-open")
    expect(page.locator(".flash")).to_have_text("hold open: mopping the floor")
    assert not panel_rig.relay_locked()
    assert panel_rig.states("relay") == [*relay_before, not relay_before[-1]]
    assert panel_rig.lane.state == LaneState.MAINTENANCE

    page.get_by_role("link", name="Status").click()
    expect(page.locator("#lane-state")).to_have_text("maintenance")
    expect(page.locator("#maintenance")).to_have_text("hold open")
    expect(page.locator("#lock")).to_contain_text("released")

    page.get_by_role("link", name="Lane events").click()
    details = page.locator("#lane-events td.detail")
    expect(details.first).to_have_text("hold open from the panel: mopping the floor (by tess, technician)")
    expect(details.nth(1)).to_have_text("idle -> maintenance: maintenance open: mopping the floor")

    page.get_by_role("link", name="Maintenance").click()
    page.fill("#reason", "floor dry")
    page.click("#back-in-service")
    expect(page.locator(".flash")).to_have_text("back in service: floor dry")
    assert panel_rig.relay_locked()
    assert panel_rig.states("relay") == [*relay_before, not relay_before[-1], relay_before[-1]]
    assert panel_rig.lane.state == LaneState.IDLE
    page.get_by_role("link", name="Status").click()
    expect(page.locator("#lane-state")).to_have_text("idle")
    expect(page.locator("#lock")).to_contain_text("locked")


def test_a_hostile_reason_typed_in_the_browser_gets_the_400_page_and_changes_nothing(
    panel_rig: LaneRig, panel_url: str, panel_page: Any, console_errors: list[str]
) -> None:
    page = panel_page
    page.goto(panel_url + "/maintenance")
    relay_before = panel_rig.states("relay")
    page.fill("#reason", "<script>alert(1)</script>")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#keep-locked")
    assert answer.value.status == 400
    expect(page.locator("#error")).to_have_text("reason: '<' and '>' are not allowed")
    assert panel_rig.states("relay") == relay_before
    assert panel_rig.lane.state == LaneState.IDLE and panel_rig.lane_events("technician") == []
    assert console_errors == [
        "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    ]
    console_errors.clear()


def test_a_screenshot_of_the_status_page(
    panel_rig: LaneRig, panel_url: str, panel_page: Any, tmp_path: Path
) -> None:
    tap_pass(panel_rig)
    panel_rig.store.outbox_flag(panel_rig.store.outbox_entries()[0].charge_id, "409 conflict")
    tap_deny(panel_rig)
    panel_page.goto(panel_url + "/")
    expect(panel_page.locator("#last-tap")).to_contain_text("price_mismatch")
    expect(panel_page.locator("#flagged")).to_have_text("1 refused for good: see the outbox")
    shot = tmp_path / "status.png"
    panel_page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
