"""The phone's NFC service against the gate's real reader code: the in-process transport (chaining, GET
RESPONSE, status words), and `selfcheckout phone tap` on pcscd + vpcd. Also the Python API as the demo
drives it, and goods sold by weight or with the price in the barcode."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from click.testing import CliRunner

from drivers.errors import ApduStatusError
from drivers.nfc_apdu import SW_CONDITIONS_NOT_SATISFIED, SW_INS_NOT_SUPPORTED, SW_WRONG_P1P2
from gate.barcodes import variable_code
from gate.config import Gs1Layout
from gate.legality import NO_LIST, GateIdentity, new_challenge
from gate.legality.reasons import RULES
from gate.protocol.commands import INS_CHALLENGE, INS_RECEIPT
from gate.protocol.documents import VERDICTS, VERSION, ExitPresentation, ExitReceipt, sign
from phone import messages
from phone.card import SW_WRONG_DATA
from phone.terminal import Phone, parse_gs1
from selfcheckout.cli import main
from tests.fixtures.payments import GUM, MILK, PEN
from tests.fixtures.phone import PhoneShop
from tests.fixtures.store import LAYOUTS

WEIGHT = Gs1Layout(prefix="21", kind="weight", item_digits=5, value_digits=5)
PRICE = Gs1Layout(prefix="23", kind="price", item_digits=5, value_digits=4, value_check_digit=True)


def ready(shop: PhoneShop, *codes: str) -> Phone:
    phone = shop.enrolled(top_up=500)
    shop.cli("hold", "--estimate", "20")
    shop.cli("scan", *codes, "--done", "--yes")
    return phone


def test_the_presentation_answers_this_challenge_for_this_list(phone_shop: PhoneShop) -> None:
    phone = ready(phone_shop, PEN, MILK)
    visit = phone.visit()
    assert visit is not None and visit.signed_list is not None
    phone_shop.reader.place(phone.card())
    session = phone_shop.reader.wait_for_phone(1.0)
    assert session is not None
    with session:
        challenge = new_challenge(phone_shop.gate.side.identity, time.time())
        presentation = ExitPresentation.decode(session.exchange(INS_CHALLENGE, challenge.encode()))
    assert presentation.voucher.encode() == visit.voucher.encode()
    assert presentation.list.encode() == visit.signed_list.encode()
    answer = presentation.answer.verify_with(phone.public_key)
    assert (answer.gate, answer.nonce) == (challenge.gate, challenge.nonce)
    assert answer.list_hash == hashlib.sha256(visit.signed_list.body).digest()


def test_the_card_refuses_what_is_not_a_tap_of_this_store(phone_shop: PhoneShop) -> None:
    phone = ready(phone_shop, PEN)
    card = phone.card()
    phone_shop.reader.place(card)
    session = phone_shop.reader.wait_for_phone(1.0)
    assert session is not None
    other_store = new_challenge(GateIdentity("store-0002", "gate-01", "EUR"), time.time())
    with session:
        for ins, data, p1, sw in [
            (INS_RECEIPT, b"\xa0", 0, SW_CONDITIONS_NOT_SATISFIED),  # a receipt before any challenge
            (INS_CHALLENGE, b"\x01\x02", 0, SW_WRONG_DATA),  # not a challenge
            (INS_CHALLENGE, other_store.encode(), 0, SW_CONDITIONS_NOT_SATISFIED),  # never show it elsewhere
            (INS_CHALLENGE, other_store.encode(), 1, SW_WRONG_P1P2),
            (0x30, b"", 0, SW_INS_NOT_SUPPORTED),
        ]:
            with pytest.raises(ApduStatusError) as refused:
                session.exchange(ins, data, p1=p1)
            assert refused.value.sw == sw
    assert card.refused is not None and "the hold is for store-0001" in card.refused
    assert phone.visit().receipt is None  # type: ignore[union-attr]


def test_a_receipt_for_an_unreadable_presentation_is_kept(phone_shop: PhoneShop) -> None:
    """A gate that could not read the list names no list (16 zero bytes); the nonce binds it to the tap."""
    phone = ready(phone_shop, PEN)
    card = phone.card()
    phone_shop.reader.place(card)
    session = phone_shop.reader.wait_for_phone(1.0)
    assert session is not None
    side = phone_shop.gate.side
    with session:
        challenge = new_challenge(side.identity, time.time())
        session.exchange(INS_CHALLENGE, challenge.encode())
        receipt = ExitReceipt(
            v=VERSION, gate=side.gate_id, store=side.identity.store, list=NO_LIST, nonce=challenge.nonce,
            verdict="deny", reasons=("malformed",), total=0, currency="EUR", at=int(time.time()),
        )  # fmt: skip
        session.exchange(INS_RECEIPT, sign(receipt, side.key).encode())
    assert card.receipt is not None and card.receipt.doc.reasons == ("malformed",)
    out = phone_shop.cli("receipt").output
    assert "verdict: DENY" in out and "malformed: The gate could not read" in out


def test_every_reason_code_and_verdict_has_a_text() -> None:
    assert {rule.code for rule in RULES} == set(messages.REASONS)
    assert set(messages.VERDICTS) == set(VERDICTS)
    assert "ask a member of staff" in messages.reason_text("a_future_code")


def test_a_scripted_shopper_through_the_python_api(phone_shop: PhoneShop) -> None:
    """What the demo does for each shopper: no command line, the same steps."""
    stack = phone_shop.stack
    phone = Phone.init(phone_shop.state)
    profile = phone.enrol(stack.url, "carol", "DE-0042", token=stack.admin_token, ps_key_id=stack.key.key_id)
    assert profile.gates and profile.ps_keys == (stack.key.public_key,)
    voucher = phone.request_hold(1500)
    assert (voucher.amount, voucher.stored_value, voucher.bank) == (1500, 0, 1500)
    first = phone.scan(PEN, qty=2)
    assert (first.total, first.remaining, first.over) == (258, 1242, False)
    assert phone.scan(GUM).total == 357
    phone.remove(GUM)
    signed = phone.confirm()
    assert signed.doc.total == 258
    card = phone.card()
    phone_shop.reader.place(card)
    tap = phone_shop.gate.serve()
    phone_shop.reader.lift()
    assert tap.decision.verdict == "pass" and card.receipt is not None
    assert phone.visit().receipt.doc.verdict == "pass"  # type: ignore[union-attr]
    assert phone.fetch_notice() is None  # not forwarded yet
    phone_shop.gate.settle()
    notice = phone.fetch_notice()
    assert notice is not None and (notice.total, notice.bank, notice.released) == (258, 258, 1242)
    assert phone.fetch_notice(signed.doc.list) == notice


def test_goods_by_weight_and_with_the_price_in_the_barcode(phone_shop: PhoneShop) -> None:
    stack, side = phone_shop.stack, phone_shop.gate.side
    cheese, cake = variable_code(WEIGHT, "00231", 0), variable_code(PRICE, "00123", 0)
    items = [
        {"code": cheese, "name": "Gouda", "category": "cheese", "unit": "kg", "price": 1590},
        {"code": cake, "name": "Cake slice", "category": "bakery", "unit": "each", "price": 0},
    ]
    stack.admin(
        "POST", "/v1/catalog/prices", json={"items": [{**i, "valid_from": stack.now() - 60} for i in items]}
    )
    side.policy = type(side.policy)(gs1={"21": WEIGHT, "23": PRICE})
    with side.forwarder() as forwarder:
        forwarder.sync_once()
    phone_shop.cli("init")
    enrol = [
        "enrol",
        "--ps",
        stack.url,
        "--user",
        "dave",
        "--bank-account",
        "DE-7",
        "--token",
        stack.admin_token,
    ]
    phone_shop.cli(*enrol)
    # The store's layouts came with its signed feed, exactly as the gates have them.
    assert {layout.prefix: layout for layout in phone_shop.phone.profile.gs1} == LAYOUTS
    phone_shop.cli("hold", "--estimate", "20")
    out = phone_shop.cli(
        "scan", variable_code(WEIGHT, "00231", 412), variable_code(PRICE, "00123", 275), "--more"
    )
    assert "Gouda, 412 g at 15.90 EUR/kg: 6.55 EUR" in out.output
    assert "1 x Cake slice at 2.75 EUR: 2.75 EUR" in out.output
    refused = phone_shop.cli("scan", cheese[:-1] + str((int(cheese[-1]) + 1) % 10), "--more", ok=False)
    assert "check digit" in refused.output
    assert "the label carries no weight" in phone_shop.cli("scan", cheese, "--more", ok=False).output
    phone_shop.cli("confirm", "--yes")
    lines = phone_shop.phone.visit().signed_list.doc.items  # type: ignore[union-attr]
    assert [(i.code, i.grams, i.unit_price, i.line_total) for i in lines] == [
        (variable_code(WEIGHT, "00231", 412), 412, 1590, 655),
        (variable_code(PRICE, "00123", 275), None, 275, 275),
    ]
    assert phone_shop.tap().decision.verdict == "pass"


def test_loose_weighed_goods_need_the_scales_label_and_checked_goods_are_announced(
    phone_shop: PhoneShop,
) -> None:
    stack = phone_shop.stack
    loose, whisky = "4000417025005", "5012345678900"
    items = [
        {"code": loose, "name": "Apples", "category": "fruit", "unit": "kg", "price": 299},
        {"code": whisky, "name": "Single malt", "category": "age-restricted", "unit": "each", "price": 1999},
    ]
    stack.admin(
        "POST", "/v1/catalog/prices", json={"items": [{**i, "valid_from": stack.now() - 60} for i in items]}
    )
    phone_shop.enrolled(top_up=500)
    phone_shop.cli("hold", "--estimate", "30")
    assert "scan the label the scale printed" in phone_shop.cli("scan", loose, "--more", ok=False).output
    assert "age-restricted: staff will check your age" in phone_shop.cli("scan", whisky, "--more").output


@pytest.mark.parametrize("text", ["21:weight:5:6", "30:price:5:5", "21:volume:5:5", "21:weight:5"])
def test_bad_gs1_layouts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_gs1(text)


@pytest.mark.standins
def test_tap_command_on_pcscd_and_vpcd(phone_shop: PhoneShop, pcsc: object) -> None:
    """`selfcheckout phone tap` puts the virtual phone on vpcd; the gate reads it through pcscd."""
    from drivers.nfc_pcsc import PhoneReader
    from tests.fixtures.phone import ExitGate

    ready(phone_shop, PEN, PEN, MILK)
    outcome: dict[str, object] = {}

    def shopper() -> None:
        runner = CliRunner()
        outcome["result"] = runner.invoke(
            main, ["phone", "--state", str(phone_shop.state), "tap", "--timeout", "15"]
        )

    thread = threading.Thread(target=shopper)
    with PhoneReader("^Virtual PCD 00 00$", exchange_timeout_ms=2000) as reader:
        gate = ExitGate(phone_shop.gate.side, reader)
        thread.start()
        try:
            tap = gate.serve(timeout_s=15)
        finally:
            thread.join(20)
            gate.close()
    result = outcome["result"]
    assert tap.decision.verdict == "pass" and tap.receipt_error is None
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "verdict: PASS" in result.output and "total 3.77 EUR" in result.output  # type: ignore[attr-defined]


def test_tap_without_a_reader_is_one_line(phone_shop: PhoneShop) -> None:
    from tests.fixtures.payments import free_port

    ready(phone_shop, PEN)
    result = phone_shop.cli("tap", "--port", str(free_port()), "--timeout", "0.5", ok=False)
    assert result.output.count("\n") == 2 and "Error: vpcd at 127.0.0.1" in result.output


def test_the_app_guide_shows_every_reason_with_the_phones_text() -> None:
    from pathlib import Path

    guide = (Path(__file__).parents[1] / "docs" / "phone-app.md").read_text()
    for code, text in messages.REASONS.items():
        assert f"| `{code}` | {text} |" in guide, code
    for verdict, text in messages.VERDICTS.items():
        assert f"| `{verdict}` | {text} |" in guide, verdict


def test_a_receipt_for_a_list_the_shopper_replaced_meanwhile_is_not_kept(phone_shop: PhoneShop) -> None:
    phone = ready(phone_shop, PEN)
    card = phone.card()  # the service holds the list signed so far
    phone.confirm()  # ... and the shopper signs a new list before the tap
    phone_shop.reader.place(card)
    tap = phone_shop.gate.serve()
    phone_shop.reader.lift()
    assert (
        isinstance(tap.receipt_error, ApduStatusError) and tap.receipt_error.sw == SW_CONDITIONS_NOT_SATISFIED
    )
    assert card.refused == "the list changed while the phone was on the gate"
    assert phone.visit().receipt is None  # type: ignore[union-attr]
