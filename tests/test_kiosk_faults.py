"""What goes wrong at the kiosk, each with its screen: the phone lifted too soon, another phone, a phone
without a hold, a refusal or a "no" on the phone, the scanner unplugged and back, garbage on the serial
line, a price change during the session, cancelling, the language switch.

Same stand-ins as tests/test_kiosk_shopper.py: a socat pty, pcscd + vpcd, the real payment system's feed,
Chromium at the kiosk's resolution.
"""

from __future__ import annotations

import pytest

from phone.terminal import Phone
from tests.fixtures.kiosk import KioskRig, wait_for
from tests.fixtures.payments import GUM, MILK, PEN

pytestmark = [pytest.mark.standins, pytest.mark.browser]


def shopping(rig: KioskRig, *codes: str, hold: int = 1000, name: str = "alice") -> Phone:
    phone = rig.phone(name, hold=hold)
    rig.tap_and_lift(phone, "shopping")
    for i, code in enumerate(codes, 1):
        rig.scan_shown(code, i)
    return phone


def test_a_phone_lifted_while_the_shopper_confirms_keeps_the_list_for_the_next_tap(
    kiosk_rig: KioskRig,
) -> None:
    rig = kiosk_rig
    phone = shopping(rig, PEN, MILK)
    card = phone.kiosk_card()
    virtual = rig.tap(card)
    wait_for(card.shown.is_set, "the proposal on the phone")
    rig.expect_state("confirming")
    virtual.remove()  # taken away before confirming
    assert "taken away too soon" in rig.expect_notice("phone_lost")
    rig.expect_state("shopping")
    assert rig.page.locator("#lines tr.line").count() == 2
    # Confirmed on the phone meanwhile; the next tap delivers the very same list at once.
    signed = card.confirm(card.proposal.hash())
    with rig.tap(card):
        rig.expect_state("done")
    assert rig.kiosk.signed == signed.doc


def test_a_phone_lifted_while_the_hold_is_read_is_told_to_tap_again(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    phone = rig.phone(hold=1000)

    class Lifted:
        """The phone leaves the field as the kiosk asks for the hold."""

        def __init__(self) -> None:
            self.card = phone.kiosk_card()
            self.virtual = None

        def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
            self.virtual.remove()
            return self.card.handle(ins, p1, p2, data)

    lifted = Lifted()
    lifted.virtual = rig.tap(lifted)
    assert "Tap again and hold it still" in rig.expect_notice("phone_lost")
    rig.expect_state("attract")
    rig.tap_and_lift(phone, "shopping")


def test_another_phone_during_a_session_is_not_taken_for_the_first(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    shopping(rig, PEN)
    bob = rig.phone("bob", hold=1000)
    rig.tap_and_lift(bob, "shopping")
    assert "not the phone that started this session" in rig.expect_notice("another_phone")
    assert rig.page.locator("#lines tr.line").count() == 1
    assert rig.page.inner_text("#hold-amount") == "€10.00"


def test_a_phone_without_a_hold_is_told_how_to_get_one(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    phone = rig.phone(hold=None)
    rig.tap_and_lift(phone, "attract")
    assert "Open the app, ask for a hold" in rig.expect_notice("no_hold")


def test_a_list_declined_on_the_phone_can_be_changed_and_proposed_again(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    phone = shopping(rig, PEN, MILK)
    card = phone.kiosk_card()
    with rig.tap(card):
        wait_for(card.shown.is_set, "the proposal on the phone")
        card.decline()
        assert "You declined the list" in rig.expect_notice("declined")
    rig.page.click(f"tr[data-code='{MILK}'] button.remove")
    rig.page.wait_for_function("document.querySelectorAll('#lines tr.line').length === 1")
    card.shown.clear()
    with rig.tap(card):
        wait_for(card.shown.is_set, "the new proposal on the phone")
        assert [i.code for i in card.proposal.items] == [PEN]
        card.confirm(card.proposal.hash())
        rig.expect_state("done")


def test_a_list_changed_after_the_phone_showed_it_is_refused_by_the_phone(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    phone = shopping(rig, PEN)
    card = phone.kiosk_card()
    virtual = rig.tap(card)
    wait_for(card.shown.is_set, "the proposal on the phone")
    virtual.remove()
    rig.expect_notice("phone_lost")
    rig.scan_shown(GUM, 2)  # the list on the kiosk changes while the phone still shows the old one
    with rig.tap(card):
        assert "showing an older list" in rig.expect_notice("refused_changed")
    assert rig.kiosk.state == "shopping" and card.proposal is not None and len(card.proposal.items) == 1


def test_the_scanner_unplugged_and_plugged_back(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    shopping(rig, PEN)
    rig.pty.kill()
    rig.page.wait_for_selector("#scanner-status")
    assert "not connected" in rig.expect_notice("scanner_lost")
    rig.pty.start()
    assert "working again" in rig.expect_notice("scanner_back")
    assert rig.page.locator("#scanner-status").count() == 0
    rig.scan_shown(MILK, 2)


def test_garbage_on_the_serial_line_asks_for_another_scan(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    shopping(rig, PEN)
    rig.scan(b"\x00\xff\x13garbage")  # noise on the line
    assert "scan it again" in rig.expect_notice("invalid_scan")
    rig.scan_shown(MILK, 2)
    rig.scan(b"4" * 80)  # a line far longer than any barcode
    rig.expect_notice("invalid_scan")
    assert rig.page.locator("#lines tr.line").count() == 2


def test_a_price_change_during_the_session_reprices_the_line(kiosk_rig: KioskRig) -> None:
    rig = kiosk_rig
    shopping(rig, PEN, MILK)
    stack = rig.shop.stack
    stack.admin(
        "POST",
        "/v1/catalog/prices",
        json={"items": [{"code": MILK, "name": "Milk 1 l", "category": "dairy", "unit": "each", "price": 139,
                         "valid_from": stack.now() - 1}]},
    )  # fmt: skip
    rig.service.refresh_catalog()
    assert "changed to €1.39" in rig.expect_notice("price_changed")
    assert rig.page.inner_text(f"tr[data-code='{MILK}'] .sum") == "€1.39"
    assert rig.page.inner_text("#total") == "€2.68"


def test_cancel_clears_the_session_and_the_language_switch_changes_every_text(kiosk_rig: KioskRig) -> None:
    rig, page = kiosk_rig, kiosk_rig.page
    shopping(rig, PEN)
    page.click("button[data-lang='de']")
    page.wait_for_selector(".screen[data-lang='de']")
    assert page.inner_text("#hold .label >> nth=0") == "Summe"
    assert page.inner_text("#hold-amount") == "10,00\u00a0€"
    assert page.evaluate("document.documentElement.lang") == "de"
    rig.shot("shopping-de")
    page.click("button.cancel")
    rig.expect_state("attract")
    assert "Nichts wurde abgebucht" in rig.expect_notice("cancelled")
    assert "Halten Sie Ihr Telefon an den Leser" in page.inner_text("main")
    page.click("button[data-lang='en']")
    page.wait_for_selector(".screen[data-lang='en']")
    assert "Nothing was charged" in page.inner_text("#notice")
