"""`lane.start_to_ready`: from `selfcheckout gate run` being started to its READY=1 reaching systemd.

What a restart under systemd costs the lane (Restart=always after a crash, an upgrade, a watchdog kill):
Python and the packages imported, the config and its key files checked, the database opened, migrated and
integrity-checked (a 100k-product catalog in it), the GPIO and the reader opened. READY=1 is read from a
datagram socket of our own in NOTIFY_SOCKET, as systemd would receive it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.bench_catalog import synthetic_catalog
from bench.bench_lane import stop_lane
from bench.stats import metric, percentile
from gate import config as lane_config
from gate.protocol.keys import SigningKey, write_public_key, write_secret_key
from gate.store import GateStore
from selfcheckout.demo import lane_config_text

STARTS = 7


def _start_once(config: Path, notify_path: Path) -> float:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        notify_path.unlink(missing_ok=True)
        sock.bind(str(notify_path))
        sock.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
        command = [sys.executable, "-m", "selfcheckout", "gate", "run", "--config", str(config)]
        started = time.perf_counter()
        lane = subprocess.Popen(
            [*command, "--mock-gpio", "--no-forward", "--no-panel"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while b"READY=1" not in sock.recv(4096).split(b"\n"):
                pass
            return time.perf_counter() - started
        finally:
            stop_lane(lane)


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = Path(tmp)
        write_secret_key(folder / "gate.key", SigningKey.generate())
        write_public_key(folder / "ps.pub", SigningKey.generate().public_key)
        (folder / "lane.toml").write_text(
            lane_config_text(
                database=folder / "gate.db",
                gate_key=folder / "gate.key",
                ps_key=folder / "ps.pub",
                ps_url="http://127.0.0.1:9",
            )
        )
        config = lane_config.load(folder / "lane.toml")
        with GateStore(config.lane.database) as store:
            store.import_catalog(synthetic_catalog())
        samples = [_start_once(folder / "lane.toml", folder / "notify.sock") for _ in range(STARTS)]
    yield metric("lane.start_to_ready", percentile(samples, 50) * 1000, "ms")
    yield metric("lane.start_to_ready.max", max(samples) * 1000, "ms")
