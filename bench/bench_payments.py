"""The payment side on SQLite (one store) and PostgreSQL (a chain): holds, intake, settlement.

The simulated bank and the payment system run as a store runs them, each in its own process
(`selfcheckout payments bank` and `selfcheckout payments run --config`, cheroot, 127.0.0.1). This process
plays the gate and the phones. PostgreSQL is a throwaway cluster in a temporary folder, fsync on.

- `payments.hold` / `payments.hold.postgres`: POST /v1/holds latency as the phone sees it (signature
  check, stored-value reservation, one bank call, voucher signing, two transactions), p50 and p99; each
  hold 500 of stored value + 1500 at the bank.
- `payments.drain` / `payments.drain.postgres`: 10,000 charges queued in a gate's outbox (real passes:
  legality check, build_charge, record_pass, each against its own hold of 50 stored value + 1950 at the
  bank), sent by one forwarder in batches of 500 into the payment system's durable intake (every
  signature checked, one transaction per batch) and marked accepted at the gate (synchronous=FULL).
  Charges per second from the first request to the last accepted entry. The payment system's settlement
  workers are off while this runs.
- `payments.settle` (SQLite, bank at 0 ms) and `payments.settle.bank50ms` (PostgreSQL, every bank call
  50 ms): the accepted charges settled by 4 workers in one process (the code `payments run` runs): stored
  value, one final capture with the signed list as evidence, the signed notice. Charges per second until
  the queue is empty; then the ledger must balance and the bank hold exactly one capture per charge.

`BENCH_PAYMENTS_CHARGES` changes the queue size (default 10000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import requests

from bench.stats import latency_metrics, metric
from gate.catalog import PriceChange
from gate.forwarder import Forwarder
from gate.legality import GateIdentity, Policy, build_charge, check, new_challenge
from gate.protocol.documents import VERSION, ExitPresentation, HoldVoucher, open_signed
from gate.protocol.keys import SigningKey, TrustedKeys, write_secret_key
from gate.store import GateStore
from payments.bank import HttpBank
from payments.config import example_with
from payments.context import PaymentsConfig
from payments.db.cluster import PostgresCluster
from payments.local import SimShopper
from payments.system import PaymentSystem
from payments.wire import b64, unb64

CHARGES = int(os.environ.get("BENCH_PAYMENTS_CHARGES", "10000"))
HOLD_SAMPLES = 1000
HOLD_WARMUP = 50
SHOPPERS = 200
STORE, CURRENCY = "store-0001", "EUR"
PEN = "4006381333931"
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-admin-token-0123456789"
SETTLE_WORKERS = 4
BANK_CONCURRENCY = 64


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp, PostgresCluster() as cluster:
        folder = Path(tmp)
        bank_port = _free_port()
        bank_url = f"http://127.0.0.1:{bank_port}"
        log = (folder / "servers.log").open("wb")
        command = [*_CLI, "bank", "--port", str(bank_port), "--threads", str(BANK_CONCURRENCY * 2)]
        bank = _start(command, bank_url + "/admin/faults", log)
        try:
            yield from _engine(folder / "sqlite", str(folder / "sqlite" / "ps.db"), "", bank_url, 0, log)
            url = cluster.create_database("bench")
            yield from _engine(folder / "postgres", url, ".postgres", bank_url, 50, log)
        finally:
            bank.terminate()
            bank.wait(timeout=10)
            log.close()


_CLI = [sys.executable, "-m", "selfcheckout", "payments"]


def _engine(
    folder: Path, database: str, suffix: str, bank_url: str, settle_latency_ms: int, log: BinaryIO
) -> Iterator[dict]:
    """Holds, intake and settlement against one database (suffix "" for SQLite, ".postgres")."""
    folder.mkdir(parents=True)
    key = SigningKey.generate()
    write_secret_key(folder / "ps.key", key)
    token = folder / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    _faults(bank_url, latency_ms=0)
    gate_key = SigningKey.generate()
    setup_s, hold_shopper = _queue_charges(folder, database, key, bank_url, gate_key)
    ps_port = _free_port()
    ps_url = f"http://127.0.0.1:{ps_port}"
    store = {"database": "ps.db", "key_file": "ps.key", "admin_token_file": "token"}
    if suffix:
        store["database_url"] = database
    config = folder / "payments.toml"
    config.write_text(
        example_with(
            store=store,
            listen={"port": ps_port},
            bank={"url": bank_url},
            timings={"sweep_interval_s": 0, "hold_ttl_s": 86400},
            settlement={"workers": 0},
        )
    )
    server = _start([*_CLI, "run", "--config", str(config)], ps_url + "/v1/health", log)
    try:
        with requests.Session() as http:
            http.trust_env = False
            http.headers["Authorization"] = f"Bearer {TOKEN}"
            yield from _holds(http, ps_url, hold_shopper, suffix)
            yield from _drain(folder, key, ps_url, suffix, setup_s)
    finally:
        server.terminate()
        server.wait(timeout=10)
    name = "payments.settle.bank50ms" if settle_latency_ms else f"payments.settle{suffix}"
    yield from _settle(database, key, bank_url, settle_latency_ms, name)


def _queue_charges(
    folder: Path, database: str, key: SigningKey, bank_url: str, gate_key: SigningKey
) -> tuple[float, SimShopper]:
    """Offline, before the PS serves: shoppers, holds at the bank, and the gate's passes in its outbox."""
    started = time.perf_counter()
    config = PaymentsConfig(
        database=database,
        store_id=STORE,
        currency=CURRENCY,
        key=key,
        bank=HttpBank(bank_url, environment=False),
        hold_ttl_s=86400,
    )
    system = PaymentSystem(config)
    gate = GateIdentity(STORE, "gate-01", CURRENCY)
    trusted = TrustedKeys([key.public_key])
    policy = Policy(offline_max_count=CHARGES + 1, offline_max_amount=10**12)
    try:
        system.enrol_gate("gate-01", gate_key.public_key)
        shoppers = [SimShopper(f"bench-{i}") for i in range(SHOPPERS)]
        for shopper in shoppers:
            system.enrol_shopper(shopper.name, shopper.key.public_key, f"DE-{shopper.name}")
        hold_shopper = SimShopper("bench-hold")
        system.enrol_shopper(hold_shopper.name, hold_shopper.key.public_key, "DE-hold")
        with GateStore(folder / "gate.db") as store:
            store.import_catalog(
                [PriceChange(PEN, "Pen", "stationery", "each", 129, CURRENCY, int(time.time()) - 60)]
            )
            for n in range(CHARGES):
                shopper = shoppers[n % SHOPPERS]
                system.top_up(shopper.name, 50, f"drain-{n}")
                _, answer = system.place_hold(shopper.hold_request(STORE, CURRENCY, 2000, system.now()))
                voucher = open_signed(unb64(json.loads(answer)["voucher"], "voucher"), HoldVoucher)
                now = time.time()
                challenge = new_challenge(gate, now)
                signed_list = shopper.sign_list(voucher.doc, [(PEN, 1 + n % 5, 129)], int(now))
                presentation = ExitPresentation(
                    v=VERSION,
                    voucher=voucher,
                    list=signed_list,
                    answer=shopper.answer(challenge, signed_list),
                )
                decision = check(
                    presentation.encode(),
                    challenge,
                    now=now,
                    catalog=store,
                    state=store,
                    policy=policy,
                    trusted=trusted,
                    gate=gate,
                )
                if decision.verdict != "pass":
                    raise RuntimeError(f"setup: the gate denied a pass: {decision.codes}")
                store.record_pass(decision, build_charge(decision, gate_key).encode())
    finally:
        system.close()
    return time.perf_counter() - started, hold_shopper


def _holds(http: requests.Session, ps_url: str, shopper: SimShopper, suffix: str) -> Iterator[dict]:
    samples = []
    for i in range(HOLD_SAMPLES + HOLD_WARMUP):
        top_up = http.post(
            f"{ps_url}/v1/shoppers/bench-hold/top-ups",
            json={"amount": 500, "reference": f"hold-{i}"},
            timeout=10,
        )
        top_up.raise_for_status()
        body = {"request": b64(shopper.hold_request(STORE, CURRENCY, 2000, int(time.time())))}
        started = time.perf_counter()
        response = http.post(ps_url + "/v1/holds", json=body, timeout=10)
        elapsed = time.perf_counter() - started
        if response.status_code != 201 or response.json()["bank"] != 1500:
            raise RuntimeError(f"hold: {response.status_code} {response.text}")
        if i >= HOLD_WARMUP:
            samples.append(elapsed)
    yield from latency_metrics(f"payments.hold{suffix}", samples)
    yield metric(f"payments.hold{suffix}.samples", len(samples), "count")


def _drain(folder: Path, key: SigningKey, ps_url: str, suffix: str, setup_s: float) -> Iterator[dict]:
    with (
        GateStore(folder / "gate.db") as store,
        Forwarder(
            store,
            url=ps_url,
            trusted=TrustedKeys([key.public_key]),
            store_id=STORE,
            batch=500,
            timeout_s=60,
            sync_interval_s=None,
        ) as forwarder,
    ):
        queued = store.outbox_backlog().count
        started = time.perf_counter()
        while True:
            outcomes = forwarder.drain_once()
            if not outcomes:
                break
            failed = [o.detail for o in outcomes if o.result != "accepted"]
            if failed:
                raise RuntimeError(f"drain: {failed[:3]}")
        elapsed = time.perf_counter() - started
        left = store.outbox_backlog().count
        accepted = len(store.outbox_entries("accepted", limit=CHARGES + 1))
    if queued != CHARGES or left or accepted != CHARGES:
        raise RuntimeError(f"queued {queued}, left {left}, accepted {accepted}")
    yield metric(f"payments.drain{suffix}.rate", CHARGES / elapsed, "charges/s")
    yield metric(f"payments.drain{suffix}.seconds", elapsed, "s")
    yield metric(f"payments.drain{suffix}.charges", CHARGES, "count")
    yield metric(f"payments.drain{suffix}.setup_seconds", setup_s, "s")


def _settle(database: str, key: SigningKey, bank_url: str, latency_ms: int, name: str) -> Iterator[dict]:
    """The queue settled by the workers of one payment-system process; the ledger checked after."""
    _faults(bank_url, latency_ms=latency_ms)
    before = _bank_summary(bank_url)["capture_count"]
    config = PaymentsConfig(
        database=database,
        store_id=STORE,
        currency=CURRENCY,
        key=key,
        bank=HttpBank(bank_url, timeout_s=30, connections=BANK_CONCURRENCY, environment=False),
        settle_workers=SETTLE_WORKERS,
        bank_concurrency=BANK_CONCURRENCY,
        settle_batch=BANK_CONCURRENCY,
    )
    started = time.perf_counter()
    system = PaymentSystem(config)
    try:
        system.settlement.notify()
        while system.db.one("SELECT count(*) AS n FROM charges WHERE state != 'settled'")["n"]:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        report = system.reconcile()
    finally:
        system.close()
        _faults(bank_url, latency_ms=0)
    if not report["balanced"] or report["charges"]["settled"] != CHARGES:
        raise RuntimeError(f"the ledger does not balance after settlement: {report['problems']}")
    captures = _bank_summary(bank_url)["capture_count"] - before
    if captures != CHARGES:
        raise RuntimeError(f"{captures} bank captures for {CHARGES} charges")
    yield metric(f"{name}.rate", CHARGES / elapsed, "charges/s")
    yield metric(f"{name}.seconds", elapsed, "s")
    yield metric(f"{name}.workers", SETTLE_WORKERS, "count")


def _faults(bank_url: str, **faults: object) -> None:
    with requests.Session() as http:
        http.trust_env = False
        http.post(bank_url + "/admin/faults", json=faults, timeout=10).raise_for_status()


def _bank_summary(bank_url: str) -> dict:
    with requests.Session() as http:
        http.trust_env = False
        return http.get(bank_url + "/admin/summary", timeout=60).json()


def _start(command: list[str], ready_url: str, log: BinaryIO) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[4]} exited with {process.returncode}")
        try:
            with requests.Session() as probe:
                probe.trust_env = False
                probe.get(ready_url, timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.05)
    process.terminate()
    process.wait(timeout=10)
    raise RuntimeError(f"{ready_url} not ready")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
