"""The gate database as a file: made once, copied online, restored, and locked by the lane using it.

`gate init` makes the database and its random instance id; nothing else does in production (`gate run`
refuses a missing or empty file rather than start over on a database that vanished, which would forget
every list used at this gate).

A copy is made with SQLite's online backup API from a connection that sees every committed transaction
(WAL included), so it is consistent while the lane keeps deciding: never a file copy of a database in WAL
mode, which can miss the WAL or catch a page mid-write. The copy is written beside its target, checked
(`PRAGMA quick_check`), switched to a rollback journal so it is one self-contained file, flushed to disk,
and only then renamed into place: a backup interrupted by a power cut leaves the previous one intact.

One lane per database: `gate run` holds an exclusive flock on `<database>.lock` for as long as it runs, so
a restore (which replaces the file under it) and a second lane on the same file are refused while it does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from gate.store.database import StoreError


def init_database(path: Path) -> str:
    """Make a new gate database at `path` and return its instance id; an existing one is never touched."""
    from gate.store import GateStore

    if path.exists() and path.stat().st_size > 0:
        raise StoreError(
            f"{path}: a gate database is already here; `gate init` never replaces one (back it up and move "
            "it aside first, or restore a backup with `selfcheckout gate restore`)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path.parent}: cannot make the folder: {exc.strerror or exc}") from exc
    path.unlink(missing_ok=True)  # an empty file left by an accident
    with GateStore(path) as store:
        store.require_recovery()  # a gate's database made anew: what it reported must come back first
        return store.instance_id()


def copy_database(source: sqlite3.Connection, target: Path) -> None:
    """Copy the database behind `source` to `target` (replaced only once the copy is complete and checked)."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        out = sqlite3.connect(partial, isolation_level=None)
        try:
            source.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
            result = [r[0] for r in out.execute("PRAGMA quick_check").fetchall()]
        finally:
            out.close()
        if result != ["ok"]:
            raise StoreError(f"{target}: the copy fails its integrity check: {'; '.join(result[:3])}")
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"{target}: cannot write the copy: {why}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def backup(database: Path, target: Path) -> None:
    """An online backup of `database` (the lane may be running) to `target`."""
    if not database.exists() or database.stat().st_size == 0:
        raise StoreError(f"{database}: no gate database to back up")
    if target.resolve() == database.resolve():
        raise StoreError(f"{target}: is the database itself; name another file")
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)) as source:
        copy_database(source, target)


def check_backup(path: Path) -> str:
    """The instance id of a backup file, once it is known to be a sound gate database (StoreError if not)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            if result != ["ok"]:
                raise StoreError(f"{path}: fails its integrity check: {'; '.join(result[:3])}")
            row = conn.execute("SELECT value FROM identity WHERE key = 'instance'").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a gate database backup ({exc})") from exc
    if row is None:
        raise StoreError(f"{path}: not a gate database backup (no instance id)")
    return str(row[0])


def restore(backup_file: Path, database: Path) -> Path | None:
    """Put a backup in the place of `database`, refused while a lane runs on it.

    The database it replaces (if any) is kept beside it as `<name>.replaced-<time>`, copied with the backup
    API so its WAL comes along; returns that path.
    """
    if not backup_file.is_file():
        raise StoreError(f"{backup_file}: no such backup file")
    check_backup(backup_file)
    with lane_lock(database):
        staged = database.with_name(database.name + ".restoring")
        with contextlib.closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as source:
            copy_database(source, staged)
        # Passes given after the backup are missing from it: the lane takes back what it had reported to
        # the payment system at its next start, as after `gate init`.
        with contextlib.closing(sqlite3.connect(staged, isolation_level=None)) as restored:
            restored.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('recovered_at', 0)")
        kept = None
        if database.exists() and database.stat().st_size > 0:
            kept = database.with_name(f"{database.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                with contextlib.closing(sqlite3.connect(database, timeout=5.0)) as current:
                    copy_database(current, kept)
            except (StoreError, sqlite3.Error):
                kept = None  # a broken database cannot be copied; it is what the restore is for
        for suffix in ("-wal", "-shm"):  # a stale WAL must never be applied to the restored file
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        os.replace(staged, database)
        _fsync(database.parent)
    return kept


@contextlib.contextmanager
def lane_lock(database: Path) -> Iterator[None]:
    """Hold `<database>.lock` exclusively, or raise StoreError at once saying a lane runs on it."""
    path = database.with_name(database.name + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the lane lock: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"{database}: a lane is running on this database; stop it first "
                "(systemctl stop selfcheckout-lane)"
            ) from None
        yield
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
