"""`selfcheckout doctor`: on a lane ready to run every check passes; each problem is one plain sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from gpiozero.pins.mock import MockFactory

from gate import config as lane_config
from gate.clock import ClockStatus
from gate.doctor import Check, Probes, doctor
from gate.protocol.keys import SigningKey, TrustedKeys, write_public_key, write_secret_key
from gate.store import GateStore
from gate.sync import sync_feed
from payments.local import LocalStack
from tests.fixtures.lane import free_port
from tests.fixtures.standins import Pcscd

SYNCED = ClockStatus(True, 0.004, "synchronised (kernel maximum error 4 ms)")
UNSYNCED = ClockStatus(False, 16.0, "no time service has synchronised the clock (kernel maximum error 16 s)")


def _lane(folder: Path, stack: LocalStack, **sections: dict[str, object]) -> Path:
    """A lane config whose gate is enrolled at `stack`, with a database and a loop:// scanner."""
    gate_key = SigningKey.generate()
    write_secret_key(folder / "keys" / "gate.key", gate_key)
    write_public_key(folder / "keys" / "ps.pub", stack.key.public_key)
    stack.admin("POST", "/v1/gates", json={"gate": "gate-01", "public_key": gate_key.public_key.hex()})
    base: dict[str, dict[str, object]] = {
        "lane": {"database": "gate.db"},
        "payments": {"url": stack.url, "timeout_s": 5.0},
        "scanner": {"port_url": "loop://"},
        "panel": {"port": free_port()},  # no lane runs there: the doctor finds none
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    path = folder / "lane.toml"
    path.write_text(lane_config.example_with(**base))
    with GateStore(folder / "gate.db") as store, requests.Session() as session:
        trusted = TrustedKeys([stack.key.public_key])
        sync_feed(store, url=stack.url, trusted=trusted, store_id=stack.store_id, session=session)
    return path


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.fixture
def probes() -> Probes:
    return Probes(pin_factory=MockFactory(), clock_status=lambda: SYNCED)


def test_a_lane_ready_to_run_passes_every_check(
    tmp_path: Path, payments_stack: LocalStack, pcsc: Pcscd, probes: Probes
) -> None:
    checks = doctor(_lane(tmp_path, payments_stack), probes)
    assert [c.name for c in checks] == [
        "config", "keys", "reader", "scanner", "gpio", "database", "disk", "clock", "payments", "feed",
        "lane", "peers",
    ]  # fmt: skip
    assert [c for c in checks if not c.ok] == []
    found = _by_name(checks)
    assert found["reader"].sentence == "The NFC reader 'Virtual PCD 00 00' is present."
    assert found["payments"].sentence.startswith("The payment system answers and gate gate-01 is enrolled")


def test_each_problem_is_its_own_plain_sentence(
    tmp_path: Path, payments_stack: LocalStack, pcsc: Pcscd, probes: Probes
) -> None:
    path = _lane(
        tmp_path,
        payments_stack,
        reader={"name_pattern": "ACR1252"},
        scanner={"port_url": str(tmp_path / "ttyACM9")},
        panel={"secret_key_file": "keys/panel.key"},
    )
    (tmp_path / "keys" / "panel.key").write_text("short\n")
    (tmp_path / "keys" / "panel.key").chmod(0o600)
    payments_stack.admin("DELETE", "/v1/gates/gate-01")
    (tmp_path / "gate.db").unlink()
    probes.clock_status = lambda: UNSYNCED
    found = _by_name(doctor(path, probes))
    assert {name for name, c in found.items() if not c.ok} == {
        "keys", "reader", "scanner", "database", "clock", "payments", "feed",
    }  # fmt: skip
    assert found["keys"].sentence == (
        f"'panel.secret_key_file': {tmp_path}/keys/panel.key: the panel's secret key holds 5 bytes;"
        " at least 16"
        " random bytes expected (python3 -c 'import secrets; print(secrets.token_hex(32))')"
    )
    assert found["reader"].sentence == (
        "No NFC reader matches reader.name_pattern 'ACR1252': plug it in, or fix the pattern."
    )
    assert "Virtual PCD 00 00" in found["reader"].detail
    assert found["scanner"].sentence == f"The scanner {tmp_path}/ttyACM9 is not plugged in (no such device)."
    assert found["database"].sentence == (
        f"The database {tmp_path}/gate.db is missing: run `selfcheckout gate init`, or restore a backup."
    )
    assert found["clock"].detail == UNSYNCED.detail
    assert found["payments"].sentence == (
        "The payment system answers, but gate gate-01 is not enrolled (or was revoked)."
    )


def test_an_unreachable_payment_system_and_a_bad_config(
    tmp_path: Path, probes: Probes, lane_config_dir: Path
) -> None:
    path = lane_config_dir / "lane.toml"
    found = _by_name(doctor(path, probes))
    assert not found["payments"].ok
    assert found["payments"].sentence.startswith("The payment system is not reachable: http://127.0.0.1:8600")
    path.write_text(path.read_text().replace("beam_pin = 22", "beam_pin = 99").replace('"EUR"', '"euro"'))
    (only,) = doctor(path, probes)
    assert (only.name, only.ok) == ("config", False)
    assert "gpio.beam_pin" in only.detail and "lane.currency" in only.sentence


def test_the_command_prints_a_table_and_fails_on_a_problem(
    tmp_path: Path, payments_stack: LocalStack, pcsc: Pcscd
) -> None:
    path = _lane(tmp_path, payments_stack)
    (tmp_path / "gate.db").write_bytes(b"")  # a database that vanished into an empty file
    done = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "doctor", "--config", str(path), "--mock-gpio"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if not line.startswith(" ")}
    assert rows["config"] == rows["keys"] == rows["reader"] == rows["gpio"] == rows["payments"] == "ok"
    assert rows["database"] == "PROBLEM"
    assert (
        f"database  PROBLEM  The database {tmp_path}/gate.db is empty (0 bytes): restore a backup, or run"
        " `selfcheckout gate init`." in done.stdout
    )
    assert "problem(s): `gate run` would not run as it should." in done.stderr
