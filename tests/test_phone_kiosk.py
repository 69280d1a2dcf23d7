"""The phone's side of the kiosk exchange: a kiosk reads the hold, proposes a list, and the phone signs only
what the shopper confirmed, against the real payment system and, at the end, the real gate.

The kiosk's side here is kiosk.exchange (the kiosk's own code) over the in-process NFC reader; the same
exchange through pcscd and vpcd is in tests/test_kiosk_*.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from drivers.nfc_inprocess import InProcessReader
from drivers.nfc_session import PhoneSession
from gate.protocol.documents import VERSION, HoldVoucher, Signed
from gate.protocol.keys import TrustedKeys
from gate.protocol.kiosk import KioskHello, ProposedList
from gate.protocol.parties import item
from kiosk.errors import TapProblem
from kiosk.exchange import check_signed, poll, propose, read_hold
from phone.kiosk_card import KioskCard
from phone.terminal import Phone
from tests.fixtures.payments import MILK, PEN, PRICES
from tests.fixtures.phone import PhoneShop

SESSION = b"\x01" * 16


@pytest.fixture
def kiosk_reader() -> Iterator[InProcessReader]:
    with InProcessReader(exchange_timeout_ms=2000, name="kiosk") as reader:
        yield reader


def tap(reader: InProcessReader, card: KioskCard) -> PhoneSession:
    reader.place(card)
    session = reader.wait_for_phone(2.0)
    assert session is not None
    return session


def hello(shop: PhoneShop, *, store: str | None = None, session: bytes = SESSION) -> KioskHello:
    return KioskHello(
        v=VERSION,
        kiosk="kiosk-01",
        store=store or shop.stack.store_id,
        session=session,
        time=shop.stack.now(),
    )


def read(shop: PhoneShop, session: PhoneSession, **kw: object) -> Signed[HoldVoucher]:
    return read_hold(
        session,
        hello(shop, **kw),  # type: ignore[arg-type]
        trusted=TrustedKeys([shop.stack.key.public_key]),
        currency="EUR",
        now=shop.stack.now(),
    )


def proposal_for(voucher: HoldVoucher, lines: list[tuple[str, int]], **changes: object) -> ProposedList:
    items = tuple(item(code, PRICES[code], qty=qty) for code, qty in lines)
    fields = {
        "v": VERSION,
        "kiosk": "kiosk-01",
        "session": SESSION,
        "hold": voucher.hold,
        "store": voucher.store,
        "currency": voucher.currency,
        "items": items,
        "total": sum(i.line_total for i in items),
        **changes,
    }
    return ProposedList(**fields)  # type: ignore[arg-type]


def shopping(shop: PhoneShop, estimate: int = 1000) -> Phone:
    phone = shop.enrolled(top_up=estimate)
    phone.request_hold(estimate)
    return phone


def test_the_kiosk_reads_the_hold_and_the_phone_signs_only_what_the_shopper_confirmed(
    phone_shop: PhoneShop, kiosk_reader: InProcessReader
) -> None:
    phone = shopping(phone_shop)
    card = phone.kiosk_card()
    with tap(kiosk_reader, card) as session:
        voucher = read(phone_shop, session)
    assert voucher.doc.amount == 1000 and voucher.doc.store == phone_shop.stack.store_id
    kiosk_reader.lift()

    proposal = proposal_for(voucher.doc, [(PEN, 2), (MILK, 1)])
    with tap(kiosk_reader, card) as session:
        assert read(phone_shop, session).doc.hold == voucher.doc.hold  # the same phone came back
        assert propose(session, proposal).status == "shown"
        assert card.proposal == proposal
        assert poll(session, proposal).status == "waiting"  # the shopper is still reading
        lines = phone.kiosk_lines(proposal)
        assert [(line.name, line.qty, line.total) for line in lines] == [
            ("Stabilo pen", 2, 258),
            ("Milk 1 l", 1, 119),
        ]
        card.confirm(proposal.hash())
        reply = poll(session, proposal)
    assert reply.status == "signed" and reply.list is not None
    signed = check_signed(reply.list, proposal, voucher, now=phone_shop.stack.now())
    assert signed.total == 377 and signed.hold == voucher.doc.hold
    kiosk_reader.lift()

    # The phone kept it for the gate, with the basket the shopper saw, and the gate lets them out.
    visit = phone.visit()
    assert visit is not None and visit.signed_list is not None
    assert visit.signed_list.encode() == reply.list.encode()
    assert [line.name for line in visit.basket.lines] == ["Stabilo pen", "Milk 1 l"]
    assert phone_shop.tap().verdict == "pass"


def test_a_phone_without_a_hold_or_of_another_store_shows_nothing(
    phone_shop: PhoneShop, kiosk_reader: InProcessReader
) -> None:
    phone = phone_shop.enrolled(top_up=1000)
    with tap(kiosk_reader, phone.kiosk_card()) as session, pytest.raises(TapProblem) as no_hold:
        read(phone_shop, session)
    assert no_hold.value.code == "no_hold"
    kiosk_reader.lift()
    phone.request_hold(1000)
    with tap(kiosk_reader, phone.kiosk_card()) as session, pytest.raises(TapProblem) as other:
        read(phone_shop, session, store="store-0002")
    assert other.value.code == "other_store"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"store": "store-0002"}, "wrong_store"),
        ({"hold": os.urandom(16)}, "wrong_hold"),
        ({"currency": "USD"}, "wrong_currency"),
    ],
)
def test_the_phone_refuses_a_proposal_that_is_not_for_its_hold(
    phone_shop: PhoneShop, kiosk_reader: InProcessReader, changes: dict, reason: str
) -> None:
    phone = shopping(phone_shop)
    card = phone.kiosk_card()
    with tap(kiosk_reader, card) as session:
        voucher = read(phone_shop, session)
        reply = propose(session, proposal_for(voucher.doc, [(PEN, 1)], **changes))
    assert (reply.status, reply.reason) == ("refused", reason)
    assert card.proposal is None and phone.visit().signed_list is None  # type: ignore[union-attr]


def test_the_phone_refuses_a_proposal_over_its_hold(
    phone_shop: PhoneShop, kiosk_reader: InProcessReader
) -> None:
    phone = shopping(phone_shop, estimate=300)
    card = phone.kiosk_card()
    with tap(kiosk_reader, card) as session:
        voucher = read(phone_shop, session)
        assert propose(session, proposal_for(voucher.doc, [(PEN, 2)])).status == "shown"  # 2.58 of 3.00
        card.decline()
        assert poll(session, proposal_for(voucher.doc, [(PEN, 2)])).status == "declined"
        reply = propose(session, proposal_for(voucher.doc, [(PEN, 3)]))  # 3.87 of 3.00
    assert (reply.status, reply.reason) == ("refused", "over_hold")


def test_the_phone_refuses_a_list_changed_after_it_was_shown(
    phone_shop: PhoneShop, kiosk_reader: InProcessReader
) -> None:
    phone = shopping(phone_shop)
    card = phone.kiosk_card()
    with tap(kiosk_reader, card) as session:
        voucher = read(phone_shop, session)
        shown = proposal_for(voucher.doc, [(PEN, 1)])
        changed = proposal_for(voucher.doc, [(PEN, 1), (MILK, 3)])
        assert propose(session, shown).status == "shown"
        # Another list in the same session while the first is on the phone's screen,
        reply = propose(session, changed)
        assert (reply.status, reply.reason) == ("refused", "changed")
        # a poll for a list the phone never showed,
        reply = poll(session, changed)
        assert (reply.status, reply.reason) == ("refused", "changed")
        # and a confirmation of anything but what the screen showed are all refused.
        with pytest.raises(Exception, match="not the list the phone showed"):
            card.confirm(changed.hash())
        assert card.proposal == shown
        card.confirm(shown.hash())
        signed = poll(session, shown)
        assert signed.status == "signed" and signed.list is not None
        assert signed.list.doc.total == PRICES[PEN]
        # Once signed, the list cannot be swapped either; the same list again answers the same signature.
        assert propose(session, changed).reason == "changed"
        again = propose(session, shown)
        assert again.status == "signed" and again.list == signed.list


def test_every_refusal_has_the_sentence_the_app_guide_gives() -> None:
    from pathlib import Path

    from gate.protocol.kiosk import REFUSALS
    from phone import messages

    guide = (Path(__file__).resolve().parents[1] / "docs" / "phone-app.md").read_text()
    assert set(messages.KIOSK_REFUSALS) == set(REFUSALS)
    for code, text in messages.KIOSK_REFUSALS.items():
        assert f"| `{code}` | {text} |" in guide
