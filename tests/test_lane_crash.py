"""Crash safety: `selfcheckout gate run` killed with SIGKILL at random moments while phones tap it through
pcscd + vpcd, started again each time; no pass is lost and none is charged twice (tests.fixtures.crash)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.crash import KILLS, SEED, TAPS, run_harness
from tests.fixtures.lane import NotifySocket


def test_gate_run_killed_at_random_moments_loses_no_pass_and_charges_none_twice(
    tmp_path: Path, pcsc: Any, notify_socket: NotifySocket
) -> None:
    result = run_harness(tmp_path, notify_socket)
    print(f"\ncrash harness (seed {SEED}): {dict(result.counts)}; {result.outbox_rows} outbox rows")
    assert sum(n for k, n in result.counts.items() if k.startswith("kills")) == KILLS
    assert result.starts == KILLS + 1
    assert (result.lost, result.duplicate) == (0, 0)
    assert result.outbox_rows == result.pass_events == TAPS
    assert result.without_pass == 0
