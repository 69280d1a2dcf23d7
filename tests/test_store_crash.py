"""Crash safety across the lanes of one store: three `gate run` lanes SIGKILLed at random instants (mid-tap,
mid-commit, mid-publish to the other lanes) and started again; the store-wide state agrees after each
restart, no pass is lost and none given twice (tests.fixtures.store_crash; `make bench` runs 200 kills)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.standins import PcscdInNamespace
from tests.fixtures.store_crash import SEED, run_store_harness

KILLS = 3  # one per lane, at seeded instants; the bench kills 200 times


@pytest.mark.timeout(300)  # three lanes restarting on a busy machine; nothing here is timed
def test_lanes_of_one_store_killed_at_random_instants_lose_no_pass_and_give_none_twice(
    tmp_path: Path, second_pcscd: PcscdInNamespace
) -> None:
    result = run_store_harness(tmp_path, second_pcscd, kills=KILLS)
    print(f"\nstore crash harness (seed {SEED}): {dict(result.counts)}; {result.passes} passes")
    assert result.errors == []
    assert result.kills == KILLS and result.starts == KILLS + 3
    assert (result.lost, result.duplicate, result.disagreements) == (0, 0, 0)
    assert result.passes == KILLS  # every list passed in the end, once
