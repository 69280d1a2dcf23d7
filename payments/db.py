"""The payment system's SQLite database: schema as migrations, one connection, one writer at a time.

Every money movement is a row in `entries` (the journal) written in the same transaction as the change
to the table it explains, so the reconciliation (payments/ledger.py) can prove the sums from two sides.
WAL with synchronous=FULL: an answer is given only after its transaction is on disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

migrations = Migrations("payments")


@migrations()
def create_tables(db: Database) -> None:
    db["settings"].create({"name": str, "value": str}, pk="name", not_null={"value"})
    db["shoppers"].create(
        {
            "shopper": str,
            "public_key": bytes,
            "key_id": str,
            "bank_account": str,
            "currency": str,
            "balance": int,  # stored value owned, reservations included
            "reserved": int,  # stored value promised to open holds
            "debt": int,  # charges not covered, owed until paid
            "created": int,
        },
        pk="shopper",
        not_null={"public_key", "key_id", "currency", "balance", "reserved", "debt", "created"},
    )
    db["top_ups"].create(
        {"reference": str, "shopper": str, "amount": int, "debt_repaid": int, "at": int},
        pk="reference",
        foreign_keys=[("shopper", "shoppers", "shopper")],
    )
    db["gates"].create(
        {
            "gate": str,
            "public_key": bytes,
            "key_id": str,
            "active": int,
            "enrolled": int,
            "revoked": int,
        },
        pk="gate",
        not_null={"public_key", "key_id", "active", "enrolled"},
    )
    db["gates"].create_index(["key_id"], unique=True)
    db["holds"].create(
        {
            "hold": str,  # hex of the 16-byte id in the voucher; also the bank's hold reference
            "request": str,  # hex of the HoldRequest id
            "request_sha": str,  # sha256 of the signed request bytes (idempotency)
            "shopper": str,
            "currency": str,
            "estimate": int,
            "stored_value": int,  # reserved from stored value
            "bank": int,  # held at the bank
            "state": str,  # placing, open, releasing, closed, failed
            "reason": str,  # why a hold is still open, or why it failed
            "voucher": bytes,  # the signed voucher envelope as issued
            "status": int,  # the answer given to the phone, replayed for the same request
            "answer": str,
            "bank_cleanup": int,  # 1 while a release at the bank is owed but not confirmed
            "issued": int,
            "expires": int,
            "charge": str,
            "sv_captured": int,
            "sv_released": int,
            "bank_captured": int,
            "bank_released": int,
            "closed": int,
        },
        pk="hold",
        not_null={"request", "shopper", "currency", "estimate", "stored_value", "bank", "state", "issued"},
        defaults={
            "sv_captured": 0,
            "sv_released": 0,
            "bank_captured": 0,
            "bank_released": 0,
            "bank_cleanup": 0,
        },
        foreign_keys=[("shopper", "shoppers", "shopper")],
    )
    db.execute("CREATE UNIQUE INDEX holds_request ON holds(request) WHERE state != 'failed'")
    db["holds"].create_index(["state", "expires"])
    db["charges"].create(
        {
            "charge": str,  # hex of the 16-byte charge id (= list id)
            "body": bytes,  # the signed Charge envelope exactly as received
            "body_sha": str,
            "gate": str,
            "hold": str,
            "shopper": str,
            "amount": int,
            "currency": str,
            "decided": int,
            "received": int,
            "state": str,  # capture_pending, releasing, settled
            "from_hold": int,  # 1 when the amounts came from this charge's open hold
            "stored_value": int,
            "bank_planned": int,
            "bank": int,
            "bank_ref": str,
            "debt": int,
            "released": int,
            "notice": bytes,
            "answer": str,
            "settled": int,
            "last_error": str,
        },
        pk="charge",
        not_null={"body", "body_sha", "gate", "hold", "shopper", "amount", "state", "received"},
    )
    db["charges"].create_index(["state"])
    db["charges"].create_index(["hold"])
    db["debts"].create(
        {
            "charge": str,
            "shopper": str,
            "hold": str,
            "amount": int,
            "repaid": int,
            "created": int,
            "paid": int,
        },
        pk="charge",
        not_null={"shopper", "hold", "amount", "repaid", "created"},
    )
    db["debts"].create_index(["shopper", "paid"])
    db["entries"].create(
        {
            "id": int,
            "at": int,
            "kind": str,
            "shopper": str,
            "hold": str,
            "charge": str,
            "ref": str,
            "amount": int,
        },
        pk="id",
        not_null={"at", "kind", "amount"},
    )
    db["entries"].create_index(["kind"])
    db["deny"].create(
        {"kind": str, "key": str, "reason": str, "since": int}, pk=("kind", "key"), not_null={"since"}
    )
    db["feed_log"].create(
        {"version": int, "kind": str, "key": str, "at": int}, pk="version", not_null={"kind", "at"}
    )
    db["prices"].create(
        {
            "version": int,  # the feed version of this change
            "code": str,
            "name": str,
            "category": str,
            "unit": str,
            "price": int,
            "currency": str,
            "valid_from": int,
        },
        pk="version",
    )
    db["prices"].create_index(["code", "valid_from"])


@migrations()
def index_feed_log(db: Database) -> None:
    """A charge asks whether its hold is already in the feed as consumed: look it up, do not scan."""
    db["feed_log"].create_index(["kind", "key"])


def open_database(path: str | Path) -> Database:
    """Open (or create) the database at path, or in memory for ":memory:", and bring its schema up to date."""
    target = str(path)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, check_same_thread=False, timeout=30)
    db = Database(conn)
    if target != ":memory:":
        db.enable_wal()
        # A COMMIT returns once it is on disk: the PS answers "settled" only for what a power cut keeps.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA cache_size=-32768")  # 32 MiB: a store's working set stays in memory
    db.execute("PRAGMA foreign_keys=ON")
    migrations.apply(db)
    return db


def rows(db: Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """The rows of a SELECT as dicts, straight from the connection (no savepoint around a read)."""
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_settings(db: Database) -> dict[str, str]:
    return {r["name"]: r["value"] for r in rows(db, "select name, value from settings")}


class Store:
    """The connection and the lock that serialises its use across the server's threads."""

    def __init__(self, path: str | Path) -> None:
        self.db = open_database(path)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Database]:
        """One write transaction (BEGIN IMMEDIATE, so other processes wait rather than fail mid-way)."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:  # nested: join the outer transaction
                yield self.db
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[Database]:
        with self._lock:
            yield self.db

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        with self._lock:
            found = rows(self.db, sql, params)
        return found[0] if found else None

    def all(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            return rows(self.db, sql, params)
