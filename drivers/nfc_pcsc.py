"""The gate's PC/SC reader, waiting for phones on the low-level pyscard API.

pyscard's CardMonitor dies for good when the reader goes away or pcscd restarts (pyscard issues 82 and
128), so this keeps its own loop on SCardGetStatusChange and establishes a fresh context whenever the
old one stops working. A card counts as a new phone only after the reader was seen empty or pcsc-lite's
event counter moved: connecting to a card pcscd has not yet seen leave fails with 0x80100067.

There is one exception. When a transmit is what finds the card gone, pcscd may never report the reader
empty (vpcd does not: its next poll just finds the next card), so after PhoneLost whatever is present
counts as new; and a card that fails to connect or to answer SELECT is tried again, paced, for a
second before the driver waits for the reader to be empty.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from smartcard import scard

from drivers.errors import DeviceClosed, ExchangeTimeout, InvalidArgument, PcscError, PhoneLost
from drivers.nfc_apdu import AID
from drivers.nfc_session import NfcCounters, PhoneSession, start_session

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

# The reader itself is gone: find it again by name, the context is fine.
_READER_GONE = {
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_NO_READERS_AVAILABLE,
}
# connect() found no usable card: wait for the next one.
_NO_CARD = {
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_W_UNSUPPORTED_CARD,
    scard.SCARD_E_SHARING_VIOLATION,
}
_QUIET = {scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED}
_FIRST_BACKOFF_S = 0.05
_NO_READER_POLL_S = 1.0
_START_RETRY_S = 0.1
_START_RETRY_FOR_S = 1.0


def _pcsc_error(call: str, hresult: int) -> PcscError:
    return PcscError(call, hresult, scard.SCardGetErrorMessage(hresult))


def list_readers() -> list[str]:
    """The names of the PC/SC readers pcscd sees now (PcscError when the service cannot be reached)."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise _pcsc_error("SCardEstablishContext", hresult)
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise _pcsc_error("SCardListReaders", hresult)
        return list(readers or [])
    finally:
        scard.SCardReleaseContext(context)


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


class _PcscLink:
    """One connected card, with its own context so a stuck transmit never blocks the reader's waiting."""

    def __init__(self, owner: PhoneReader, reader: str, context: int, card: int, protocol: int) -> None:
        self.reader = reader
        self._owner = owner
        self._context = context
        self._card = card
        self._protocol = protocol

    def transmit(self, apdu: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            self._owner._phone_lost()
            error = _pcsc_error("SCardTransmit", hresult)
            raise PhoneLost(f"phone lost on {self.reader}: {error}") from error
        if not response:  # vpcd, and readers that see the field drop, answer with nothing
            self._owner._phone_lost()
            raise PhoneLost(f"phone lost on {self.reader}: no response at all")
        return bytes(response)

    def wait_removed(self, timeout_s: float) -> bool:
        return self._owner._wait_removed(timeout_s)

    def close(self) -> None:
        scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self._context)


class PhoneReader:
    """Phones tapped on the PC/SC reader whose name matches ``name_pattern`` (re.search).

    One tap, one session: a phone left on the reader is not served again. After pcscd restarts its event
    counts start again, so a phone still on the reader then counts as a new tap.
    """

    def __init__(
        self,
        name_pattern: str,
        *,
        exchange_timeout_ms: int = 1000,
        reestablish_max_s: float = 2.0,
        aid: bytes = AID,
    ) -> None:
        try:
            self._pattern = re.compile(name_pattern)
        except re.error as exc:
            raise InvalidArgument(f"reader name pattern {name_pattern!r}: {exc}") from exc
        if exchange_timeout_ms <= 0 or reestablish_max_s <= 0:
            raise InvalidArgument("exchange_timeout_ms and reestablish_max_s must be > 0")
        self._timeout_s = exchange_timeout_ms / 1000
        self._backoff_max_s = reestablish_max_s
        self._backoff_s = _FIRST_BACKOFF_S
        self._aid = aid
        self._context: int | None = None
        self._reader: str | None = None
        self._state = scard.SCARD_STATE_UNAWARE  # last state seen; pcsc-lite counts card events in bits 16+
        self._served: int | None = None  # state of the card last connected to, until the reader is empty
        self._first_failed_start: float | None = None
        self._retry_at = 0.0
        self._contexts = 0
        self._counters = NfcCounters()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False

    def __enter__(self) -> PhoneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_phone(self, timeout_s: float) -> PhoneSession | None:
        """The next phone placed on the reader, selected and ready, or None after timeout_s.

        PC/SC failures (pcscd restarting, the reader unplugged) are recovered here, not raised: they show
        in health() while this keeps trying until the timeout. close() from another thread ends the
        wait with None.
        """
        if self._closed:
            raise DeviceClosed("the phone reader is closed")
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not self._closed:
                try:
                    now = time.monotonic()
                    waiting_for_retry = self._new_card_present() and now < self._retry_at
                    if self._new_card_present() and not waiting_for_retry:
                        session = self._connect()
                        if session is not None:
                            return session
                        continue
                    if now >= deadline:
                        return None
                    self._wait_change(min(deadline, self._retry_at) if waiting_for_retry else deadline)
                except PcscError as exc:
                    self._recover(exc)
                    if not self._pause(deadline):
                        return None
        return None

    def health(self) -> dict[str, Any]:
        return {
            "connected": self._context is not None and self._reader is not None,
            "reader": self._reader,
            "name_pattern": self._pattern.pattern,
            "phone_present": bool(self._state & scard.SCARD_STATE_PRESENT),
            "contexts_established": self._contexts,
            **self._counters.as_dict(),
        }

    def close(self) -> None:
        """Stop waiting (another thread's wait returns at once) and release the PC/SC context."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        context = self._context
        if context is not None:
            scard.SCardCancel(context)
        with self._lock:
            self._drop_context()

    def _wait_removed(self, timeout_s: float) -> bool:
        if self._closed:
            raise DeviceClosed("the phone reader is closed")
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not self._closed:
                try:
                    if self._context is not None and (
                        self._reader is None or self._state & scard.SCARD_STATE_EMPTY
                    ):
                        return True
                    if time.monotonic() >= deadline:
                        return False
                    self._wait_change(deadline)
                except PcscError as exc:
                    self._recover(exc)
                    if not self._pause(deadline):
                        return False
        return False

    def _new_card_present(self) -> bool:
        state = self._state
        if self._reader is None or not state & scard.SCARD_STATE_PRESENT or state & scard.SCARD_STATE_MUTE:
            return False
        return self._served is None or self._served >> 16 != state >> 16

    def _wait_change(self, deadline: float) -> None:
        """Block until the reader's state changes (or readers come and go), at most until deadline."""
        context = self._ensure_context()
        if self._closed:  # close() may have cancelled the context before this one was established
            return
        if self._reader is None and not self._find_reader(context):
            wait = min(deadline - time.monotonic(), _NO_READER_POLL_S)
            hresult, _ = scard.SCardGetStatusChange(
                context, _ms(wait), [(PNP_NOTIFICATION, scard.SCARD_STATE_UNAWARE)]
            )
            if hresult not in _QUIET:
                raise _pcsc_error("SCardGetStatusChange", hresult)
            return
        assert self._reader is not None
        hresult, states = scard.SCardGetStatusChange(
            context, _ms(deadline - time.monotonic()), [(self._reader, self._state)]
        )
        if hresult not in _QUIET:
            raise _pcsc_error("SCardGetStatusChange", hresult)
        self._backoff_s = _FIRST_BACKOFF_S
        if hresult != scard.SCARD_S_SUCCESS:
            return
        _, event, _ = states[0]
        if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise _pcsc_error("SCardGetStatusChange", scard.SCARD_E_READER_UNAVAILABLE)
        self._state = event & ~scard.SCARD_STATE_CHANGED
        if event & scard.SCARD_STATE_EMPTY:
            self._served = None
            self._first_failed_start = None

    def _ensure_context(self) -> int:
        if self._context is None:
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                raise _pcsc_error("SCardEstablishContext", hresult)
            self._context = context
            self._contexts += 1
            if self._contexts > 1:
                log.info("PC/SC context established again")
        return self._context

    def _find_reader(self, context: int) -> bool:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_NO_READERS_AVAILABLE):
            raise _pcsc_error("SCardListReaders", hresult)
        matching = [name for name in readers or [] if self._pattern.search(name)]
        if not matching:
            self._counters.last_error = f"no reader matches {self._pattern.pattern!r} among {readers or []}"
            return False
        self._reader = matching[0]
        self._state = scard.SCARD_STATE_UNAWARE
        log.info("using PC/SC reader %r", self._reader)
        return True

    def _connect(self) -> PhoneSession | None:
        """A session, or None: not our phone (served: wait for the next), or a failed start (tried again)."""
        assert self._reader is not None
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise _pcsc_error("SCardEstablishContext", hresult)
        hresult, card, protocol = scard.SCardConnect(
            context,
            self._reader,
            scard.SCARD_SHARE_EXCLUSIVE,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardReleaseContext(context)
            error = _pcsc_error("SCardConnect", hresult)
            if hresult in _NO_CARD:
                self._counters.last_error = str(error)
                self._failed_start(error)
                return None
            raise error
        link = _PcscLink(self, self._reader, context, card, protocol)
        try:
            session = start_session(link, timeout_s=self._timeout_s, counters=self._counters, aid=self._aid)
        except (PhoneLost, ExchangeTimeout) as exc:
            self._failed_start(exc)
            return None
        self._served = self._state
        self._first_failed_start = None
        return session

    def _failed_start(self, error: Exception) -> None:
        log.info("card on %s could not be started: %s", self._reader, error)
        now = time.monotonic()
        if self._first_failed_start is None:
            self._first_failed_start = now
        if now - self._first_failed_start >= _START_RETRY_FOR_S:
            self._served = self._state  # give up on this card until the reader has been empty
            self._first_failed_start = None
        else:
            self._retry_at = now + _START_RETRY_S

    def _phone_lost(self) -> None:
        """A session's transmit found the card gone: the next card present is a new tap."""
        self._served = None

    def _recover(self, error: PcscError) -> None:
        self._counters.last_error = str(error)
        # The first failure of a series is worth a warning; the retries behind it are not.
        level = logging.WARNING if self._backoff_s == _FIRST_BACKOFF_S else logging.DEBUG
        if error.hresult in _READER_GONE:
            log.log(level, "reader %r went away: %s", self._reader, error)
            self._reader = None
        else:
            log.log(level, "PC/SC context lost, establishing it again: %s", error)
            self._drop_context()
        self._state = scard.SCARD_STATE_UNAWARE

    def _drop_context(self) -> None:
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
        self._context = None
        self._reader = None
        self._served = None

    def _pause(self, deadline: float) -> bool:
        """Back off before trying PC/SC again; False when the deadline (or close) comes first."""
        wait = min(self._backoff_s, deadline - time.monotonic())
        self._backoff_s = min(self._backoff_s * 2, self._backoff_max_s)
        if wait <= 0:
            return False
        return not self._wake.wait(wait) and time.monotonic() < deadline
