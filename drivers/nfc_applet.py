"""The phone's side of the NFC transport: what an Android HCE service does before the app sees a command.

Both the virtual card (through vpcd) and the in-process reader run this same applet, so the reference
phone and the tests plug in only their application behaviour, a ``CardHandler``.
"""

from __future__ import annotations

import logging
from typing import Protocol

from drivers.errors import CardStatus
from drivers.nfc_apdu import (
    AID,
    APP_INS,
    CLA_APP,
    CLA_CHAINING,
    CLA_ISO,
    INS_GET_RESPONSE,
    INS_SELECT,
    MAX_LE,
    MAX_MESSAGE,
    P1_SELECT_BY_NAME,
    SW1_MORE_DATA,
    SW_AID_NOT_FOUND,
    SW_CLA_NOT_SUPPORTED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_INS_NOT_SUPPORTED,
    SW_LAST_OF_CHAIN_EXPECTED,
    SW_NO_DIAGNOSIS,
    SW_OK,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    Command,
)

log = logging.getLogger(__name__)


class CardHandler(Protocol):
    """The application on the phone: one whole command in, its whole answer out.

    Raise ``CardStatus(sw)`` to answer with a status word instead of data.
    """

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes: ...


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


class CardApplet:
    """SELECT by AID, reassembly of chained commands, and a long answer handed out by GET RESPONSE."""

    def __init__(self, handler: CardHandler, *, aid: bytes = AID) -> None:
        self.handler = handler
        self.aid = aid
        self.reset()

    def reset(self) -> None:
        """Field off or card reset: nothing survives, as on a phone that left and came back."""
        self._selected = False
        self._chain: tuple[int, int, int, bytearray] | None = None
        self._unread = b""

    def process(self, apdu: bytes) -> bytes:
        """One command APDU in, one response APDU out; never raises, whatever the bytes."""
        try:
            return self._process(Command.parse(apdu))
        except CardStatus as status:
            self._chain = None
            return _sw(status.sw)
        except Exception:
            log.exception("card handler failed on %s", apdu[:8].hex())
            self._chain = None
            return _sw(SW_NO_DIAGNOSIS)

    def _process(self, cmd: Command) -> bytes:
        cla = cmd.cla & ~CLA_CHAINING
        if cla == CLA_ISO and cmd.ins == INS_GET_RESPONSE and not cmd.chained:
            if not self._unread:
                raise CardStatus(SW_CONDITIONS_NOT_SATISFIED, "no answer waiting")
            return self._get_response(cmd.le or MAX_LE)
        self._unread = b""  # any other command drops an answer that was not fetched
        if cla == CLA_ISO and cmd.ins == INS_SELECT:
            return self._select(cmd)
        if cla != CLA_APP:
            raise CardStatus(SW_CLA_NOT_SUPPORTED)
        if cmd.ins not in APP_INS:
            raise CardStatus(SW_INS_NOT_SUPPORTED)
        if not self._selected:
            raise CardStatus(SW_CONDITIONS_NOT_SATISFIED, "application not selected")
        data = self._reassemble(cmd)
        if data is None:
            return _sw(SW_OK)
        answer = self.handler.handle(cmd.ins, cmd.p1, cmd.p2, data)
        if len(answer) > MAX_MESSAGE:
            raise CardStatus(SW_NO_DIAGNOSIS, f"{len(answer)}-byte answer is over {MAX_MESSAGE}")
        self._unread = bytes(answer)
        return self._get_response(cmd.le or MAX_LE)

    def _select(self, cmd: Command) -> bytes:
        self._chain = None
        if cmd.chained or cmd.p1 != P1_SELECT_BY_NAME:
            raise CardStatus(SW_WRONG_P1P2)
        self._selected = cmd.data == self.aid
        if not self._selected:
            raise CardStatus(SW_AID_NOT_FOUND)
        return _sw(SW_OK)

    def _reassemble(self, cmd: Command) -> bytes | None:
        """The whole command data once its last chunk arrived, else None."""
        if self._chain is None:
            self._chain = (cmd.ins, cmd.p1, cmd.p2, bytearray())
        ins, p1, p2, buffer = self._chain
        if (ins, p1, p2) != (cmd.ins, cmd.p1, cmd.p2):
            raise CardStatus(SW_LAST_OF_CHAIN_EXPECTED, "a chain was interrupted by another command")
        buffer += cmd.data
        if len(buffer) > MAX_MESSAGE:
            raise CardStatus(SW_WRONG_LENGTH, f"chained command over {MAX_MESSAGE} bytes")
        if cmd.chained:
            return None
        self._chain = None
        return bytes(buffer)

    def _get_response(self, le: int) -> bytes:
        chunk, self._unread = self._unread[:le], self._unread[le:]
        if self._unread:
            return chunk + bytes((SW1_MORE_DATA, min(len(self._unread), MAX_LE) & 0xFF))
        return chunk + _sw(SW_OK)
