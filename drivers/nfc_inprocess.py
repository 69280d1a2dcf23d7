"""A reader with no hardware and no pcscd: the demo's phone is a card handler placed on it in-process.

It hands out the same PhoneSession as the PC/SC reader, so APDUs go through the same chaining,
GET RESPONSE and timeout code, and the phone side runs the same CardApplet as the virtual card.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from drivers.errors import DeviceClosed, ExchangeTimeout, InvalidArgument, PhoneLost
from drivers.nfc_apdu import AID
from drivers.nfc_applet import CardApplet, CardHandler
from drivers.nfc_session import NfcCounters, PhoneSession, start_session


class _InProcessLink:
    def __init__(self, owner: InProcessReader, placement: int, applet: CardApplet) -> None:
        self.reader = owner.name
        self._owner = owner
        self._placement = placement
        self._applet = applet

    def transmit(self, apdu: bytes) -> bytes:
        if not self._owner._holds(self._placement):
            raise PhoneLost(f"phone lifted from {self.reader}")
        response = self._applet.process(apdu)
        if not self._owner._holds(self._placement):  # lifted while the phone was answering
            raise PhoneLost(f"phone lifted from {self.reader} mid-exchange")
        return response

    def wait_removed(self, timeout_s: float) -> bool:
        return self._owner._wait_lifted(self._placement, timeout_s)

    def close(self) -> None:
        """Nothing to release: the phone stays on the reader until lift()."""


class InProcessReader:
    """PhoneReader's interface over a phone that is a Python object: place() is a tap, lift() the end."""

    def __init__(
        self, *, exchange_timeout_ms: int = 1000, name: str = "in-process", aid: bytes = AID
    ) -> None:
        if exchange_timeout_ms <= 0:
            raise InvalidArgument("exchange_timeout_ms must be > 0")
        self.name = name
        self._timeout_s = exchange_timeout_ms / 1000
        self._aid = aid
        self._changed = threading.Condition()
        self._applet: CardApplet | None = None
        self._placement = 0  # moves on every place() and lift(), so a session knows its phone left
        self._served = 0
        self._counters = NfcCounters()
        self._closed = False

    def __enter__(self) -> InProcessReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def place(self, phone: CardHandler | CardApplet) -> None:
        """Put a phone on the reader; a phone already there is lifted first, as when one replaces another.

        A handler runs behind the standard CardApplet; pass a CardApplet to control the framing itself.
        """
        applet = phone if isinstance(phone, CardApplet) else CardApplet(phone)
        with self._changed:
            self._placement += 1
            self._applet = applet
            self._changed.notify_all()

    def lift(self) -> None:
        with self._changed:
            if self._applet is not None:
                self._placement += 1
                self._applet = None
                self._changed.notify_all()

    def wait_for_phone(self, timeout_s: float) -> PhoneSession | None:
        if self._closed:
            raise DeviceClosed("the phone reader is closed")
        deadline = time.monotonic() + timeout_s
        while True:
            with self._changed:
                if not self._changed.wait_for(self._new_phone, deadline - time.monotonic()) or self._closed:
                    return None
                assert self._applet is not None
                self._served = self._placement
                link = _InProcessLink(self, self._placement, self._applet)
            try:
                return start_session(link, timeout_s=self._timeout_s, counters=self._counters, aid=self._aid)
            except (PhoneLost, ExchangeTimeout):
                continue  # lifted (or mute) before it answered SELECT: the next place() is a new tap

    def health(self) -> dict[str, Any]:
        return {
            "connected": not self._closed,
            "reader": self.name,
            "phone_present": self._applet is not None,
            **self._counters.as_dict(),
        }

    def close(self) -> None:
        """Stop serving: a phone on it counts as lifted and a wait in another thread returns None."""
        with self._changed:
            self._closed = True
            self._applet = None
            self._placement += 1
            self._changed.notify_all()

    def _new_phone(self) -> bool:
        return self._closed or (self._applet is not None and self._served != self._placement)

    def _holds(self, placement: int) -> bool:
        return self._placement == placement and self._applet is not None

    def _wait_lifted(self, placement: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._holds(placement), timeout_s)
