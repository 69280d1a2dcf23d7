"""The crash harness as numbers: `gate run` SIGKILLed at seeded random moments over taps through pcscd +
vpcd (tests.fixtures.crash); passes lost and charged twice must both be 0."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.stats import metric
from tests.fixtures.crash import KILLS, TAPS, run_harness
from tests.fixtures.lane import NotifySocket
from tests.fixtures.standins import Pcscd


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        daemon = Pcscd(folder)
        notify = NotifySocket()
        try:
            daemon.start()
            result = run_harness(folder, notify, taps=TAPS, kills=KILLS)
        finally:
            notify.close()
            daemon.close()
    yield metric("crash.taps", TAPS, "taps")
    yield metric("crash.kills", KILLS, "kills")
    yield metric("crash.lane_starts", result.starts, "starts")
    yield metric("crash.lost", result.lost, "passes")
    yield metric("crash.duplicate", result.duplicate, "charges")
    yield metric("crash.outbox_rows", result.outbox_rows, "rows")
