"""What a gate whose database was made anew takes back from the payment system before deciding anything.

A database that vanished took with it the list ids used here and the holds consumed here: without them a
list that already passed would pass again. Every charge this gate sent carries its signed list (list id,
hold, amount), and the payment system keeps them; `gate/recovery.py` fetches them, checks each carries
this gate's own signature, and `restore_passes` writes them back in one transaction: used list, consumed
hold, and the charge in the outbox as `accepted` (the payment system has it; its notice comes later).
"""

from __future__ import annotations

from dataclasses import dataclass

from gate.store.database import StoreBase


@dataclass(frozen=True)
class ReportedPass:
    """One pass this gate reported, as its charge tells it."""

    list_id: bytes
    hold: bytes
    decided: float
    amount: int
    currency: str
    body: bytes  # the signed charge, exactly as the payment system holds it


class RecoveryTables(StoreBase):
    def needs_recovery(self) -> bool:
        """True for a database made by `gate init` that has not yet taken back its reported passes."""
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'recovered_at'").fetchone()
        return row is not None and row[0] == 0

    def require_recovery(self) -> None:
        """Mark this (new) database as one that must recover before the lane decides anything."""
        with self._write() as db:
            db.execute("UPDATE meta SET value = 0 WHERE key = 'recovered_at'")

    def restore_passes(self, passes: list[ReportedPass], now: float) -> int:
        """Write back the reported passes (those already here are left as they are); how many were new.
        Marks the recovery done, in the same transaction."""
        restored = 0
        with self._write() as db:
            for p in passes:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO used_lists (list_id, hold, at) VALUES (?, ?, ?)",
                    [p.list_id, p.hold, p.decided],
                )
                restored += cursor.rowcount
                db.execute(
                    "INSERT OR IGNORE INTO consumed_holds (hold, source, list_id, at)"
                    " VALUES (?, 'here', ?, ?)",
                    [p.hold, p.list_id, p.decided],
                )
                db.execute(
                    "INSERT OR IGNORE INTO outbox (charge_id, body, amount, currency, created_at, attempts,"
                    " next_attempt_at, state, last_error, accepted_at)"
                    " VALUES (?, ?, ?, ?, ?, 0, ?, 'accepted', '', ?)",
                    [p.list_id, p.body, p.amount, p.currency, p.decided, p.decided, now],
                )
            db.execute("UPDATE meta SET value = ? WHERE key = 'recovered_at'", [int(now)])
        return restored
