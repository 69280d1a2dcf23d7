"""Decision latency: decode, three signatures, every check, the gate's charge signature and the durable commit
(synchronous=FULL, file database) for lists of 1, 30 and 200 items against a 100k-product catalog.

Presentations are built before the clock starts (each with its own hold and list id, as real taps have);
each sample is one tap's `check` + `build_charge` + `record_pass`. Charges are settled between samples, off
the clock, so the backlog stays as small as a healthy forwarder keeps it.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.bench_catalog import T0, synthetic_catalog
from bench.stats import latency_metrics, metric
from gate.legality import GateIdentity, Policy, build_charge, check, new_challenge
from gate.protocol.documents import ExitChallenge, ExitPresentation, Item
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.protocol.parties import answer_challenge, issue_voucher, item, sign_list
from gate.store import GateStore

SIZES = {1: 400, 30: 400, 200: 150}  # items per list: samples
WARMUP = 50


def presentation(
    ps: SigningKey, shopper: SigningKey, gate: GateIdentity, items: list[Item], now: int
) -> tuple[bytes, ExitChallenge]:
    """One tap's presentation bytes and the challenge they answer: a fresh hold and list id, as real taps."""
    hold, list_id = os.urandom(16), os.urandom(16)
    voucher = issue_voucher(
        ps,
        hold=hold,
        shopper="alice",
        shopper_key=shopper.public_key,
        store=gate.store,
        currency="EUR",
        stored_value=0,
        bank=10**8,
        issued=now - 60,
        expires=now + 3600,
    )
    slist = sign_list(
        shopper, list_id=list_id, hold=hold, store=gate.store, currency="EUR", created=now - 30, items=items
    )
    challenge = new_challenge(gate, now)
    answer = answer_challenge(shopper, challenge, slist)
    return ExitPresentation(v=1, voucher=voucher, list=slist, answer=answer).encode(), challenge


def run() -> Iterator[dict]:
    rng = random.Random(1)
    catalog = synthetic_catalog()
    ps, shopper, gate_key = (SigningKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    gate = GateIdentity("store-0001", "gate-01", "EUR")
    policy = Policy(attendant_categories=frozenset(), max_items=200)
    trusted = TrustedKeys([ps.public_key])
    now = T0
    with tempfile.TemporaryDirectory() as tmp, GateStore(Path(tmp) / "gate.db") as store:
        store.import_catalog(catalog)
        for size, samples in SIZES.items():
            taps = []
            for _ in range(samples + WARMUP):
                products = rng.sample(catalog, size)
                items = [item(p.code, p.price, qty=rng.randint(1, 3)) for p in products]
                taps.append(presentation(ps, shopper, gate, items, now))
            total, checks, commits = [], [], []
            for n, (raw, challenge) in enumerate(taps):
                t0 = time.perf_counter()
                decision = check(
                    raw,
                    challenge,
                    now=now,
                    catalog=store,
                    state=store,
                    policy=policy,
                    trusted=trusted,
                    gate=gate,
                )
                t1 = time.perf_counter()
                charge = build_charge(decision, gate_key)
                store.record_pass(decision, charge.encode())
                t2 = time.perf_counter()
                if not decision.passed:
                    raise RuntimeError(f"benchmark tap denied: {decision.codes}")
                store.outbox_settled(decision.list_id, b"", now)
                if n >= WARMUP:
                    total.append(t2 - t0)
                    checks.append(t1 - t0)
                    commits.append(t2 - t1)
            yield from latency_metrics(f"decision.items_{size}", total)
            yield from latency_metrics(f"decision.items_{size}.check_only", checks)
            yield from latency_metrics(f"decision.items_{size}.charge_and_commit", commits)
        # Other processes on the machine show up in p99: say how busy it was.
        yield metric("decision.loadavg_1min", os.getloadavg()[0], "load")
