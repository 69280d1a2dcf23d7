"""Schema migrations of the gate's database: plain functions, applied in order at start, each once.

Applied migrations are named in the `_migrations` table. Never edit a released migration: add the next one.
The catalog tables are WITHOUT ROWID (the primary key is the table), which keeps 100k products small and
makes the one catalog query of a decision a range scan of the key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from sqlite_utils import Database

_M001 = (
    """
    CREATE TABLE products (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        category TEXT NOT NULL,
        unit TEXT NOT NULL CHECK (unit IN ('each', 'kg'))
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE prices (
        code TEXT NOT NULL,
        currency TEXT NOT NULL,
        valid_from INTEGER NOT NULL,
        price INTEGER NOT NULL,
        PRIMARY KEY (code, currency, valid_from)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE used_lists (
        list_id BLOB PRIMARY KEY,
        hold BLOB NOT NULL,
        at REAL NOT NULL
    )
    """,
    # source: 'here' (a pass at this gate) or 'feed' (the payment system said another gate used it)
    """
    CREATE TABLE consumed_holds (
        hold BLOB PRIMARY KEY,
        source TEXT NOT NULL,
        list_id BLOB,
        at REAL NOT NULL
    )
    """,
    "CREATE TABLE deny_holds (hold BLOB PRIMARY KEY)",
    "CREATE TABLE deny_shoppers (shopper TEXT PRIMARY KEY)",
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        gate TEXT NOT NULL,
        verdict TEXT NOT NULL,
        codes TEXT NOT NULL,
        reasons TEXT NOT NULL,
        timings TEXT NOT NULL,
        list_id BLOB,
        hold BLOB,
        shopper TEXT,
        total INTEGER NOT NULL,
        currency TEXT NOT NULL,
        attendant TEXT,
        presentation BLOB NOT NULL
    )
    """,
    "CREATE INDEX events_at ON events (at)",
    """
    CREATE TABLE outbox (
        charge_id BLOB PRIMARY KEY,
        body BLOB NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'settled', 'flagged')),
        last_error TEXT NOT NULL DEFAULT '',
        settled_at REAL,
        notice BLOB
    )
    """,
    "CREATE INDEX outbox_due ON outbox (state, next_attempt_at, created_at)",
    # What the lane itself reports besides decisions: state transitions, alarms, faults, repeat taps.
    """
    CREATE TABLE lane_events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        data TEXT NOT NULL
    )
    """,
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('feed_version', 0)",
)


def m001_initial(db: Database) -> None:
    for statement in _M001:
        db.execute(statement)


def m002_events_by_list(db: Database) -> None:
    """A repeat tap looks up the list that passed under its id: by index, not by scanning every event."""
    db.execute("CREATE INDEX events_list ON events (list_id)")


def m003_catalog_bounds(db: Database) -> None:
    """Plausible label bounds per product (gate.catalog.Bounds), apart from the products: the payment
    system's feed replaces a product's description, never its bounds."""
    db.execute(
        "CREATE TABLE product_bounds (code TEXT PRIMARY KEY, min_grams INTEGER, max_grams INTEGER,"
        " min_price INTEGER, max_price INTEGER) WITHOUT ROWID"
    )


_M004 = (
    # The store's active gate keys, from the payment system's last signed feed: pass records from the other
    # lanes verify against these.
    "CREATE TABLE gate_keys (kid TEXT PRIMARY KEY, gate TEXT NOT NULL, public_key BLOB NOT NULL)",
    # This gate's passes to tell the other lanes: written in the pass's own transaction, published after.
    """
    CREATE TABLE peer_outbox (
        list_id BLOB PRIMARY KEY,
        hold BLOB NOT NULL,
        shopper TEXT NOT NULL,
        shopper_key BLOB NOT NULL,
        at REAL NOT NULL,
        published_at REAL,
        stream_seq INTEGER
    )
    """,
    "CREATE INDEX peer_outbox_unpublished ON peer_outbox (published_at)",
    # Every pass record read from the store's stream (this gate's own included), by (gate, list).
    # outcome: 'applied', or 'conflict' when the hold had already passed under another list here.
    """
    CREATE TABLE peer_records (
        gate TEXT NOT NULL,
        list_id BLOB NOT NULL,
        hold BLOB NOT NULL,
        shopper TEXT NOT NULL,
        at REAL NOT NULL,
        received_at REAL NOT NULL,
        stream_seq INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (gate, list_id)
    )
    """,
    "CREATE INDEX peer_records_gate_at ON peer_records (gate, received_at)",
    # Records refused (forged, unknown or revoked gate, replayed, malformed), for the panel and doctor.
    """
    CREATE TABLE peer_refused (
        id INTEGER PRIMARY KEY,
        stream_seq INTEGER NOT NULL,
        at REAL NOT NULL,
        code TEXT NOT NULL,
        detail TEXT NOT NULL
    )
    """,
    # The stream sequence up to which records were applied or refused: where reading resumes.
    "INSERT INTO meta (key, value) VALUES ('peer_stream_seq', 0)",
)


def m004_peers(db: Database) -> None:
    """Lanes of one store share their passes (gate.peers): gate keys, own records to publish, records read."""
    for statement in _M004:
        db.execute(statement)


def m005_audits(db: Database) -> None:
    """Attendants' audits: the scanned basket beside the signed list (gate.store.audits)."""
    db.execute(
        """
        CREATE TABLE audits (
            id INTEGER PRIMARY KEY,
            list_id BLOB NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('let_out', 'manager')),
            attendant TEXT NOT NULL,
            asked_by TEXT,
            reasons TEXT NOT NULL,
            listed_total INTEGER NOT NULL,
            scanned_total INTEGER NOT NULL,
            difference INTEGER NOT NULL,
            unpriced INTEGER NOT NULL,
            currency TEXT NOT NULL,
            scanned TEXT NOT NULL,
            lines TEXT NOT NULL,
            notes TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX audits_list ON audits (list_id)")


def m006_outbox_accepted(db: Database) -> None:
    """A charge the payment system recorded but has not settled yet is `accepted`: it has left the queue of
    what to send (and the offline budget), and waits for its notice."""
    _copy_outbox(db, ("pending", "accepted", "settled", "flagged"), accepted_at=False)


def m007_instance(db: Database) -> None:
    """A random id for this database, told to the payment system at enrolment: a gate whose database was
    made anew shows up as a new instance, and takes back from the payment system what the lost one had
    reported before it decides anything. Also when the feed was last applied (the doctor shows its age)."""
    db.execute("CREATE TABLE identity (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO identity (key, value) VALUES ('instance', ?)", [os.urandom(16).hex()])
    db.execute("INSERT INTO meta (key, value) VALUES ('feed_applied_at', 0)")


def m008_outbox_conflict(db: Database) -> None:
    """A charge the payment system refused because the same list was charged from another copy (a replay
    at two gates) is `conflict`: a settled fact, out of the offline budget, kept for the technician."""
    _copy_outbox(db, ("pending", "accepted", "settled", "flagged", "conflict"), accepted_at=True)


def _copy_outbox(db: Database, states: tuple[str, ...], *, accepted_at: bool) -> None:
    """The outbox with its state CHECK widened to `states` (SQLite cannot widen a CHECK in place, so the
    table is copied); `accepted_at`: whether the old table already has that column to copy."""
    allowed = ", ".join(f"'{state}'" for state in states)
    db.execute(
        f"""
        CREATE TABLE outbox_new (
            charge_id BLOB PRIMARY KEY,
            body BLOB NOT NULL,
            amount INTEGER NOT NULL,
            currency TEXT NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ({allowed})),
            last_error TEXT NOT NULL DEFAULT '',
            settled_at REAL,
            notice BLOB,
            accepted_at REAL
        )
        """
    )
    columns = (
        "charge_id, body, amount, currency, created_at, attempts, next_attempt_at, state, last_error,"
        " settled_at, notice" + (", accepted_at" if accepted_at else "")
    )
    db.execute(f"INSERT INTO outbox_new ({columns}) SELECT {columns} FROM outbox ORDER BY rowid")
    db.execute("DROP TABLE outbox")
    db.execute("ALTER TABLE outbox_new RENAME TO outbox")
    db.execute("CREATE INDEX outbox_due ON outbox (state, next_attempt_at, created_at)")


def m009_recovery(db: Database) -> None:
    """Whether this database still has to take back from the payment system the passes this gate reported
    (`gate init` sets 0, a database made before this release, or by tests and tools, needs nothing: 1)."""
    # OR IGNORE: a restored backup of an older release carries 0 already (gate/store/files.py restore).
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('recovered_at', 1)")


MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    m001_initial,
    m002_events_by_list,
    m003_catalog_bounds,
    m004_peers,
    m005_audits,
    m006_outbox_accepted,
    m007_instance,
    m008_outbox_conflict,
    m009_recovery,
)


def pending(db: Database) -> list[str]:
    """The migrations not applied yet to this database (all of them for a new one)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone():
        return [m.__name__ for m in MIGRATIONS]
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    return [m.__name__ for m in MIGRATIONS if m.__name__ not in done]


def apply(db: Database) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for migration in MIGRATIONS:
        name = migration.__name__
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, time.time()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
