"""The payment system as a service: its config file, `payments init` (key, token, database, never
overwriting), a chain's config that names only its PostgreSQL URL, `payments run --config` failing in one
line on a taken port, a missing token or no database named, and /v1/health saying whether the bank answers.
Also the one-line errors of key generation and `--version`.
"""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from gate.protocol.keys import SigningKey, read_public_key, read_secret_key
from payments.config import example_with
from payments.db.cluster import PostgresCluster
from selfcheckout.cli import main
from tests.fixtures.payments import free_port

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "selfcheckout"]


def write_config(folder: Path, **sections: dict) -> Path:
    config = folder / "payments.toml"
    config.write_text(example_with(**sections))
    return config


def init(config: Path) -> list[str]:
    result = CliRunner().invoke(main, ["payments", "init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def one_line_failure(args: list[str], timeout_s: float = 30) -> str:
    """Run the real command; it must stop with status 1 and exactly one line on stderr, no traceback."""
    done = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr.strip()


def test_init_makes_key_token_and_database_and_never_overwrites(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = init(config)
    keys = tmp_path / "keys"
    key = read_secret_key(keys / "ps.key")
    assert read_public_key(keys / "ps.pub") == key.public_key
    token = (keys / "ps-admin.token").read_text()
    assert len(token.strip()) >= 32
    for secret in ("ps.key", "ps-admin.token"):
        assert stat.S_IMODE((keys / secret).stat().st_mode) == 0o600
    assert (tmp_path / "payments.db").exists()
    assert first[-1] == f"database {tmp_path / 'payments.db'} for store store-0001 in EUR"

    again = init(config)
    assert again[:2] == [f"kept {keys / 'ps.key'}", f"kept {keys / 'ps-admin.token'}"]
    assert read_secret_key(keys / "ps.key") == key and (keys / "ps-admin.token").read_text() == token


def test_a_config_mistake_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, store={"currency": "euro"})
    line = one_line_failure(["payments", "init", "--config", str(config)])
    assert (
        line
        == f"Error: {config}: key 'store.currency': found 'euro', expected an ISO 4217 code such as 'EUR'"
    )


def without_database(text: str) -> str:
    """A config's text without its [store] database line, as a chain's config may be."""
    out, count = re.subn(r"(?m)^database = .*\n", "", text)
    assert count == 1, text
    return out


def test_a_chain_config_names_only_its_postgresql_url(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    url = postgres_cluster.create_database("config_url_only")
    config = tmp_path / "payments.toml"
    config.write_text(without_database(example_with(store={"database_url": url})))
    made = init(config)
    assert made[-1] == f"database {url.split('@')[-1]} for store store-0001 in EUR"
    key = SigningKey.generate().public_key.hex()
    for command in (
        ["enrol-shopper", "--shopper", "alice", "--public-key", key],
        ["top-up", "--shopper", "alice", "--amount", "700", "--reference", "till-1"],
    ):
        done = CliRunner().invoke(main, ["payments", command[0], "--config", str(config), *command[1:]])
        assert done.exit_code == 0, done.output
    reconciled = CliRunner().invoke(main, ["payments", "reconcile", "--config", str(config), "--json"])
    report = json.loads(reconciled.output)
    assert report["balanced"] and report["stored_value"]["balances"] == 700  # the books are on PostgreSQL
    assert list(tmp_path.glob("*.db")) == []  # no SQLite file was made beside the config


def test_a_config_naming_no_database_says_one_of_the_two_is_needed(tmp_path: Path) -> None:
    config = tmp_path / "payments.toml"
    config.write_text(without_database(example_with()))
    expected = (
        f"Error: {config}: key 'store.database': found None, expected a value: a path to the payment "
        "system's SQLite database, or store.database_url for a chain's PostgreSQL; one of the two is required"
    )
    for command in (["init"], ["run"], ["reconcile"]):
        assert one_line_failure(["payments", *command, "--config", str(config)]) == expected
    assert list(tmp_path.glob("*.db")) == []


def test_run_without_the_admin_token_says_how_to_make_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    init(config)
    (tmp_path / "keys" / "ps-admin.token").unlink()
    line = one_line_failure(["payments", "run", "--config", str(config)])
    assert "key 'store.admin_token_file'" in line and "No such file or directory" in line
    assert line.endswith(f"make it with `selfcheckout payments init --config {config}`")


def test_run_on_a_port_in_use_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, listen={"port": port})
        init(config)
        line = one_line_failure(["payments", "run", "--config", str(config)])
        assert line == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
        bank = one_line_failure(["payments", "bank", "--port", str(port)])
        assert bank == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_health_reports_whether_the_bank_answers(tmp_path: Path) -> None:
    bank_port, ps_port = free_port(), free_port()
    config = write_config(tmp_path, bank={"url": f"http://127.0.0.1:{bank_port}"}, listen={"port": ps_port})
    init(config)
    log = (tmp_path / "ps.log").open("wb")
    ps = subprocess.Popen(
        [*CLI, "payments", "run", "--config", str(config)], cwd=ROOT, stdout=log, stderr=log
    )
    bank = None
    try:
        health = _wait_for_health(ps_port, ps)
        assert health["status"] == "degraded" and health["bank"]["reachable"] is False
        assert health["bank"]["reason"].startswith(f"bank at http://127.0.0.1:{bank_port} did not answer")
        bank = subprocess.Popen(
            [*CLI, "payments", "bank", "--port", str(bank_port)], cwd=ROOT, stdout=log, stderr=log
        )
        health = _wait_for_health(ps_port, ps, until=lambda h: h["status"] == "ok")
        assert health == {
            "status": "ok",
            "store": "store-0001",
            "currency": "EUR",
            "bank": {"reachable": True},
        }
    finally:
        for process in (ps, bank):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
        log.close()


def _wait_for_health(port: int, process: subprocess.Popen[bytes], until=lambda h: True) -> dict:
    """Poll /v1/health until the server answers (and `until` holds), failing if the server exits."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the payment system exited with {process.returncode}"
        try:
            health = requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).json()
        except requests.ConnectionError:
            health = None
        if health is not None and until(health):
            return health
        time.sleep(0.05)
    raise AssertionError(f"no matching health answer on port {port}")


@pytest.mark.parametrize(
    "args",
    [
        ["gate", "keygen", "/sys/kernel/selfcheckout/gate.key"],
        ["payments", "keygen", "--key", "/sys/kernel/selfcheckout/ps.key"],
    ],
    ids=["gate", "payments"],
)
def test_keygen_into_a_folder_it_cannot_write_is_one_line(args: list[str]) -> None:
    line = one_line_failure(args)
    assert line.startswith(f"Error: {args[-1]}: cannot write secret key: ")


def test_version_comes_from_the_package_metadata() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"selfcheckout {version('selfcheckout')}\n"
