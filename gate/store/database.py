"""The gate database's connections, transactions and checkpoints; the tables live in sibling modules.

Durability. Every connection runs in WAL mode with `PRAGMA synchronous=FULL`, so a COMMIT returns only once
the WAL is on disk. A write is one `BEGIN IMMEDIATE` transaction (`_write`), rolled back on any error.

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
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from sqlite_utils import Database

from gate.errors import GateError
from gate.store import migrations

CHECKPOINT_EVERY = 64  # commits, checkpointed by the forwarder's writes
LANE_CHECKPOINT_AFTER = 2000  # commits, after which the lane's own writes checkpoint

log = logging.getLogger(__name__)


class StoreError(GateError, RuntimeError):
    """The gate's database refused an operation: a conflict, a closed store, a full disk, a corrupt file."""


class StorageFault(StoreError, OSError):
    """The storage under the database failed: disk full, an I/O error, read-only, corrupt. Not a conflict
    that the next tap may not meet: the lane stops deciding (FAULT) until the database is writable again."""


class MissingDatabase(StoreError, FileNotFoundError):
    """The database file is missing or empty: made by `gate init`, or brought back by `gate restore`."""


# SQLite's primary result codes that say the storage failed, not the request.
_STORAGE_CODES = {
    sqlite3.SQLITE_IOERR: "an I/O error",
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_READONLY: "the database is read-only",
    sqlite3.SQLITE_CORRUPT: "the database is corrupt: restore a backup (selfcheckout gate restore)",
    sqlite3.SQLITE_NOTADB: "the file is not a database: restore a backup (selfcheckout gate restore)",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
}


def store_error(path: str, exc: sqlite3.Error, doing: str = "") -> StoreError:
    """The StoreError for a SQLite error: a StorageFault when the storage failed."""
    code = getattr(exc, "sqlite_errorcode", None)
    prefix = f"{path}: {doing}: " if doing else f"{path}: "
    if code is not None and code & 0xFF in _STORAGE_CODES:
        return StorageFault(f"{prefix}{_STORAGE_CODES[code & 0xFF]} ({exc})")
    return StoreError(f"{prefix}{exc}")


class StoreBase:
    """One SQLite database file (or ":memory:"), opened and migrated; a context manager."""

    def __init__(
        self, path: str | os.PathLike[str] = ":memory:", *, busy_timeout_s: float = 5.0, create: bool = True
    ) -> None:
        """Open (with `create`, make) and migrate the database. Without `create` a missing or empty file is
        refused: `gate run` must never start over on a database that vanished, forgetting every used list."""
        self.path = str(path)
        self._memory = self.path == ":memory:"
        if not self._memory and not create:
            _require_database(Path(self.path))
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, Database]] = []
        self._closed = False
        self._commits = 0  # since the last checkpoint (approximate across threads; only a trigger)
        self._generation = 0  # bumped by reconnect()
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._shared: Database | None = None
        try:
            first = self._open()
        except sqlite3.Error as exc:
            raise store_error(self.path, exc, "cannot open the gate database") from exc
        if self._memory:
            self._shared = first
        else:
            self._local.db = first
        with self._lock:
            self._connections.append((threading.current_thread(), first))
        try:
            self._migrate(first)
        except sqlite3.Error as exc:
            self.close()
            raise store_error(self.path, exc, "cannot migrate the gate database") from exc
        except StoreError:
            self.close()
            raise

    def _migrate(self, db: Database) -> None:
        """Apply pending migrations, after a backup of a database that already holds data (the way back if
        an upgrade goes wrong: `gate restore` that file with the previous release installed)."""
        todo = migrations.pending(db)
        if todo and not self._memory and len(todo) < len(migrations.MIGRATIONS):
            from gate.store.files import copy_database

            target = Path(self.path).with_name(f"{Path(self.path).name}.before-{todo[0]}.bak")
            copy_database(db.conn, target)
            log.warning("backed the database up to %s before migrating (%s)", target, ", ".join(todo))
        migrations.apply(db)

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
        if db is not None and getattr(self._local, "generation", 0) != self._generation:
            _close(db)  # reconnect() was called: this thread's connection is replaced on its next use
            db = None
        if db is None:
            with self._lock:
                self._connections = [(t, d) for t, d in self._connections if t.is_alive() or _close(d)]
                db = self._local.db = self._open()
                self._local.generation = self._generation
                self._connections.append((threading.current_thread(), db))
        yield db

    def reconnect(self) -> None:
        """Open every thread's connection anew on its next use (each thread closes its own old one).

        After a storage fault SQLite may keep a connection read-only (its shared-memory file reopened
        read-only) although the disk is writable again; a new connection sees the disk as it is now."""
        self._generation += 1

    @contextlib.contextmanager
    def _read(self) -> Iterator[Database]:
        try:
            with self._use() as db:
                yield db
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from exc

    @contextlib.contextmanager
    def _write(self, *, synced: bool = True) -> Iterator[Database]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

        `synced=False` commits without waiting for the disk (synchronous=NORMAL, still atomic): only for a
        transaction that is safe to lose whole on a power cut because it is done again after the restart
        (a peer record and its stream position go back together, and the record is read again).
        """
        with self._use() as db:
            try:
                if not synced:
                    db.execute("PRAGMA synchronous=NORMAL")
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise store_error(self.path, exc, "cannot start a transaction") from exc
            try:
                yield db
                db.execute("COMMIT")
                self._commits += 1
            except BaseException as exc:
                if db.conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # a failed disk may refuse the rollback too
                        db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise store_error(self.path, exc) from exc
                raise
            finally:
                if not synced:
                    db.execute("PRAGMA synchronous=FULL")

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> None:
        """PRAGMA quick_check: StorageFault naming the first problems of a damaged database."""
        with self._read() as db:
            result = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        if result != ["ok"]:
            raise StorageFault(
                f"{self.path}: the database fails its integrity check ({'; '.join(result[:3])}): "
                "restore a backup (selfcheckout gate restore)"
            )

    def instance_id(self) -> str:
        """This database's random instance id (migration m007); the payment system learns it at enrolment."""
        with self._read() as db:
            return db.execute("SELECT value FROM identity WHERE key = 'instance'").fetchone()[0]

    def schema_migrations(self) -> list[str]:
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]


def _require_database(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MissingDatabase(
            f"{path}: no gate database here: run `selfcheckout gate init --config ...` (or restore a backup)"
        ) from None
    except OSError as exc:
        raise StorageFault(f"{path}: cannot read the gate database: {exc.strerror or exc}") from exc
    if size == 0:
        raise MissingDatabase(
            f"{path}: the gate database is empty (0 bytes): restore a backup (selfcheckout gate restore), "
            "or run `selfcheckout gate init --config ...` after moving it aside"
        )


def _close(db: Database) -> bool:
    with contextlib.suppress(sqlite3.Error):
        db.conn.close()
    return False
