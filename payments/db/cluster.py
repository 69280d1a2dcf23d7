"""A throwaway PostgreSQL server in a folder: what the tests and benchmarks run the payment system on.

`initdb` and `postgres` from Debian's postgresql package, listening on a Unix socket in the folder only
(no TCP). PostgreSQL refuses to run as root, so as root the folder is given to the `postgres` user and the
server runs as that user. fsync stays on: what the benchmarks measure is what a power cut keeps.

The server is this process's own child, not a daemon (`pg_ctl` would detach it): it gets SIGQUIT (an
immediate shutdown) when the thread that started it ends, so a test run or benchmark killed hard leaves no
server behind. `close()` stops it (fast shutdown) and removes the folder.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from payments.db.engines import DatabaseError

PG_ROOT = Path("/usr/lib/postgresql")
_PR_SET_PDEATHSIG = 1


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
        self._user: pwd.struct_passwd | None = None
        self._server: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("postgres")
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
        data = self.folder / "data"
        try:
            self._initdb(data)
            with (self.folder / "log").open("wb") as log:
                self._server = subprocess.Popen(
                    [
                        str(self.bin / "postgres"), "-D", str(data), "-k", str(self.folder),
                        "-p", str(self.port), "-c", "listen_addresses=",
                        "-c", f"max_connections={max_connections}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=self._as_postgres_until_parent_dies,
                )  # fmt: skip
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _initdb(self, data: Path) -> None:
        command = [str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        done = subprocess.run(
            [*command, "--no-sync"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=self._as_postgres,
        )
        if done.returncode != 0:
            raise DatabaseError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    def _as_postgres(self) -> None:
        """In the child before exec: become the postgres user when running as root."""
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    def _as_postgres_until_parent_dies(self) -> None:
        """As _as_postgres, then ask for SIGQUIT when the starting thread ends (after the user change,
        which would clear the request)."""
        self._as_postgres()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)

    def _wait_ready(self, timeout_s: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            assert self._server is not None
            if self._server.poll() is not None:
                tail = (self.folder / "log").read_text()[-500:]
                raise DatabaseError(f"postgres exited with {self._server.returncode}: {tail}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"postgres not ready after {timeout_s} s: {exc}") from exc
                time.sleep(0.05)

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://postgres@/{name}?host={self.folder}&port={self.port}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        server, self._server = self._server, None
        try:
            if server is not None and server.poll() is None:
                server.send_signal(signal.SIGINT)  # a fast shutdown: clients cut, data flushed
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(timeout=10)
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
