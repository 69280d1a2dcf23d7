"""The phone's side of a tap: the card-emulation service the gate talks to (an Android HCE service).

The transport (drivers: SELECT of the AID, chaining, GET RESPONSE) hands each application command to
`ExitCard.handle(ins, p1, p2, data)`. Two commands make a tap (gate/protocol/commands.py):

- INS_CHALLENGE carries the gate's `ExitChallenge`; the card answers with an `ExitPresentation`: the hold
  voucher, the signed list, and an `ExitAnswer` signed now over the gate id, the gate's nonce and the
  list's hash, so the answer is good for this challenge only.
- INS_RECEIPT carries the gate's signed `ExitReceipt`; the card verifies it (phone.checks.check_receipt)
  and hands it on, or refuses it with a status word and keeps nothing.

A refusal is `drivers.errors.CardStatus`, which the transport turns into the status word; `refused` keeps
the one-line reason for the screen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from drivers.errors import CardStatus
from drivers.nfc_apdu import SW_CONDITIONS_NOT_SATISFIED, SW_INS_NOT_SUPPORTED, SW_WRONG_P1P2
from gate.errors import ProtocolError
from gate.protocol.commands import INS_CHALLENGE, INS_RECEIPT
from gate.protocol.documents import ExitChallenge, ExitReceipt, HoldVoucher, ShoppingList, Signed
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.protocol.parties import answer_challenge, present
from phone.checks import check_receipt
from phone.errors import PhoneError, Refused

SW_SECURITY_NOT_SATISFIED = 0x6982  # the receipt's signature or content is not what we accept
SW_WRONG_DATA = 0x6A80  # the command data is not the document it should be


class ExitCard:
    """Answers one gate's challenge with the exit presentation and takes its signed receipt."""

    def __init__(
        self,
        key: SigningKey,
        voucher: Signed[HoldVoucher],
        signed_list: Signed[ShoppingList],
        gate_keys: Mapping[str, TrustedKeys],
        *,
        on_receipt: Callable[[Signed[ExitReceipt]], None] | None = None,
    ) -> None:
        self._key = key
        self._voucher = voucher
        self._list = signed_list
        self._gate_keys = gate_keys
        self._on_receipt = on_receipt
        self._challenge: ExitChallenge | None = None
        self._done = threading.Event()
        self.receipt: Signed[ExitReceipt] | None = None
        self.refused: str | None = None  # the last thing refused, for the screen

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0, 0):
            raise CardStatus(SW_WRONG_P1P2, f"P1 P2 {p1:02X} {p2:02X}")
        if ins == INS_CHALLENGE:
            return self._present(data)
        if ins == INS_RECEIPT:
            self._take_receipt(data)
            return b""
        raise CardStatus(SW_INS_NOT_SUPPORTED, f"INS {ins:02X}")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a receipt was taken (True) or the timeout passed (False)."""
        return self._done.wait(timeout)

    def _present(self, data: bytes) -> bytes:
        try:
            challenge = ExitChallenge.decode(data)
        except ProtocolError as exc:
            raise self._refuse(SW_WRONG_DATA, f"challenge refused: {exc}") from exc
        store = self._voucher.doc.store
        if challenge.store != store:
            raise self._refuse(
                SW_CONDITIONS_NOT_SATISFIED,
                f"challenge refused: gate {challenge.gate} is in store {challenge.store}, "
                f"the hold is for {store}",
            )
        self._challenge = challenge
        answer = answer_challenge(self._key, challenge, self._list)
        return present(self._voucher, self._list, answer).encode()

    def _take_receipt(self, data: bytes) -> None:
        if self._challenge is None:
            raise self._refuse(
                SW_CONDITIONS_NOT_SATISFIED, "exit receipt refused: no challenge came before it"
            )
        try:
            receipt = check_receipt(data, self._gate_keys, self._challenge, self._list)
        except Refused as exc:
            raise self._refuse(SW_SECURITY_NOT_SATISFIED, str(exc)) from exc
        if self._on_receipt is not None:
            try:
                self._on_receipt(receipt)
            except PhoneError as exc:
                raise self._refuse(SW_CONDITIONS_NOT_SATISFIED, str(exc)) from exc
        self.receipt = receipt
        self.refused = None
        self._done.set()

    def _refuse(self, sw: int, why: str) -> CardStatus:
        self.refused = why
        return CardStatus(sw, why)
