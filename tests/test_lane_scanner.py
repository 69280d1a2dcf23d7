"""The lane's scanner in `selfcheckout gate run` and `selfcheckout gate scanner-test`, as processes, with a
socat pty pair as the serial scanner: opened from the config's [scanner], its health on the panel's
/api/health, and garbage, an unplug and a replug as clear lane events, never a crash."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate.barcodes import variable_code
from tests.fixtures.lane import (
    ROOT,
    SELFCHECKOUT,
    LaneProcess,
    NotifySocket,
    free_port,
    wait_until,
    write_lane_files,
)
from tests.fixtures.standins import PtyPair
from tests.fixtures.store import PEN, WEIGHT


def lane_events(config: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [
            str(SELFCHECKOUT),
            "gate",
            "events",
            "--config",
            str(config),
            "--lane-events",
            "--json",
            "--limit",
            "200",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [row for row in map(json.loads, out.splitlines()) if row["type"] == "scanner"][::-1]


@pytest.fixture
def scanner_lane(
    tmp_path: Path, notify_socket: NotifySocket, pty_pair: PtyPair, pcsc: Any
) -> Iterator[tuple[LaneProcess, Path]]:
    config = write_lane_files(
        tmp_path,
        panel={"port": free_port()},
        scanner={"port_url": str(pty_pair.device), "aim_prefix": True, "reconnect_max_s": 0.2},
    )
    lane = LaneProcess(config, notify_socket, tmp_path / "lane.log")
    yield lane, config
    lane.close()


def test_gate_run_opens_the_scanner_and_reports_garbage_an_unplug_and_a_replug(
    scanner_lane: tuple[LaneProcess, Path], pty_pair: PtyPair
) -> None:
    lane, config = scanner_lane
    lane.start()
    wait_until(lambda: lane.health()["scanner_connected"], 5, "the scanner open in gate run")

    pty_pair.write(b"\xff\xfe\x00torn\r]E0" + PEN.encode() + b"\r" + b"]E0" + b"1" * 80 + b"\r")
    wait_until(lambda: lane.health()["scanner_scans"] == 1, 5, "the scan read")
    pty_pair.kill()
    wait_until(lambda: lane.health()["scanner_connected"] is False, 5, "the unplug seen")
    pty_pair.start()
    wait_until(lambda: lane.health()["scanner_reconnects"] == 1, 5, "the scanner back")
    assert lane.proc is not None and lane.proc.poll() is None, lane.log_tail()

    def kinds() -> list[str | None]:
        return [e["data"].get("kind") for e in lane_events(config)]

    wait_until(lambda: "reconnected" in kinds(), 5, "the replug on record")
    events = [e for e in lane_events(config) if e["data"].get("kind") != "open-failed"]
    assert [e["data"].get("kind") for e in events] == [
        "connected",
        "invalid-bytes",
        None,  # the good scan, with no audit to count it in
        "too-long",
        "port-lost",
        "reconnected",
    ]
    assert kinds().count("open-failed") <= 1  # once per outage, not per retry
    assert events[2]["detail"] == f"scan {PEN} with no audit in progress: ignored"
    assert "byte 0xFF" in events[1]["detail"]
    assert lane.terminate() == 0


def test_scanner_test_prints_each_scan_decoded_and_what_the_port_does(
    tmp_path: Path, pty_pair: PtyPair
) -> None:
    config = write_lane_files(tmp_path, scanner={"port_url": str(pty_pair.device), "aim_prefix": True})
    command = [str(SELFCHECKOUT), "gate", "scanner-test", "--config", str(config), "--count", "3"]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == f"scanner connected: {pty_pair.device} open\n"
        gouda = variable_code(WEIGHT, "00231", 412)
        pty_pair.write(f"]E0{PEN}\r\xff\r]E0{gouda}\r]E04006381333932\r".encode("latin-1"))
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        f"{PEN}  EAN-13  list code {PEN}  Stabilo pen  1.29 EUR",
        "scanner invalid-bytes: byte 0xFF at 0 in b'\\xff'",
        f"{gouda}  EAN-13  list code {gouda}  weight code: item 00231, 412 g  Gouda  15.90 EUR/kg"
        " -> 6.55 EUR",
        "4006381333932  EAN-13  not a product code: scan 4006381333932: check digit 2 should be 1",
    ]
    assert err.splitlines()[-1] == "3 scan(s)"


def test_scanner_test_without_a_scanner_section_is_one_line(tmp_path: Path) -> None:
    config = write_lane_files(tmp_path)
    result = subprocess.run(
        [str(SELFCHECKOUT), "gate", "scanner-test", "--config", str(config), "--seconds", "1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == f"Error: {config}: no [scanner] section: this lane has no scanner to try\n"
