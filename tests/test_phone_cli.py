"""Claims 1-4 of the phone, step by step through `selfcheckout phone ...`, against the real payment system on
127.0.0.1 and a real gate over the in-process NFC reader."""

from __future__ import annotations

import stat

import click
import pytest
from click.testing import CliRunner

from gate.protocol.documents import ShoppingList, open_signed
from phone.terminal import Phone
from selfcheckout.cli import main
from tests.fixtures.payments import GUM, MILK, PEN
from tests.fixtures.phone import PhoneShop


def test_init_makes_a_private_key_once(phone_shop: PhoneShop) -> None:
    out = phone_shop.cli("init").output
    key_file = phone_shop.state / "shopper.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(phone_shop.state.stat().st_mode) == 0o700
    assert phone_shop.phone.key_id in out
    before = key_file.read_bytes()
    again = phone_shop.cli("init", ok=False)
    assert "already has a shopper key" in again.output
    assert key_file.read_bytes() == before


def test_enrol_binds_the_key_and_pins_ps_and_gate_keys(phone_shop: PhoneShop) -> None:
    stack = phone_shop.stack
    phone = phone_shop.enrolled()
    shopper = stack.admin("GET", "/v1/shoppers/alice")
    assert shopper["key_id"] == phone.key_id and shopper["bank_account"] == "DE-0001"
    profile = phone.profile
    assert profile.store == stack.store_id and profile.currency == "EUR"
    assert profile.ps_keys == (stack.key.public_key,)
    assert profile.gates == {"gate-01": (phone_shop.gate.side.key.public_key,)}
    assert (phone_shop.state / "catalog.json").exists()
    # Enrolling again (e.g. to re-pin after a key rotation) is a no-op at the PS; without the token the
    # gate keys come from the signed feed all the same.
    phone_shop.cli("enrol", "--ps", stack.url, "--user", "alice", "--bank-account", "DE-0001",
                   "--token", stack.admin_token, "--ps-key-id", stack.key.key_id)  # fmt: skip
    out = phone_shop.cli("enrol", "--ps", stack.url, "--user", "alice", "--bank-account", "DE-0001").output
    assert "on first use: check it against the one the store shows" in out
    assert phone.profile.gates == profile.gates


def test_enrol_with_the_ps_key_file_refuses_a_ps_signing_with_another_key(
    phone_shop: PhoneShop, tmp_path
) -> None:
    from gate.protocol.keys import SigningKey, write_public_key

    phone_shop.cli("init")
    other = tmp_path / "ps.pub"
    write_public_key(other, SigningKey.generate().public_key)
    result = phone_shop.cli("enrol", "--ps", phone_shop.stack.url, "--user", "alice",
                            "--ps-key-file", str(other), ok=False)  # fmt: skip
    assert "none has the key id" in result.output
    assert not (phone_shop.state / "profile.json").exists()


def test_claim3_hold_from_the_shoppers_own_estimate(phone_shop: PhoneShop) -> None:
    """The estimate is read from the shopper, sent as a signed hold request; the voucher is verified."""
    phone = phone_shop.enrolled(top_up=500)
    out = phone_shop.cli("hold", input="30.50\n").output  # asked interactively
    assert "How much do you expect to spend" in out
    assert "30.50 EUR verified (5.00 EUR stored value, 25.50 EUR at the bank)" in out
    visit = phone.visit()
    assert visit is not None
    voucher = visit.voucher.verify_with(phone_shop.stack.key.public_key)
    assert (voucher.amount, voucher.stored_value, voucher.bank) == (3050, 500, 2550)
    assert voucher.shopper_key == phone.public_key
    held = phone_shop.stack.admin("GET", f"/v1/holds/{voucher.hold.hex()}")
    assert held["state"] == "open" and held["amount"] == 3050
    assert not (phone_shop.state / "pending-hold.cbor").exists()
    # One hold at a time, unless the shopper asks to replace it.
    assert "shop with it" in phone_shop.cli("hold", "--estimate", "10", ok=False).output
    phone_shop.cli("hold", "--estimate", "10", "--replace")
    assert phone.visit().voucher.doc.amount == 1000  # type: ignore[union-attr]


def test_claim3_refusals_by_the_ps_are_one_line(phone_shop: PhoneShop) -> None:
    phone_shop.cli("init")
    phone_shop.cli(
        "enrol", "--ps", phone_shop.stack.url, "--user", "bob", "--token", phone_shop.stack.admin_token
    )
    result = phone_shop.cli("hold", "--estimate", "20", ok=False)  # no bank account, no stored value
    assert result.output.count("\n") == 1
    assert "insufficient_funds, HTTP 402" in result.output
    assert "1.001" in phone_shop.cli("hold", "--estimate", "1.001", ok=False).output
    assert phone_shop.phone.visit() is None


def test_claim4_scan_item_by_item_with_the_running_total_and_go_on(phone_shop: PhoneShop) -> None:
    phone = phone_shop.enrolled(top_up=500)
    phone_shop.cli("hold", "--estimate", "3")
    out = phone_shop.cli("scan", PEN, input="y\n").output  # go on shopping? yes
    assert "1 x Stabilo pen at 1.29 EUR: 1.29 EUR" in out
    assert "total 1.29 EUR of your 3.00 EUR hold (1.71 EUR left)" in out
    assert "Go on shopping?" in out
    out = phone_shop.cli("scan", f"]E0{PEN}", "--more").output  # with the scanner's AIM prefix
    assert "total 2.58 EUR" in out and "Go on shopping?" not in out
    out = phone_shop.cli("scan", MILK, "--more").output
    assert "total 3.77 EUR of your 3.00 EUR hold (0.77 EUR OVER your hold" in out
    assert [(line.code, line.qty) for line in phone.visit().basket.lines] == [(PEN, 2), (MILK, 1)]  # type: ignore[union-attr]
    # A bad barcode and an unknown product are refused in one line; the basket stays as it was.
    bad = phone_shop.cli("scan", PEN[:-1] + "0", "--more", ok=False).output
    assert "check digit" in bad and bad.count("\n") == 1
    assert "not in the store's catalog" in phone_shop.cli("scan", "5901234123457", "--more", ok=False).output
    phone_shop.cli("remove", MILK)
    # Done: the list is shown and the shopper is asked to sign (claim 4 -> claim 2); "no" keeps it unsigned.
    assert "over the hold of 3.00 EUR" in phone_shop.cli("scan", GUM, "--done", ok=False).output
    phone_shop.cli("hold", "--estimate", "5", "--replace")  # a larger hold; the basket comes along
    out = phone_shop.cli("scan", GUM, input="n\nn\n", ok=False).output
    assert (
        "2 x Stabilo pen" in out
        and "2 x Chewing gum" in out
        and "Sign this list with your key?" in out
        and "not signed" in out
    )
    assert phone.visit().signed_list is None  # type: ignore[union-attr]
    out = phone_shop.cli("confirm", input="y\n").output
    assert "signed with key" in out


def test_claim2_confirm_signs_the_list_with_the_shoppers_key(phone_shop: PhoneShop) -> None:
    phone = phone_shop.enrolled(top_up=500)
    phone_shop.cli("hold", "--estimate", "20")
    phone_shop.cli("scan", PEN, MILK, "--more", "--qty", "3")
    out = phone_shop.cli("confirm", "--yes").output
    visit = phone.visit()
    assert visit is not None and visit.signed_list is not None
    raw = (phone_shop.state / "visits" / visit.hold.hex() / "list.cbor").read_bytes()
    doc = open_signed(raw, ShoppingList).verify_with(phone.public_key)
    assert doc.list.hex() in out and len(doc.list) == 16
    assert doc.hold == visit.hold and doc.store == "store-0001" and doc.currency == "EUR"
    assert [(i.code, i.qty, i.unit_price, i.line_total) for i in doc.items] == [
        (PEN, 3, 129, 387),
        (MILK, 3, 119, 357),
    ]
    assert doc.total == 387 + 357 and isinstance(doc.total, int)
    # Confirming again makes a new list (a new random id); scanning more drops the signature.
    again = phone.confirm()
    assert again.doc.list != doc.list
    phone_shop.cli("scan", GUM, "--more")
    assert phone.visit().signed_list is None  # type: ignore[union-attr]


def test_confirm_refuses_a_list_over_the_hold(phone_shop: PhoneShop) -> None:
    phone_shop.enrolled(top_up=500)
    phone_shop.cli("hold", "--estimate", "2")
    phone_shop.cli("scan", PEN, PEN, "--more")
    assert "over the hold" in phone_shop.cli("confirm", "--yes", ok=False).output


def test_claim1_tap_pass_receipt_then_deduction_notice(phone_shop: PhoneShop) -> None:
    """List -> the gate checks it (step 2) -> the signed legality result (step 3) -> the notice (step 4)."""
    phone = phone_shop.enrolled(top_up=300)
    phone_shop.cli("hold", "--estimate", "20")
    phone_shop.cli("scan", PEN, PEN, MILK, "--done", "--yes")
    assert "no exit yet" in phone_shop.cli("notice", ok=False).output
    tap = phone_shop.tap()
    assert tap.decision.verdict == "pass" and tap.receipt_error is None
    out = phone_shop.cli("receipt").output
    assert "signature verified" in out and "verdict: PASS" in out and "total 3.77 EUR" in out
    assert "this visit is over" in phone_shop.cli("scan", GUM, "--more", ok=False).output
    # The gate has not forwarded the charge yet: the PS has no notice.
    assert "not settled this exit yet" in phone_shop.cli("notice", ok=False).output
    phone_shop.gate.settle()
    out = phone_shop.cli("notice").output
    notice = phone.visit().notice.doc  # type: ignore[union-attr]
    assert notice.charge == tap.decision.list_id
    assert (notice.total, notice.stored_value, notice.bank, notice.debt) == (377, 300, 77, 0)
    assert notice.released == 2000 - 377 and notice.bank_ref
    assert "stored value   3.00 EUR" in out and "bank           0.77 EUR" in out
    assert f"bank reference {notice.bank_ref}" in out and "released       16.23 EUR" in out
    charge = phone_shop.stack.admin("GET", f"/v1/charges/{notice.charge.hex()}")
    assert (charge["stored_value"], charge["bank"], charge["bank_ref"]) == (300, 77, notice.bank_ref)
    # A new visit after the exit: the old one keeps its receipt and notice.
    phone_shop.cli("hold", "--estimate", "5")
    assert phone.visit().basket.lines == ()  # type: ignore[union-attr]
    assert len(phone.visits()) == 2 and phone.visits()[0].notice is not None


def test_claim1_deny_receipt_shows_every_reason(phone_shop: PhoneShop) -> None:
    phone_shop.enrolled(top_up=500)
    phone_shop.cli("hold", "--estimate", "20")
    phone_shop.cli("scan", PEN, "--done", "--yes")
    # The store raised the price after the phone's catalog sync, beyond the gate's grace period.
    stack = phone_shop.stack
    item = {"code": PEN, "name": "Stabilo pen", "category": "stationery", "unit": "each", "price": 149}
    stack.admin("POST", "/v1/catalog/prices", json={"items": [{**item, "valid_from": stack.now() - 3600}]})
    with phone_shop.gate.side.forwarder() as forwarder:
        forwarder.sync_once()
    tap = phone_shop.tap()
    assert tap.decision.verdict == "deny" and tap.receipt_error is None
    out = phone_shop.cli("receipt").output
    assert "verdict: DENY" in out and "price_mismatch: A price has changed" in out
    # The shopper refreshes the catalog, scans again and passes with a new list.
    assert "1 new price changes" in phone_shop.cli("sync").output
    phone_shop.cli("remove", PEN)
    phone_shop.cli("scan", PEN, "--done", "--yes")
    assert "no exit receipt yet" in phone_shop.cli("receipt", ok=False).output
    assert phone_shop.tap().decision.verdict == "pass"
    assert "total 1.49 EUR" in phone_shop.cli("receipt").output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    group = main.get_command(click.Context(main), "phone")
    assert isinstance(group, click.Group)
    names = sorted(group.commands)
    assert {"init", "enrol", "hold", "scan", "confirm", "tap", "receipt", "notice"} <= set(names)
    for name in [None, *names]:
        args = ["phone", *([name] if name else []), "--help"]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output and len(result.output.splitlines()) > 3


@pytest.mark.parametrize("command", [["hold", "--estimate", "5"], ["scan", PEN], ["confirm"], ["receipt"]])
def test_steps_out_of_order_say_what_to_do_first(phone_shop: PhoneShop, command: list[str]) -> None:
    Phone.init(phone_shop.state)
    result = phone_shop.cli(*command, ok=False)
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "run `selfcheckout phone" in result.output or "tap the phone" in result.output
