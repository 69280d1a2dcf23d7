"""The crash harness as numbers: three lanes of one store (`gate run` processes, pcscd + vpcd readers, a
NATS cluster) SIGKILLed at seeded random instants, mid-publish to the other lanes included, and started
again each time (tests.fixtures.store_crash); passes lost, given twice, and restarts after which the lanes
did not agree must all be 0."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.stats import metric
from tests.fixtures.standins import Pcscd, PcscdInNamespace
from tests.fixtures.store_crash import KILL_NAMES, PUBLISH, run_store_harness

KILLS = 201  # 67 per lane


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        daemon = Pcscd(folder)
        second = PcscdInNamespace(folder / "second")
        try:
            daemon.start()
            second.start()
            result = run_store_harness(folder / "store", second, kills=KILLS)
        finally:
            second.close()
            daemon.close()
    if result.errors:
        raise RuntimeError("; ".join(result.errors)[:2000])
    yield metric("crash.kills", result.kills, "kills")
    yield metric("crash.kills_mid_publish", result.counts[f"kills {KILL_NAMES[PUBLISH]}"], "kills")
    yield metric("crash.lane_starts", result.starts, "starts")
    yield metric("crash.passes", result.passes, "passes")
    yield metric("crash.lost", result.lost, "passes")
    yield metric("crash.duplicate", result.duplicate, "passes")
    yield metric("crash.store_disagreements", result.disagreements, "restarts")
