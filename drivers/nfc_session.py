"""One phone on one reader, whatever carries the APDUs: PC/SC (nfc_pcsc) or the demo's in-process reader.

Chaining, GET RESPONSE and the exchange timeout live here once, so both transports behave alike. Every
APDU goes through one worker thread per session: a phone that never answers then costs the caller a
timeout, not a hang, and the stuck call finishes (and the link closes) behind its back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.errors import (
    ApduError,
    ApduStatusError,
    DeviceClosed,
    ExchangeTimeout,
    MalformedResponse,
    PhoneError,
    PhoneLost,
)
from drivers.nfc_apdu import (
    AID,
    MAX_MESSAGE,
    SW1_MORE_DATA,
    SW_OK,
    Command,
    command_chain,
    get_response_command,
    select_command,
    split_response,
    status_meaning,
)

log = logging.getLogger(__name__)


class CardLink(Protocol):
    """What a transport hands a session: the card it connected to, until close()."""

    reader: str

    def transmit(self, apdu: bytes) -> bytes:
        """One command APDU out, its response back; PhoneLost when the card is gone."""
        ...

    def wait_removed(self, timeout_s: float) -> bool: ...

    def close(self) -> None: ...


@dataclass
class NfcCounters:
    """What a technician's panel shows for a reader; shared by the reader and its sessions."""

    sessions: int = 0
    exchanges: int = 0
    apdus: int = 0
    not_our_phone: int = 0
    phones_lost: int = 0
    timeouts: int = 0
    status_errors: int = 0
    malformed: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, error: BaseException | str | None = None) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)
            if error is not None:
                self.last_error = str(error)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


_ERROR_COUNTER = {
    PhoneLost: "phones_lost",
    ExchangeTimeout: "timeouts",
    ApduStatusError: "status_errors",
    MalformedResponse: "malformed",
}


class _Job:
    __slots__ = ("apdu", "done", "error", "response")

    def __init__(self, apdu: bytes) -> None:
        self.apdu = apdu
        self.done = threading.Event()
        self.response = b""
        self.error: BaseException | None = None


class PhoneSession:
    """A phone that answered SELECT of our AID; exchange() carries whole application messages."""

    def __init__(self, link: CardLink, *, timeout_s: float, counters: NfcCounters) -> None:
        self._link = link
        self._timeout_s = timeout_s
        self._counters = counters
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ended: PhoneError | None = None
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name=f"apdu:{link.reader}", daemon=True)
        self._worker.start()

    @property
    def reader(self) -> str:
        return self._link.reader

    def __enter__(self) -> PhoneSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exchange(self, ins: int, data: bytes = b"", p1: int = 0, p2: int = 0) -> bytes:
        """Send one application command and return its whole answer.

        The timeout bounds the whole call, chunks included. After PhoneLost or ExchangeTimeout the
        session is over (every later call raises the same); after an ApduError it can go on.
        """
        commands = command_chain(ins, data, p1, p2)
        if self._ended is not None:  # already counted when it happened
            raise type(self._ended)(f"session already over: {self._ended}")
        self._counters.add("exchanges")
        try:
            return self._run(commands, time.monotonic() + self._timeout_s)
        except PhoneError as exc:
            self._counters.add(_ERROR_COUNTER.get(type(exc), "malformed"), exc)
            raise

    def select(self, aid: bytes = AID) -> None:
        """SELECT by name, so a bank card or a phone without our app is told apart from our phone."""
        _, sw1, sw2 = self._transmit(select_command(aid), time.monotonic() + self._timeout_s)
        self._expect_ok(sw1, sw2)

    def wait_removed(self, timeout_s: float) -> bool:
        """True once the phone has left the reader (at once after PhoneLost); False after timeout_s."""
        if isinstance(self._ended, PhoneLost):
            return True
        return self._link.wait_removed(timeout_s)

    def close(self) -> None:
        """Disconnect; a transmit stuck on a silent phone is left to close the link when it returns."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if not isinstance(self._ended, ExchangeTimeout):
            self._worker.join(self._timeout_s)

    def _run(self, commands: list[Command], deadline: float) -> bytes:
        for chunk in commands[:-1]:
            data, sw1, sw2 = self._transmit(chunk, deadline)
            self._expect_ok(sw1, sw2)
            if data:
                raise MalformedResponse(f"{len(data)} data bytes in answer to a chained chunk")
        data, sw1, sw2 = self._transmit(commands[-1], deadline)
        answer = bytearray(data)
        while sw1 == SW1_MORE_DATA:
            if len(answer) > MAX_MESSAGE:
                raise MalformedResponse(f"answer grows past {MAX_MESSAGE} bytes")
            data, sw1, sw2 = self._transmit(get_response_command(sw2), deadline)
            if not data:
                raise MalformedResponse(f"GET RESPONSE answered {sw1:02X} {sw2:02X} with no data")
            answer += data
        self._expect_ok(sw1, sw2)
        return bytes(answer)

    @staticmethod
    def _expect_ok(sw1: int, sw2: int) -> None:
        if sw1 << 8 | sw2 != SW_OK:
            raise ApduStatusError(sw1, sw2, status_meaning(sw1, sw2))

    def _transmit(self, command: Command, deadline: float) -> tuple[bytes, int, int]:
        if self._closed:
            raise DeviceClosed("the phone session is closed")
        if self._ended is not None:
            raise type(self._ended)(f"session already over: {self._ended}")
        job = _Job(command.encode())
        self._jobs.put(job)
        if not job.done.wait(max(0.0, deadline - time.monotonic())):
            self._ended = ExchangeTimeout(f"no answer from the phone within {self._timeout_s * 1000:.0f} ms")
            raise self._ended
        if isinstance(job.error, PhoneLost):
            self._ended = job.error
        if job.error is not None:
            raise job.error
        self._counters.add("apdus")
        return split_response(job.response)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.response = self._link.transmit(job.apdu)
            except BaseException as exc:  # handed to the caller's thread, which raises it
                job.error = exc
            job.done.set()
        try:
            self._link.close()
        except Exception:
            log.exception("closing the link to the phone on %s failed", self._link.reader)


def start_session(
    link: CardLink, *, timeout_s: float, counters: NfcCounters, aid: bytes
) -> PhoneSession | None:
    """A session on a card that selected our AID, or None (link closed) for a card that refused it.

    PhoneLost and ExchangeTimeout pass through (link closed): the card may be worth another try.
    """
    session = PhoneSession(link, timeout_s=timeout_s, counters=counters)
    try:
        session.select(aid)
    except ApduError as exc:
        session.close()
        counters.add("not_our_phone", f"SELECT: {exc}")
        log.info("card on %s is not our phone: %s", link.reader, exc)
        return None
    except PhoneError as exc:
        session.close()
        counters.last_error = f"SELECT: {exc}"
        raise
    counters.add("sessions")
    return session
