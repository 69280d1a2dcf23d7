"""The phone's side of the kiosk exchange: show the hold, show a proposed list, sign it once confirmed.

The kiosk's reader sends three commands (gate/protocol/kiosk.py, docs/protocol.md section 12):

- INS_KIOSK_HOLD: answer the open hold's voucher to a kiosk of the voucher's store; SW_NO_HOLD without one.
- INS_KIOSK_PROPOSE: check the unsigned proposal against the hold (store, hold, currency, not expired, not
  over the guaranteed amount) and put it on the screen ("shown"), or refuse it with a reason.
- INS_KIOSK_RESULT: answer "waiting" until the shopper decided on the phone, then "signed" with the list or
  "declined".

The shopper decides on the phone, outside the NFC exchange: `confirm(digest)` names the SHA-256 of the
proposal the screen showed, and the card signs only that proposal. A second proposal in the same session
while one is shown or signed is refused as `changed`; the shopper declines the shown one first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import CardStatus
from drivers.nfc_apdu import SW_CONDITIONS_NOT_SATISFIED, SW_INS_NOT_SUPPORTED, SW_WRONG_P1P2
from gate.errors import ProtocolError
from gate.protocol.documents import VERSION, HoldVoucher, ShoppingList, Signed, sign
from gate.protocol.keys import SigningKey
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
from gate.protocol.parties import new_id
from phone.card import SW_WRONG_DATA
from phone.errors import Refused, StateError


@dataclass(frozen=True)
class OpenHold:
    """The hold a phone can shop with now, and whether the shopper already left the store with it."""

    voucher: Signed[HoldVoucher]
    left: bool = False


class KioskCard:
    """Answers a kiosk's reader; the shopper's confirm() or decline() decide a shown proposal."""

    def __init__(
        self,
        key: SigningKey,
        open_hold: Callable[[], OpenHold | None],
        *,
        keep: Callable[[ProposedList, Signed[ShoppingList]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._open_hold = open_hold
        self._keep = keep
        self._clock = clock
        self._lock = threading.Lock()
        self._session: bytes | None = None
        self._shown: ProposedList | None = None
        self._decision: str | None = None  # None while the shopper looks at it; "signed" or "declined"
        self._signed: Signed[ShoppingList] | None = None
        self.hold_read = threading.Event()  # a kiosk read the hold
        self.shown = threading.Event()  # a proposal is on the screen
        self.delivered = threading.Event()  # the kiosk was told the shopper's decision
        self.refused: str | None = None  # the last refusal, for the screen

    # -- the shopper's side ------------------------------------------------------------------------------

    @property
    def proposal(self) -> ProposedList | None:
        """The proposal on the screen, if any."""
        return self._shown

    def confirm(self, digest: bytes) -> Signed[ShoppingList]:
        """The shopper said yes to the proposal whose SHA-256 the screen showed: sign it with their key."""
        with self._lock:
            shown = self._shown
            if shown is None or shown.hash() != digest:
                raise Refused("kiosk list refused: it is not the list the phone showed")
            if self._decision == "signed" and self._signed is not None:
                return self._signed
            if self._decision == "declined":
                raise StateError("this list was declined: tap the kiosk again for a new one")
            signed = sign(self._list_for(shown), self._key)
            if self._keep is not None:
                self._keep(shown, signed)
            self._signed, self._decision = signed, "signed"
            return signed

    def decline(self) -> None:
        """The shopper said no: the kiosk is told, and may propose another list in this session."""
        with self._lock:
            if self._shown is not None and self._decision is None:
                self._decision = "declined"

    def _list_for(self, proposal: ProposedList) -> ShoppingList:
        doc = ShoppingList(
            v=VERSION,
            list=new_id(),
            hold=proposal.hold,
            store=proposal.store,
            currency=proposal.currency,
            created=int(self._clock()),
            items=proposal.items,
            total=proposal.total,
        )
        try:
            return ShoppingList.decode(doc.encode())
        except ProtocolError as exc:
            raise StateError(f"the kiosk's list cannot be signed: {exc}") from exc

    # -- the kiosk's side (the NFC service) --------------------------------------------------------------

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0, 0):
            raise CardStatus(SW_WRONG_P1P2, f"P1 P2 {p1:02X} {p2:02X}")
        if ins == INS_KIOSK_HOLD:
            return self._hello(data)
        if ins == INS_KIOSK_PROPOSE:
            return self._propose(data).encode()
        if ins == INS_KIOSK_RESULT:
            return self._result(data).encode()
        raise CardStatus(SW_INS_NOT_SUPPORTED, f"INS {ins:02X}")

    def _hello(self, data: bytes) -> bytes:
        try:
            hello = KioskHello.decode(data)
        except ProtocolError as exc:
            raise CardStatus(SW_WRONG_DATA, f"kiosk hello refused: {exc}") from exc
        hold = self._open_hold()
        if hold is None or hold.left:
            self.refused = "no open hold to show the kiosk"
            raise CardStatus(SW_NO_HOLD, self.refused)
        if hold.voucher.doc.store != hello.store:  # never show the voucher to another store
            store = hold.voucher.doc.store
            self.refused = f"kiosk {hello.kiosk} is in store {hello.store}, the hold is for {store}"
            raise CardStatus(SW_CONDITIONS_NOT_SATISFIED, self.refused)
        with self._lock:
            if hello.session != self._session:
                self._start(hello.session)
        self.hold_read.set()
        return hold.voucher.encode()

    def _start(self, session: bytes) -> None:
        self._session, self._shown, self._decision, self._signed = session, None, None, None
        self.shown.clear()
        self.delivered.clear()

    def _propose(self, data: bytes) -> KioskReply:
        try:
            proposal = ProposedList.decode(data)
        except ProtocolError as exc:
            raise CardStatus(SW_WRONG_DATA, f"proposed list refused: {exc}") from exc
        why = self._against_hold(proposal)
        with self._lock:
            if why is None and proposal.session == self._session and self._shown is not None:
                if self._shown.hash() == proposal.hash():
                    return self._reply(proposal.session, "shown")  # the same list again (a second tap)
                if self._decision != "declined":
                    why = "changed"
            if why is not None:
                self.refused = why
                return KioskReply(v=VERSION, session=proposal.session, status="refused", reason=why)
            if proposal.session != self._session:
                self._start(proposal.session)
            self._shown, self._decision, self._signed = proposal, None, None
            self.delivered.clear()
        self.shown.set()
        return KioskReply(v=VERSION, session=proposal.session, status="shown")

    def _against_hold(self, proposal: ProposedList) -> str | None:
        hold = self._open_hold()
        if hold is None:
            return "no_hold"
        if hold.left:
            return "visit_over"
        voucher = hold.voucher.doc
        if proposal.store != voucher.store:
            return "wrong_store"
        if proposal.hold != voucher.hold:
            return "wrong_hold"
        if proposal.currency != voucher.currency:
            return "wrong_currency"
        if voucher.expires <= int(self._clock()):
            return "hold_expired"
        if proposal.total > voucher.amount:
            return "over_hold"
        return None

    def _result(self, data: bytes) -> KioskReply:
        try:
            poll = KioskPoll.decode(data)
        except ProtocolError as exc:
            raise CardStatus(SW_WRONG_DATA, f"kiosk poll refused: {exc}") from exc
        with self._lock:
            shown = self._shown
            if poll.session != self._session or shown is None or shown.hash() != poll.proposal:
                return KioskReply(v=VERSION, session=poll.session, status="refused", reason="changed")
            reply = self._reply(poll.session, "waiting")
        if reply.status in ("signed", "declined"):
            self.delivered.set()
        return reply

    def _reply(self, session: bytes, undecided: str) -> KioskReply:
        if self._decision == "signed":
            return KioskReply(v=VERSION, session=session, status="signed", list=self._signed)
        if self._decision == "declined":
            return KioskReply(v=VERSION, session=session, status="declined")
        return KioskReply(v=VERSION, session=session, status=undecided)
