"""The attendant's audit as a person does it: chromium (Playwright) on the panel, a socat pty pair playing
the lane's serial scanner, the shopper's phone on vpcd through pcscd (or the in-process reader, as the other
panel tests), over a real running lane. The page shows scanned against listed, line by line, and the
difference in money; the attendant lets the shopper out or calls a manager."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from playwright.sync_api import expect

from gate.barcodes import variable_code
from gate.lane import LaneState
from gate.panel import Accounts, PanelServer, create_app
from gate.protocol.parties import item
from tests.fixtures.lane import LaneRig, running_lane, shopping_list_of, wait_until
from tests.fixtures.panel import QUICK_HASH, browser_login
from tests.fixtures.standins import PtyPair
from tests.fixtures.store import EAN8, MILK, PEN, WEIGHT, WHISKY
from tests.test_lane_audit import scanner_section

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("AUDIT_SCREENSHOTS", "/tmp/audit-screenshots"))


@dataclass
class AuditDesk:
    """A running lane with a scanner on a pty, its panel served on 127.0.0.1, and a browser page on it."""

    rig: LaneRig
    pty: PtyPair
    url: str
    page: Any

    def open(self) -> None:
        self.page.goto(self.url + "/audit")

    def scan(self, *codes: str) -> None:
        """Scan at the lane's scanner, as the attendant does; until the open page, never reloaded, shows
        each read (the panel's live updates)."""
        audit = self.rig.lane.audit
        reads = len(audit.scans) + len(audit.unreadable) + len(codes)
        self.pty.write(b"".join(code.encode() + b"\r" for code in codes))
        expect(self.page.locator("#audit-live")).to_have_attribute("data-reads", str(reads))

    def row(self, name: str) -> Any:
        return self.page.locator("#audit-lines tbody tr", has_text=name)

    def cells(self, name: str) -> list[str]:
        """Listed, scanned and the difference of one product's row, as the attendant reads them."""
        cells = self.row(name).locator("td")
        return [
            cells.nth(1).inner_text().strip(),
            cells.nth(2).locator(".count").inner_text(),
            cells.nth(3).inner_text().strip(),
        ]


@contextlib.contextmanager
def audit_desk(
    folder: Path, factory: MockFactory, pty: PtyPair, page: Any, *, make_card: Any = None, **sections: Any
) -> Iterator[AuditDesk]:
    """A lane (phones on vpcd cards from `make_card`, else in-process) with its panel and scanner."""
    with running_lane(folder, factory, make_card=make_card, scanner=scanner_section(pty), **sections) as rig:
        wait_until(lambda: rig.service.scanner.health()["connected"], 3, "the lane's scanner open")
        accounts = Accounts(folder / "panel.db", hasher=QUICK_HASH)
        accounts.add("dana", "attendant", "246810")
        app = create_app(rig.service, secret_key=os.urandom(32), accounts=accounts)
        with accounts, PanelServer(app, "127.0.0.1", 0) as server:
            browser_login(page, server.url, "dana", "246810")
            try:
                yield AuditDesk(rig, pty, server.url, page)
            finally:
                page.goto(
                    "about:blank"
                )  # nothing of the page (a favicon) still loading when the server stops


@pytest.fixture
def desk(tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair, anon_page: Any) -> Iterator[AuditDesk]:
    """The policy audits every list (audit_per_mille = 1000)."""
    with audit_desk(tmp_path, mock_factory, pty_pair, anon_page, policy={"audit_per_mille": 1000}) as d:
        yield d


def screenshots(desk: AuditDesk, chromium: Any, name: str) -> list[Path]:
    """The audit page at 1280 and 390 px wide (a phone in the attendant's hand), under SHOTS."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for width in (1280, 390):
        context = chromium.new_context(viewport={"width": width, "height": 900})
        context.add_cookies(desk.page.context.cookies())  # the attendant's session
        page = context.new_page()
        page.goto(desk.url + "/audit")
        shot = SHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        context.close()
        assert overflow <= 0, f"the audit page is wider than the screen at {width} px"
        assert shot.read_bytes().startswith(b"\x89PNG")
        shots.append(shot)
    return shots


def test_picked_by_the_policy_scanned_equal_to_listed_and_let_out_through_pcscd(
    tmp_path: Path,
    mock_factory: MockFactory,
    pty_pair: PtyPair,
    anon_page: Any,
    request: pytest.FixtureRequest,
    chromium: Any,
) -> None:
    with audit_desk(
        tmp_path,
        mock_factory,
        pty_pair,
        anon_page,
        make_card=request.getfixturevalue("virtual_phone"),
        policy={"audit_per_mille": 1000},
    ) as desk:
        rig = desk.rig
        phone = rig.shop.exit_card(items=[item(PEN, 129, 2), item(MILK, 119)])
        receipt = rig.tap(phone)
        list_id = shopping_list_of(phone).list
        assert (receipt.doc.verdict, receipt.doc.reasons) == ("attendant", ("audit",))
        rig.wait_state(LaneState.AUDIT)

        desk.open()
        page = desk.page
        expect(page.locator(".audit-title")).to_contain_text(list_id.hex())
        expect(page.locator("#audit-why")).to_contain_text("drawn for a random check")
        expect(page.locator("#scanner-state")).to_contain_text("Scanner ready")
        expect(page.locator("#audit-result")).to_have_text("Nothing scanned yet.")
        assert desk.cells("Stabilo pen") == ["2", "0", "-2.58 EUR"]

        desk.scan(PEN, MILK)
        expect(page.locator("#audit-result")).to_contain_text("differs from the list by -1.29 EUR")
        desk.scan(PEN)
        expect(page.locator("#audit-result")).to_have_text("Scanned = listed: 3 item(s), 3.77 EUR.")
        assert desk.cells("Stabilo pen") == ["2", "2", "-"] and desk.cells("Milk 1 l") == ["1", "1", "-"]
        screenshots(desk, chromium, "audit-equal")
        assert rig.relay_locked() and rig.outbox_ids() == []

        page.click("#let-out")
        expect(page.locator("#audits tbody tr").first).to_contain_text("let out by dana")
        rig.wait_state(LaneState.OPEN)
        assert not rig.relay_locked() and rig.outbox_ids() == [list_id]
        expect(page.locator("#audits tbody tr").first).to_contain_text("let out by dana")
        [record] = rig.store.recent_audits()
        assert (record.list_id, record.scanned, record.difference) == (list_id, (PEN, MILK, PEN), 0)


def test_scanned_differs_the_difference_in_money_and_let_out_recorded_with_both_lists(
    desk: AuditDesk, chromium: Any
) -> None:
    rig, page = desk.rig, desk.page
    phone = rig.shop.exit_card(items=[item(PEN, 129), item(EAN8, 99, 2)])
    rig.tap(phone)
    rig.wait_state(LaneState.AUDIT)
    page.goto(desk.url + "/attendant")  # the list waits there too, but only its audit lets it out
    expect(page.locator("#waiting tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name="Approve and open")).to_have_count(0)
    page.get_by_role("link", name="Audit: re-scan the basket").click()
    expect(page).to_have_url(desk.url + "/audit")
    desk.scan(PEN, WHISKY, EAN8, WHISKY)
    expect(page.locator("#audit-result")).to_have_text("The basket differs from the list by +68.99 EUR.")
    assert desk.cells("Single malt") == ["0", "2", "+69.98 EUR"]
    assert desk.cells("Chewing gum") == ["2", "1", "-0.99 EUR"]
    expect(page.locator("#listed-total")).to_have_text("3.27 EUR")
    expect(page.locator("#scanned-total")).to_have_text("72.26 EUR")
    expect(page.locator("#difference")).to_have_text("+68.99 EUR")
    desk.row("Single malt").get_by_role("button", name="-1").click()  # scanned twice by mistake
    expect(page.locator("#difference")).to_have_text("+34.00 EUR")
    screenshots(desk, chromium, "audit-differs")

    page.click("#let-out")
    rig.wait_state(LaneState.OPEN)
    list_id = shopping_list_of(phone).list
    assert rig.outbox_ids() == [list_id]  # the signed list is charged, as signed
    [record] = rig.store.recent_audits()
    assert (record.outcome, record.attendant, record.difference) == ("let_out", "dana", 3400)
    assert record.scanned == (PEN, WHISKY, EAN8)
    assert [(line["name"], line["listed"], line["scanned"]) for line in record.lines] == [
        ("Stabilo pen", 1, 1),
        ("Chewing gum", 2, 1),
        ("Single malt", 0, 1),
    ]
    passed = [e for e in rig.decisions() if e.verdict == "pass"]
    assert [(e.list_id, e.attendant) for e in passed] == [(list_id, "dana")]
    expect(page.locator("#audits tbody tr").first).to_contain_text("+34.00 EUR")


def test_asked_by_the_attendant_differs_and_a_manager_is_called(
    tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair, anon_page: Any
) -> None:
    with audit_desk(tmp_path, mock_factory, pty_pair, anon_page) as desk:
        rig, page = desk.rig, desk.page
        desk.open()
        expect(page.locator("#no-audit")).to_be_visible()
        page.click("#audit-next")
        expect(page.locator("#requested")).to_have_text(
            "The next shopper's list will be audited (asked by dana)."
        )
        phone = rig.shop.exit_card(items=[item(PEN, 129)])
        assert rig.tap(phone).doc.reasons == ("audit",)
        rig.wait_state(LaneState.AUDIT)
        desk.open()
        expect(page.locator("#audit-why")).to_have_text("audit asked for by the attendant dana")
        desk.scan(PEN, WHISKY)
        expect(page.locator("#audit-result")).to_have_text("The basket differs from the list by +34.99 EUR.")
        page.click("#call-manager")
        # the live refresh racing the redirect does not eat the message
        expect(page.locator(".flash")).to_have_text(
            "dana called a manager: the gate stays shut; the audit is recorded"
        )
        expect(page.locator("#audits tbody tr").first).to_contain_text("manager called by dana")
        rig.wait_state(LaneState.IDLE)
        assert rig.relay_locked() and rig.outbox_ids() == []
        expect(page.locator("#audits tbody tr").first).to_contain_text("manager called by dana")
        assert rig.store.recent_audits()[0].difference == 3499
        assert rig.wait_event("audit", outcome="manager").data["attendant"] == "dana"


def test_scanner_unplugged_mid_audit_is_shown_the_scans_are_kept_and_counting_goes_on(
    desk: AuditDesk,
) -> None:
    rig, page = desk.rig, desk.page
    rig.tap(rig.shop.exit_card(items=[item(PEN, 129), item(MILK, 119)]))
    rig.wait_state(LaneState.AUDIT)
    desk.open()
    desk.scan(PEN)
    desk.pty.write(b"\xff\xfe garbage\r")  # a torn, garbled line: an event, nothing counted
    wait_until(
        lambda: any(e.data.get("kind") == "invalid-bytes" for e in rig.lane_events("scanner")), 3, "an event"
    )
    desk.pty.kill()
    # the open page says so by itself (the lane event of the unplug wakes it)
    expect(page.locator("#scanner-state")).to_contain_text("Scanner unplugged or not answering")
    expect(page.locator("#scanner-state")).to_contain_text("The 1 scan(s) so far are kept.")
    assert desk.cells("Stabilo pen") == ["1", "1", "-"]
    assert rig.lane.state == LaneState.AUDIT and rig.relay_locked()

    desk.pty.start()
    wait_until(lambda: rig.service.health()["scanner"]["connected"], 3, "the scanner back")
    desk.scan(MILK)
    expect(page.locator("#scanner-state")).to_contain_text("Scanner ready")
    expect(page.locator("#audit-result")).to_have_text("Scanned = listed: 2 item(s), 2.48 EUR.")
    wait_until(
        lambda: any(e.data.get("kind") == "reconnected" for e in rig.lane_events("scanner")),
        3,
        "replug saved",
    )
    page.get_by_role("link", name="Lane events").click()
    details = page.locator("#lane-events td.detail").all_inner_texts()
    assert any(d.startswith("port-lost:") for d in details) and any(
        d.startswith("reconnected:") for d in details
    )
    page.get_by_role("link", name="Status").click()
    expect(page.locator("#scanner-connected")).to_have_text("yes")
    expect(page.locator("#scanner-audit")).to_have_text("in progress, 2 scanned")


def test_an_implausible_label_sends_the_list_to_the_audit_with_its_reason(
    tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair, anon_page: Any, chromium: Any
) -> None:
    gouda_1g = variable_code(WEIGHT, "00231", 1)
    with audit_desk(tmp_path, mock_factory, pty_pair, anon_page) as desk:
        rig, page = desk.rig, desk.page
        receipt = rig.tap(rig.shop.exit_card(items=[item(PEN, 129), item(gouda_1g, 1590, grams=1)]))
        assert (receipt.doc.verdict, receipt.doc.reasons) == ("attendant", ("label_implausible",))
        rig.wait_state(LaneState.AUDIT)
        desk.open()
        expect(page.locator("#audit-why")).to_contain_text("Gouda labelled 1 g, plausible 50 g to 2000 g")
        desk.scan(PEN, gouda_1g)
        expect(page.locator("#audit-result")).to_contain_text("Scanned = listed")
        expect(desk.row("Gouda").locator(".implausible")).to_have_text("label implausible: check it")
        assert desk.row("Stabilo pen").locator(".implausible").count() == 0
        screenshots(desk, chromium, "audit-label")
        page.click("#call-manager")
        expect(page.locator("#audits tbody tr").first).to_contain_text("manager called by dana")
        rig.wait_state(LaneState.IDLE)
        assert rig.store.recent_audits()[0].reasons == ("label_implausible",)


def test_a_waiting_list_is_re_scanned_on_the_attendants_word_and_cannot_be_approved_meanwhile(
    tmp_path: Path, mock_factory: MockFactory, pty_pair: PtyPair, anon_page: Any
) -> None:
    with audit_desk(tmp_path, mock_factory, pty_pair, anon_page) as desk:
        rig, page = desk.rig, desk.page
        phone = rig.shop.exit_card(items=[item(PEN, 129), item(WHISKY, 3499)])
        assert rig.tap(phone).doc.reasons == ("attendant_item",)
        list_id = shopping_list_of(phone).list
        desk.open()
        waiting = page.locator("#waiting tbody tr", has_text=list_id.hex()[:12])
        waiting.get_by_role("button", name="Re-scan basket").click()
        expect(page.locator("#audit-why")).to_contain_text("audit asked for by the attendant dana")
        assert rig.lane.state == LaneState.AUDIT

        page.get_by_role("link", name="Attendant").click()
        # no approval while its audit runs: the list is let out from the audit page
        expect(page.get_by_role("link", name="Audit: re-scan the basket")).to_be_visible()
        expect(page.get_by_role("button", name="Approve and open")).to_have_count(0)
        assert rig.outbox_ids() == [] and rig.relay_locked()

        desk.open()
        desk.scan(WHISKY, PEN)
        page.click("#let-out")
        expect(page.locator("#audits tbody tr").first).to_contain_text("let out by dana")
        rig.wait_state(LaneState.OPEN)
        assert rig.outbox_ids() == [list_id]
        assert rig.store.recent_audits()[0].reasons == ("attendant_item", "audit")
