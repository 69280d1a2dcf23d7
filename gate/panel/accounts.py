"""The panel's people and their sessions, in one SQLite file of the panel's own (`[panel] accounts_file`).

Every person has a named account with a role, so every change made from the panel says who made it:
- a technician may do everything (maintenance holds, requeue a charge, let one person out, approve);
- an attendant approves lists sent to staff and lets one person out, and reads the pages.

Secrets (a password, or a PIN of at least 6 digits) are stored only as argon2id hashes (argon2-cffi, the
reference implementation's bindings), so a copied file gives nobody a way in. An unknown name costs the
same hash as a known one, so the time a refusal takes does not tell which names exist.

Sessions live here too, not in the browser: the cookie holds a random id, and this file holds what the
session carries and when it was last used. Logging out deletes the row, so a cookie copied before stops
working at once; a session idle for longer than `[panel] session_idle_s` is gone the same way; removing
a person or resetting their secret ends every session of theirs. Only a SHA-256 of each id is stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gate.errors import GateError

TECHNICIAN = "technician"
ATTENDANT = "attendant"
ROLES = (TECHNICIAN, ATTENDANT)
_RANK = {ATTENDANT: 1, TECHNICIAN: 2}
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
SECRET_MAX = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    account TEXT,
    data TEXT NOT NULL,
    created_at REAL NOT NULL,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_account ON sessions (account);
"""


class AccountError(GateError, ValueError):
    """A panel account cannot be made, changed or found (a bad name, a weak secret, a duplicate)."""


@dataclass(frozen=True)
class Account:
    """One person who may use the panel."""

    name: str
    role: str
    created_at: float

    def may(self, role: str) -> bool:
        """Whether this person's role covers `role` (a technician may do what an attendant may)."""
        return _RANK[self.role] >= _RANK[role]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"account name {name[:40]!r}: expected 1-32 lower-case letters, digits, '.', '_' or '-'"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role[:40]!r}: expected one of {', '.join(ROLES)}")
    return role


def check_secret(secret: str) -> str:
    """A PIN of at least 6 digits, or a password of at least 8 characters: beyond a day of guessing."""
    if len(secret) > SECRET_MAX:
        raise AccountError(f"the secret is {len(secret)} characters; at most {SECRET_MAX}")
    if secret.isdigit() and len(secret) >= 6:
        return secret
    if not secret.isdigit() and len(secret) >= 8:
        return secret
    raise AccountError("the secret is too short: a PIN of at least 6 digits, or at least 8 characters")


class Accounts:
    """The accounts file: people, their hashed secrets, and the panel's server-side sessions."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        """`hasher`: argon2-cffi's defaults (RFC 9106's low-memory profile) unless given; a hash made with
        other parameters still verifies, and is made again with these at the next login."""
        self.path = Path(path)
        self.clock = clock
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None  # hashed at the first unknown name: no cost for the CLI
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise AccountError(f"{self.path}: cannot open the panel's accounts: {exc}") from exc
        self.path.chmod(0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Accounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- people ---------------------------------------------------------------------------------------------

    def add(self, name: str, role: str, secret: str) -> Account:
        check_name(name)
        check_role(role)
        digest = self._hasher.hash(check_secret(secret))
        now = self.clock()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"account {name!r} exists already (reset its secret, or remove it)")
            db.execute("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)", (name, role, digest, now, now))
        return Account(name, role, now)

    def remove(self, name: str) -> None:
        """Remove a person; their open sessions end with it."""
        with self._tx() as db:
            if db.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount == 0:
                raise AccountError(f"no account named {name[:40]!r}")
            db.execute("DELETE FROM sessions WHERE account = ?", (name,))

    def reset(self, name: str, secret: str) -> None:
        """A new secret; every session of this person ends, wherever it was opened."""
        digest = self._hasher.hash(check_secret(secret))
        with self._tx() as db:
            changed = db.execute(
                "UPDATE accounts SET hash = ?, changed_at = ? WHERE name = ?", (digest, self.clock(), name)
            ).rowcount
            if changed == 0:
                raise AccountError(f"no account named {name[:40]!r}")
            db.execute("DELETE FROM sessions WHERE account = ?", (name,))

    def all(self) -> list[Account]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, created_at FROM accounts ORDER BY name").fetchall()
        return [Account(*row) for row in rows]

    def get(self, name: str) -> Account | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, created_at FROM accounts WHERE name = ?", (name,)
            ).fetchone()
        return Account(*row) if row else None

    def verify(self, name: str, secret: str) -> Account | None:
        """The account when the secret is right, else None (an unknown name costs the same hash)."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, created_at, hash FROM accounts WHERE name = ?", (name,)
            ).fetchone()
        if row is None and self._dummy is None:
            self._dummy = self._hasher.hash("no such account")
        digest = row[3] if row else self._dummy
        assert digest is not None
        try:
            self._hasher.verify(digest, secret)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(digest):
            with self._tx() as db:
                rehashed = self._hasher.hash(secret)
                db.execute("UPDATE accounts SET hash = ? WHERE name = ?", (rehashed, name))
        return Account(row[0], row[1], row[2])

    # -- sessions -------------------------------------------------------------------------------------------

    def load_session(self, sid: str, idle_s: float) -> tuple[str | None, dict[str, Any]] | None:
        """(account, data) of a live session, or None when there is none (never made, ended, or idle)."""
        key = _hash_id(sid)
        now = self.clock()
        with self._lock:
            row = self._db.execute(
                "SELECT account, data, seen_at FROM sessions WHERE id_hash = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            if now - row[2] > idle_s:
                self._db.execute("DELETE FROM sessions WHERE id_hash = ?", (key,))
                return None
        return row[0], json.loads(row[1])

    def save_session(self, sid: str, account: str | None, data: dict[str, Any]) -> None:
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?) ON CONFLICT (id_hash) DO UPDATE SET "
                "account = excluded.account, data = excluded.data, seen_at = excluded.seen_at",
                (_hash_id(sid), account, json.dumps(data), now, now),
            )

    def end_session(self, sid: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash_id(sid),))

    def purge_idle(self, idle_s: float) -> int:
        """Delete sessions idle for longer than idle_s; how many."""
        with self._tx() as db:
            return db.execute("DELETE FROM sessions WHERE seen_at < ?", (self.clock() - idle_s,)).rowcount


def _hash_id(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
