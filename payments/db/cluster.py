"""A throwaway PostgreSQL server in a folder: what the tests and benchmarks run the payment system on.

`initdb` and `pg_ctl` from Debian's postgresql package, listening on a Unix socket in the folder only (no
TCP). PostgreSQL refuses to run as root, so as root the folder is given to the `postgres` user and the
server runs as that user (`runuser`). fsync stays on: what the benchmarks measure is what a power cut
keeps. `close()` stops the server (fast shutdown) and removes the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from payments.db.engines import DatabaseError

PG_ROOT = Path("/usr/lib/postgresql")


def find_bin() -> Path:
    """The newest PostgreSQL bin folder on this machine, or DatabaseError naming the package to install."""
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name), reverse=True)
    if not found:
        raise DatabaseError(f"no PostgreSQL under {PG_ROOT}: apt-get install postgresql")
    return found[0].parent


class PostgresCluster:
    """One PostgreSQL server in its own temporary folder; `url(name)` for a database on it."""

    def __init__(self, *, max_connections: int = 300) -> None:
        self.bin = find_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="selfcheckout-pg-"))
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        data = self.folder / "data"
        options = (
            f"-k {self.folder} -p {self.port} -c listen_addresses='' -c max_connections={max_connections}"
        )
        try:
            self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
            self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        except DatabaseError:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._started = True

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = self.folder / "log"
            tail = log.read_text()[-500:] if log.exists() else ""
            raise DatabaseError(f"{program} failed ({done.returncode}): {done.stderr.strip()[-500:]} {tail}")

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://postgres@/{name}?host={self.folder}&port={self.port}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        if self._started:
            self._started = False
            try:
                self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
