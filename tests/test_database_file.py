"""The lane database cannot silently vanish: made once by `gate init`, refused when missing, empty or
damaged, backed up while the lane runs, restored only while it does not, copied before a migration."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlite_utils import Database

from gate import config as lane_config
from gate.doctor import check_running_lane
from gate.store import GateStore
from gate.store import migrations as store_migrations
from tests.fixtures.lane import LaneProcess, NotifySocket, free_port, write_lane_files
from tests.fixtures.standins import Pcscd


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "selfcheckout", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _one_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def _run_lane(config: Path) -> subprocess.CompletedProcess[str]:
    return _cli("gate", "run", "--config", str(config), "--mock-gpio", "--no-panel", "--no-forward")


@pytest.fixture
def lane_files(tmp_path: Path) -> Path:
    """A lane config and its catalog-filled database, the panel on a free port."""
    return write_lane_files(tmp_path, panel={"port": free_port()})


def test_gate_run_refuses_a_missing_or_empty_database_in_one_line(lane_files: Path) -> None:
    database = lane_files.parent / "gate.db"
    database.unlink()
    assert _one_error(_run_lane(lane_files)) == (
        f"Error: {database}: no gate database here: run `selfcheckout gate init --config ...`"
        " (or restore a backup)"
    )
    assert not database.exists()  # refused, not made anew
    database.write_bytes(b"")
    assert _one_error(_run_lane(lane_files)).startswith(
        f"Error: {database}: the gate database is empty (0 bytes): restore a backup"
    )


def test_gate_run_refuses_a_damaged_database(lane_files: Path) -> None:
    database = lane_files.parent / "gate.db"
    with GateStore(database) as store:
        store.checkpoint()
    raw = bytearray(database.read_bytes())
    page = 4096
    for start in range(page, len(raw), page):  # every b-tree page header after the schema's, scribbled over
        raw[start : start + 12] = b"\x5a" * 12
    database.write_bytes(bytes(raw))
    line = _one_error(_run_lane(lane_files))
    assert line.startswith(f"Error: {database}: ") and "restore a backup" in line


def test_gate_init_makes_a_database_once_with_its_own_instance_id(
    tmp_path: Path, lane_config_dir: Path
) -> None:
    config = lane_config_dir / "lane.toml"
    made = _cli("gate", "init", "--config", str(config))
    assert made.returncode == 0, made.stderr
    with GateStore(lane_config_dir / "gate.db", create=False) as store:
        instance = store.instance_id()
    assert made.stdout.strip() == f"made {lane_config_dir / 'gate.db'}: instance {instance}"
    again = _one_error(_cli("gate", "init", "--config", str(config)))
    assert "a gate database is already here; `gate init` never replaces one" in again
    with GateStore(tmp_path / "other.db") as other:
        assert len(instance) == 32 and other.instance_id() != instance


def test_backup_while_the_lane_runs_and_restore_once_it_stopped(
    lane_files: Path, tmp_path: Path, pcscd: Pcscd
) -> None:
    database = lane_files.parent / "gate.db"
    notify = NotifySocket()
    lane = LaneProcess(lane_files, notify, tmp_path / "lane.log")
    writes = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:  # another writer on the database while the backup runs, as the lane's own
        with GateStore(database, create=False) as store:
            while not writes.is_set():
                store.record_event("test", f"event {len(written)}")
                written.append(1)

    try:
        lane.start()
        running = check_running_lane(lane.config)
        assert running.ok and running.sentence == "The running lane is idle, with no problem."
        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            backup = tmp_path / "backups" / "gate-1.db"
            (tmp_path / "backups").mkdir()
            done = _cli("gate", "backup", str(backup), "--config", str(lane_files))
            assert done.returncode == 0, done.stderr
        finally:
            writes.set()
            writer.join()
        with sqlite3.connect(backup) as copy:
            assert copy.execute("PRAGMA quick_check").fetchone() == ("ok",)
            copied = copy.execute("SELECT count(*) FROM lane_events WHERE kind = 'test'").fetchone()[0]
            products = copy.execute("SELECT count(*) FROM products").fetchone()[0]
        assert 0 < copied <= len(written) and products > 0
        assert not (tmp_path / "backups" / "gate-1.db-wal").exists()  # one self-contained file

        refused = _one_error(_cli("gate", "restore", str(backup), "--config", str(lane_files)))
        assert refused == (
            f"Error: {database}: a lane is running on this database; stop it first"
            " (systemctl stop selfcheckout-lane)"
        )
        assert lane.terminate() == 0
        assert check_running_lane(lane.config).sentence.startswith("No lane answers at http://127.0.0.1:")
    finally:
        lane.close()
        notify.close()

    done = _cli("gate", "restore", str(backup), "--config", str(lane_files))
    assert done.returncode == 0, done.stderr
    kept = Path(done.stdout.strip().split("the replaced one is ")[1])
    with GateStore(database, create=False) as store:
        assert store.needs_recovery()  # what passed after the backup comes back from the payment system
        assert len(store.recent_lane_events(100_000)) >= copied
        assert sum(e.kind == "test" for e in store.recent_lane_events(100_000)) == copied
    with GateStore(kept, create=False) as before:
        assert sum(e.kind == "test" for e in before.recent_lane_events(100_000)) == len(written)


def test_restore_refuses_a_file_that_is_not_a_gate_backup(lane_files: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n")
    line = _one_error(_cli("gate", "restore", str(tmp_path / "notes.txt"), "--config", str(lane_files)))
    assert line.startswith(f"Error: {tmp_path / 'notes.txt'}: not a gate database backup")


def test_a_migration_is_preceded_by_a_backup(tmp_path: Path) -> None:
    """A database of the previous release (all but the last migration) is copied before it is migrated."""
    *before, last = [m.__name__ for m in store_migrations.MIGRATIONS]
    database = tmp_path / "gate.db"
    conn = sqlite3.connect(database, isolation_level=None)
    db = Database(conn)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for migration in store_migrations.MIGRATIONS[:-1]:
        migration(db)
        db.execute("INSERT INTO _migrations VALUES (?, 0)", [migration.__name__])
    db.execute("INSERT INTO products VALUES ('4006381333931', 'Pen', 'stationery', 'each')")
    conn.close()
    with GateStore(database) as store:
        assert store.schema_migrations()[-1] == last
    copy = tmp_path / f"gate.db.before-{last}.bak"
    assert copy.is_file()
    with sqlite3.connect(copy) as old:
        assert [r[0] for r in old.execute("SELECT name FROM _migrations ORDER BY name")] == before
        assert old.execute("SELECT name FROM products").fetchall() == [("Pen",)]


def test_a_second_lane_on_the_same_database_is_refused(lane_files: Path, tmp_path: Path) -> None:
    notify = NotifySocket()
    lane = LaneProcess(lane_files, notify, tmp_path / "lane.log")
    try:
        lane.start()
        cfg = lane_config.load(lane_files)
        line = _one_error(_run_lane(lane_files))
        assert line == (
            f"Error: {cfg.lane.database}: a lane is running on this database; stop it first"
            " (systemctl stop selfcheckout-lane)"
        )
    finally:
        lane.close()
        notify.close()
