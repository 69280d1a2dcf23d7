"""A shopper at the kiosk, in Chromium at the kiosk's resolution: tap, scan, change, tap, confirm, leave.

The scanner is a socat pty, the reader pcscd + vpcd with the shopper's phone as a virtual card, the
catalog the payment system's signed feed, and the list the phone signs is then taken through the real
gate's legality check.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from selfcheckout.cli import main
from tests.fixtures.kiosk import BLOCKED, CAKE_450, GOUDA_412G, UNKNOWN, WINE, KioskRig, wait_for
from tests.fixtures.payments import GUM, MILK, PEN

pytestmark = [pytest.mark.standins, pytest.mark.browser]


def lines(rig: KioskRig) -> list[tuple[str, str, str]]:
    """Each line on the screen: its name and detail, its quantity, its sum."""
    rows = rig.page.locator("#lines tr.line")
    return [
        (
            " ".join(rows.nth(i).locator(".name").inner_text().split()),
            rows.nth(i).locator(".count").inner_text(),
            rows.nth(i).locator(".sum").inner_text(),
        )
        for i in range(rows.count())
    ]


def test_a_shopper_builds_the_list_at_the_kiosk_and_signs_it_on_the_phone(kiosk_rig: KioskRig) -> None:
    rig, page = kiosk_rig, kiosk_rig.page
    assert "Tap your phone on the reader to start" in page.inner_text("main")
    rig.shot("attract")
    phone = rig.phone(hold=2500)

    # First tap: the hold is read and shown.
    rig.tap_and_lift(phone, "shopping")
    assert page.inner_text("#hold-amount") == "€25.00"
    assert page.inner_text("#total") == "€0.00"

    # Scans: each adds a line at once with the running total against the hold.
    rig.scan_shown(PEN, 1)
    rig.scan_shown(PEN, 1)  # the same piece again: one line, quantity 2
    assert lines(rig) == [("Stabilo pen €1.29", "2", "€2.58")]
    rig.scan_shown(GOUDA_412G, 2)  # a weight label: 412 g at 15.90/kg
    assert lines(rig)[1] == ("Gouda 412 g × €15.90/kg", "1", "€6.55")
    rig.scan_shown(CAKE_450, 3)  # a price label
    assert lines(rig)[2] == ("Cake €4.50", "1", "€4.50")
    rig.scan_shown(WINE, 4)  # age-restricted: flagged for the attendant
    assert lines(rig)[3] == ("Red wine Staff check at the exit €6.99", "1", "€6.99")
    assert "staff will check it at the exit" in rig.expect_notice("attendant_item")
    assert (page.inner_text("#total"), page.inner_text("#left")) == ("€20.62", "€4.38")
    # One more bottle would take the total over the hold: the screen says so, and nothing is added.
    rig.scan(WINE)
    assert "over your hold of €25.00. Not added." in rig.expect_notice("over_hold")
    assert lines(rig)[3][1] == "1" and page.inner_text("#total") == "€20.62"
    rig.shot("shopping")

    # Codes the kiosk cannot sell say so, and add nothing.
    rig.scan(UNKNOWN)
    assert "not in the catalog" in rig.expect_notice("unknown_code")
    rig.scan(BLOCKED)
    assert "cannot be sold here" in rig.expect_notice("blocked_code")
    rig.scan("400638133")  # a torn read: digits cut short
    assert "scan it again" in rig.expect_notice("invalid_scan")
    assert len(lines(rig)) == 4

    # The touch screen: one more pen, then the wine removed.
    page.click(f"tr[data-code='{PEN}'] button[aria-label='One more']")
    page.wait_for_function(f"document.querySelector(\"tr[data-code='{PEN}'] .count\").textContent === '3'")
    page.click(f"tr[data-code='{WINE}'] button.remove")
    page.wait_for_function("document.querySelectorAll('#lines tr.line').length === 3")
    assert page.inner_text("#total") == "€14.92"  # 3 x 1.29 + 6.55 + 4.50

    # The finishing tap: the phone shows the list, the shopper confirms there, the kiosk verifies.
    card = phone.kiosk_card()
    virtual = rig.tap(card)
    try:
        wait_for(card.shown.is_set, "the proposal on the phone")
        rig.expect_state("confirming")
        rig.shot("confirming")
        shown = [(line.name, line.qty, line.total) for line in phone.kiosk_lines(card.proposal)]
        assert shown == [("Stabilo pen", 3, 387), ("Gouda", 1, 655), ("Cake", 1, 450)]
        card.confirm(card.proposal.hash())
        rig.expect_state("done")
    finally:
        virtual.remove()
    assert "walk to the exit" in page.inner_text("#done")
    rig.shot("done")
    signed = rig.kiosk.signed
    assert signed is not None and signed.total == 1492
    visit = phone.visit()
    assert visit is not None and visit.signed_list is not None and visit.signed_list.doc == signed


def test_the_list_signed_at_the_kiosk_passes_the_gate(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    phone = rig.phone(hold=1000)
    rig.shop.state = phone.state.path  # the gate's tap takes this phone
    rig.tap_and_lift(phone, "shopping")
    rig.scan_shown(MILK, 1)
    rig.scan_shown(GUM, 2)
    card = phone.kiosk_card()
    with rig.tap(card):
        wait_for(card.shown.is_set, "the proposal on the phone")
        card.confirm(card.proposal.hash())
        rig.expect_state("done")
    tapped = rig.shop.tap()
    assert tapped.verdict == "pass", tapped.decision.to_json()
    assert tapped.receipt.doc.total == 218


def test_the_reference_phone_on_the_command_line_taps_the_kiosk_twice(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    phone = rig.phone(hold=1000)
    runner = CliRunner()
    state = ["phone", "--state", str(phone.state.path)]
    first = runner.invoke(main, [*state, "kiosk", "--timeout", "10"])
    assert first.exit_code == 0, first.output
    assert "the kiosk read your hold: scan your goods there, then tap again to finish" in first.output
    rig.expect_state("shopping")
    rig.scan_shown(PEN, 1)
    rig.scan_shown(GOUDA_412G, 2)
    second = runner.invoke(main, [*state, "kiosk", "--timeout", "10"], input="y\n")
    assert second.exit_code == 0, second.output
    assert "the kiosk kiosk-01 proposes this list:" in second.output
    assert "1 x Stabilo pen at 1.29 EUR: 1.29 EUR" in second.output
    assert "Gouda, 412 g at 15.90 EUR/kg: 6.55 EUR" in second.output
    assert "Sign this list with your key? [y/N]: y" in second.output
    assert "signed with key" in second.output and "tap the phone at the exit gate" in second.output
    rig.expect_state("done")
    assert phone.visit().signed_list.doc.total == 784  # type: ignore[union-attr]
