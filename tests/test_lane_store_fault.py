"""A store that cannot take the pass (the database locked by another process past its busy timeout) fails
that one tap: no receipt, no charge, no opening; the lane goes on and the next tap passes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from gate.lane import LaneState
from tests.fixtures.lane import LaneRig, wait_until

LOCKED, OPEN = True, False
INITIAL = False


def test_a_locked_database_fails_the_tap_and_the_lane_goes_on(lane_rig: Callable[..., LaneRig]) -> None:
    rig = lane_rig()
    phone = rig.shop.exit_card()
    blocker = sqlite3.connect(rig.folder / "gate.db", timeout=5, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the busy timeout
        rig.hand.place(phone)
        rig.wait_state(LaneState.DECIDING)
        rig.wait_state(LaneState.IDLE, timeout_s=15)  # the commit gave up after the busy timeout
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        rig.hand.lift()
    # The events of the failed tap were kept while the database was locked, and written after.
    wait_until(lambda: rig.lane_events("tap_failed") or None, 5, "the failed tap on record", poll_s=0.05)
    assert phone.receipt is None
    assert rig.outbox_ids() == [] and rig.relay_locked()
    assert "StoreError" in rig.lane_events("tap_failed")[0].detail
    # The shopper taps again: the same list passes now, once.
    receipt = rig.tap(phone)
    assert (receipt.doc.verdict, receipt.doc.reasons) == ("pass", ())
    rig.wait_state(LaneState.OPEN)
    assert rig.outbox_ids() == [receipt.doc.list]
    assert rig.states("relay") == [INITIAL, LOCKED, OPEN]
