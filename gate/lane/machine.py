"""The exit lane: tap, decide, commit, open; with fail-safe egress whatever the software is doing.

One lane thread serves phones one at a time. The gate's inputs (fire alarm, beam, door) are handled on
their own thread as they arrive, so the lane's state follows a fire alarm even while the lane thread waits
on a phone; the gate I/O driver has already released the lock from the input's own callback by then.

The order for a pass is fixed: the decision's durable transaction commits first, then the gate opens. A
pass that is not on disk was never given, and a crash at any instant leaves either no pass or exactly one
charge. Transitions during a tap are written after the gate has opened, so they cost the shopper nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import DriverError, PhoneError
from drivers.gate_io import BuzzerPattern, GateEvent, GateEventKind
from gate.errors import GateError, LaneError
from gate.lane.auditing import LaneAudits
from gate.lane.outcomes import LaneState, LaneTimings, Opening, TapOutcome
from gate.lane.ports import GateIOLike, LaneStore, PhoneSessionLike, ReaderLike
from gate.lane.storage import NoWatch, WatchLike
from gate.legality import (
    ATTENDANT_CODES,
    Decision,
    GateIdentity,
    Policy,
    build_charge,
    build_receipt,
    check,
    new_challenge,
)
from gate.notify import Notifier
from gate.protocol.commands import INS_CHALLENGE, INS_RECEIPT
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.store.database import StorageFault
from gate.store.records import AuditRecord

log = logging.getLogger(__name__)

# What a second tap of a list that passed here may show besides list_used: state and time, which moved on
# since the pass (its charge is committed already), and the attendant codes an attendant cleared before the
# pass; never a signature or challenge code. Within the repeat window the receipt says exactly [list_used]
# (docs/protocol.md, "Repeat taps"); the event keeps the rest.
REPEAT_CODES = ATTENDANT_CODES | {
    "list_used",
    "hold_consumed",
    "offline_limit",
    "list_stale",
    "voucher_expired",
    "hold_denied",
    "shopper_denied",
}
ATTENDANT_WAIT_S = 600.0  # how long an attendant may take to approve a list the lane sent them
MAX_AWAITING = 32


class Lane(LaneAudits):
    """One exit lane: its state machine, driven by taps on the reader and by the gate's inputs."""

    def __init__(
        self,
        *,
        gate: GateIdentity,
        policy: Policy,
        trusted: TrustedKeys,
        gate_key: SigningKey,
        store: LaneStore,
        reader: ReaderLike,
        gate_io: GateIOLike,
        timings: LaneTimings = LaneTimings(),
        notifier: Notifier | None = None,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        nonce: Callable[[int], bytes] = os.urandom,
        storage: WatchLike | None = None,
        clock_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.gate = gate
        self.policy = policy
        self.trusted = trusted
        self.gate_key = gate_key
        self.store = store
        self.reader = reader
        self.io = gate_io
        self.timings = timings
        self.notifier = notifier or Notifier({})
        self.on_commit = on_commit
        self.clock = clock
        self.clock_trusted = clock_trusted  # False: no time to judge by (gate.clock.LaneClock)
        self.monotonic = monotonic
        self.nonce = nonce
        self._lock = threading.RLock()
        self._state = LaneState.IDLE
        self._opening: Opening | None = None
        self._denied_until = 0.0
        self._fire_alarm = False
        self._maintenance: str | None = None
        self._fault: str | None = None
        self._storage_fault: str | None = None  # kept apart: a beam clearing must not end it
        self.storage: WatchLike = storage or NoWatch()
        self._forced_door = False  # its alarm sounds until the door is shut again
        self._unsaved: list[tuple[str, str, dict[str, Any]]] = []
        # Lists sent to an attendant (audit, age-restricted goods), by list id, until approved or stale.
        self._awaiting: dict[bytes, tuple[Decision, float]] = {}
        # When the gate opened for each recent pass (lane clock): an attendant may approve minutes after
        # the check, and a repeat tap's window counts from the opening, not from the check.
        self._passed_at: dict[bytes, float] = {}
        self._io_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_turn = monotonic()
        self.last_outcome: TapOutcome | None = None  # the panel's "last tap"
        self._init_audits()
        self.io.secure()
        self.io.lights()

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> LaneState:
        return self._state

    def _enter(self, state: LaneState, why: str, data: Mapping[str, Any] | None = None) -> None:
        """Move to a state; the event is kept in memory until _save_events (off the tap-to-open path)."""
        with self._lock:
            if state == self._state:
                return
            previous, self._state = self._state, state
            self._unsaved.append(
                (
                    "transition",
                    f"{previous} -> {state}: {why}",
                    {"from": str(previous), "to": str(state), **(data or {})},
                )
            )
        log.info("lane %s -> %s: %s", previous, state, why)
        self.notifier.status(f"{state}: {why}")

    def _event(self, kind: str, detail: str, data: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._unsaved.append((kind, detail, dict(data or {})))
        log.log(logging.WARNING if kind in ("alarm", "fault") else logging.INFO, "lane %s: %s", kind, detail)

    def _save_events(self) -> None:
        """Write the kept events; on a store error keep what is not written for the next turn."""
        with self._lock:
            pending, self._unsaved = self._unsaved, []
        for i, (kind, detail, data) in enumerate(pending):
            try:
                self.store.record_event(kind, detail, data)
            except StorageFault as exc:
                with self._lock:
                    self._unsaved[:0] = pending[i:]
                self._storage_failed(str(exc))
                return
            except GateError:
                log.exception("lane: %d event(s) not written yet", len(pending) - i)
                with self._lock:
                    self._unsaved[:0] = pending[i:]
                return

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": str(self._state),
                "fire_alarm": self._fire_alarm,
                "maintenance": self._maintenance,
                "fault": self._storage_fault or self._fault,
                "storage_fault": self._storage_fault,
                "clock_trusted": self.clock_trusted(),
                "open_for": self._opening.list_id.hex() if self._opening and self._opening.list_id else None,
                "audit": self._audit.health() if self._audit else None,
                "last_turn_age_s": round(self.monotonic() - self.last_turn, 3),
            }

    # -- the gate's inputs ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start following the gate's inputs (fire alarm, beam, door) on a thread of their own."""
        self._io_thread = threading.Thread(target=self._follow_inputs, name="lane-inputs", daemon=True)
        self._io_thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._io_thread is not None:
            self._io_thread.join(timeout=2)
        self._save_events()

    def _follow_inputs(self) -> None:
        while not self._stop.is_set():
            try:
                event = self.io.events.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.on_gate_event(event)
                self._save_events()
            except Exception:
                log.exception("lane: handling %s failed", event.kind)

    def on_gate_event(self, event: GateEvent) -> None:
        kind = event.kind
        if kind in (GateEventKind.FIRE_ALARM_ON, GateEventKind.FIRE_ALARM_OFF):
            self.fire_alarm(kind == GateEventKind.FIRE_ALARM_ON)
        elif kind in (GateEventKind.BEAM_BLOCKED, GateEventKind.BEAM_CLEARED):
            self._beam(kind == GateEventKind.BEAM_BLOCKED)
        elif kind == GateEventKind.FORCED_DOOR:
            self._event(
                "alarm", "forced door: the door opened while the gate was locked", {"code": "forced_door"}
            )
            self._forced_door = True
            self.io.buzz(BuzzerPattern.FAULT)
        elif kind == GateEventKind.DOOR_CLOSED and self._forced_door:  # the end of a forced-door fault
            self._forced_door = False
            self.io.silence()
        elif kind == GateEventKind.BEAM_STUCK:
            self._set_fault("beam blocked too long: check the passage beam")
        elif kind == GateEventKind.EXIT_BUTTON:
            try:
                self.let_one_out("request-to-exit button", "button")
            except LaneError as exc:
                self._event("exit_button", f"request-to-exit pressed, gate not opened: {exc}", {})

    def fire_alarm(self, active: bool) -> None:
        """Hold open on an alarm whatever the lane is doing; back to idle when the input clears."""
        with self._lock:
            self._fire_alarm = active
            if active:
                self.io.hold_open()  # the driver has already released it; this also covers a direct call
                self.io.lights(green=True, red=True, blink=True)
                self._opening = None
                self._enter(LaneState.EMERGENCY, "fire alarm input active")
            else:
                if self._maintenance != "open":
                    self.io.end_hold()
                if self._maintenance == "open":
                    self.io.lights(green=True)
                    self._enter(LaneState.MAINTENANCE, "fire alarm cleared: maintenance hold continues")
                    return
                self.io.secure()
                if self._maintenance == "locked":
                    self.io.lights(red=True)
                    self._enter(LaneState.MAINTENANCE, "fire alarm cleared: maintenance (locked) continues")
                    return
                self.io.lights()
                if self._fault or self._storage_fault:
                    self._enter(LaneState.FAULT, f"fire alarm cleared: {self._storage_fault or self._fault}")
                    return
                if self._resume_audit("fire alarm cleared"):
                    return
                self._enter(LaneState.IDLE, "fire alarm cleared")

    def _beam(self, blocked: bool) -> None:
        """Count people through an opening; anyone through a closed gate, or a second one, is an alarm."""
        with self._lock:
            if not blocked and self._fault:  # whatever the state: a beam fault ends when the beam clears
                self._clear_fault()
            if self._state in (LaneState.EMERGENCY, LaneState.MAINTENANCE):
                return
            opening = self._opening
            if not blocked:
                if opening is not None and opening.passages >= 1:
                    opening.close_at = self.monotonic() + self.timings.close_after_passage_s
                    if opening.passages == 1 and opening.list_id is not None:
                        self._event("passage", "the shopper walked through", {"list": opening.list_id.hex()})
                    elif opening.passages == 1:
                        self._event("passage", "the person let out walked through", {"list": None})
                return
            if opening is None:
                self._event("alarm", "passage with the gate closed", {"code": "tailgating"})
                self.io.buzz(BuzzerPattern.ALARM)
                return
            opening.passages += 1
            opening.close_at = None
            if opening.passages == 2:
                self._event(
                    "alarm",
                    "tailgating: a second person through on one pass",
                    {"code": "tailgating", "list": opening.list_id.hex() if opening.list_id else None},
                )
                self.io.buzz(BuzzerPattern.ALARM)

    def _set_fault(self, detail: str) -> None:
        with self._lock:
            self._fault = detail
            self._event("fault", detail, {})
            if self._state not in (LaneState.EMERGENCY, LaneState.MAINTENANCE):
                self._enter(LaneState.FAULT, detail)

    def _clear_fault(self) -> None:
        with self._lock:
            self._fault = None
            if (
                self._state == LaneState.FAULT and self._storage_fault is None
            ):  # back to the opening the fault interrupted, if any
                self._enter(LaneState.OPEN if self._opening else LaneState.IDLE, "fault cleared")

    # -- technician ------------------------------------------------------------------------------------------
    def maintenance(self, mode: str | None, reason: str) -> None:
        """Hold the gate open ("open"), keep it locked ("locked"), or return to service (None)."""
        if mode not in ("open", "locked", None):
            raise ValueError(f"maintenance mode {mode!r}: expected 'open', 'locked' or None")
        with self._lock:
            self._maintenance = mode
            self._opening = None
            if mode == "open":
                self.io.hold_open()
            else:
                self.io.end_hold()
            if self._fire_alarm:
                self._event(
                    "maintenance",
                    f"maintenance {mode or 'off'} noted; fire alarm keeps the gate open",
                    {"mode": mode, "reason": reason},
                )
                return
            if mode != "open":
                self.io.secure()
            self.io.lights(green=mode == "open", red=mode == "locked")
            if mode is None:
                if self._fault or self._storage_fault or not self._resume_audit(f"back in service: {reason}"):
                    back = LaneState.FAULT if (self._fault or self._storage_fault) else LaneState.IDLE
                    self._enter(back, f"back in service: {reason}", {"reason": reason})
            elif self._state == LaneState.MAINTENANCE:  # open <-> locked: no transition, still on record
                self._event("maintenance", f"maintenance {mode}: {reason}", {"mode": mode, "reason": reason})
                self.notifier.status(f"{self._state}: maintenance {mode}: {reason}")
            else:
                self._enter(
                    LaneState.MAINTENANCE, f"maintenance {mode}: {reason}", {"mode": mode, "reason": reason}
                )
        self._save_events()

    # -- the lane loop ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, poll_s: float = 0.2) -> None:
        self.start()
        self.notifier.ready(f"{self._state}: lane {self.gate.gate} ready")
        try:
            while not stop.is_set():
                self.turn(poll_s)
        finally:
            self.notifier.stopping()
            self.close()

    def turn(self, poll_s: float = 0.2) -> TapOutcome | None:
        """One loop turn: time-outs, then at most one tap. Pings the watchdog only when it comes back, and
        not while the storage is failing (systemd then restarts the lane, and the technician is told)."""
        self._tick()
        outcome = None
        try:
            session = self.reader.wait_for_phone(poll_s)
        except DriverError as exc:
            self._event("fault", f"reader: {exc}", {})
            session = None
        if session is not None:
            try:
                with session:
                    outcome = self.serve(session)
            except (GateError, DriverError) as exc:
                # Nothing was committed (a pass's transaction rolls back whole), so no pass was given:
                # the phone got no receipt and its shopper taps again. The lane goes on.
                log.exception("lane: the tap failed")
                self._event("tap_failed", f"{type(exc).__name__}: {exc}", {})
                self._back_to_idle("tap failed")
                if isinstance(exc, StorageFault):
                    self._storage_failed(str(exc))
            if outcome is not None:
                self.last_outcome = outcome
        self._tick()
        self._save_events()
        self._watch_storage()
        self.last_turn = self.monotonic()
        if self._storage_fault is None:
            self.notifier.watchdog(self.last_turn)
        return outcome

    # -- the storage under the database ------------------------------------------------------------------
    def _storage_failed(self, detail: str) -> None:
        """No durable record can be made: stop deciding, secure the gate, show red, say why."""
        with self._lock:
            if self._storage_fault is not None:
                return
            self._storage_fault = f"storage: {detail}"
            log.error("lane: %s", self._storage_fault)
            self._event("fault", self._storage_fault, {"code": "storage"})
            if self._state in (LaneState.EMERGENCY, LaneState.MAINTENANCE):
                return
            if self._opening is not None:  # a committed pass: the shopper had the gate; it closes now
                self._opening = None
                self.io.secure()
            self.io.lights(red=True)
            self._enter(LaneState.FAULT, self._storage_fault)

    def _watch_storage(self) -> None:
        problem = self.storage.problem()
        if problem is not None:
            self._storage_failed(problem)
            return
        if self._storage_fault is None or not self.storage.probe_due(self.monotonic()):
            return
        reconnect = getattr(self.store, "reconnect", None)
        if reconnect is not None:
            reconnect()
        try:
            self.store.record_event("storage", f"the database is writable again ({self._storage_fault})", {})
        except GateError as exc:
            log.info("lane: the database is not writable yet: %s", exc)
            return
        with self._lock:
            log.warning("lane: the database is writable again")
            self._storage_fault = None
            if self._state == LaneState.FAULT and self._fault is None:
                self.io.lights()
                self._enter(LaneState.IDLE, "storage fault cleared")
        self._save_events()

    def _tick(self) -> None:
        with self._lock:
            now = self.monotonic()
            opening = self._opening
            if self._state == LaneState.OPEN and opening is not None:
                if opening.close_at is not None and now >= opening.close_at:
                    self._close(f"closed after {opening.passages} passage(s)")
                elif now >= opening.deadline and opening.passages == 0:
                    # A person in the beam (passages > 0, not yet cleared) is never closed on; a beam that
                    # stays blocked becomes a BEAM_STUCK fault instead.
                    self._close("closed: nobody passed before the open timeout")
            elif self._state == LaneState.DENIED and now >= self._denied_until:
                self.io.lights()
                self._enter(LaneState.IDLE, "denial shown")

    def _close(self, why: str) -> None:
        self._enter(LaneState.CLOSING, why)
        self.io.secure()
        self.io.lights()
        self._opening = None
        self._enter(LaneState.IDLE, "gate secured")

    # -- one tap ---------------------------------------------------------------------------------------------
    def serve(self, session: PhoneSessionLike) -> TapOutcome | None:
        """Challenge, read, decide, commit, open, answer. A phone lost before the decision leaves no pass."""
        steps: dict[str, float] = {}
        t0 = time.perf_counter()
        with self._lock:
            state_at_tap = self._state
            if state_at_tap in (LaneState.IDLE, LaneState.DENIED):
                self._enter(LaneState.READING, "phone on the reader")
        challenge = new_challenge(self.gate, self.clock(), self.nonce(32))
        try:
            raw = session.exchange(INS_CHALLENGE, challenge.encode())
        except PhoneError as exc:
            self._event(
                "tap_aborted", f"phone lost before the decision: {exc}", {"error": type(exc).__name__}
            )
            self._back_to_idle("tap aborted")
            return None
        t1 = time.perf_counter()
        steps["nfc_read"] = t1 - t0
        with self._lock:
            if self._state == LaneState.READING:
                self._enter(LaneState.DECIDING, "presentation read")
        decision = check(
            raw,
            challenge,
            now=self.clock(),
            catalog=self.store,
            state=self.store,
            policy=self.policy,
            trusted=self.trusted,
            gate=self.gate,
            clock_unsynced=not self.clock_trusted(),
        )
        decision = self._apply_audit_request(decision, state_at_tap)
        t2 = time.perf_counter()
        steps["verify"] = t2 - t1
        verdict, charged, opened, reasons = self._act(decision, state_at_tap, steps, t2)
        t3 = time.perf_counter()
        receipt = build_receipt(decision, self.gate_key, verdict=verdict, reasons=reasons).encode()
        delivered = True
        try:
            session.exchange(INS_RECEIPT, receipt)
        except PhoneError as exc:
            delivered = False
            self._event(
                "receipt_undelivered",
                f"{verdict} receipt not delivered: {exc}",
                {"list": decision.list_id.hex() if decision.list_id else None},
            )
        steps["receipt"] = time.perf_counter() - t3
        self._back_to_idle("tap answered")
        return TapOutcome(verdict, decision, charged, opened, receipt, delivered, steps)

    def _act(
        self, decision: Decision, state_at_tap: LaneState, steps: dict[str, float], t: float
    ) -> tuple[str, bool, bool, tuple[str, ...] | None]:
        """Commit and open for a pass; record and show anything else.

        Returns (verdict, charged, opened, the receipt's reasons when they are not the decision's)."""
        self._lock.acquire()  # held through the commit and the opening: an approval cannot come between
        try:
            return self._act_locked(decision, state_at_tap, steps, t)
        finally:
            self._lock.release()

    def _act_locked(
        self, decision: Decision, state_at_tap: LaneState, steps: dict[str, float], t: float
    ) -> tuple[str, bool, bool, tuple[str, ...] | None]:
        refusal = self._refusal(decision, state_at_tap)
        if refusal is not None:
            verdict, why = refusal
            # Not judged, so not a decision event: the lane event says why, with the check's own verdict.
            self._event(
                "tap_refused",
                why,
                {
                    "list": decision.list_id.hex() if decision.list_id else None,
                    "answered": verdict,
                    "check": decision.verdict,
                    "codes": list(decision.codes),
                },
            )
            return verdict, False, False, None
        if decision.verdict == "pass":
            charge = build_charge(decision, self.gate_key).encode()
            self.store.record_pass(decision, charge, timings=steps)
            t = _lap(steps, "commit", t)
            opened = self._open(decision.list_id, steps, t)
            self._note_pass(decision.list_id)
            if self.on_commit is not None:
                self.on_commit()
            return "pass", True, opened, None
        if self._repeat(decision):
            list_id = decision.list_id
            assert list_id is not None
            opened = self._opening is None and self._open(list_id, steps, time.perf_counter())
            return "pass", False, opened, ("list_used",)
        self.store.record_denial(decision, timings=steps)
        if decision.verdict == "attendant" and decision.list_id is not None:
            with self._lock:
                self._awaiting[decision.list_id] = (decision, self.monotonic())
                while len(self._awaiting) > MAX_AWAITING:
                    del self._awaiting[next(iter(self._awaiting))]
                if self._after_attendant_verdict(decision):
                    return decision.verdict, False, False, None
        self._show_denial()
        return decision.verdict, False, False, None

    # -- the attendant ------------------------------------------------------------------------------------
    def awaiting_attendant(self) -> list[Decision]:
        """Lists sent to an attendant in the last ATTENDANT_WAIT_S seconds, oldest first."""
        with self._lock:
            now = self.monotonic()
            auditing = self._audit.list_id if self._audit else None  # waits as long as its audit takes
            for list_id in [
                k for k, (_, at) in self._awaiting.items() if now - at > ATTENDANT_WAIT_S and k != auditing
            ]:
                del self._awaiting[list_id]
            return [decision for decision, _ in self._awaiting.values()]

    def _waiting(self, list_id: bytes) -> tuple[Decision, float]:
        """The list's decision waiting for an attendant, and since when; LaneError if none (or stale)."""
        self.awaiting_attendant()  # drops the stale ones
        with self._lock:
            waiting = self._awaiting.get(list_id)
        if waiting is None:
            raise LaneError(f"no attendant check is waiting for list {list_id.hex()}")
        return waiting

    def let_one_out(self, who: str, why: str, note: str = "") -> None:
        """Open the gate for one person, with no list and no charge: the request-to-exit button, or staff
        letting out a shopper who bought nothing or whose phone died.

        Recorded with who, why and when. It is an opening like a pass's: the beam closes it after one
        person, a second one through is a tailgating alarm, and nobody passing closes it at the open
        timeout. Refused (LaneError) while the gate is busy with a shopper or the lane is out of service.
        """
        with self._lock:
            if self._fire_alarm:
                raise LaneError("the fire alarm holds the gate open already")
            if self._maintenance is not None:
                raise LaneError(f"the lane is in maintenance ({self._maintenance}): end it first")
            if self._fault is not None:
                raise LaneError(f"the lane has a fault ({self._fault}): the beam cannot count a passage")
            if self._opening is not None or self._state not in (LaneState.IDLE, LaneState.DENIED):
                raise LaneError(f"the gate is busy with a shopper ({self._state}): try once it has closed")
            self._event(
                "let_out",
                f"one person let out by {who}: {why}" + (f" ({note})" if note else ""),
                {"by": who, "why": why, "note": note, "at": self.clock()},
            )
            self._open(None, {}, time.perf_counter(), why=f"let one person out: {why}")
        self._save_events()

    def approve(self, list_id: bytes, attendant: str, *, audit: AuditRecord | None = None) -> None:
        """An attendant checked the shopper's goods: commit the charge with their name, then open.

        Under the lane's lock, like a tap's pass, so the two never share one opening; the store state
        (deny lists, used lists, consumed holds) is read again, since the decision may be minutes old.
        A list the check sent to an audit is let out by its audit (`audit`, written with the charge).
        """
        with self._lock:
            decision = self._waiting(list_id)[0]
            if audit is None and self._audit is not None:
                raise LaneError(f"an audit of list {self._audit.list_id.hex()} is in progress: end it first")
            if audit is None and self.audit_required(list_id, decision):
                raise LaneError(f"list {list_id.hex()} was picked for an audit: re-scan the basket first")
            if self._fire_alarm or self._maintenance is not None or (self._fault or self._storage_fault):
                raise LaneError(f"the lane is not in service ({self._state}): approve once it is")
            if self._opening is not None:
                raise LaneError("the gate is open for another shopper: approve once it has closed")
            assert decision.hold is not None and decision.shopper is not None
            facts = self.store.facts(list_id, decision.hold, decision.shopper)
            stale = [
                name
                for name, on in (
                    ("list used", facts.list_used),
                    ("hold consumed", facts.hold_consumed),
                    ("hold denied", facts.hold_denied),
                    ("shopper denied", facts.shopper_denied),
                )
                if on
            ]
            if stale:
                del self._awaiting[list_id]
                raise LaneError(
                    f"list {list_id.hex()} can no longer pass: {', '.join(stale)} since the check"
                )
            steps: dict[str, float] = {}
            t = time.perf_counter()
            charge = build_charge(decision, self.gate_key).encode()
            self.store.record_pass(decision, charge, attendant=attendant, timings=steps, audit=audit)
            del self._awaiting[list_id]
            t = _lap(steps, "commit", t)
            self._event(
                "attendant_approved",
                f"{attendant} approved list {list_id.hex()}",
                {"list": list_id.hex(), "attendant": attendant, "codes": list(decision.codes)},
            )
            self._open(list_id, steps, t)
            self._note_pass(list_id)
        if self.on_commit is not None:
            self.on_commit()
        self._save_events()

    def _refusal(self, decision: Decision, state_at_tap: LaneState) -> tuple[str, str] | None:
        """A lane that cannot take a pass now answers without judging: emergency, maintenance, busy, fault,
        an audit in progress."""
        if self._fire_alarm:
            return "emergency", "fire alarm: taps are not charged while the gate is held open"
        if self._maintenance is not None:
            return "deny", f"lane in maintenance ({self._maintenance})"
        if self._storage_fault is not None or self._fault is not None:
            return "deny", f"lane fault: {self._storage_fault or self._fault}"
        auditing = self._audit_refusal(decision)
        if auditing is not None:
            return auditing
        opening = self._opening
        if (opening is not None and opening.list_id != decision.list_id) or (
            state_at_tap in (LaneState.OPEN, LaneState.CLOSING) and opening is None
        ):
            return "deny", "gate open for another shopper: tap again once it has closed"
        return None

    def _repeat(self, decision: Decision) -> bool:
        """Whether this tap is the same pass again: the very list that passed (same signed bytes), at this
        gate, within timings.repeat_window_s of its pass, its shopper not yet through, and nothing else
        wrong but what moved on since (REPEAT_CODES). A lifted phone gets its shopper out; a list that left,
        or one kept for later, gets `list_used`. Either way the lane event says which, and why."""
        codes = set(decision.codes)
        if "list_used" not in codes or not codes <= REPEAT_CODES or decision.presentation is None:
            return False
        list_id = decision.presentation.list.doc.list
        record = self.store.passed_list(list_id)
        if record is None or record.list_body != decision.presentation.list.body:
            return False
        age = decision.decided_at - max(record.at, self._passed_at.get(list_id, 0.0))
        data = {
            "list": list_id.hex(),
            "passed_at": record.gate,
            "age_s": round(age, 1),
            "codes": sorted(codes),
        }
        if record.gate != self.gate.gate:
            why = f"the list passed at gate {record.gate}, not here"
        elif self.store.passage_recorded(list_id) or self._passage_pending(list_id):
            why = "its shopper has already walked through"
        elif age > self.timings.repeat_window_s:
            why = f"its pass is {int(age)} s old, past the {self.timings.repeat_window_s:g} s repeat window"
        else:
            self._event(
                "repeat_tap",
                "the list that passed here, its shopper not through: the gate opens (again), no new charge",
                {**data, "reopened": True},
            )
            return True
        self._event("repeat_tap", f"list already used: {why}; denied list_used", {**data, "reopened": False})
        return False

    def _note_pass(self, list_id: bytes | None) -> None:
        """Remember when the gate opened for this pass (a bounded few, oldest forgotten first)."""
        if list_id is None:
            return
        with self._lock:
            self._passed_at[list_id] = self.clock()
            while len(self._passed_at) > MAX_AWAITING:
                del self._passed_at[next(iter(self._passed_at))]

    def _passage_pending(self, list_id: bytes) -> bool:
        """A passage counted in memory but not yet written: in the beam now, or through and not saved."""
        with self._lock:
            opening = self._opening
            if opening is not None and opening.list_id == list_id and opening.passages:
                return True
            return any(k == "passage" and d.get("list") == list_id.hex() for k, _, d in self._unsaved)

    def _open(
        self, list_id: bytes | None, steps: dict[str, float], t: float, why: str = "pass: gate open"
    ) -> bool:
        with self._lock:
            if self._fire_alarm or self._maintenance is not None:
                return False  # committed while the lane changed: the gate is held open already
            self.io.release()
            self.io.lights(green=True)
            now = self.monotonic()
            self._opening = Opening(list_id, now + self.timings.open_timeout_s)
            _lap(steps, "actuate", t)
            self._enter(
                LaneState.OPEN,
                why,
                {
                    "list": list_id.hex() if list_id else None,
                    "timings_ms": {k: round(v * 1000, 3) for k, v in steps.items()},
                },
            )
        return True

    def _show_denial(self) -> None:
        with self._lock:
            if self._state not in (LaneState.READING, LaneState.DECIDING, LaneState.IDLE, LaneState.DENIED):
                return
            self.io.lights(red=True)
            self.io.buzz(BuzzerPattern.DENY)
            self._denied_until = self.monotonic() + self.timings.denied_display_s
            self._enter(LaneState.DENIED, "denied")

    def _back_to_idle(self, why: str) -> None:
        with self._lock:
            if self._state in (LaneState.READING, LaneState.DECIDING):
                self._enter(LaneState.IDLE, why)


def _lap(steps: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    steps[name] = now - since
    return now
