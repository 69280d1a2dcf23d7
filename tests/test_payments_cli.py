"""`selfcheckout payments ...`: every command has help; keygen; the administration commands on a SQLite
file and on a PostgreSQL database (a throwaway server), named by --db or by --config, and what they refuse;
`run` + `bank` as real processes answering HTTP; and both stopped by SIGTERM (systemctl stop) or Ctrl-C,
a stopped `run` answering what was in flight and leaving no charge claimed, so a restart settles the rest
at once.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from click.testing import CliRunner, Result

from gate.protocol.documents import DeductionNotice, HoldVoucher, open_signed
from gate.protocol.keys import (
    SigningKey,
    read_public_key,
    read_secret_key,
    write_public_key,
)
from payments.bank import HttpBank
from payments.cli import group
from payments.config import example_with
from payments.context import PaymentsConfig
from payments.db.cluster import PostgresCluster
from payments.errors import PaymentsError
from payments.local import LocalBank, SimGate, SimShopper, make_exit
from payments.system import PaymentSystem
from selfcheckout.cli import main
from tests.fixtures.payments import engine_fixture, free_port

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


# -- the administration commands, on SQLite and on a chain's PostgreSQL ------------------------------------

ps_engine = engine_fixture()  # every test here that takes ps_database runs on both databases

_ADMIN = {  # each administration command with the options it needs besides the database
    "enrol-gate": ["--gate", "gate-01", "--public-key-file", "gate.pub"],
    "enrol-shopper": ["--shopper", "alice", "--public-key", "00" * 32],
    "top-up": ["--shopper", "alice", "--amount", "1", "--reference", "r1"],
    "price": ["--code", "4006381333931", "--name", "Pen", "--price", "129"],
    "reconcile": [],
    "sweep": ["--key", "keys/ps.key", "--bank-url", "http://127.0.0.1:9"],
}


def _args(command: str, folder: Path) -> list[str]:
    """The command's options besides the database, its files in `folder` (where `payments init` ran)."""
    return [str(folder / a) if a in ("gate.pub", "keys/ps.key") else a for a in _ADMIN[command]]


def _store(database: str) -> dict[str, str]:
    """The [store] keys of a config naming `database` (a SQLite file or a postgresql:// URL)."""
    return {"database_url": database} if database.startswith("postgresql://") else {"database": database}


def _payments(*args: str) -> Result:
    return CliRunner().invoke(main, ["payments", *args])


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not a traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("given", ["--db", "--config"])
def test_administration_commands_on_either_database(tmp_path: Path, ps_database: str, given: str) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(example_with(store=_store(ps_database)))
    made = _payments("init", "--config", str(config))
    assert made.exit_code == 0, made.output
    where = [given, ps_database if given == "--db" else str(config)]
    gate_key = SigningKey.generate()
    write_public_key(tmp_path / "gate.pub", gate_key.public_key)
    shopper = SimShopper("alice")

    def run(command: str, *args: str) -> str:
        result = _payments(command, *where, *args)
        assert result.exit_code == 0, result.output
        return result.output

    gate = json.loads(run("enrol-gate", "--gate", "gate-01", "--public-key-file", str(tmp_path / "gate.pub")))
    assert gate["key_id"] == gate_key.key_id and gate["active"]
    enrolled = json.loads(
        run("enrol-shopper", "--shopper", "alice", "--public-key", shopper.key.public_key.hex())
    )
    assert enrolled["balance"] == 0
    assert (
        json.loads(run("top-up", "--shopper", "alice", "--amount", "700", "--reference", "r1"))["balance"]
        == 700
    )
    again = json.loads(run("top-up", "--shopper", "alice", "--amount", "700", "--reference", "r1"))
    assert again["balance"] == 700  # the same till receipt twice is one top-up
    assert (
        json.loads(run("price", "--code", "4006381333931", "--name", "Pen", "--price", "129"))["version"] == 1
    )
    assert "balanced: True" in run("reconcile")
    report = json.loads(run("reconcile", "--json"))
    assert report["balanced"] and report["stored_value"] == {"top_ups": 700, "balances": 700, "reserved": 0}
    swept = json.loads(
        run("sweep", "--key", str(tmp_path / "keys" / "ps.key"), "--bank-url", "http://127.0.0.1:9")
    )
    assert swept["errors"] == 0
    bad = _payments("top-up", *where, "--shopper", "nobody", "--amount", "1", "--reference", "x")
    assert "no shopper nobody" in _one_line_error(bad)

    # What the server the maintainer runs next finds in its database: the gate, the shopper's money.
    system = PaymentSystem(PaymentsConfig(database=ps_database, store_id="store-0001", currency="EUR"))
    try:
        assert [(g["gate"], g["key_id"], g["active"]) for g in system.gates()] == [
            ("gate-01", gate_key.key_id, True)
        ]
        assert system.shopper("alice")["balance"] == 700
    finally:
        system.close()
    if ps_database.startswith("postgresql://"):
        assert not (tmp_path / "payments.db").exists()  # the config's SQLite path is not the database


def _queue_a_charge(database: str, key: SigningKey, bank_url: str) -> str:
    """A charge accepted and left in the settlement queue (no workers), its bank part still to capture:
    what a sweep finishes. Its id, in hex."""
    config = PaymentsConfig(
        database=database, store_id="store-0001", currency="EUR", key=key, bank=HttpBank(bank_url)
    )
    system = PaymentSystem(config)
    try:
        shopper, gate = SimShopper("alice"), SimGate("gate-01", "store-0001")
        system.enrol_gate(gate.gate_id, gate.key.public_key)
        system.enrol_shopper(shopper.name, shopper.key.public_key, "DE-0001")
        status, answer = system.place_hold(shopper.hold_request("store-0001", "EUR", 3000, int(time.time())))
        assert status == 201, answer
        voucher = base64.b64decode(json.loads(answer)["voucher"])
        charge = make_exit(shopper, gate, voucher, [("4006381333931", 3, 129)], now=int(time.time()))
        (received,) = system.receive_charges([charge.encode()])
        assert received.status == "accepted", received.to_json()
    finally:
        system.close()
    return charge.doc.charge.hex()


def test_sweep_with_config_takes_the_key_and_the_bank_from_it(tmp_path: Path, ps_database: str) -> None:
    bank = LocalBank()
    try:
        config = tmp_path / "payments.toml"
        config.write_text(example_with(store=_store(ps_database), bank={"url": bank.url}))
        assert _payments("init", "--config", str(config)).exit_code == 0
        key = read_secret_key(tmp_path / "keys" / "ps.key")
        charge = _queue_a_charge(ps_database, key, bank.url)

        elsewhere = f"http://127.0.0.1:{free_port()}"  # --bank-url is used instead of the config's
        missed = _payments("sweep", "--config", str(config), "--bank-url", elsewhere)
        assert missed.exit_code == 0, missed.output
        assert json.loads(missed.output)["charges"] == 0 and bank.summary()["capture_count"] == 0

        swept = _payments("sweep", "--config", str(config))  # no --key, no --bank-url
        assert swept.exit_code == 0, swept.output
        assert json.loads(swept.output) == {
            "charges": 1,
            "errors": 0,
            "expired": 0,
            "releases": 0,
            "stuck": 0,
        }
        captured = bank.summary()
        assert (captured["capture_count"], captured["captured"]) == (1, 387)
    finally:
        bank.close()
    system = PaymentSystem(PaymentsConfig(database=ps_database, store_id="store-0001", currency="EUR"))
    try:
        answer = system.notice(charge, authorization="", admin=True)
    finally:
        system.close()
    notice = open_signed(base64.b64decode(answer["notice"]), DeductionNotice).verify_with(key.public_key)
    assert (notice.total, notice.bank) == (387, 387)  # signed with the key the config names
    assert "balanced: True" in _payments("reconcile", "--config", str(config)).output


def test_sweep_with_db_says_it_needs_the_key_and_the_bank(tmp_path: Path) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(example_with())
    assert _payments("init", "--config", str(config)).exit_code == 0
    database = str(tmp_path / "payments.db")
    neither = _payments("sweep", "--db", database)
    assert neither.exit_code == 2, neither.output
    assert neither.output.splitlines()[-1] == (
        "Error: --db needs --key and --bank-url (or --config payments.toml, which names the key and the bank)"
    )
    no_bank = _payments("sweep", "--db", database, "--key", str(tmp_path / "keys" / "ps.key"))
    assert no_bank.exit_code == 2 and no_bank.output.splitlines()[-1].startswith(
        "Error: --db needs --bank-url ("
    )
    help_text = _payments("sweep", "--help").output
    assert "With --config: instead of its store.key_file" in " ".join(help_text.split())


@pytest.mark.parametrize("command", sorted(_ADMIN))
def test_the_database_is_named_by_exactly_one_of_db_and_config(tmp_path: Path, command: str) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(example_with())
    assert _payments("init", "--config", str(config)).exit_code == 0
    write_public_key(tmp_path / "gate.pub", SigningKey.generate().public_key)
    args = _args(command, tmp_path)
    neither = _payments(command, *args)
    assert neither.exit_code == 2 and "name the database: --db PATH_OR_URL, or --config" in neither.output
    both = _payments(command, "--db", str(tmp_path / "payments.db"), "--config", str(config), *args)
    assert both.exit_code == 2 and "--db and --config both given" in both.output
    help_text = _payments(command, "--help").output
    assert "--db PATH_OR_URL" in help_text and "postgresql://" in help_text and "--config FILE" in help_text


def test_a_missing_sqlite_file_is_refused_as_before_and_not_made(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    line = _one_line_error(_payments("reconcile", "--db", str(missing)))
    assert line == f"Error: {missing}: no such database (start `payments run` once to create it)"
    config = tmp_path / "payments.toml"
    config.write_text(example_with(store={"database": str(missing)}))
    assert _one_line_error(_payments("reconcile", "--config", str(config))) == line
    assert not missing.exists()


def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://ps:s3cret-pw@127.0.0.1:{free_port()}/store_0001"
    line = _one_line_error(_payments("enrol-gate", "--db", url, "--gate", "g", "--public-key-file", "x"))
    assert line.startswith("Error: cannot connect to PostgreSQL at postgresql://ps:***@127.0.0.1:"), line
    assert "s3cret-pw" not in line
    config = tmp_path / "payments.toml"
    config.write_text(example_with(store={"database_url": url}))
    assert _one_line_error(_payments("reconcile", "--config", str(config))) == line


def test_a_postgresql_database_that_does_not_exist_is_one_line_without_the_password(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.url("no_such_store").replace("postgres@", "postgres:s3cret-pw@")
    line = _one_line_error(_payments("reconcile", "--db", url))
    assert "cannot connect to PostgreSQL at postgresql://postgres:***@" in line and "no_such_store" in line
    assert "s3cret-pw" not in line


@pytest.mark.parametrize("given", ["--db", "--config"])
def test_an_empty_postgresql_database_is_refused_and_left_empty(
    tmp_path: Path, postgres_cluster: PostgresCluster, given: str
) -> None:
    url = postgres_cluster.create_database(f"empty_{given[2:]}")
    config = tmp_path / "payments.toml"
    config.write_text(example_with(store={"database_url": url}))
    where = [given, url if given == "--db" else str(config)]
    for command in ("enrol-gate", "top-up", "reconcile"):
        line = _one_line_error(_payments(command, *where, *_args(command, tmp_path)))
        assert line == (
            f"Error: {url}: not a payment-system database (it holds no store id and currency); "
            "run `selfcheckout payments init --config payments.toml` or `payments run` on it first"
        )
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert tables == []  # no schema was made in it
    made = _payments("init", "--config", str(config))  # what the sentence says to do
    assert made.exit_code == 0, made.output
    assert "balanced: True" in _payments("reconcile", *where).output


def test_a_sqlite_file_that_is_not_a_payment_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(b"")
    line = _one_line_error(_payments("reconcile", "--db", str(other)))
    assert line.startswith(f"Error: {other}: not a payment-system database") and "payments init" in line


def test_a_malformed_config_is_the_line_run_gives(tmp_path: Path) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(example_with(store={"currency": "euro"}))
    line = _one_line_error(_payments("run", "--config", str(config)))
    assert "store.currency" in line
    for command in sorted(_ADMIN):
        assert _one_line_error(_payments(command, "--config", str(config), *_args(command, tmp_path))) == line


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


# -- stopping `run` and `bank` with SIGTERM (systemctl stop) or Ctrl-C -----------------------------------

_CLI = [sys.executable, "-m", "selfcheckout", "payments"]


def _serve(args: list[str], out: Path) -> subprocess.Popen[bytes]:
    """A real `selfcheckout payments ...` server; its stdout into `out`, its stderr beside it."""
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        return subprocess.Popen([*_CLI, *args], cwd=ROOT, stdout=stdout, stderr=stderr)


def _stop(
    process: subprocess.Popen[bytes], signum: int, out: Path, timeout_s: float = 15
) -> tuple[float, str]:
    """Send `signum`; the process must exit 0 within `timeout_s`. How long it took, and its last line."""
    started = time.monotonic()
    process.send_signal(signum)
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"still running {timeout_s} s after {signal.Signals(signum).name}") from None
    took = time.monotonic() - started
    text = out.read_text()
    assert code == 0, (code, text, out.with_suffix(".err").read_text())
    return took, text.splitlines()[-1]


def _poll(what: str, probe, timeout_s: float = 15):
    """`probe()` until it answers something true, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def test_sigterm_stops_run_after_its_batch_and_a_restart_settles_the_rest_at_once(
    tmp_path: Path, ps_database: str
) -> None:
    bank_port, ps_port = free_port(), free_port()
    bank_url, base = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{ps_port}"
    config = tmp_path / "payments.toml"
    config.write_text(
        example_with(
            store=_store(ps_database),
            bank={"url": bank_url},
            listen={"port": ps_port},
            timings={"sweep_interval_s": 0},  # only the settlement workers settle
            settlement={"workers": 1, "batch": 4, "lease_s": 60, "bank_concurrency": 8},
        )
    )
    assert _payments("init", "--config", str(config)).exit_code == 0
    token = (tmp_path / "keys" / "ps-admin.token").read_text().strip()
    run_args = ["run", "--config", str(config)]
    bank = _serve(["bank", "--port", str(bank_port)], tmp_path / "bank.out")
    ps = _serve(run_args, tmp_path / "ps-1.out")
    restarted: subprocess.Popen[bytes] | None = None
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    try:
        _wait_for(bank_url + "/admin/faults", bank)
        _wait_for(base + "/v1/health", ps)
        gate = SimGate("gate-01", "store-0001")
        enrolled = http.post(
            base + "/v1/gates",
            json={"gate": gate.gate_id, "public_key": gate.key.public_key.hex()},
            timeout=5,
        )
        assert enrolled.status_code == 201, enrolled.text
        shoppers = [SimShopper(f"shopper-{i:02d}") for i in range(13)]
        vouchers = []
        for shopper in shoppers:
            body = {
                "shopper": shopper.name,
                "public_key": shopper.key.public_key.hex(),
                "bank_account": "DE-1",
            }
            assert http.post(base + "/v1/shoppers", json=body, timeout=5).status_code == 201
        for shopper in shoppers[:12]:
            raw = shopper.hold_request("store-0001", "EUR", 3000, int(time.time()))
            held = http.post(base + "/v1/holds", json={"request": base64.b64encode(raw).decode()}, timeout=5)
            assert held.status_code == 201, held.text
            vouchers.append(base64.b64decode(held.json()["voucher"]))

        # The bank now takes 1.5 s a call: settlement claims 4 charges and waits for the bank with them.
        assert requests.post(bank_url + "/admin/faults", json={"latency_ms": 1500}, timeout=5).ok
        charges = [
            make_exit(shopper, gate, voucher, [("4006381333931", 1, 129)], now=int(time.time())).encode()
            for shopper, voucher in zip(shoppers, vouchers, strict=False)
        ]
        sent = http.post(
            base + "/v1/charges",
            json={"charges": [base64.b64encode(c).decode() for c in charges]},
            timeout=10,
        )
        assert [r["status"] for r in sent.json()["results"]] == ["accepted"] * 12, sent.text
        # A hold asked for meanwhile: its request is in flight, waiting for the bank, when SIGTERM comes.
        late = shoppers[12]
        in_flight: list[requests.Response | requests.RequestException] = []
        raw = late.hold_request("store-0001", "EUR", 3000, int(time.time()))

        def ask() -> None:
            try:
                body = {"request": base64.b64encode(raw).decode()}
                in_flight.append(requests.post(base + "/v1/holds", json=body, timeout=20))
            except requests.RequestException as exc:
                in_flight.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()

        def claimed_and_placing() -> set[str]:
            report = http.get(base + "/v1/reconciliation", timeout=5).json()
            claimed = {c["charge"] for c in report["charges"]["pending"] if c["state"] == "capture_pending"}
            return claimed if claimed and report["holds"]["by_state"]["placing"] == 1 else set()

        claimed = _poll("a batch at the bank and a hold being placed", claimed_and_placing)
        took, line = _stop(ps, signal.SIGTERM, tmp_path / "ps-1.out")
        asking.join(timeout=20)
        assert line == "payment system for store store-0001 stopped on SIGTERM"
        assert took < 10, took
        (answer,) = in_flight
        assert isinstance(answer, requests.Response) and answer.status_code == 201, answer  # answered first

        # What the stopped process left: its batch finished, and no charge claimed by it.
        system = PaymentSystem(PaymentsConfig(database=ps_database, store_id="store-0001", currency="EUR"))
        try:
            rows = system.db.all("SELECT charge, state, claim FROM charges")
        finally:
            system.close()
        settled = {r["charge"] for r in rows if r["state"] == "settled"}
        assert claimed <= settled, (claimed, rows)
        assert [r for r in rows if r["state"] != "settled" and r["claim"] is not None] == []
        left = len(rows) - len(settled)
        assert left >= 4, rows  # the workers stopped after their batch rather than drain the queue

        # Started again, it settles the rest at once, not after the 60 s lease.
        assert requests.post(bank_url + "/admin/faults", json={"latency_ms": 0}, timeout=5).ok
        started = time.monotonic()
        restarted = _serve(run_args, tmp_path / "ps-2.out")
        _wait_for(base + "/v1/health", restarted)

        def all_settled() -> dict:
            report = http.get(base + "/v1/reconciliation", timeout=5).json()
            return report if report["charges"]["settled"] == 12 else {}

        report = _poll("every charge settled after the restart", all_settled, timeout_s=20)
        assert time.monotonic() - started < 15
        assert report["balanced"], report["problems"]
        captures = requests.get(bank_url + "/admin/summary", timeout=5).json()
        assert (captures["capture_count"], captures["captured"]) == (12, 12 * 129)  # each charge once

        took, line = _stop(restarted, signal.SIGINT, tmp_path / "ps-2.out")  # Ctrl-C stops it alike
        assert line == "payment system for store store-0001 stopped on SIGINT"
        took, line = _stop(bank, signal.SIGTERM, tmp_path / "bank.out")
        assert line == "simulated bank stopped on SIGTERM" and took < 5
    finally:
        http.close()
        for process in (ps, restarted, bank):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


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

    config = tmp_path / "payments.toml"
    config.write_text(
        example_with(settlement={"workers": 0, "batch": 8, "lease_s": 5, "bank_concurrency": 3})
    )
    assert CliRunner().invoke(main, ["payments", "init", "--config", str(config)]).exit_code == 0
    settings = ps_config.system_config(ps_config.load(config), with_key=True)
    assert (settings.settle_workers, settings.settle_batch, settings.settle_lease_s) == (0, 8, 5)
    assert settings.bank_concurrency == 3
