"""Attendants' audits: the basket as re-scanned, kept beside the signed list it was compared with.

An audit that lets the shopper out is written in the pass's own transaction (`record_pass(audit=...)`), so
a pass after an audit never exists without its scanned list; one that calls a manager is written alone.
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from gate.store.database import StoreBase, StoreError
from gate.store.records import AuditRecord

_COLUMNS = (
    "list_id, started_at, ended_at, outcome, attendant, asked_by, reasons, listed_total, scanned_total,"
    " difference, unpriced, currency, scanned, lines, notes"
)


class AuditTables(StoreBase):
    """The audits table: one row per audit that ended."""

    def record_audit(self, audit: AuditRecord) -> None:
        with self._write() as db:
            insert_audit(db, audit)

    def recent_audits(self, limit: int = 50) -> list[AuditRecord]:
        """The latest audits, newest first."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT id, {_COLUMNS} FROM audits ORDER BY id DESC LIMIT ?", [limit]
            ).fetchall()
        return [
            AuditRecord(
                list_id=r[1],
                started_at=r[2],
                ended_at=r[3],
                outcome=r[4],
                attendant=r[5],
                asked_by=r[6],
                reasons=tuple(r[7].split()),
                listed_total=r[8],
                scanned_total=r[9],
                difference=r[10],
                unpriced=r[11],
                currency=r[12],
                scanned=tuple(json.loads(r[13])),
                lines=tuple(json.loads(r[14])),
                notes=tuple(json.loads(r[15])),
                id=r[0],
            )
            for r in rows
        ]


def insert_audit(db: Database, a: AuditRecord) -> None:
    if a.outcome not in ("let_out", "manager"):
        raise StoreError(f"audit outcome {a.outcome!r}: expected 'let_out' or 'manager'")
    db.execute(
        f"INSERT INTO audits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            a.list_id,
            a.started_at,
            a.ended_at,
            a.outcome,
            a.attendant,
            a.asked_by,
            " ".join(a.reasons),
            a.listed_total,
            a.scanned_total,
            a.difference,
            a.unpriced,
            a.currency,
            json.dumps(list(a.scanned)),
            json.dumps(list(a.lines)),
            json.dumps(list(a.notes)),
        ],
    )
