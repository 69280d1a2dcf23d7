"""The gate's local store: SQLite through sqlite-utils, durable before the gate opens.

What it holds: the catalog with its price history, used list ids, consumed holds, the payment system's deny
lists, decision events (with reasons and per-step timings), and the charge outbox the forwarder drains.

Durability. Every connection runs in WAL mode with `PRAGMA synchronous=FULL`, so a COMMIT returns only once
the WAL is on disk. `record_pass` writes the four facts of a pass (list used, hold consumed, event, outbox
charge) in ONE `BEGIN IMMEDIATE` transaction: after a power cut either all four are there or none, and the
lane opens the gate only after `record_pass` returned.

Threads. The lane thread and the forwarder thread each get their own connection (one per thread, opened
on first use): with WAL the lane's reads never wait for the forwarder, and writers queue on SQLite's own
lock (busy timeout 5 s). An in-memory store (":memory:", for tests and tools) cannot be shared that way, so
there every thread uses the one connection under a lock.

Checkpoints. SQLite's automatic WAL checkpoint would run inside whichever commit crosses 1000 pages, now and
then adding milliseconds to a pass. It is off; the forwarder thread's writes (settling, retrying, the feed)
checkpoint every CHECKPOINT_EVERY commits instead, off the lane's path. Should the forwarder stall, the lane
checkpoints itself once LANE_CHECKPOINT_AFTER commits are waiting, so the WAL stays bounded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from gate.catalog import PriceChange, Product
from gate.errors import DecodeError, GateError
from gate.legality.check import Backlog, StateFacts
from gate.protocol import encoding
from gate.protocol.documents import Charge, ExitPresentation
from gate.store import migrations

if TYPE_CHECKING:
    from gate.legality.check import Decision

__all__ = [
    "Backlog",
    "Event",
    "GateStore",
    "ImportResult",
    "LaneEvent",
    "OutboxEntry",
    "PriceChange",
    "StateFacts",
    "StoreError",
]

OUTBOX_STATES = ("pending", "settled", "flagged")
_IN_CHUNK = 500  # codes per catalog query; far below SQLite's parameter limit
CHECKPOINT_EVERY = 64  # commits, checkpointed by the forwarder's writes
LANE_CHECKPOINT_AFTER = 2000  # commits, after which the lane's own writes checkpoint


class StoreError(GateError, RuntimeError):
    """The gate's database refused an operation: a conflict, a closed store, a full disk, a corrupt file."""


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxEntry:
    """One charge waiting for (or done with) the payment system."""

    charge_id: bytes
    body: bytes  # the encoded signed Charge envelope, exactly as it will be sent
    amount: int
    currency: str
    created_at: float
    attempts: int
    next_attempt_at: float
    state: str  # "pending", "settled" or "flagged"
    last_error: str


@dataclass(frozen=True)
class Event:
    """One decision as recorded: what the panel lists and a technician reads."""

    id: int
    at: float
    gate: str
    verdict: str
    reasons: tuple[tuple[str, str], ...]  # (code, message)
    timings: dict[str, float]  # seconds per step
    list_id: bytes | None
    hold: bytes | None
    shopper: str | None
    total: int
    currency: str
    attendant: str | None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.reasons)


@dataclass(frozen=True)
class LaneEvent:
    """Something the lane reports besides a decision."""

    id: int
    at: float
    kind: str
    detail: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ImportResult:
    rows: int
    products_added: int
    prices_added: int
    seconds: float


_OUTBOX_COLUMNS = (
    "charge_id, body, amount, currency, created_at, attempts, next_attempt_at, state, last_error"
)


class GateStore:
    """The gate's SQLite database. `GateStore(":memory:")` or `GateStore(path)`; a context manager."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self._memory = self.path == ":memory:"
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, Database]] = []
        self._closed = False
        self._commits = 0  # since the last checkpoint (approximate across threads; only a trigger)
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._shared: Database | None = None
        try:
            first = self._open()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the gate database: {exc}") from exc
        if self._memory:
            self._shared = first
        else:
            self._local.db = first
        with self._lock:
            self._connections.append((threading.current_thread(), first))
        try:
            migrations.apply(first)
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"{self.path}: cannot migrate the gate database: {exc}") from exc

    # -- connections ---------------------------------------------------------------------------------

    def _open(self) -> Database:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # one connection per thread is our rule; close() may run anywhere
        )
        db = Database(conn, execute_plugins=False, recursive_triggers=False)
        if not self._memory:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL (journal mode stays {mode})")
            conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return db

    @contextlib.contextmanager
    def _use(self) -> Iterator[Database]:
        """The calling thread's connection (the shared one, locked, for an in-memory store)."""
        if self._closed:
            raise StoreError(f"{self.path}: the gate database is closed")
        if self._shared is not None:
            with self._lock:
                yield self._shared
            return
        db = getattr(self._local, "db", None)
        if db is None:
            with self._lock:
                self._connections = [(t, d) for t, d in self._connections if t.is_alive() or _close(d)]
                db = self._local.db = self._open()
                self._connections.append((threading.current_thread(), db))
        yield db

    @contextlib.contextmanager
    def _read(self) -> Iterator[Database]:
        try:
            with self._use() as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        with self._use() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot start a transaction: {exc}") from exc
            try:
                yield db
                db.execute("COMMIT")
                self._commits += 1
            except BaseException as exc:
                if db.conn.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: {exc}") from exc
                raise

    def close(self) -> None:
        """Close every connection; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _, db in self._connections:
                _close(db)
            self._connections.clear()

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file (PASSIVE: never waits for, nor blocks, writers)."""
        if self._memory:
            return
        with self._read() as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._commits = 0

    def _checkpoint_if(self, threshold: int) -> None:
        """Checkpoint after a commit that is already durable: a failure here must not look like a lost one."""
        if self._commits >= threshold:
            try:
                self.checkpoint()
            except StoreError:
                log.warning("WAL checkpoint failed; the next one retries", exc_info=True)

    def __enter__(self) -> GateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_migrations(self) -> list[str]:
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]

    # -- catalog -------------------------------------------------------------------------------------

    def import_catalog(
        self,
        changes: Iterable[PriceChange],
        *,
        progress: Callable[[int], None] | None = None,
        batch: int = 5000,
    ) -> ImportResult:
        """Add products and price changes in one transaction; `progress(n)` after each batch of n rows.

        A product's name, category and unit are replaced; a price row is added only where the price
        differs from the one in force at its valid_from, so importing the same file twice adds nothing.
        """
        started = time.perf_counter()
        with self._write() as db:
            result = self._import(db, changes, progress, batch)
        self.checkpoint()
        return ImportResult(result[0], result[1], result[2], time.perf_counter() - started)

    def _import(
        self,
        db: Database,
        changes: Iterable[PriceChange],
        progress: Callable[[int], None] | None,
        batch: int,
    ) -> tuple[int, int, int]:
        db.execute("DROP TABLE IF EXISTS temp.import_rows")
        db.execute(
            "CREATE TEMP TABLE import_rows (seq INTEGER PRIMARY KEY, code TEXT, name TEXT, category TEXT,"
            " unit TEXT, price INTEGER, currency TEXT, valid_from INTEGER)"
        )
        insert = (
            "INSERT INTO temp.import_rows (code, name, category, unit, price, currency, valid_from)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        rows = 0
        chunk: list[tuple[Any, ...]] = []
        for change in changes:
            c = change.checked()
            chunk.append((c.code, c.name, c.category, c.unit, c.price, c.currency, c.valid_from))
            if len(chunk) >= batch:
                db.conn.executemany(insert, chunk)
                rows += len(chunk)
                if progress:
                    progress(len(chunk))
                chunk = []
        if chunk:
            db.conn.executemany(insert, chunk)
            rows += len(chunk)
            if progress:
                progress(len(chunk))
        before = db.execute("SELECT count(*) FROM products").fetchone()[0]
        # Later rows of the file win for a product's description (ORDER BY seq).
        db.execute(
            "INSERT INTO products (code, name, category, unit)"
            " SELECT code, name, category, unit FROM temp.import_rows WHERE true ORDER BY seq"
            " ON CONFLICT (code) DO UPDATE SET"
            " name = excluded.name, category = excluded.category, unit = excluded.unit"
        )
        added_products = db.execute("SELECT count(*) FROM products").fetchone()[0] - before
        cursor = db.execute(
            "INSERT INTO prices (code, currency, valid_from, price)"
            " SELECT i.code, i.currency, i.valid_from, i.price FROM temp.import_rows i"
            " WHERE i.price IS NOT (SELECT p.price FROM prices p WHERE p.code = i.code"
            "   AND p.currency = i.currency AND p.valid_from <= i.valid_from"
            "   ORDER BY p.valid_from DESC LIMIT 1)"
            " ORDER BY i.seq"
            " ON CONFLICT (code, currency, valid_from) DO UPDATE SET price = excluded.price"
        )
        added_prices = cursor.rowcount
        db.execute("DROP TABLE temp.import_rows")
        return rows, added_products, added_prices

    def products(
        self, keys: Collection[str], *, now: float, grace_s: int, currency: str
    ) -> dict[str, Product]:
        """The catalog entries for these keys, with the price rows that matter around `now` (one query).

        History returned per product: the row in force at now - grace and every later row up to now.
        """
        keys = list(set(keys))
        out: dict[str, Product] = {}
        if not keys:
            return out
        cutoff = now - grace_s
        with self._read() as db:
            for start in range(0, len(keys), _IN_CHUNK):
                part = keys[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    "SELECT d.code, d.name, d.category, d.unit, h.valid_from, h.price FROM products d"
                    " LEFT JOIN prices h ON h.code = d.code AND h.currency = ? AND h.valid_from <= ?"
                    "  AND h.valid_from >= coalesce((SELECT max(q.valid_from) FROM prices q"
                    "   WHERE q.code = d.code AND q.currency = ? AND q.valid_from <= ?), 0)"
                    f" WHERE d.code IN ({marks}) ORDER BY d.code, h.valid_from",
                    [currency, now, currency, cutoff, *part],
                ).fetchall()
                _collect(rows, currency, out)
        return out

    def catalog_counts(self) -> tuple[int, int]:
        """(products, price rows)."""
        with self._read() as db:
            return (
                db.execute("SELECT count(*) FROM products").fetchone()[0],
                db.execute("SELECT count(*) FROM prices").fetchone()[0],
            )

    # -- the legality check's view -----------------------------------------------------------------

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
    ) -> None:
        """The one durable transaction of a pass: list used, hold consumed, event, charge in the outbox.

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

    def passed_list_body(self, list_id: bytes) -> bytes | None:
        """The signed list body that passed here under this list id, or None: a repeat tap must present
        exactly these bytes, since another list under the same id was never judged."""
        with self._read() as db:
            row = db.execute(
                "SELECT presentation FROM events WHERE list_id = ? AND verdict = 'pass' ORDER BY id LIMIT 1",
                [list_id],
            ).fetchone()
        if row is None:
            return None
        return ExitPresentation.decode(row[0]).list.body

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
        with self._read() as db:
            rows = db.execute(
                "SELECT id, at, kind, detail, data FROM lane_events ORDER BY id DESC LIMIT ?", [limit]
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
        with self._read() as db:
            rows = db.execute(
                "SELECT id, at, gate, verdict, reasons, timings, list_id, hold, shopper, total, currency,"
                " attendant FROM events ORDER BY id DESC LIMIT ?",
                [limit],
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

    def event_presentation(self, event_id: int) -> bytes | None:
        """The presentation bytes a decision judged (for `gate check` on a recorded case)."""
        with self._read() as db:
            row = db.execute("SELECT presentation FROM events WHERE id = ?", [event_id]).fetchone()
        return row[0] if row else None

    # -- the forwarder -------------------------------------------------------------------------------

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

    def outbox_backlog(self) -> Backlog:
        """Count, amount and oldest creation time of the charges not yet settled (pending and flagged)."""
        with self._read() as db:
            row = db.execute(
                "SELECT count(*), coalesce(sum(amount), 0), min(created_at) FROM outbox"
                " WHERE state IN ('pending', 'flagged')"
            ).fetchone()
        return Backlog(row[0], row[1], row[2])

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

    def feed_version(self) -> int:
        with self._read() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'feed_version'").fetchone()[0]

    def apply_feed(
        self,
        version: int,
        deny_holds: set[bytes],
        deny_shoppers: set[str],
        consumed_holds: list[bytes],
        prices: list[PriceChange],
    ) -> None:
        """One payment-system feed, in one transaction: the deny sets REPLACE the current ones; consumed
        holds (used at other gates) and price changes are added. A feed older than the one applied last is
        refused (StoreError, nothing written): it would roll the deny list back."""
        checked = [c.checked("feed price") for c in prices]  # refuse a bad feed before touching anything
        now = time.time()
        with self._write() as db:
            current = db.execute("SELECT value FROM meta WHERE key = 'feed_version'").fetchone()[0]
            if version < current:
                raise StoreError(f"feed version {version} is older than the applied version {current}")
            db.execute("DELETE FROM deny_holds")
            db.conn.executemany("INSERT INTO deny_holds VALUES (?)", [(bytes(h),) for h in deny_holds])
            db.execute("DELETE FROM deny_shoppers")
            db.conn.executemany("INSERT INTO deny_shoppers VALUES (?)", [(s,) for s in deny_shoppers])
            db.conn.executemany(
                "INSERT OR IGNORE INTO consumed_holds (hold, source, list_id, at)"
                " VALUES (?, 'feed', NULL, ?)",
                [(bytes(h), now) for h in consumed_holds],
            )
            if checked:
                self._import(db, checked, None, 5000)
            db.execute("UPDATE meta SET value = ? WHERE key = 'feed_version'", [int(version)])
        self._checkpoint_if(CHECKPOINT_EVERY)

    def deny_lists(self) -> tuple[set[bytes], set[str]]:
        with self._read() as db:
            holds = {r[0] for r in db.execute("SELECT hold FROM deny_holds").fetchall()}
            shoppers = {r[0] for r in db.execute("SELECT shopper FROM deny_shoppers").fetchall()}
        return holds, shoppers


def _collect(rows: list[tuple[Any, ...]], currency: str, out: dict[str, Product]) -> None:
    current: str | None = None
    history: list[tuple[int, int]] = []
    desc: tuple[str, str, str] = ("", "", "")

    def flush() -> None:
        if current is not None:
            out[current] = Product(current, desc[0], desc[1], desc[2], currency, tuple(history))

    for code, name, category, unit, valid_from, price in rows:
        if code != current:
            flush()
            current, desc, history = code, (name, category, unit), []
        if valid_from is not None:
            history.append((valid_from, price))
    flush()


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


def _require_row(cursor: sqlite3.Cursor, charge_id: bytes) -> None:
    if cursor.rowcount == 0 or (cursor.rowcount == -1 and cursor.fetchone() is None):
        raise StoreError(f"no charge {charge_id.hex()} in the outbox")


def _close(db: Database) -> bool:
    with contextlib.suppress(sqlite3.Error):
        db.conn.close()
    return False
