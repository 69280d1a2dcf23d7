"""The forwarder as its own process, killed with SIGKILL in the middle of a request, then started again:
every charge is taken exactly once, because the outbox still holds it and the PS is idempotent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gate.protocol.keys import write_secret_key
from payments.local import LocalStack
from tests.fixtures.payments import (
    FaultProxy,
    GateSide,
    assert_reconciled,
    engine_fixture,
    shoppers_out,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]

ps_engine = engine_fixture()  # every test here on SQLite and on PostgreSQL


def start_forwarder(gate: GateSide, url: str, log: Path) -> subprocess.Popen[bytes]:
    key_file = log.parent / "gate.key"
    if not key_file.exists():
        write_secret_key(key_file, gate.key)
    command = [
        sys.executable, "-m", "gate.forwarder_cli",
        "--database", str(gate.database),
        "--url", url,
        "--trust", str(gate.ps_public_key_file),
        "--store", gate.stack.store_id,
        "--gate", gate.gate_id, "--gate-key", str(key_file),
        "--base-ms", "20", "--cap-ms", "200", "--timeout", "10", "--sync-interval", "0",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.parametrize("moment", ["after the PS committed", "before the PS saw it"])
def test_forwarder_killed_mid_request_then_restarted_charges_exactly_once(
    payments_stack: LocalStack, gate_side: GateSide, fault_proxy: FaultProxy, tmp_path: Path, moment: str
) -> None:
    shoppers_out(payments_stack, gate_side, 3, top_up=0)
    log = tmp_path / "forwarder.log"
    committed = moment == "after the PS committed"
    # the PS answers and the answer never reaches the forwarder / the request never reaches the PS
    fault_proxy.plan("hold_answer" if committed else "hold_request")
    process = start_forwarder(gate_side, fault_proxy.url, log)
    try:
        wait_until(fault_proxy.held.is_set, timeout_s=20, what="a request in flight")
        assert payments_stack.reconcile()["charges"]["count"] == (3 if committed else 0)  # one batch
        assert gate_side.outbox_states()["pending"] == 3  # the forwarder has not recorded any answer
        kill(process)
    finally:
        kill(process)
    fault_proxy.release.set()
    process = start_forwarder(gate_side, fault_proxy.url, log)
    try:
        wait_until(lambda: gate_side.outbox_states()["settled"] == 3, timeout_s=20, what="all settled")
    finally:
        process.terminate()
        process.wait(timeout=10)
    bank = payments_stack.bank.summary()
    assert bank["capture_count"] == 3 and bank["replays"] == 0
    report = assert_reconciled(payments_stack, gate_side, settled=3)
    assert report["charges"]["count"] == 3
