"""Every command that cannot do its job says why in one line and exits 1: never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gate.store.files import init_database
from tests.fixtures.disks import SmallDisk


def _selfcheckout(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}from selfcheckout.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_keygen_into_a_read_only_folder(small_disk: SmallDisk) -> None:
    small_disk.read_only()
    key = small_disk.path / "gate.key"
    assert _one_line(_selfcheckout("gate", "keygen", str(key))) == (
        f"Error: {key}: cannot write secret key: Read-only file system"
    )


def test_keygen_onto_a_full_disk(small_disk: SmallDisk) -> None:
    small_disk.fill()
    key = small_disk.path / "gate.key"
    assert _one_line(_selfcheckout("gate", "keygen", str(key))) == (
        f"Error: {key}: cannot write secret key: No space left on device"
    )


def test_demo_state_of_a_previous_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "phones").mkdir(parents=True)
    assert _one_line(_selfcheckout("demo", "--state", str(state))) == (
        f"Error: {state}: holds a previous demo run; the scripted demo starts from a new or empty folder"
        " (remove it, or pass another --state)"
    )


def test_gate_run_without_pyscard(lane_config_dir: Path) -> None:
    """A plain `make venv` has no pyscard: `gate run` names the extra to install."""
    config = lane_config_dir / "lane.toml"
    init_database(lane_config_dir / "gate.db")
    done = _selfcheckout(
        "gate",
        "run",
        "--config",
        str(config),
        "--mock-gpio",
        "--no-panel",
        prelude="import sys; sys.modules['smartcard'] = None; ",  # as if the package were not installed
    )
    assert _one_line(done).startswith(
        "Error: pyscard is not installed, so the lane cannot talk to the NFC reader: install the nfc extra"
    )
