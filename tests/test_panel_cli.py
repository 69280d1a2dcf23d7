"""`selfcheckout gate run` serves the panel on [panel] host:port, stops it on SIGTERM, and says in one line
when the port is taken; `--no-panel` serves nothing. The lane runs with MockFactory pins and the PC/SC
reader (which waits for pcscd without failing), no forwarder."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from gate.panel import PanelServer
from tests.fixtures import standin_unavailable
from tests.fixtures.lane import SELFCHECKOUT, free_port, write_lane_files


class Lane:
    """A `gate run` subprocess whose stderr lines are collected as they come."""

    def __init__(self, config: Path, *extra: str) -> None:
        if importlib.util.find_spec("smartcard") is None:
            standin_unavailable("pyscard (the nfc extra), which gate run's PC/SC reader imports")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.proc = subprocess.Popen(
            [SELFCHECKOUT, "gate", "run", "--config", config, "--mock-gpio", "--no-forward", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, start: str, timeout_s: float = 15.0) -> str:
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            seen.append(line)
            if line.startswith(start):
                return line
        raise AssertionError(f"no line starting {start!r} from gate run; it said {seen}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(15)
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return rc


@contextlib.contextmanager
def gate_run(config: Path, *extra: str) -> Iterator[Lane]:
    lane = Lane(config, *extra)
    try:
        yield lane
    finally:
        if lane.proc.poll() is None:
            lane.proc.kill()
        lane.stop()


def get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_gate_run_serves_the_panel_and_closes_it_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_lane_files(tmp_path, panel={"host": "127.0.0.1", "port": port})
    with gate_run(config) as lane:
        assert lane.wait_line("technician panel on") == f"technician panel on http://127.0.0.1:{port}"
        lane.wait_line("lane gate-01 running")
        status, health = get_json(port, "/api/health")
        assert status == 200
        assert health["lane_state"] == "idle"  # type: ignore[index]
        assert health["gate_locked"] is True  # type: ignore[index]
        assert lane.stop() == 0
    assert refused(port)


def test_gate_run_no_panel_serves_nothing_and_a_taken_port_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = write_lane_files(tmp_path, panel={"host": "127.0.0.1", "port": port})
    with gate_run(config, "--no-panel") as lane:
        lane.wait_line("lane gate-01 running")
        assert refused(port)
        assert lane.stop() == 0

    with PanelServer(lambda env, start: [], "127.0.0.1", port), gate_run(config) as lane:
        line = lane.wait_line("Error:")
        assert line == (
            f"Error: panel: cannot listen on 127.0.0.1:{port}: Address already in use "
            "(set [panel] port, or --no-panel)"
        )
        assert lane.proc.wait(15) == 1  # on its own, after closing what it had opened
