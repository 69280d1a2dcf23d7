"""The kiosk's reader loop: each tap reads the hold; a tap during a session with lines finishes it.

A tap on the attract or done screen starts a session with the phone's hold. A tap while shopping is the
finishing tap: the kiosk reads the hold again (another phone is told it is not the one that started), sends
the proposed list, and polls the phone until the shopper decided there. A phone lifted at any point ends
only that tap: the session and its lines stay, and the screen says to tap again (the same proposal is
answered at once once signed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from drivers.errors import ApduError, DriverError, ExchangeTimeout, PhoneLost
from drivers.nfc_session import PhoneSession
from gate.protocol.documents import VERSION
from gate.protocol.keys import TrustedKeys
from gate.protocol.kiosk import KioskHello
from gate.protocol.parties import new_id
from kiosk.errors import TapProblem
from kiosk.exchange import check_signed, poll, propose, read_hold
from kiosk.session import Kiosk

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the kiosk asks the phone whether the shopper decided


class Reader(Protocol):
    def wait_for_phone(self, timeout_s: float) -> PhoneSession | None: ...


class TapLoop:
    """Serves phones on the reader on a thread of its own until stop()."""

    def __init__(
        self,
        kiosk: Kiosk,
        reader: Reader,
        *,
        trusted: TrustedKeys,
        confirm_timeout_s: float = 90.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kiosk = kiosk
        self._reader = reader
        self._trusted = trusted
        self._confirm_timeout_s = confirm_timeout_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kiosk-taps", daemon=True)
        self.taps = 0
        self.last_signed_at: float | None = None  # time.perf_counter() when a signed list verified

    def start(self) -> TapLoop:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                session = self._reader.wait_for_phone(0.25)
            except DriverError as exc:
                log.warning("reader: %s", exc)
                self._stop.wait(0.5)
                continue
            if session is None:
                continue
            self.taps += 1
            with session:
                try:
                    self.serve(session)
                except Exception:  # one tap's surprise must not end the loop; logged with its traceback
                    log.exception("tap")
                    self._kiosk.problem("bad_reply", "error")

    def serve(self, session: PhoneSession) -> None:
        """One tap, whatever the phone does; every outcome is a screen."""
        kiosk = self._kiosk
        finishing = kiosk.state in ("shopping", "confirming") and kiosk.voucher is not None
        now = int(self._clock())
        try:
            hello = KioskHello(
                v=VERSION,
                kiosk=kiosk.kiosk_id,
                store=kiosk.store_id,
                session=kiosk.session_id if finishing else new_id(),
                time=now,
            )
            voucher = read_hold(session, hello, trusted=self._trusted, currency=kiosk.currency, now=now)
            if not finishing:
                kiosk.start(voucher, hello.session)
                return
            assert kiosk.voucher is not None
            if voucher.doc.hold != kiosk.voucher.doc.hold:
                kiosk.problem("another_phone", "error")
                return
            self._finish(session)
        except TapProblem as exc:
            log.info("tap: %s", exc)
            self._failed(finishing, exc.code, exc.code, "error")
        except (PhoneLost, ExchangeTimeout) as exc:
            log.info("tap: phone lost: %s", exc)
            self._failed(finishing, "phone_lost", "phone_lost", "warn")
        except ApduError as exc:
            log.info("tap: %s", exc)
            self._failed(finishing, "bad_reply", "not_our_app", "error")

    def _failed(self, finishing: bool, finishing_code: str, starting_code: str, level: str) -> None:
        """A tap that went wrong: a finishing tap goes back to the lines, a first tap only says why."""
        if finishing:
            self._kiosk.back_to_shopping(finishing_code, level)
        else:
            self._kiosk.problem(starting_code, level)

    def _finish(self, session: PhoneSession) -> None:
        kiosk = self._kiosk
        proposal = kiosk.proposal()
        if proposal is None:
            return
        reply = propose(session, proposal)
        if reply.status == "refused":
            kiosk.back_to_shopping(f"refused_{reply.reason}", "error")
            return
        kiosk.confirming()
        deadline = time.monotonic() + self._confirm_timeout_s
        while reply.status in ("shown", "waiting"):
            if time.monotonic() > deadline:
                kiosk.back_to_shopping("confirm_timeout", "warn")
                return
            if kiosk.state != "confirming":  # cancelled on the screen meanwhile
                return
            self._stop.wait(POLL_S if reply.status == "waiting" else 0)
            reply = poll(session, proposal)
        if reply.status == "signed":
            assert reply.list is not None and kiosk.voucher is not None
            signed = check_signed(reply.list, proposal, kiosk.voucher, now=int(self._clock()))
            self.last_signed_at = time.perf_counter()
            kiosk.finished(signed)
        elif reply.status == "declined":
            kiosk.back_to_shopping("declined", "warn")
        else:
            kiosk.back_to_shopping(f"refused_{reply.reason}", "error")
