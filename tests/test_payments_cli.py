"""`selfcheckout payments ...`: every command has help; keygen; the administration commands on a database;
and `run` + `bank` as real processes answering HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from gate.protocol.documents import HoldVoucher, open_signed
from gate.protocol.keys import (
    SigningKey,
    read_public_key,
    read_secret_key,
    write_public_key,
)
from payments.cli import group
from payments.config import example_with
from payments.context import PaymentsConfig
from payments.errors import PaymentsError
from payments.local import SimShopper
from payments.system import PaymentSystem
from selfcheckout.cli import main
from tests.fixtures.payments import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", sorted(group.commands))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, ["payments", command, "--help"])
    assert result.exit_code == 0, result.output
    assert group.commands[command].help


def test_keygen_writes_a_private_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["payments", "keygen", "--key", str(tmp_path / "ps.key")])
    assert result.exit_code == 0, result.output
    key = read_secret_key(tmp_path / "ps.key")
    assert read_public_key(tmp_path / "ps.pub") == key.public_key
    assert stat.S_IMODE((tmp_path / "ps.key").stat().st_mode) == 0o600
    again = runner.invoke(main, ["payments", "keygen", "--key", str(tmp_path / "ps.key")])
    assert again.exit_code == 1 and "--force" in again.output


def test_administration_commands_on_the_database(tmp_path: Path) -> None:
    db = tmp_path / "ps.db"
    PaymentSystem(PaymentsConfig(database=db, store_id="store-0001", currency="EUR")).close()
    gate_key = SigningKey.generate()
    write_public_key(tmp_path / "gate.pub", gate_key.public_key)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["payments", *args])
        assert result.exit_code == 0, result.output
        return result.output

    gate = json.loads(
        run(
            "enrol-gate",
            "--db",
            str(db),
            "--gate",
            "gate-01",
            "--public-key-file",
            str(tmp_path / "gate.pub"),
        )
    )
    assert gate["key_id"] == gate_key.key_id and gate["active"]
    shopper = SimShopper("alice")
    run("enrol-shopper", "--db", str(db), "--shopper", "alice", "--public-key", shopper.key.public_key.hex())
    assert (
        json.loads(
            run("top-up", "--db", str(db), "--shopper", "alice", "--amount", "700", "--reference", "r1")
        )["balance"]
        == 700
    )
    assert (
        json.loads(
            run("price", "--db", str(db), "--code", "4006381333931", "--name", "Pen", "--price", "129")
        )["version"]
        == 1
    )
    assert "balanced: True" in run("reconcile", "--db", str(db))
    report = json.loads(run("reconcile", "--db", str(db), "--json"))
    assert report["stored_value"] == {"top_ups": 700, "balances": 700, "reserved": 0}
    bad = runner.invoke(
        main,
        ["payments", "top-up", "--db", str(db), "--shopper", "nobody", "--amount", "1", "--reference", "x"],
    )
    assert bad.exit_code == 1 and "no shopper nobody" in bad.output
    missing = runner.invoke(main, ["payments", "reconcile", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no such database" in missing.output


def test_a_database_belongs_to_one_store(tmp_path: Path) -> None:
    db = tmp_path / "ps.db"
    PaymentSystem(PaymentsConfig(database=db, store_id="store-0001", currency="EUR")).close()
    with pytest.raises(Exception, match="store-0001"):
        PaymentSystem(PaymentsConfig(database=db, store_id="store-0002", currency="EUR"))


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the server exited with {process.returncode}"
        try:
            with requests.Session() as session:
                session.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer in {timeout_s} s")


def test_run_and_bank_serve_http(tmp_path: Path) -> None:
    bank_port, ps_port = free_port(), free_port()
    config = tmp_path / "payments.toml"
    config.write_text(
        example_with(
            bank={"url": f"http://127.0.0.1:{bank_port}"},
            listen={"port": ps_port},
            timings={"sweep_interval_s": 0.2},
        )
    )
    assert CliRunner().invoke(main, ["payments", "init", "--config", str(config)]).exit_code == 0
    key = read_secret_key(tmp_path / "keys" / "ps.key")
    token = (tmp_path / "keys" / "ps-admin.token").read_text().strip()
    runner_env = {**os.environ}
    cli = [sys.executable, "-m", "selfcheckout", "payments"]
    log = (tmp_path / "servers.log").open("wb")
    bank = subprocess.Popen(
        [*cli, "bank", "--port", str(bank_port)], cwd=ROOT, stdout=log, stderr=log, env=runner_env
    )
    ps = subprocess.Popen(
        [*cli, "run", "--config", str(config)], cwd=ROOT, stdout=log, stderr=log, env=runner_env
    )
    try:
        _wait_for(f"http://127.0.0.1:{bank_port}/admin/faults", bank)
        _wait_for(f"http://127.0.0.1:{ps_port}/v1/health", ps)
        base = f"http://127.0.0.1:{ps_port}"
        shopper = SimShopper("alice")
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            enrol = {"shopper": "alice", "public_key": shopper.key.public_key.hex(), "bank_account": "DE-1"}
            assert http.post(base + "/v1/shoppers", json=enrol, timeout=5).status_code == 201
            raw = shopper.hold_request("store-0001", "EUR", 1200, int(time.time()))
            answer = http.post(
                base + "/v1/holds", json={"request": base64.b64encode(raw).decode()}, timeout=5
            )
            assert answer.status_code == 201, answer.text
            voucher = open_signed(base64.b64decode(answer.json()["voucher"]), HoldVoucher).verify_with(
                key.public_key
            )
            assert voucher.bank == 1200
            held = requests.get(f"http://127.0.0.1:{bank_port}/holds/{voucher.hold.hex()}", timeout=5).json()
            assert held["amount"] == 1200
            assert http.get(base + "/v1/reconciliation", timeout=5).json()["balanced"] is True
    finally:
        for process in (ps, bank):
            process.terminate()
            process.wait(timeout=10)
        log.close()


def test_init_on_postgresql_makes_the_schema_and_a_second_init_keeps_it(
    tmp_path: Path, postgres_cluster
) -> None:
    url = postgres_cluster.create_database("cli_init")
    config = tmp_path / "payments.toml"
    config.write_text(example_with(store={"database_url": url}))
    first = CliRunner().invoke(main, ["payments", "init", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert f"port={postgres_cluster.port} for store store-0001 in EUR" in first.output
    assert "postgres@" not in first.output
    second = CliRunner().invoke(main, ["payments", "init", "--config", str(config)])
    assert second.exit_code == 0 and "kept" in second.output
    with pytest.raises(PaymentsError, match="belongs to store_id 'store-0001', not 'store-0002'"):
        PaymentSystem(PaymentsConfig(database=url, store_id="store-0002", currency="EUR"))
    assert not (tmp_path / "payments.db").exists()  # the SQLite path is not used when a URL is given


def test_the_settlement_section_reaches_the_served_payment_system(tmp_path: Path) -> None:
    from payments import config as ps_config
    from payments.cli import _settings

    config = tmp_path / "payments.toml"
    config.write_text(
        example_with(settlement={"workers": 0, "batch": 8, "lease_s": 5, "bank_concurrency": 3})
    )
    assert CliRunner().invoke(main, ["payments", "init", "--config", str(config)]).exit_code == 0
    settings = _settings(ps_config.load(config), with_key=True)
    assert (settings.settle_workers, settings.settle_batch, settings.settle_lease_s) == (0, 8, 5)
    assert settings.bank_concurrency == 3
