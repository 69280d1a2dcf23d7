"""The lane's side of an attendant's audit: who is audited, the scanner's reads, and how an audit ends.

One audit at a time, since the lane has one scanner and one gate. While it runs the gate stays shut and
other taps are answered without being judged ("audit in progress"). The scanner reports on its own thread;
every change here is made under the lane's lock, like the taps and the gate's inputs.

An audit ends in one of two ways, both recorded with the scanned list (gate.store.audits): the attendant lets
the shopper out (the signed list's charge is committed with the audit, in one transaction, then the gate
opens), or calls a manager (the gate stays shut; the list may still be approved afterwards, by name).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from drivers.scanner import Scan, ScannerNotice
from gate.catalog import Catalog
from gate.errors import LaneError
from gate.lane.audit import Audit, Comparison, asked_for, needs_audit
from gate.lane.outcomes import LaneState
from gate.lane.ports import GateIOLike, LaneStore
from gate.legality import Decision, Policy
from gate.money import format_amount
from gate.store.records import AuditRecord


class LaneAudits:
    """Mixed into gate.lane.Lane: the audit in progress, the attendant's request, the scanner's reads."""

    if TYPE_CHECKING:  # provided by Lane
        _lock: threading.RLock
        _state: LaneState
        _awaiting: dict[bytes, tuple[Decision, float]]
        policy: Policy
        store: LaneStore
        clock: Callable[[], float]
        io: GateIOLike

        def _enter(self, state: LaneState, why: str, data: Mapping[str, Any] | None = None) -> None: ...
        def _event(self, kind: str, detail: str, data: Mapping[str, Any] | None = None) -> None: ...
        def _save_events(self) -> None: ...
        def approve(self, list_id: bytes, attendant: str, *, audit: AuditRecord | None = None) -> None: ...
        def awaiting_attendant(self) -> list[Decision]: ...
        def _waiting(self, list_id: bytes) -> tuple[Decision, float]: ...
        def _refusal(self, decision: Decision, state_at_tap: LaneState) -> tuple[str, str] | None: ...

    def _init_audits(self) -> None:
        self._audit: Audit | None = None
        self._audit_next: str | None = None  # the attendant who asked to audit the next shopper
        self._asked_by: dict[bytes, str] = {}  # lists turned into audits at an attendant's request
        self._audited: set[bytes] = set()  # lists whose audit ended: they may be approved by name

    # -- what the panel reads -------------------------------------------------------------------------------
    @property
    def audit(self) -> Audit | None:
        return self._audit

    @property
    def audit_requested_by(self) -> str | None:
        return self._audit_next

    def audit_comparison(self, catalog: Catalog | None = None) -> Comparison | None:
        """The audit in progress compared, on a copy of its scans: the lane's lock is not held meanwhile
        (a 200-line list takes milliseconds, and the gate's inputs take the same lock)."""
        with self._lock:
            if self._audit is None:
                return None
            audit = dataclasses.replace(self._audit, scans=list(self._audit.scans))
        return audit.compare(catalog or self.store, self.policy, now=self.clock())

    def audit_required(self, list_id: bytes, decision: Decision) -> bool:
        """True while a list the check sent to an audit has not had one."""
        return needs_audit(decision) and list_id not in self._audited

    # -- starting one ---------------------------------------------------------------------------------------
    def request_audit(self, attendant: str | None) -> None:
        """Audit the next shopper whose list the check lets out (None withdraws the request)."""
        with self._lock:
            self._audit_next = attendant
            if attendant is None:
                self._event("audit", "request to audit the next shopper withdrawn", {})
            else:
                self._event("audit", f"{attendant} asked to audit the next shopper", {"attendant": attendant})
        self._save_events()

    def _apply_audit_request(self, decision: Decision, state_at_tap: LaneState) -> Decision:
        """At a tap: the attendant's pending request turns a list that would leave into an audited one."""
        with self._lock:
            by = self._audit_next
            if by is None or decision.verdict == "deny" or decision.list_id is None:
                return decision
            if self._refusal(decision, state_at_tap) is not None:
                return decision
            self._audit_next = None
            self._asked_by[decision.list_id] = by
            return asked_for(decision, by)

    def start_audit(self, list_id: bytes, attendant: str) -> None:
        """Audit a list that waits for an attendant (age-restricted goods, say) before letting it out."""
        with self._lock:
            decision, since = self._waiting(list_id)
            if not needs_audit(decision):
                decision = asked_for(decision, attendant)
                self._awaiting[list_id] = (decision, since)
            self._begin_audit(decision, attendant)
        self._save_events()

    def _begin_audit(self, decision: Decision, asked_by: str | None) -> bool:
        """Hold the gate for this list's audit; False when another audit is running (the list waits)."""
        with self._lock:
            if self._audit is not None:
                if self._audit.list_id == decision.list_id:
                    return True
                raise LaneError(f"an audit of list {self._audit.list_id.hex()} is in progress: end it first")
            if self._state in (LaneState.EMERGENCY, LaneState.MAINTENANCE, LaneState.FAULT):
                raise LaneError(f"the lane is not in service ({self._state}): audit once it is")
            audit = Audit(decision, self.clock(), asked_by)
            self._audit = audit
            self.io.secure()
            self.io.lights(red=True, blink=True)
            why = ", ".join(decision.codes)
            self._enter(
                LaneState.AUDIT,
                f"audit of list {audit.list_id.hex()} ({why}): re-scan the basket",
                {"list": audit.list_id.hex(), "codes": list(decision.codes), "asked_by": asked_by},
            )
            return True

    def _resume_audit(self, why: str) -> bool:
        """Back from an emergency or maintenance into the audit that was running: the gate held again."""
        with self._lock:
            if self._audit is None:
                return False
            self.io.lights(red=True, blink=True)
            self._enter(LaneState.AUDIT, f"{why}: the audit of list {self._audit.list_id.hex()} goes on")
            return True

    # -- the scanner ----------------------------------------------------------------------------------------
    def on_scan(self, scan: Scan) -> None:
        """A read of the lane's scanner (its own thread): one unit of the basket under audit."""
        with self._lock:
            audit = self._audit
            if audit is None:
                self._event(
                    "scanner",
                    f"scan {scan.code[:40]} with no audit in progress: ignored",
                    {"code": scan.code},
                )
                return
            refused = audit.add_scan(scan.code, scan.symbology)
            if refused is not None:
                audit.notes.append(f"unreadable scan: {refused}")
                self._event(
                    "scanner",
                    f"scan not counted in the audit: {refused}",
                    {"kind": "unreadable", "list": audit.list_id.hex()},
                )

    def on_scanner_notice(self, notice: ScannerNotice) -> None:
        """What the scanner's port did (plugged, unplugged, back, a garbled line): a lane event each."""
        with self._lock:
            audit = self._audit
            if audit is not None and notice.kind not in ("connected", "reconnected"):
                audit.notes.append(f"scanner {notice.kind}: {notice.detail}")
            elif audit is not None:
                audit.notes.append(f"scanner {notice.kind}")
            self._event(
                "scanner",
                f"{notice.kind}: {notice.detail}",
                {"kind": notice.kind, "list": audit.list_id.hex() if audit else None},
            )

    def undo_scan(self, code: str) -> None:
        with self._lock:
            if self._audit is None:
                raise LaneError("no audit in progress")
            if not self._audit.undo_scan(code):
                raise LaneError(f"{code} was not scanned in this audit")

    # -- ending one -----------------------------------------------------------------------------------------
    def audit_let_out(self, attendant: str) -> AuditRecord:
        """The attendant lets the shopper out: charge and audit committed together, then the gate opens."""
        with self._lock:
            audit = self._current()
            record = self._record(audit, "let_out", attendant)
            self.approve(audit.list_id, attendant, audit=record)  # refuses (LaneError) with nothing written
            self._audit = None
            self._audited.add(audit.list_id)
            self._event("audit", _summary(record), _data(record))
        self._save_events()
        return record

    def audit_call_manager(self, attendant: str) -> AuditRecord:
        """The attendant calls a manager: the audit is recorded, the gate stays shut."""
        with self._lock:
            audit = self._current()
            record = self._record(audit, "manager", attendant)
            self.store.record_audit(record)
            self._audit = None
            self._audited.add(audit.list_id)
            self._event("audit", _summary(record), _data(record))
            self.io.lights(red=True)
            if self._state == LaneState.AUDIT:
                self._enter(LaneState.IDLE, "audit ended: a manager is called, the gate stays shut")
        self._save_events()
        return record

    def _current(self) -> Audit:
        if self._audit is None:
            raise LaneError("no audit in progress")
        return self._audit

    def _record(self, audit: Audit, outcome: str, attendant: str) -> AuditRecord:
        comparison = audit.compare(self.store, self.policy, now=self.clock())
        return AuditRecord(
            list_id=audit.list_id,
            started_at=audit.started_at,
            ended_at=self.clock(),
            outcome=outcome,
            attendant=attendant,
            asked_by=audit.asked_by,
            reasons=audit.decision.codes,
            listed_total=comparison.listed_total,
            scanned_total=comparison.scanned_total,
            difference=comparison.difference,
            unpriced=comparison.unpriced,
            currency=comparison.currency,
            scanned=tuple(audit.scans),
            lines=tuple(line.to_json() for line in comparison.lines),
            notes=tuple(audit.notes),
        )

    def _audit_refusal(self, decision: Decision) -> tuple[str, str] | None:
        """While an audit runs, taps are answered without a judgement."""
        audit = self._audit
        if audit is None:
            return None
        if decision.list_id == audit.list_id:
            return "attendant", "this list is being audited: the attendant decides"
        return "deny", "attendant audit in progress: tap again once it is over"

    def _after_attendant_verdict(self, decision: Decision) -> bool:
        """A list sent to an attendant: begin its audit if it needs one and none runs; True if begun."""
        if not needs_audit(decision) or self._audit is not None:
            return False
        assert decision.list_id is not None
        return self._begin_audit(decision, self._asked_by.pop(decision.list_id, None))


def _summary(r: AuditRecord) -> str:
    how = "let out" if r.outcome == "let_out" else "called a manager"
    return (
        f"{r.attendant} {how} after the audit of list {r.list_id.hex()}: {len(r.scanned)} scanned, "
        f"difference {format_amount(r.difference, r.currency)}"
    )


def _data(r: AuditRecord) -> dict[str, Any]:
    return {
        "list": r.list_id.hex(),
        "outcome": r.outcome,
        "attendant": r.attendant,
        "difference": r.difference,
        "currency": r.currency,
        "scanned": len(r.scanned),
    }
