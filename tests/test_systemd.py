"""The lane as a systemd service: the units verify clean and keep their hardening score, and the lane
speaks sd_notify: READY=1 once started, STATUS= on transitions, WATCHDOG=1 only while its loop turns.

systemd does not run here: `systemd-analyze verify` and `security --offline=true` check the unit files, and
a test binds its own datagram socket as NOTIFY_SOCKET to read what the lane says.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.virtual_card import VirtualCard
from gate import config as lane_config
from gate.notify import Notifier
from gate.service import open_lane
from tests.fixtures import standin_unavailable
from tests.fixtures.lane import (
    ROOT,
    SELFCHECKOUT,
    LaneProcess,
    NotifySocket,
    free_port,
    make_live_shop,
    write_lane_files,
)

UNITS = sorted((ROOT / "systemd").glob("*.service"))
LANE_UNIT = ROOT / "systemd" / "selfcheckout-lane.service"
# `systemd-analyze security --offline=true` exposure, at most 2.0 for every unit (the lane scores 1.4, the
# payment system 1.1, the simulated bank 0.9); --threshold takes the score times ten.
SECURITY_THRESHOLD = 20


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        standin_unavailable("systemd-analyze is not installed")
    return path


def checkable_copy(unit: Path, folder: Path, replace: Callable[[str], str] = lambda text: text) -> Path:
    """The unit with ExecStart's program pointing at this venv's selfcheckout, which exists here."""
    text = unit.read_text()
    program = re.search(r"^ExecStart=(\S+)", text, re.MULTILINE)
    assert program is not None, f"{unit.name} has no ExecStart"
    assert Path(program.group(1)).name == "selfcheckout", program.group(1)
    text = text.replace(f"ExecStart={program.group(1)}", f"ExecStart={SELFCHECKOUT}", 1)
    copy = folder / unit.name
    copy.write_text(replace(text))
    return copy


def verify(systemd_analyze: str, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=unit.parent
    )


def test_the_units_are_the_lanes_its_nats_node_the_payment_systems_and_the_banks() -> None:
    assert {
        "selfcheckout-lane.service",
        "selfcheckout-nats.service",
        "selfcheckout-payments.service",
        "selfcheckout-bank.service",
    } <= {u.name for u in UNITS}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_each_unit_verifies_without_a_word(systemd_analyze: str, unit: Path, tmp_path: Path) -> None:
    result = verify(systemd_analyze, checkable_copy(unit, tmp_path))
    # A misspelt key only prints "... ignoring." and still exits 0: any output at all is a failure.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_misspelt_key_is_caught_by_the_any_output_rule(systemd_analyze: str, tmp_path: Path) -> None:
    unit = checkable_copy(LANE_UNIT, tmp_path, lambda t: t.replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = verify(systemd_analyze, unit)
    assert result.returncode == 0  # which is why the exit code alone proves nothing
    assert "Unknown key 'NoNewPrivilege'" in result.stdout + result.stderr


def exposure(systemd_analyze: str, unit: Path) -> tuple[int, float]:
    """`systemd-analyze security --offline=true --threshold=20`: its exit status and the unit's score."""
    result = subprocess.run(
        [systemd_analyze, "security", "--offline=true", f"--threshold={SECURITY_THRESHOLD}", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert score is not None, result.stdout + result.stderr
    return result.returncode, float(score.group(1))


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_unit_is_hardened_to_an_exposure_of_two_at_most(
    systemd_analyze: str, unit: Path, tmp_path: Path
) -> None:
    status, score = exposure(systemd_analyze, checkable_copy(unit, tmp_path))
    assert (status, score <= SECURITY_THRESHOLD / 10) == (0, True), f"{unit.name}: exposure {score}"


def test_the_exposure_check_fails_a_unit_that_loses_its_hardening(
    systemd_analyze: str, tmp_path: Path
) -> None:
    def soften(text: str) -> str:
        return "\n".join(
            line for line in text.splitlines() if not line.startswith(("SystemCallFilter=", "Protect"))
        )

    status, score = exposure(systemd_analyze, checkable_copy(LANE_UNIT, tmp_path, soften))
    assert status == 1 and score > SECURITY_THRESHOLD / 10


def service_values(unit: Path, key: str) -> list[str]:
    section = unit.read_text().split("[Service]")[1].split("[Install]")[0]
    return [line.split("=", 1)[1] for line in section.splitlines() if line.startswith(f"{key}=")]


def test_the_lane_reaches_exactly_its_devices_and_starts_after_the_clock_is_set() -> None:
    assert service_values(LANE_UNIT, "DevicePolicy") == ["closed"]
    # GPIO chips (lgpio), and USB-serial scanners; the NFC reader is pcscd's, reached over its socket.
    assert service_values(LANE_UNIT, "DeviceAllow") == [
        "char-gpiochip rw",
        "char-ttyACM rw",
        "char-ttyUSB rw",
    ]
    assert service_values(LANE_UNIT, "IPAddressDeny") == ["any"]
    unit = LANE_UNIT.read_text().split("[Service]")[0]
    after = next(line.split("=", 1)[1].split() for line in unit.splitlines() if line.startswith("After="))
    wants = next(line.split("=", 1)[1].split() for line in unit.splitlines() if line.startswith("Wants="))
    assert "time-sync.target" in after and "time-sync.target" in wants
    assert service_values(LANE_UNIT, "Environment") == ["LG_WD=/run/selfcheckout"]  # lgpio's pipes
    assert service_values(LANE_UNIT, "RuntimeDirectory") == ["selfcheckout"]


def test_the_payments_unit_takes_everything_from_its_config_file() -> None:
    unit = ROOT / "systemd" / "selfcheckout-payments.service"
    (command,) = service_values(unit, "ExecStart")
    assert command.split()[1:] == ["payments", "run", "--config", "/etc/selfcheckout/payments.toml"]


def test_the_lane_unit_is_a_notify_service_with_a_watchdog() -> None:
    service = dict(
        line.split("=", 1)
        for line in LANE_UNIT.read_text().split("[Service]")[1].split("[Install]")[0].splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0 and service["Restart"] == "always"


# -- sd_notify from a running lane ---------------------------------------------------------------------------


@pytest.fixture
def lane_process(
    tmp_path: Path, notify_socket: NotifySocket, pcsc: Any
) -> Iterator[Callable[..., LaneProcess]]:
    processes: list[LaneProcess] = []

    def make(**kwargs: Any) -> LaneProcess:
        config = write_lane_files(tmp_path, panel={"port": free_port()})
        process = LaneProcess(config, notify_socket, tmp_path / "lane.log", **kwargs)
        processes.append(process)
        return process

    yield make
    for process in processes:
        process.close()


def test_gate_run_says_ready_status_and_pings_the_watchdog(
    lane_process: Callable[..., LaneProcess],
    notify_socket: NotifySocket,
    virtual_phone: Callable[..., VirtualCard],
    tmp_path: Path,
) -> None:
    lane = lane_process(watchdog_usec=1_000_000)  # systemd would kill it 1 s after a missed ping
    status = lane.start()
    assert status == "STATUS=idle: lane gate-01 ready"
    notify_socket.collect(1.5)
    pings = [t for t, line in notify_socket.messages if line == "WATCHDOG=1"]
    assert len(pings) >= 3, notify_socket.lines()
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 0.5  # at least twice per watchdog period, as sd_watchdog_enabled(3) asks

    shop = make_live_shop(None)
    card = shop.exit_card()
    with virtual_phone(card):
        assert card.wait(5), lane.log_tail()
    assert card.receipt is not None and card.receipt.doc.verdict == "pass"
    notify_socket.wait_for(lambda line: line == "STATUS=open: pass: gate open", 3, "the open status")
    statuses = [line for line in notify_socket.lines() if line.startswith("STATUS=")]
    assert statuses[:4] == [
        "STATUS=idle: lane gate-01 ready",
        "STATUS=reading: phone on the reader",
        "STATUS=deciding: presentation read",
        "STATUS=open: pass: gate open",
    ]
    assert lane.terminate() == 0
    notify_socket.collect(0.1)
    assert notify_socket.lines()[-1] == "STOPPING=1"


class StuckReader:
    """A reader whose wait_for_phone blocks on an Event while `stuck` is set, as a hung PC/SC call would."""

    def __init__(self) -> None:
        self.stuck = threading.Event()
        self.inside = threading.Event()
        self.free = threading.Event()

    def wait_for_phone(self, timeout_s: float) -> None:
        if self.stuck.is_set():
            self.inside.set()
            self.free.wait(10)
            return None
        time.sleep(timeout_s)
        return None


def test_a_lane_stuck_in_its_reader_stops_the_watchdog_pings_and_resumes_after(
    tmp_path: Path, mock_factory: MockFactory
) -> None:
    listener = NotifySocket(abstract=True)  # NOTIFY_SOCKET="@...": the abstract namespace
    reader = StuckReader()
    config = lane_config.load(write_lane_files(tmp_path))
    notifier = Notifier(listener.env(watchdog_usec=200_000))
    stop = threading.Event()
    try:
        with open_lane(
            config, reader=reader, pin_factory=mock_factory, notifier=notifier, forward=False
        ) as service:
            thread = threading.Thread(target=service.lane.run, args=(stop, 0.02), daemon=True)
            thread.start()
            listener.wait_for(lambda line: line == "READY=1", 3, "READY=1")
            listener.collect(0.3)
            assert listener.lines().count("WATCHDOG=1") >= 3

            reader.stuck.set()
            assert reader.inside.wait(2)
            listener.collect(0.05)  # a ping sent just before the loop went in
            stuck_from = len(listener.messages)
            listener.collect(0.6)  # three watchdog periods: systemd would have restarted the lane
            assert "WATCHDOG=1" not in listener.lines()[stuck_from:]
            assert service.lane.health()["last_turn_age_s"] >= 0.6

            reader.stuck.clear()
            reader.free.set()  # the call returns: the loop turns and pings again
            listener.wait_for(lambda line: line == "WATCHDOG=1", 1, "WATCHDOG=1 again", since=stuck_from)
            listener.collect(0.3)
            assert listener.lines()[stuck_from:].count("WATCHDOG=1") >= 2
            stop.set()
            thread.join(5)
            assert not thread.is_alive()
    finally:
        stop.set()
        reader.free.set()
        notifier.close()
        listener.close()
