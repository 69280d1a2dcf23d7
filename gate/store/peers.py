"""What the lanes of one store tell each other (gate.peers): this gate's passes waiting to be published,
the records read from the store's stream, and where reading resumes.

A record read is applied in ONE transaction with the stream position it came from: the list becomes used
and the hold consumed here too, and the position moves on. A lane killed at any instant therefore reads
again exactly the records whose transaction did not commit; a record applied twice is recognised by
(gate, list) and counted as a replay, never applied twice. Because a power cut can only take back whole
transactions, record and position together, these commit without waiting for the disk (the stream still
holds what was lost): a record is applied in well under a millisecond even on an SD card.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gate.store.database import CHECKPOINT_EVERY, StoreBase

if TYPE_CHECKING:
    from gate.peers.record import PassRecord


@dataclass(frozen=True)
class OwnPass:
    """One pass of this gate, as the other lanes are told about it."""

    list_id: bytes
    hold: bytes
    shopper: str
    shopper_key: bytes
    at: float


class PeerTables(StoreBase):
    """peer_outbox (own passes to publish), peer_records (records read), peer_refused, the read position."""

    def peer_cursor(self) -> int:
        """The stream sequence of the last record applied or refused here (0: none yet)."""
        with self._read() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'peer_stream_seq'").fetchone()[0]

    def peer_unpublished(self, limit: int = 100) -> list[OwnPass]:
        """This gate's passes not yet acknowledged by the transport, oldest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT list_id, hold, shopper, shopper_key, at FROM peer_outbox"
                " WHERE published_at IS NULL ORDER BY at, rowid LIMIT ?",
                [limit],
            ).fetchall()
        return [OwnPass(*r) for r in rows]

    def peer_published(self, list_id: bytes, stream_seq: int, at: float) -> None:
        """The transport stored this pass's record at `stream_seq`."""
        with self._write() as db:
            _mark_published(db, list_id, stream_seq, at)

    def apply_peer_record(self, record: PassRecord, stream_seq: int, received_at: float) -> str:
        """Apply one verified record; 'applied', 'conflict' (the hold passed here under another list: both
        passes stand, the store's charges settle it) or 'replayed' (already applied, nothing changes)."""
        at = record.at_ms / 1000
        with self._write(synced=False) as db:
            seen = db.execute(
                "SELECT 1 FROM peer_records WHERE gate = ? AND list_id = ?", [record.gate, record.list]
            ).fetchone()
            if seen is not None:
                outcome = "replayed"
                self._refuse(db, stream_seq, received_at, "replayed", f"record {record.msg_id} again")
            else:
                other = db.execute(
                    "SELECT list_id FROM consumed_holds WHERE hold = ? AND list_id IS NOT NULL"
                    " AND list_id != ?",
                    [record.hold, record.list],
                ).fetchone()
                outcome = "conflict" if other is not None else "applied"
                db.execute(
                    "INSERT INTO peer_records (gate, list_id, hold, shopper, at, received_at, stream_seq,"
                    " outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        record.gate,
                        record.list,
                        record.hold,
                        record.shopper,
                        at,
                        received_at,
                        stream_seq,
                        outcome,
                    ],
                )
                db.execute(
                    "INSERT OR IGNORE INTO used_lists (list_id, hold, at) VALUES (?, ?, ?)",
                    [record.list, record.hold, at],
                )
                db.execute(
                    "INSERT OR IGNORE INTO consumed_holds (hold, source, list_id, at) VALUES (?, ?, ?, ?)",
                    [record.hold, f"peer:{record.gate}", record.list, at],
                )
                # Our own record read back (the ack was lost in a crash): no need to publish it again.
                _mark_published(db, record.list, stream_seq, received_at)
            _advance(db, stream_seq)
        self._checkpoint_if(CHECKPOINT_EVERY)
        return outcome

    def refuse_peer_record(self, stream_seq: int, code: str, detail: str, at: float) -> None:
        """A record that did not verify: kept as a refusal (with why), and reading moves past it."""
        with self._write(synced=False) as db:
            self._refuse(db, stream_seq, at, code, detail)
            _advance(db, stream_seq)

    @staticmethod
    def _refuse(db: Any, stream_seq: int, at: float, code: str, detail: str) -> None:
        db.execute(
            "INSERT INTO peer_refused (stream_seq, at, code, detail) VALUES (?, ?, ?, ?)",
            [stream_seq, at, code, detail[:300]],
        )

    def peer_gates(self) -> list[dict[str, Any]]:
        """Per gate heard from: records, conflicts, the last record's time and how late it was applied."""
        with self._read() as db:
            rows = db.execute(
                "SELECT gate, count(*), sum(outcome = 'conflict'), max(received_at),"
                " (SELECT at FROM peer_records q WHERE q.gate = r.gate ORDER BY received_at DESC LIMIT 1),"
                " (SELECT received_at - at FROM peer_records q WHERE q.gate = r.gate"
                "  ORDER BY received_at DESC LIMIT 1)"
                " FROM peer_records r GROUP BY gate ORDER BY gate"
            ).fetchall()
        return [
            {
                "gate": r[0],
                "records": r[1],
                "conflicts": r[2],
                "last_received_at": r[3],
                "last_record_at": r[4],
                "last_lag_ms": round(max(r[5], 0.0) * 1000, 1),
            }
            for r in rows
        ]

    def peer_backlog(self) -> dict[str, Any]:
        """This gate's passes the other lanes have not been told of yet, and the refusals so far."""
        with self._read() as db:
            unpublished, oldest = db.execute(
                "SELECT count(*), min(at) FROM peer_outbox WHERE published_at IS NULL"
            ).fetchone()
            refused = db.execute("SELECT count(*) FROM peer_refused").fetchone()[0]
            last = db.execute("SELECT code, detail, at FROM peer_refused ORDER BY id DESC LIMIT 1").fetchone()
        return {
            "unpublished": unpublished,
            "oldest_unpublished_age_s": round(time.time() - oldest, 1) if oldest is not None else None,
            "refused": refused,
            "last_refused": {"code": last[0], "detail": last[1], "at": last[2]} if last else None,
        }

    def peer_refusals(self, limit: int = 100) -> list[tuple[str, str]]:
        """The latest records refused, oldest first: (code, why)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT code, detail FROM peer_refused ORDER BY id DESC LIMIT ?", [limit]
            ).fetchall()
        return [(r[0], r[1]) for r in reversed(rows)]

    def used_list_ids(self) -> set[bytes]:
        """Every list id this gate holds as used (passed here, or at another lane of the store)."""
        with self._read() as db:
            return {r[0] for r in db.execute("SELECT list_id FROM used_lists").fetchall()}


def _advance(db: Any, stream_seq: int) -> None:
    db.execute(
        "UPDATE meta SET value = max(value, ?) WHERE key = 'peer_stream_seq'",
        [int(stream_seq)],
    )


def _mark_published(db: Any, list_id: bytes, stream_seq: int, at: float) -> None:
    """An own pass's record is in the stream at `stream_seq` (acked, or read back): not to publish again."""
    db.execute(
        "UPDATE peer_outbox SET published_at = ?, stream_seq = ? WHERE list_id = ? AND published_at IS NULL",
        [at, stream_seq, list_id],
    )
