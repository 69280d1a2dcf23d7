"""The charge outbox the forwarder drains.

pending (to send) -> accepted (the payment system recorded it; it waits for its deduction notice) ->
settled (the notice is here). A charge the payment system refused with a signed reason is flagged for a
technician, who sends it again (one, or every flagged charge at once). A charge refused as a conflict that
names the copy the payment system took (the same list passed at two gates) is `conflict`: settled, since
sending it again can never change it, and shown to the technician as a replay incident. The offline budget
counts what the payment system does not have yet: pending and flagged.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gate.legality.check import Backlog
from gate.store.database import CHECKPOINT_EVERY, StoreBase, StoreError
from gate.store.records import OutboxEntry

OUTBOX_STATES = ("pending", "accepted", "settled", "flagged", "conflict")
_OUTBOX_COLUMNS = (
    "charge_id, body, amount, currency, created_at, attempts, next_attempt_at, state, last_error"
)


class OutboxTable(StoreBase):
    """Charges committed at a pass, until the payment system took them."""

    def outbox_due(self, now: float, limit: int) -> list[OutboxEntry]:
        """Pending charges whose next attempt is due, oldest first."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
                " ORDER BY created_at, rowid LIMIT ?",
                [now, limit],
            ).fetchall()
        return [OutboxEntry(*r) for r in rows]

    def outbox_settled(self, charge_id: bytes, notice: bytes, at: float) -> None:
        """The payment system took the charge; `notice` is its signed deduction notice (may be b"")."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outbox SET state = 'settled', notice = ?, settled_at = ?, last_error = ''"
                " WHERE charge_id = ?",
                [bytes(notice), at, charge_id],
            )
            _require_row(cursor, charge_id)
        self._checkpoint_if(CHECKPOINT_EVERY)

    def outbox_accepted(self, charge_ids: list[bytes], at: float) -> None:
        """The payment system recorded these charges (they leave the sending queue); one transaction."""
        with self._write() as db:
            db.conn.executemany(
                "UPDATE outbox SET state = 'accepted', accepted_at = ?, last_error = ''"
                " WHERE charge_id = ? AND state = 'pending'",
                [[at, c] for c in charge_ids],
            )
        self._checkpoint_if(CHECKPOINT_EVERY)

    def outbox_settled_many(self, notices: list[tuple[bytes, bytes]], at: float) -> None:
        """Several charges settled, each with its signed notice; one transaction."""
        with self._write() as db:
            db.conn.executemany(
                "UPDATE outbox SET state = 'settled', notice = ?, settled_at = ?, last_error = ''"
                " WHERE charge_id = ? AND state != 'settled'",
                [[bytes(n), at, c] for c, n in notices],
            )
        self._checkpoint_if(CHECKPOINT_EVERY)

    def outbox_awaiting_notice(self, limit: int) -> list[bytes]:
        """Ids of accepted charges, oldest first: the ones whose notices the forwarder asks for."""
        with self._read() as db:
            rows = db.execute(
                "SELECT charge_id FROM outbox WHERE state = 'accepted' ORDER BY accepted_at, rowid LIMIT ?",
                [limit],
            ).fetchall()
        return [r[0] for r in rows]

    def outbox_retry_later(self, charge_id: bytes, error: str, next_attempt_at: float) -> None:
        """A failed attempt: count it, keep the error, try again at next_attempt_at (pending ones only)."""
        with self._write() as db:
            _require_row(db.execute("SELECT 1 FROM outbox WHERE charge_id = ?", [charge_id]), charge_id)
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE charge_id = ? AND state = 'pending'",
                [error, next_attempt_at, charge_id],
            )
        self._checkpoint_if(CHECKPOINT_EVERY)

    def outbox_flag(self, charge_id: bytes, reason: str) -> None:
        """A permanent failure: the charge waits for a technician (still counted in the backlog)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outbox SET state = 'flagged', last_error = ?"
                " WHERE charge_id = ? AND state != 'settled'",
                [reason, charge_id],
            )
            if cursor.rowcount == 0:
                _require_row(db.execute("SELECT 1 FROM outbox WHERE charge_id = ?", [charge_id]), charge_id)

    def outbox_conflict(self, charge_id: bytes, detail: str, at: float, data: dict[str, Any]) -> None:
        """The payment system took another copy of this charge (its signed refusal names it): settled as a
        conflict, out of the offline budget, with a replay-incident lane event in the same transaction."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outbox SET state = 'conflict', last_error = ?, settled_at = ?"
                " WHERE charge_id = ? AND state IN ('pending', 'flagged')",
                [detail, at, charge_id],
            )
            if cursor.rowcount == 0:
                _require_row(db.execute("SELECT 1 FROM outbox WHERE charge_id = ?", [charge_id]), charge_id)
                return
            db.execute(
                "INSERT INTO lane_events (at, kind, detail, data) VALUES (?, 'replay_incident', ?, ?)",
                [at, detail, json.dumps(data, sort_keys=True)],
            )

    def outbox_requeue(self, charge_id: bytes, now: float) -> None:
        """A technician sends a flagged charge again."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?"
                " WHERE charge_id = ? AND state = 'flagged'",
                [now, charge_id],
            )
            if cursor.rowcount == 0:
                raise StoreError(f"charge {charge_id.hex()} is not flagged")

    def outbox_requeue_flagged(self, now: float) -> int:
        """A technician sends every flagged charge again (after fixing what refused them); how many."""
        with self._write() as db:
            return db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ? WHERE state = 'flagged'", [now]
            ).rowcount

    def outbox_count(self, state: str) -> int:
        """How many charges are in one state (the panel counts the flagged ones it lists 100 of)."""
        if state not in OUTBOX_STATES:
            raise StoreError(f"unknown outbox state {state!r}")
        with self._read() as db:
            return db.execute("SELECT count(*) FROM outbox WHERE state = ?", [state]).fetchone()[0]

    def outbox_backlog(self) -> Backlog:
        """Count, amount and oldest creation time of the charges not yet settled (pending and flagged)."""
        with self._read() as db:
            row = db.execute(
                "SELECT count(*), coalesce(sum(amount), 0), min(created_at) FROM outbox"
                " WHERE state IN ('pending', 'flagged')"
            ).fetchone()
        return Backlog(row[0], row[1], row[2])

    def outbox_times(self, since: float) -> list[tuple[float, float | None]]:
        """(created_at, settled_at) of each charge not settled before `since`: the backlog's history."""
        with self._read() as db:
            rows = db.execute(
                "SELECT created_at, settled_at FROM outbox WHERE settled_at IS NULL OR settled_at >= ?",
                [since],
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def outbox_entries(self, state: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        """Outbox entries, newest first, optionally of one state."""
        if state is not None and state not in OUTBOX_STATES:
            raise StoreError(f"unknown outbox state {state!r}")
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE ? IS NULL OR state = ?"
                " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                [state, state, limit],
            ).fetchall()
        return [OutboxEntry(*r) for r in rows]

    def outbox_notice(self, charge_id: bytes) -> bytes | None:
        """The deduction notice stored when the charge settled."""
        with self._read() as db:
            row = db.execute("SELECT notice FROM outbox WHERE charge_id = ?", [charge_id]).fetchone()
        return row[0] if row else None


def _require_row(cursor: sqlite3.Cursor, charge_id: bytes) -> None:
    if cursor.rowcount == 0 or (cursor.rowcount == -1 and cursor.fetchone() is None):
        raise StoreError(f"no charge {charge_id.hex()} in the outbox")
