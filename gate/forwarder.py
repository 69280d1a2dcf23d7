"""The forwarder: drains the gate's charge outbox to the payment system, in its own thread.

Everything it knows is in the outbox (gate.store): a restart, a power cut or a SIGKILL in the middle of a
request loses nothing, because a charge leaves the `pending` state only once the payment system's answer is
recorded. Sending the same charge again is safe: the payment system is idempotent by charge id.

How an answer is classified (docs/payments-api.md, "For gate integrators"):

| answer                                    | outbox             | why                                   |
|-------------------------------------------|--------------------|---------------------------------------|
| 2xx with a deduction notice that verifies | outbox_settled     | the payment system took it            |
| 409, or another 4xx (not 408/425/429)     | outbox_flag        | resending cannot help: a technician   |
| 5xx, 408, 425, 429, timeout, refused      | outbox_retry_later | the PS or its bank is down: back off  |

Backoff is exponential with full jitter: after the n-th failed attempt of a charge the next one is due a
uniformly random time in [0, min(cap, base * 2**n)]. The same rule pauses the whole forwarder after a
round in which the payment system could not be reached, so a dead server is not hammered with every
queued charge. One request at a time, so never two requests for one charge. Between rounds it pulls the
feed (deny lists, consumed holds, prices; gate.sync) every `sync_interval_s`.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from gate.errors import GateError, ProtocolError
from gate.http import environment_session
from gate.protocol.documents import DeductionNotice, open_signed
from gate.protocol.keys import TrustedKeys
from gate.store import GateStore, OutboxEntry
from gate.sync import SyncError, SyncResult, sync_feed

if TYPE_CHECKING:
    from gate.config import LaneConfig

log = logging.getLogger(__name__)

RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_ERROR_CHARS = 500


def full_jitter(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait after failure number attempt (0-based): uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt, 0), 64))
    return rng.uniform(0.0, ceiling)


def classify(status: int) -> str:
    """'settled', 'retry' or 'flag' for an HTTP status from POST /v1/charges."""
    if 200 <= status < 300:
        return "settled"
    if status >= 500 or status in RETRYABLE_4XX or status < 200:
        return "retry"
    return "flag"


@dataclass(frozen=True)
class Outcome:
    """What one attempt of one charge came to."""

    charge_id: bytes
    result: str  # "settled", "retry" or "flagged"
    status: int | None  # HTTP status, None when no answer came
    detail: str
    next_attempt_at: float | None = None


class Forwarder:
    """Sends the outbox's due charges to the payment system and pulls its feed; see the module docstring.

    `rng` and `clock` are injectable for tests; `session` too (any requests.Session). Call `drain_once()`
    and `sync_once()` directly, or `start()` the thread and `close()` it.
    """

    def __init__(
        self,
        store: GateStore,
        *,
        url: str,
        trusted: TrustedKeys,
        store_id: str,
        timeout_s: float = 5.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        sync_interval_s: float | None = 60.0,
        batch: int = 20,
        idle_poll_s: float = 1.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        if backoff_cap_s < backoff_base_s or backoff_base_s <= 0:
            raise ValueError("backoff needs 0 < base <= cap")
        self.store = store
        self.url = url.rstrip("/")
        self.trusted = trusted
        self.store_id = store_id
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.sync_interval_s = sync_interval_s
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.rng = rng or random.Random()
        self.clock = clock
        self.session = session or environment_session(self.url)
        self.last_error = ""
        self.last_sync: SyncResult | None = None
        self.last_sync_error = ""
        self.unreachable_streak = 0
        self._pause_until = 0.0
        self._next_sync = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_config(cls, config: LaneConfig, store: GateStore, **overrides: Any) -> Forwarder:
        """A forwarder for this lane config: [payments] url, keys, timeout and [forwarder] backoff."""
        settings: dict[str, Any] = {
            "url": config.payments.url,
            "trusted": TrustedKeys.from_files(config.payments.public_key_files),
            "store_id": config.lane.store_id,
            "timeout_s": config.payments.timeout_s,
            "backoff_base_s": config.forwarder.backoff_base_ms / 1000,
            "backoff_cap_s": config.forwarder.backoff_cap_ms / 1000,
            "sync_interval_s": config.forwarder.sync_interval_s,
        }
        settings.update(overrides)
        return cls(store, **settings)

    # -- one charge -----------------------------------------------------------------------------------

    def send(self, entry: OutboxEntry) -> Outcome:
        """One attempt of one charge, its answer classified and recorded in the outbox."""
        body = {"charge": base64.b64encode(entry.body).decode("ascii")}
        try:
            response = self.session.post(self.url + "/v1/charges", json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            return self._retry(entry, None, f"no answer: {type(exc).__name__}: {_short(exc)}")
        status = response.status_code
        verdict = classify(status)
        if verdict == "settled":
            try:
                notice = self._notice(entry, response)
            except (ValueError, KeyError, TypeError, ProtocolError) as exc:
                return self._retry(entry, status, f"answer {status} without a notice that verifies: {exc}")
            self.store.outbox_settled(entry.charge_id, notice, self.clock())
            return Outcome(entry.charge_id, "settled", status, "settled")
        code, message = _error_of(response)
        if verdict == "retry":
            return self._retry(entry, status, f"{status} {code}: {message}")
        reason = f"{status} {code}: {message}"[:MAX_ERROR_CHARS]
        self.store.outbox_flag(entry.charge_id, reason)
        log.warning("charge %s flagged for a technician: %s", entry.charge_id.hex(), reason)
        return Outcome(entry.charge_id, "flagged", status, reason)

    def _notice(self, entry: OutboxEntry, response: requests.Response) -> bytes:
        raw = base64.b64decode(response.json()["notice"], validate=True)
        signed = open_signed(raw, DeductionNotice)
        notice = signed.verify_with(self.trusted.get(signed.kid))
        if notice.charge != entry.charge_id:
            raise ProtocolError("the notice is for another charge")
        return raw

    def _retry(self, entry: OutboxEntry, status: int | None, error: str) -> Outcome:
        error = error[:MAX_ERROR_CHARS]
        at = self.clock() + full_jitter(entry.attempts, self.backoff_base_s, self.backoff_cap_s, self.rng)
        self.store.outbox_retry_later(entry.charge_id, error, at)
        self.last_error = error
        return Outcome(entry.charge_id, "retry", status, error, at)

    # -- rounds ---------------------------------------------------------------------------------------

    def drain_once(self, limit: int | None = None) -> list[Outcome]:
        """Send the due charges once each, oldest first; stop at the first one that must be retried."""
        outcomes = []
        for entry in self.store.outbox_due(self.clock(), limit or self.batch):
            if self._stopping.is_set():
                break
            outcome = self.send(entry)
            outcomes.append(outcome)
            if outcome.result == "retry":
                break
        return outcomes

    def sync_once(self) -> SyncResult:
        """Pull the feed up to the latest version (SyncError if the PS is unreachable or the feed is bad)."""
        result = sync_feed(
            self.store,
            url=self.url,
            trusted=self.trusted,
            store_id=self.store_id,
            session=self.session,
            timeout_s=self.timeout_s,
        )
        self.last_sync = result
        self.last_sync_error = ""
        return result

    # -- the thread -----------------------------------------------------------------------------------

    def start(self) -> Forwarder:
        if self._thread is not None:
            raise RuntimeError("the forwarder is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="forwarder", daemon=True)
        self._thread.start()
        return self

    def notify(self) -> None:
        """Wake the thread now (the lane calls this after it committed a pass)."""
        self._wake.set()

    def run(self) -> None:
        """The thread's loop: sync when due, drain when not paused, sleep until there is work."""
        while not self._stopping.is_set():
            try:
                self._round()
            except Exception as exc:  # the store is busy or broken: never let the thread die
                log.exception("forwarder round failed")
                self.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                self._pause_until = self.clock() + self.backoff_cap_s
            now = self.clock()
            waits = [self.idle_poll_s]
            if self._pause_until > now:
                waits.append(self._pause_until - now)
            if self.sync_interval_s is not None:
                waits.append(max(0.0, self._next_sync - now))
            if self._wake.wait(min(waits)):
                self._wake.clear()

    def _round(self) -> None:
        now = self.clock()
        if self.sync_interval_s is not None and now >= self._next_sync:
            try:
                self.sync_once()
                self._next_sync = now + self.sync_interval_s
            except (SyncError, GateError) as exc:
                self.last_sync_error = str(exc)
                log.info("feed sync failed: %s", exc)
                retry = full_jitter(
                    self.unreachable_streak, self.backoff_base_s, self.backoff_cap_s, self.rng
                )
                self._next_sync = now + min(self.sync_interval_s, max(retry, self.backoff_base_s))
        if now < self._pause_until:
            return
        while not self._stopping.is_set():
            outcomes = self.drain_once()
            if outcomes and outcomes[-1].result == "retry":
                self._pause_until = self.clock() + full_jitter(
                    self.unreachable_streak, self.backoff_base_s, self.backoff_cap_s, self.rng
                )
                self.unreachable_streak += 1
                return
            if outcomes:
                self.unreachable_streak = 0
            if len(outcomes) < self.batch:
                return

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread after the request in flight (if any); the outbox keeps everything else."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5 if timeout is None else timeout)
            self._thread = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.session.close()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        """For the panel and `gate status`: the backlog and the last errors."""
        backlog = self.store.outbox_backlog()
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "backlog_count": backlog.count,
            "backlog_amount": backlog.amount,
            "oldest_created_at": backlog.oldest_created_at,
            "unreachable_streak": self.unreachable_streak,
            "last_error": self.last_error,
            "feed_version": self.store.feed_version(),
            "last_sync_error": self.last_sync_error,
        }


def _error_of(response: requests.Response) -> tuple[str, str]:
    try:
        answer = response.json()
        return str(answer.get("error", "error")), str(answer.get("message", ""))[:300]
    except (ValueError, AttributeError):
        return "error", response.text[:200]


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


def main(argv: list[str] | None = None) -> int:
    """`python -m gate.forwarder`: run only the forwarder against a gate database (tools, tests)."""
    import argparse
    import signal
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m gate.forwarder", description=main.__doc__)
    parser.add_argument("--database", required=True, type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--trust", required=True, action="append", type=Path, help="PS public key file")
    parser.add_argument("--store", required=True)
    parser.add_argument("--base-ms", type=int, default=500)
    parser.add_argument("--cap-ms", type=int, default=60_000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--sync-interval", type=float, default=60.0, help="seconds; 0 disables the feed")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with (
        GateStore(args.database) as store,
        Forwarder(
            store,
            url=args.url,
            trusted=TrustedKeys.from_files(args.trust),
            store_id=args.store,
            timeout_s=args.timeout,
            backoff_base_s=args.base_ms / 1000,
            backoff_cap_s=args.cap_ms / 1000,
            sync_interval_s=args.sync_interval or None,
        ) as forwarder,
    ):
        if args.once:
            forwarder.drain_once()
            return 0
        forwarder.start()
        print("forwarder running", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
