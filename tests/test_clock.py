"""The lane's clock (policy.require_synced_clock): the system time while synchronised; after that the last
synchronised time plus CLOCK_BOOTTIME elapsed, kept across a lane restart in the same boot; no trust when no
synchronisation was seen since boot. The kernel's status and the two clocks are injected, as hardware is."""

from __future__ import annotations

from pathlib import Path

from gate.clock import ClockStatus, LaneClock, kernel_clock_status

SYNCED = ClockStatus(True, 0.01, "synchronised")
UNSYNCED = ClockStatus(False, 16.0, "no time service has synchronised the clock")


class Machine:
    """A Pi's clocks: wall time that a time service may step, boot time that only runs."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.since_boot = 50.0
        self.status = UNSYNCED
        self.boot = "boot-1"

    def clock(self, anchor: Path) -> LaneClock:
        return LaneClock(
            anchor,
            status=lambda: self.status,
            wall=lambda: self.wall,
            since_boot=lambda: self.since_boot,
            boot=lambda: self.boot,
        )

    def run(self, seconds: float, *, wall_drift: float = 0.0) -> None:
        self.since_boot += seconds
        self.wall += seconds + wall_drift


def test_no_sync_since_boot_is_not_trusted_and_a_sync_anchors_the_time(tmp_path: Path) -> None:
    pi = Machine()
    clock = pi.clock(tmp_path / "gate.db.clock")
    assert not clock.trusted()
    pi.status = SYNCED
    assert clock.now() == pi.wall and clock.trusted()
    anchored = pi.wall
    pi.status = UNSYNCED  # the network goes; the wall clock then drifts (or is set wrong by hand)
    pi.run(3600, wall_drift=-900)
    assert clock.trusted() and clock.now() == anchored + 3600


def test_the_anchor_survives_a_restart_in_the_same_boot_but_not_a_reboot(tmp_path: Path) -> None:
    pi = Machine()
    pi.status = SYNCED
    pi.clock(tmp_path / "gate.db.clock").now()
    anchored = pi.wall
    pi.status = UNSYNCED
    pi.run(600)
    restarted = pi.clock(tmp_path / "gate.db.clock")
    assert restarted.trusted() and restarted.now() == anchored + 600
    pi.boot, pi.since_boot = "boot-2", 30.0  # a power cut: boot time starts again, the anchor means nothing
    assert not pi.clock(tmp_path / "gate.db.clock").trusted()


def test_the_kernel_answers_with_a_status() -> None:
    status = kernel_clock_status()
    assert status.max_error_s is not None  # adjtimex answered (a read needs no privilege)
    assert status.synchronised == (status.max_error_s < 16.0)
