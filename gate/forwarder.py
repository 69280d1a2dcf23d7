"""The forwarder: drains the gate's charge outbox to the payment system, in its own thread.

Everything it knows is in the outbox (gate.store): a restart, a power cut or a SIGKILL in the middle of a
request loses nothing, because a charge leaves the `pending` state only once the payment system's answer is
recorded. Sending the same charge again is safe: the payment system is idempotent by charge id.

Charges go in batches (`POST /v1/charges` with `{"charges": [...]}`, docs/payments-api.md);
`gate.payment_answers.classify` is the one place an answer becomes an outbox state.

An accepted charge's notice is pulled in batches (`POST /v1/notices`) until it arrives; the pull is signed
with this gate's key (a notice tells how a shopper's money moved), and answers only this gate's charges.

Backoff is exponential with full jitter: after the n-th failed attempt of a charge the next one is due a
uniformly random time in [0, min(cap, base * 2**n)]. The same rule pauses sending after a round in which
the payment system could not be reached, so a dead server is not hammered with every queued charge. The
feed (deny lists, consumed holds, prices; gate.sync) is pulled every `sync_interval_s`; when it fails the
next pull is again about `sync_interval_s` away (with jitter, so a store's gates spread out), whether or
not charges are waiting. One request at a time, so never two requests for one charge.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import requests

from gate.errors import GateError
from gate.http import environment_session
from gate.payment_answers import MAX_ERROR_CHARS, Verdict, classify, error_of
from gate.protocol.feed import Gs1Entry
from gate.protocol.keys import SigningKey, TrustedKeys, read_secret_key
from gate.protocol.notice_request import gate_notices_message
from gate.store import GateStore, OutboxEntry
from gate.sync import SyncError, SyncResult, gs1_mismatch, sync_feed

if TYPE_CHECKING:
    from gate.config import LaneConfig

log = logging.getLogger(__name__)

NOTICE_BATCH = 500
# A request stays under the payment system's 2 MiB body limit: a whole batch of 500 ordinary baskets, so a
# long backlog goes in few requests. A smaller limit on the way (a proxy's, an older payment system's 256
# KiB) answers 413, and the forwarder halves its requests until they pass (`request_bytes`).
MAX_REQUEST_BYTES = 2_000_000


def full_jitter(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait after failure number attempt (0-based): uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt, 0), 64))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class Outcome:
    """What one attempt of one charge came to."""

    charge_id: bytes
    result: str  # "accepted", "settled", "flagged", "conflict" or "retry"
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
        batch: int = 200,
        idle_poll_s: float = 1.0,
        notice_poll_s: float = 2.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
        gs1: tuple[Gs1Entry, ...] | None = None,
        gate_id: str | None = None,
        gate_key: SigningKey | None = None,
    ) -> None:
        if backoff_cap_s < backoff_base_s or backoff_base_s <= 0:
            raise ValueError("backoff needs 0 < base <= cap")
        self.store = store
        self.url = url.rstrip("/")
        self.trusted = trusted
        self.store_id = store_id
        # Notices are pulled signed by this gate (they tell how shoppers' money moved); without the key
        # the forwarder still sends charges, and the pull says why it cannot be made.
        self.gate_id = gate_id
        self.gate_key = gate_key
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.sync_interval_s = sync_interval_s
        self.batch = batch
        self.request_bytes = MAX_REQUEST_BYTES
        self.idle_poll_s = idle_poll_s
        self.notice_poll_s = notice_poll_s
        self._next_notices = 0.0
        self._awaiting_notices = False
        self.rng = rng or random.Random()
        self.clock = clock
        self.session = session or environment_session(self.url)
        self.last_error = ""
        self.last_sync: SyncResult | None = None
        self.last_sync_error = ""
        # The lane's own [[barcodes.gs1]]: a feed whose layouts differ means phones split labels otherwise
        # than this gate does, and their lists are denied here. Said once per difference, as a fault.
        self.gs1 = gs1
        self.gs1_mismatch = ""
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
            "gate_id": config.lane.gate_id,
            "gate_key": read_secret_key(config.lane.gate_key_file),
            "timeout_s": config.payments.timeout_s,
            "backoff_base_s": config.forwarder.backoff_base_ms / 1000,
            "backoff_cap_s": config.forwarder.backoff_cap_ms / 1000,
            "sync_interval_s": config.forwarder.sync_interval_s,
            "gs1": tuple(Gs1Entry.of(layout) for layout in config.barcodes.gs1),
        }
        settings.update(overrides)
        return cls(store, **settings)

    # -- a batch of charges ---------------------------------------------------------------------------

    def _post(self, entries: list[OutboxEntry]) -> tuple[int | None, list[Any], str]:
        """One request carrying these charges: the HTTP status (None: no answer), the answer for each charge
        (None where none came), and what went wrong with the request as a whole."""
        body = {"charges": [base64.b64encode(e.body).decode("ascii") for e in entries]}
        status: int | None = None
        answers: list[Any] = [None] * len(entries)
        try:
            response = self.session.post(self.url + "/v1/charges", json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            return None, answers, f"no answer: {type(exc).__name__}: {_short(exc)}"
        status = response.status_code
        code, message = error_of(response)
        if status == 200:
            try:
                results = response.json()["results"]
                if isinstance(results, list) and len(results) == len(entries):
                    answers = results
            except (ValueError, KeyError, TypeError):
                pass
        return status, answers, f"{status} {code}: {message}"

    def _record(
        self, entries: list[OutboxEntry], status: int | None, answers: list[Any], detail: str
    ) -> list[Outcome]:
        """Each charge's answer classified and recorded in the outbox."""
        outcomes: list[Outcome] = []
        accepted: list[bytes] = []
        settled: list[tuple[bytes, bytes]] = []
        for entry, answer in zip(entries, answers, strict=True):
            verdict = classify(
                entry.body,
                entry.charge_id,
                answer,
                trusted=self.trusted,
                store_id=self.store_id,
                status=status,
            )
            if verdict.result == "retry":
                outcomes.append(self._retry(entry, status, detail if answer is None else verdict.detail))
                continue
            if verdict.result == "accepted":
                accepted.append(entry.charge_id)
            elif verdict.result == "settled":
                settled.append((entry.charge_id, verdict.notice))
            elif verdict.result == "conflict":
                self._conflict(entry, verdict)
            else:
                self.store.outbox_flag(entry.charge_id, verdict.detail)
                log.warning("charge %s flagged for a technician: %s", entry.charge_id.hex(), verdict.detail)
            outcomes.append(Outcome(entry.charge_id, verdict.result, status, verdict.detail))
        now = self.clock()
        if accepted:
            self.store.outbox_accepted(accepted, now)
        if settled:
            self.store.outbox_settled_many(settled, now)
        return outcomes

    def _conflict(self, entry: OutboxEntry, verdict: Verdict) -> None:
        data = {
            "code": "replay",
            "list": entry.charge_id.hex(),
            "won_gate": verdict.won_gate,
            "won": verdict.won.hex(),
            "amount": entry.amount,
            "currency": entry.currency,
        }
        self.store.outbox_conflict(entry.charge_id, verdict.detail, self.clock(), data)
        log.warning("charge %s: %s", entry.charge_id.hex(), verdict.detail)

    def _retry(self, entry: OutboxEntry, status: int | None, error: str) -> Outcome:
        error = error[:MAX_ERROR_CHARS]
        at = self.clock() + full_jitter(entry.attempts, self.backoff_base_s, self.backoff_cap_s, self.rng)
        self.store.outbox_retry_later(entry.charge_id, error, at)
        self.last_error = error
        return Outcome(entry.charge_id, "retry", status, error, at)

    def collect_notices(self) -> int:
        """Ask for the notices of accepted charges, oldest first; how many arrived (SyncError: no answer)."""
        waiting = self.store.outbox_awaiting_notice(NOTICE_BATCH)
        if not waiting:
            return 0
        if self.gate_key is None or self.gate_id is None:
            raise SyncError("notices: no gate id and key to sign the pull with")
        charges = [c.hex() for c in waiting]
        at = int(self.clock())
        signature = self.gate_key.sign(gate_notices_message(self.store_id, self.gate_id, charges, at))
        body = {"gate": self.gate_id, "at": at, "signature": signature.hex(), "charges": charges}
        try:
            response = self.session.post(self.url + "/v1/notices", json=body, timeout=self.timeout_s)
            found = response.json()["notices"] if response.status_code == 200 else None
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise SyncError(f"notices: the payment system did not answer ({type(exc).__name__})") from exc
        if not isinstance(found, list):
            code, message = error_of(response)
            raise SyncError(f"notices: the payment system answered {response.status_code} {code}: {message}")
        wanted = set(waiting)
        settled = []
        for item in found:
            try:
                charge_id = bytes.fromhex(item["charge"])
            except (KeyError, TypeError, ValueError):
                continue
            if charge_id not in wanted:  # not ours to settle: its signature is not worth checking
                continue
            verdict = classify(
                b"", charge_id, {**item, "status": "settled"}, trusted=self.trusted, store_id=self.store_id,
                status=200,
            )  # fmt: skip
            if verdict.result == "settled":
                settled.append((charge_id, verdict.notice))
        if settled:
            self.store.outbox_settled_many(settled, self.clock())
        return len(settled)

    # -- rounds ---------------------------------------------------------------------------------------

    def drain_once(self, limit: int | None = None) -> list[Outcome]:
        """Send the due charges (one request of at most `batch`, under `request_bytes`), oldest first.

        A 413 for several charges is a body limit on the way that is smaller than ours: the request is
        halved and sent again at once (nothing was recorded), and the smaller size kept for what follows."""
        if self._stopping.is_set():
            return []
        entries = self.store.outbox_due(self.clock(), limit or self.batch)
        while entries:
            sizes = list(accumulate(len(e.body) * 4 // 3 + 8 for e in entries))  # base64 and the JSON
            fits = max(1, bisect_right(sizes, self.request_bytes))
            status, answers, detail = self._post(entries[:fits])
            if status == 413 and fits > 1:
                self.request_bytes = sizes[fits - 1] // 2
                log.info(
                    "%d charges in one request were refused as too large: %d bytes a request from now on",
                    fits,
                    self.request_bytes,
                )
                continue
            return self._record(entries[:fits], status, answers, detail)
        return []

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
        self._check_gs1(result.gs1)
        return result

    def _check_gs1(self, signed: tuple[Gs1Entry, ...]) -> None:
        if self.gs1 is None:
            return
        mismatch = gs1_mismatch(self.gs1, signed)
        if mismatch and mismatch != self.gs1_mismatch:
            log.warning("%s", mismatch)
            self.store.record_event("fault", mismatch, {"code": "gs1_mismatch"})
        self.gs1_mismatch = mismatch

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

    def sync_soon(self) -> None:
        """Pull the feed at the thread's next round instead of at the interval: the lane is cut off from the
        other lanes of its store, and the feed is then its only news of holds consumed there."""
        self._next_sync = 0.0
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
            if self._awaiting_notices:
                waits.append(max(0.0, self._next_notices - now))
            if self._wake.wait(min(waits)):
                self._wake.clear()

    def _round(self) -> None:
        now = self.clock()
        if self.sync_interval_s is not None and now >= self._next_sync:
            try:
                self.sync_once()
            except (SyncError, GateError) as exc:
                if self.last_sync_error != str(exc):
                    log.info("feed sync failed: %s", exc)
                self.last_sync_error = str(exc)
            # Unreachable or not, the next pull is one feed interval away, spread by jitter.
            self._next_sync = now + self.sync_interval_s * self.rng.uniform(0.8, 1.2)
        if now < self._pause_until:
            return
        while not self._stopping.is_set():
            outcomes = self.drain_once()
            if any(o.result == "retry" for o in outcomes):
                self._unreachable()
                return
            if outcomes:
                self.unreachable_streak = 0
            if not outcomes:
                break
        self._awaiting_notices = bool(self.store.outbox_awaiting_notice(1))
        if self._awaiting_notices and self.clock() >= self._next_notices:
            try:
                self.collect_notices()
            except SyncError as exc:
                self.last_error = str(exc)
                self._unreachable()
                return
            self._next_notices = self.clock() + self.notice_poll_s

    def _unreachable(self) -> None:
        self._pause_until = self.clock() + full_jitter(
            self.unreachable_streak, self.backoff_base_s, self.backoff_cap_s, self.rng
        )
        self.unreachable_streak += 1

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
            "gs1_mismatch": self.gs1_mismatch,
        }


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""
