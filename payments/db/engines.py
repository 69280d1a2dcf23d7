"""The one place where SQLite and PostgreSQL differ: connecting, placeholders, type names, row locks.

Everything above this module writes one SQL dialect: `?` placeholders, `INSERT ... ON CONFLICT`,
`RETURNING`, and `{for_update}` / `{skip_locked}` after a SELECT that takes rows to change. Here:

- SQLite (the embedded default, one store): one connection per process, serialised by a lock; a write
  transaction is `BEGIN IMMEDIATE`, so the whole database is the lock and row-lock clauses are dropped.
  WAL with synchronous=FULL: a COMMIT returns once it is on disk.
- PostgreSQL (a chain: one server, several payment-system processes): a psycopg pool; each transaction
  on its own connection, READ COMMITTED, rows taken with `FOR UPDATE` (and the settlement queue with
  `FOR UPDATE SKIP LOCKED`, so workers never wait for each other's rows); rows inserted in bulk with
  COPY. Sums of integer money come back as `int`, not `Decimal`. Migrations run under an advisory lock,
  so processes starting together apply each migration once.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from payments.db.schema import MIGRATIONS
from payments.errors import PaymentsError

Params = Sequence[Any]


class DatabaseError(PaymentsError):
    """The database cannot be opened or is not a payment-system database of this version."""

    status = 503
    default_code = "database"


class Tx:
    """One transaction (or one autocommitted read) on one connection; rows come back as dicts."""

    for_update = ""
    skip_locked = ""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _sql(self, sql: str) -> str:
        return sql

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self.conn.execute(self._sql(sql), params).rowcount

    def executemany(self, sql: str, seq: Sequence[Params]) -> None:
        if seq:
            self.conn.cursor().executemany(self._sql(sql), seq)

    def all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(self._sql(sql), params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        found = self.all(sql, params)
        return found[0] if found else None

    def insert(self, table: str, row: dict[str, Any]) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))

    def insert_many(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Rows of the same columns in one round trip."""
        if not rows:
            return
        columns = list(rows[0])
        marks = ", ".join("?" * len(columns))
        self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [[r[c] for c in columns] for r in rows],
        )


class _PostgresTx(Tx):
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def _sql(self, sql: str) -> str:
        return _placeholders(sql)

    def insert_many(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """COPY: a batch of charges (or of journal lines) is one stream, not a statement per row."""
        if not rows:
            return
        columns = list(rows[0])
        with self.conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


_PLACEHOLDER_CACHE: dict[str, str] = {}


def _placeholders(sql: str) -> str:
    """`?` to psycopg's `%s` (a literal `%` doubled); cached, the statements are few and repeated."""
    done = _PLACEHOLDER_CACHE.get(sql)
    if done is None:
        done = _PLACEHOLDER_CACHE[sql] = sql.replace("%", "%%").replace("?", "%s")
    return done


class Database:
    """A payment-system database: `tx()` for a write transaction, `read()`, `one()` and `all()` for reads."""

    dialect = ""
    types: ClassVar[dict[str, str]] = {}

    def tx(self) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def read(self) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        with self.read() as db:
            return db.one(sql, params)

    def all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with self.read() as db:
            return db.all(sql, params)

    def _migrate(self, db: Tx) -> list[str]:
        """Apply every migration not yet applied, in the caller's transaction; the names applied."""
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {r["name"] for r in db.all("SELECT name FROM _migrations")}
        applied = []
        for name, statements in MIGRATIONS:
            if name in done:
                continue
            for statement in statements:
                db.execute(statement.format(**self.types))
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, time.time()])
            applied.append(name)
        return applied


class SqliteDatabase(Database):
    """SQLite: one connection, one writer at a time (BEGIN IMMEDIATE)."""

    dialect = "sqlite"
    types: ClassVar[dict[str, str]] = {"int": "INTEGER", "blob": "BLOB", "serial": "INTEGER PRIMARY KEY"}

    def __init__(self, path: str | Path) -> None:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(target, check_same_thread=False, timeout=30, isolation_level=None)
            if target != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                # A COMMIT returns once it is on disk: the PS answers only for what a power cut keeps.
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: a store's working set
            self._conn.execute("PRAGMA foreign_keys=ON")
            legacy = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = '_sqlite_migrations'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{target}: cannot open as a SQLite database: {exc}") from exc
        if legacy:
            self._conn.close()
            raise DatabaseError(
                f"{target}: a payment-system database of release 0.1, which this release cannot open; "
                "settle its charges with the old release, then start a new database"
            )
        self._lock = threading.RLock()
        with self.tx() as db:
            self._migrate(db)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        with self._lock:
            if self._conn.in_transaction:  # nested: join the outer transaction
                yield Tx(self._conn)
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock:
            yield Tx(self._conn)


class PostgresDatabase(Database):
    """PostgreSQL through a psycopg pool: a connection per transaction, row locks for what changes."""

    dialect = "postgres"
    types: ClassVar[dict[str, str]] = {
        "int": "BIGINT",
        "blob": "BYTEA",
        "serial": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    }

    def __init__(self, url: str, *, max_connections: int = 16) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise DatabaseError(
                "PostgreSQL needs psycopg and psycopg-pool: pip install 'selfcheckout[postgres]'"
            ) from exc
        self._psycopg = psycopg
        # Once directly first: a wrong role, password or database name is then one line at once, where the
        # pool would retry for its whole timeout and log each attempt.
        try:
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {redact_url(url)}: {driver_message(exc, url)}"
            ) from exc
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            configure=_configure,
            open=False,
            timeout=30,
        )
        try:
            self._pool.open(wait=True, timeout=15)
        except Exception as exc:  # psycopg_pool.PoolTimeout, OperationalError: say which server, once
            self._pool.close()
            raise DatabaseError(f"cannot connect to PostgreSQL at {redact_url(url)}: {exc}") from exc
        try:
            with self.tx() as db:
                db.execute("SELECT pg_advisory_xact_lock(7416)")  # one migrator at a time
                self._migrate(db)
        except psycopg.errors.InsufficientPrivilege as exc:
            self._pool.close()
            raise DatabaseError(
                f"PostgreSQL at {redact_url(url)}: the payment system's role may not make its tables"
                f" ({driver_message(exc, url)}); make the database with it as owner:"
                " createdb --owner ROLE NAME"
            ) from exc
        except psycopg.Error as exc:
            self._pool.close()
            raise DatabaseError(
                f"PostgreSQL at {redact_url(url)}: cannot bring the schema up to date:"
                f" {driver_message(exc, url)}"
            ) from exc

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)


def _configure(conn: Any) -> None:
    from psycopg.adapt import Loader

    class IntegerSum(Loader):
        """sum() of BIGINT is NUMERIC in PostgreSQL; our sums are of integer minor units."""

        def load(self, data: Any) -> int:
            return int(bytes(data))

    conn.adapters.register_loader("numeric", IntegerSum)
    conn.autocommit = True  # transactions are explicit (conn.transaction())


def driver_message(exc: Exception, url: str) -> str:
    """A driver's message on one line, without the URL's password should the driver repeat it."""
    text = " ".join(str(exc).split())
    secrets = {urlsplit(url).password}
    try:
        from psycopg.conninfo import conninfo_to_dict

        secrets.add(conninfo_to_dict(url).get("password"))
    except Exception:  # a URL the driver cannot parse: its own message says so
        pass
    for secret in secrets - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def redact_url(url: str) -> str:
    return re.sub(r"password=\S+|:[^:@/]+@", lambda m: "password=***" if "=" in m[0] else ":***@", url)


def is_postgres_url(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def open_database(target: str | Path, *, connections: int = 16) -> Database:
    """A SQLite file path (or ":memory:"), or a postgresql:// URL; the schema brought up to date."""
    if is_postgres_url(target):
        return PostgresDatabase(str(target), max_connections=connections)
    return SqliteDatabase(target)
