"""The payment side: how fast a gate's backlog drains, and how long a hold takes to place.

The simulated bank and the payment system run as a store runs them, each in its own process
(`selfcheckout payments bank` and `selfcheckout payments run`, waitress, 127.0.0.1), with the bank at zero
delay. This process plays the gate and the phones.

- `payments.hold`: POST /v1/holds latency as the phone sees it (signature check, stored-value reservation,
  one bank call, voucher signing, two transactions), p50 and p99; each hold 500 of stored value + 1500 at
  the bank.
- `payments.drain`: 10,000 charges queued in a gate's outbox (real passes: legality check, build_charge,
  record_pass, each against its own hold of 50 stored value + 1950 at the bank), drained by one forwarder:
  per charge one request, the PS's stored-value debit, a bank capture with the signed list as evidence, a
  bank release, the signed notice, and the gate's durable `outbox_settled` (synchronous=FULL). Charges per
  second of wall clock from the first request to the last settled entry.

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


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key = SigningKey.generate()
        write_secret_key(folder / "ps.key", key)
        token = folder / "token"
        token.write_text("bench-admin-token-0123456789\n")
        token.chmod(0o600)
        bank_port, ps_port = _free_port(), _free_port()
        bank_url, ps_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{ps_port}"
        log = (folder / "servers.log").open("wb")
        cli = [sys.executable, "-m", "selfcheckout", "payments"]
        processes = [_start([*cli, "bank", "--port", str(bank_port)], bank_url + "/admin/faults", log)]
        try:
            gate_key = SigningKey.generate()
            setup_s, hold_shopper = _queue_charges(folder, key, bank_url, gate_key)
            config = folder / "payments.toml"
            config.write_text(
                example_with(
                    store={"database": "ps.db", "key_file": "ps.key", "admin_token_file": "token"},
                    listen={"port": ps_port},
                    bank={"url": bank_url},
                    timings={"sweep_interval_s": 0, "hold_ttl_s": 86400},
                )
            )
            processes.append(_start([*cli, "run", "--config", str(config)], ps_url + "/v1/health", log))
            with requests.Session() as http:
                http.trust_env = False
                http.headers["Authorization"] = "Bearer bench-admin-token-0123456789"
                yield from _holds(http, ps_url, hold_shopper)
                yield from _drain(http, folder, key, ps_url, bank_url, setup_s)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=10)
            log.close()


def _queue_charges(
    folder: Path, key: SigningKey, bank_url: str, gate_key: SigningKey
) -> tuple[float, SimShopper]:
    """Offline, before the PS serves: shoppers, holds at the bank, and the gate's passes in its outbox."""
    started = time.perf_counter()
    session = requests.Session()
    session.trust_env = False
    config = PaymentsConfig(
        database=folder / "ps.db",
        store_id=STORE,
        currency=CURRENCY,
        key=key,
        bank=HttpBank(bank_url, session=session),
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


def _holds(http: requests.Session, ps_url: str, shopper: SimShopper) -> Iterator[dict]:
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
    yield from latency_metrics("payments.hold", samples)
    yield metric("payments.hold.samples", len(samples), "count")


def _drain(
    http: requests.Session, folder: Path, key: SigningKey, ps_url: str, bank_url: str, setup_s: float
) -> Iterator[dict]:
    with (
        GateStore(folder / "gate.db") as store,
        Forwarder(
            store,
            url=ps_url,
            trusted=TrustedKeys([key.public_key]),
            store_id=STORE,
            batch=200,
            sync_interval_s=None,
        ) as forwarder,
    ):
        queued = store.outbox_backlog().count
        started = time.perf_counter()
        while True:
            outcomes = forwarder.drain_once()
            if not outcomes:
                break
            failed = [o.detail for o in outcomes if o.result != "settled"]
            if failed:
                raise RuntimeError(f"drain: {failed[:3]}")
        elapsed = time.perf_counter() - started
        left = store.outbox_backlog().count
    if queued != CHARGES or left:
        raise RuntimeError(f"queued {queued}, left {left}")
    report = http.get(ps_url + "/v1/reconciliation", timeout=60).json()
    if not report["balanced"] or report["charges"]["settled"] != CHARGES:
        raise RuntimeError(f"the ledger does not balance after the drain: {report['problems']}")
    bank = http.get(bank_url + "/admin/summary", timeout=60).json()
    if bank["capture_count"] != CHARGES:
        raise RuntimeError(f"{bank['capture_count']} bank captures for {CHARGES} charges")
    yield metric("payments.drain.rate", CHARGES / elapsed, "charges/s")
    yield metric("payments.drain.seconds", elapsed, "s")
    yield metric("payments.drain.charges", CHARGES, "count")
    yield metric("payments.drain.setup_seconds", setup_s, "s")


def _start(command: list[str], ready_url: str, log: BinaryIO) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[4]} exited with {process.returncode}")
        try:
            with requests.Session() as probe:
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
