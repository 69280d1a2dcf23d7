"""A lane whose storage fails (disk full, filesystem read-only) goes to FAULT: red light, a plain reason in
its health data, no watchdog pings, no pass without a durable record; it recovers once the disk does.

The database lives on a real, small tmpfs that the test fills up or remounts read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gate.lane import LaneState
from gate.lane.storage import StorageWatch
from gate.notify import Notifier
from tests.fixtures.disks import SmallDisk
from tests.fixtures.lane import LaneRig, NotifySocket, running_lane, wait_until

WATCHDOG_USEC = 200_000


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk", 8 * 1024 * 1024)
    try:
        yield disk
    finally:
        disk.close()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    listener = NotifySocket()
    yield listener
    listener.close()


def _rig(disk: SmallDisk, notify: NotifySocket, *, min_free_bytes: int) -> Iterator[LaneRig]:
    database = disk.path / "gate.db"
    watch = StorageWatch(database, min_free_bytes=min_free_bytes)
    with (
        Notifier(notify.env(WATCHDOG_USEC)) as notifier,
        running_lane(disk.path, MockFactory(), start=False, lane_overrides={"storage": watch}) as rig,
    ):
        rig.lane.notifier = notifier  # as gate run gives it, with WATCHDOG_USEC set
        rig.start()
        notify.wait_for(lambda line: line == "WATCHDOG=1", 3, "the first watchdog ping")
        yield rig


def _pings_stop(notify: NotifySocket) -> None:
    """No WATCHDOG=1 for a whole watchdog period (systemd would restart the lane)."""

    def quiet_period() -> bool:
        count = len(notify.messages)
        notify.collect(WATCHDOG_USEC / 1_000_000)
        return "WATCHDOG=1" not in [line for _, line in notify.messages[count:]]

    wait_until(quiet_period, 5, "the watchdog pings to stop", poll_s=0)


def _in_fault(rig: LaneRig, reason: str) -> None:
    rig.wait_state(LaneState.FAULT)
    health = rig.lane.health()
    assert health["state"] == "fault"
    assert health["fault"].startswith("storage: ") and reason in health["fault"]
    assert rig.pin("red").state and not rig.pin("green").state
    assert rig.relay_locked()


def test_a_disk_full_at_the_commit_fails_the_tap_and_faults_the_lane(
    disk: SmallDisk, notify: NotifySocket
) -> None:
    """With no free-space floor the full disk is met by the pass's own commit: nothing committed, no
    receipt, no opening; the lane stops in FAULT and the next shopper is refused without a wait."""
    for rig in _rig(disk, notify, min_free_bytes=0):
        disk.fill()
        phone = rig.shop.exit_card()
        rig.hand.place(phone)
        _in_fault(rig, "the disk is full")
        rig.hand.lift()
        assert phone.receipt is None and rig.outbox_ids() == []
        assert rig.states("relay") == [False, rig.locked_level]  # never released
        _pings_stop(notify)

        other = rig.shop.exit_card()
        receipt = rig.tap(other)
        assert receipt.doc.verdict == "deny" and rig.relay_locked()

        disk.free()
        rig.wait_state(LaneState.IDLE, timeout_s=10)
        assert rig.lane.health()["fault"] is None and not rig.pin("red").state
        notify.wait_for(lambda line: line == "WATCHDOG=1", 5, "pings again", since=len(notify.messages))
        receipt = rig.tap(phone)
        assert receipt.doc.verdict == "pass"
        rig.wait_state(LaneState.OPEN)
        assert rig.outbox_ids() == [receipt.doc.list]
        faults = [e.detail for e in rig.lane_events("fault")]
        assert any("the disk is full" in f for f in faults)  # kept in memory, written once it could be


def test_a_read_only_filesystem_faults_the_lane_before_any_tap(disk: SmallDisk, notify: NotifySocket) -> None:
    for rig in _rig(disk, notify, min_free_bytes=64 * 1024):
        disk.read_only()
        _in_fault(rig, "read-only")
        _pings_stop(notify)
        phone = rig.shop.exit_card()
        receipt = rig.tap(phone)
        assert receipt.doc.verdict == "deny" and rig.relay_locked()
        assert rig.outbox_ids() == []

        disk.writable()
        rig.wait_state(LaneState.IDLE, timeout_s=10)
        receipt = rig.tap(phone)
        assert receipt.doc.verdict == "pass"
        assert rig.outbox_ids() == [receipt.doc.list]
