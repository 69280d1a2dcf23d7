"""The kiosk's side of the kiosk exchange (gate/protocol/kiosk.py): read the hold, propose, fetch the result.

Every answer from a phone is checked here before the screen shows anything: the voucher must be signed by
a trusted payment-system key, be for this store and currency and not expired; a signed list must verify
with the voucher's shopper key and carry exactly the proposed lines, hold, store, currency and total. A
failure is a `TapProblem` whose code names what the shopper reads.
"""

from __future__ import annotations

from drivers.errors import ApduStatusError
from drivers.nfc_apdu import SW_CONDITIONS_NOT_SATISFIED
from drivers.nfc_session import PhoneSession
from gate.errors import ProtocolError
from gate.protocol.documents import HoldVoucher, ShoppingList, Signed, open_signed
from gate.protocol.keys import TrustedKeys
from gate.protocol.kiosk import (
    INS_KIOSK_HOLD,
    INS_KIOSK_PROPOSE,
    INS_KIOSK_RESULT,
    SW_NO_HOLD,
    KioskHello,
    KioskPoll,
    KioskReply,
    ProposedList,
)
from kiosk.errors import TapProblem

CLOCK_SKEW_S = 300


def read_hold(
    session: PhoneSession, hello: KioskHello, *, trusted: TrustedKeys, currency: str, now: int
) -> Signed[HoldVoucher]:
    """First tap: the phone's hold voucher, verified; TapProblem `no_hold`, `other_store`, `bad_voucher`,
    `hold_expired` or `wrong_currency` otherwise."""
    try:
        raw = session.exchange(INS_KIOSK_HOLD, hello.encode())
    except ApduStatusError as exc:
        if exc.sw == SW_NO_HOLD:
            raise TapProblem("no_hold", "the phone has no open hold") from exc
        if exc.sw == SW_CONDITIONS_NOT_SATISFIED:
            raise TapProblem("other_store", "the phone's hold is for another store") from exc
        raise TapProblem("not_our_app", f"the phone answered {exc}") from exc
    try:
        voucher = open_signed(raw, HoldVoucher)
        if voucher.kid not in trusted:
            raise ProtocolError(f"signed by key {voucher.kid}, not a trusted payment-system key")
        voucher.verify_with(trusted.get(voucher.kid))
    except ProtocolError as exc:
        raise TapProblem("bad_voucher", f"hold voucher refused: {exc}") from exc
    doc = voucher.doc
    if doc.store != hello.store:
        raise TapProblem("other_store", f"the hold is for store {doc.store}")
    if doc.currency != currency:
        raise TapProblem("wrong_currency", f"the hold is in {doc.currency}, this store takes {currency}")
    if doc.expires <= now:
        raise TapProblem("hold_expired", f"the hold expired at {doc.expires}")
    return voucher


def propose(session: PhoneSession, proposal: ProposedList) -> KioskReply:
    """Second tap: send the unsigned list; the reply is "shown" (or "signed" when it was already), or
    "refused" with the phone's reason."""
    return _reply(session.exchange(INS_KIOSK_PROPOSE, proposal.encode()), proposal, "proposal")


def poll(session: PhoneSession, proposal: ProposedList) -> KioskReply:
    """Ask whether the shopper decided on the proposal (by the SHA-256 of its bytes)."""
    ask = KioskPoll(v=proposal.v, session=proposal.session, proposal=proposal.hash())
    return _reply(session.exchange(INS_KIOSK_RESULT, ask.encode()), proposal, "poll")


def _reply(raw: bytes, proposal: ProposedList, what: str) -> KioskReply:
    try:
        reply = KioskReply.decode(raw)
    except ProtocolError as exc:
        raise TapProblem("bad_reply", f"the phone's answer to the {what} does not decode: {exc}") from exc
    if reply.session != proposal.session:
        raise TapProblem("bad_reply", f"the phone answered the {what} of another session")
    return reply


def check_signed(
    signed: Signed[ShoppingList], proposal: ProposedList, voucher: Signed[HoldVoucher], *, now: int
) -> ShoppingList:
    """The list the phone signed: the shopper key of the voucher signed it, and it is the proposal."""
    try:
        doc = signed.verify_with(voucher.doc.shopper_key)
    except ProtocolError as exc:
        raise TapProblem("bad_signature", f"the signed list does not verify: {exc}") from exc
    changed = proposal.differs_from(doc)
    if changed is not None:
        raise TapProblem("not_proposed", f"the signed list's {changed} is not the proposal's")
    if doc.created > now + CLOCK_SKEW_S:
        raise TapProblem("bad_signature", f"the signed list is dated in the future ({doc.created})")
    return doc
