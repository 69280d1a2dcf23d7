"""Decisions and lane events: the one durable transaction of a pass, denials, and what the lane reports.

`record_pass` writes the facts of a pass (list used, hold consumed, event, outbox charge, and the record
the other lanes of the store are told) in ONE `BEGIN IMMEDIATE` transaction: after a power cut either all
are there or none, and the lane opens the gate only after `record_pass` returned.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from gate.errors import DecodeError
from gate.legality.check import Backlog, StateFacts
from gate.protocol import encoding
from gate.protocol.documents import Charge, ExitPresentation
from gate.store.audits import insert_audit
from gate.store.database import LANE_CHECKPOINT_AFTER, StoreBase, StoreError
from gate.store.records import AuditRecord, Event, LaneEvent, PassRecord

if TYPE_CHECKING:
    from gate.legality.check import Decision


class DecisionTables(StoreBase):
    """Used lists, consumed holds, decision events and lane events."""

    def facts(self, list_id: bytes, hold: bytes, shopper: str) -> StateFacts:
        """Used list, consumed hold, deny lists and the unsettled backlog, in one query.

        A hold counts as consumed when another list (or another gate, per the feed) consumed it: a repeat
        of the very list that consumed it is `list_used` alone, which the lane answers as a repeat tap.
        """
        with self._read() as db:
            row = db.execute(
                "SELECT"
                " EXISTS (SELECT 1 FROM used_lists WHERE list_id = ?),"
                " EXISTS (SELECT 1 FROM consumed_holds WHERE hold = ? AND list_id IS NOT ?),"
                " EXISTS (SELECT 1 FROM deny_holds WHERE hold = ?),"
                " EXISTS (SELECT 1 FROM deny_shoppers WHERE shopper = ?),"
                " count(*), coalesce(sum(amount), 0), min(created_at)"
                " FROM outbox WHERE state IN ('pending', 'flagged')",
                [list_id, hold, list_id, hold, shopper],
            ).fetchone()
        return StateFacts(
            bool(row[0]), bool(row[1]), bool(row[2]), bool(row[3]), Backlog(row[4], row[5], row[6])
        )

    # -- the lane ------------------------------------------------------------------------------------

    def record_pass(
        self,
        decision: Decision,
        charge: bytes,
        *,
        attendant: str | None = None,
        timings: Mapping[str, float] | None = None,
        audit: AuditRecord | None = None,
    ) -> None:
        """The one durable transaction of a pass: list used, hold consumed, event, charge in the outbox
        (and, after an attendant's audit, the audit with its scanned list).

        Returns only once all four are committed (synchronous=FULL); only then may the gate open. Refuses
        (StoreError, nothing written) a decision that does not let the shopper out, a charge that is not
        this decision's, a list already used or a hold already consumed. An "attendant" decision needs the
        approving attendant's name. `timings` (the lane's own steps, seconds) are kept with the event
        beside the check's.
        """
        p = decision.presentation
        if p is None or decision.verdict == "deny":
            raise StoreError(f"record_pass: the decision's verdict is {decision.verdict}")
        if decision.verdict == "attendant" and not attendant:
            raise StoreError("record_pass: an attendant decision needs the approving attendant")
        slist = p.list.doc
        _check_charge(bytes(charge), slist.list, slist.total)
        at = decision.decided_at
        with self._write() as db:
            db.execute(
                "INSERT INTO used_lists (list_id, hold, at) VALUES (?, ?, ?)", [slist.list, slist.hold, at]
            )
            db.execute(
                "INSERT INTO consumed_holds (hold, source, list_id, at) VALUES (?, 'here', ?, ?)",
                [p.voucher.doc.hold, slist.list, at],
            )
            self._insert_event(db, decision, attendant, timings)
            db.execute(
                "INSERT INTO outbox (charge_id, body, amount, currency, created_at, attempts,"
                " next_attempt_at, state, last_error) VALUES (?, ?, ?, ?, ?, 0, ?, 'pending', '')",
                [slist.list, bytes(charge), slist.total, slist.currency, at, at],
            )
            # What the other lanes of the store are told (gate.peers.link publishes it after the commit).
            db.execute(
                "INSERT INTO peer_outbox (list_id, hold, shopper, shopper_key, at) VALUES (?, ?, ?, ?, ?)",
                [slist.list, p.voucher.doc.hold, p.voucher.doc.shopper, p.voucher.doc.shopper_key, at],
            )
            if audit is not None:
                insert_audit(db, audit)
        self._checkpoint_if(LANE_CHECKPOINT_AFTER)

    def record_denial(self, decision: Decision, *, timings: Mapping[str, float] | None = None) -> None:
        """Record a decision that did not open the gate (deny, or attendant not approved)."""
        with self._write() as db:
            self._insert_event(db, decision, None, timings)
        self._checkpoint_if(LANE_CHECKPOINT_AFTER)

    def passed_here(self, list_id: bytes) -> bool:
        """True if this list already passed at this gate (its charge is in the outbox)."""
        with self._read() as db:
            row = db.execute("SELECT 1 FROM outbox WHERE charge_id = ?", [list_id]).fetchone()
        return row is not None

    def passed_list(self, list_id: bytes) -> PassRecord | None:
        """The pass given under this list id (gate, time, signed list body), or None: a repeat tap must
        present exactly these bytes, since another list under the same id was never judged."""
        with self._read() as db:
            row = db.execute(
                "SELECT gate, at, presentation FROM events WHERE list_id = ? AND verdict = 'pass'"
                " ORDER BY id LIMIT 1",
                [list_id],
            ).fetchone()
        if row is None:
            return None
        return PassRecord(row[0], row[1], ExitPresentation.decode(row[2]).list.body)

    def passage_recorded(self, list_id: bytes) -> bool:
        """True once the beam counted the shopper of this list through the gate (a "passage" lane event)."""
        with self._read() as db:
            row = db.execute(
                "SELECT 1 FROM lane_events"
                " WHERE kind = 'passage' AND json_extract(data, '$.list') = ? LIMIT 1",
                [list_id.hex()],
            ).fetchone()
        return row is not None

    def record_event(self, kind: str, detail: str, data: Mapping[str, Any] | None = None) -> None:
        """A lane event that is not a decision: a transition, an alarm, a fault, a repeat tap."""
        with self._write() as db:
            db.execute(
                "INSERT INTO lane_events (at, kind, detail, data) VALUES (?, ?, ?, ?)",
                [time.time(), kind, detail, json.dumps(dict(data or {}), default=str)],
            )

    def recent_lane_events(self, limit: int = 50) -> list[LaneEvent]:
        """The latest lane events, newest first."""
        return self.find_lane_events(limit=limit)

    def find_lane_events(
        self,
        *,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[LaneEvent]:
        """Lane events, newest first, narrowed by kind and time [since, until)."""
        where, args = _narrowed((("kind = ?", kind), ("at >= ?", since), ("at < ?", until)))
        with self._read() as db:
            rows = db.execute(
                f"SELECT id, at, kind, detail, data FROM lane_events WHERE {where} ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [LaneEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def _insert_event(
        self,
        db: Database,
        decision: Decision,
        attendant: str | None,
        lane_timings: Mapping[str, float] | None,
    ) -> None:
        timings = dict(decision.timings)
        for step, seconds in (lane_timings or {}).items():
            timings[step if step not in timings else f"lane_{step}"] = seconds
        db.execute(
            "INSERT INTO events (at, gate, verdict, codes, reasons, timings, list_id, hold, shopper, total,"
            " currency, attendant, presentation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                decision.decided_at,
                decision.gate.gate,
                "pass" if attendant else decision.verdict,
                " ".join(decision.codes),
                json.dumps([[r.code, r.message] for r in decision.reasons]),
                json.dumps(timings),
                decision.list_id,
                decision.hold,
                decision.shopper,
                decision.total,
                decision.currency,
                attendant,
                decision.presentation_bytes,
            ],
        )

    def recent_events(self, limit: int = 50) -> list[Event]:
        """The latest decisions, newest first."""
        return self.find_events(limit=limit)

    def find_events(
        self,
        *,
        verdict: str | None = None,
        reason: str | None = None,
        list_prefix: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[Event]:
        """Decisions narrowed by verdict, reason code, list id prefix (hex) and time [since, until)."""
        where, args = _narrowed(
            (
                ("verdict = ?", verdict),
                ("at >= ?", since),
                ("at < ?", until),
                ("hex(list_id) LIKE ?", list_prefix.upper() + "%" if list_prefix else None),
                ("' ' || codes || ' ' LIKE ?", f"% {reason} %" if reason else None),
            )
        )
        with self._read() as db:
            rows = db.execute(
                "SELECT id, at, gate, verdict, reasons, timings, list_id, hold, shopper, total, currency,"
                f" attendant FROM events WHERE {where} ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [
            Event(
                id=r[0],
                at=r[1],
                gate=r[2],
                verdict=r[3],
                reasons=tuple((c, m) for c, m in json.loads(r[4])),
                timings=json.loads(r[5]),
                list_id=r[6],
                hold=r[7],
                shopper=r[8],
                total=r[9],
                currency=r[10],
                attendant=r[11],
            )
            for r in rows
        ]

    def decision_counts(self, since: float, until: float) -> tuple[dict[int, int], Counter[str]]:
        """Decisions in [since, until) counted by minute (0 = the first), and the reason codes of those not
        passed: what the status page's charts draw, counted by SQLite rather than read row by row."""
        with self._read() as db:
            minutes = db.execute(
                "SELECT CAST((at - ?) / 60 AS INTEGER) AS m, count(*) FROM events"
                " WHERE at >= ? AND at < ? GROUP BY m",
                [since, since, until],
            ).fetchall()
            codes = db.execute(
                "SELECT codes, count(*) FROM events WHERE at >= ? AND at < ? AND verdict != 'pass'"
                " GROUP BY codes",
                [since, until],
            ).fetchall()
        counted: Counter[str] = Counter()
        for joined, n in codes:
            for code in joined.split():
                counted[code] += n
        return {m: n for m, n in minutes}, counted

    def event_presentation(self, event_id: int) -> bytes | None:
        """The presentation bytes a decision judged (for `gate check` on a recorded case)."""
        with self._read() as db:
            row = db.execute("SELECT presentation FROM events WHERE id = ?", [event_id]).fetchone()
        return row[0] if row else None


def _narrowed(conditions: tuple[tuple[str, Any], ...]) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose value is given (all rows when none), and its arguments."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    return " AND ".join([c for c, _ in given] or ["1"]), [v for _, v in given]


def _check_charge(charge: bytes, list_id: bytes, total: int) -> None:
    """A cheap look at the charge envelope (the gate built it a moment ago): a Charge for this list and
    total. Full validation would decode the whole presentation a second time on the hot path."""
    try:
        envelope = encoding.decode(charge)
        body = (
            encoding.decode(envelope["b"])
            if type(envelope) is dict and type(envelope.get("b")) is bytes
            else None
        )
    except DecodeError as exc:
        raise StoreError(f"record_pass: the charge is not a signed Charge: {exc}") from exc
    if body is None or envelope.get("t") != Charge.TYPE or type(body) is not dict:
        raise StoreError("record_pass: the charge is not a signed Charge envelope")
    if body.get("charge") != list_id or body.get("amount") != total:
        raise StoreError("record_pass: the charge is not the one for this decision")
