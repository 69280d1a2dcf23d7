"""The attendant's audit: comparing a re-scanned basket with its signed list, as the audit page does on every
look, for a 200-line list (the policy's maximum) against a 100k-product catalog in a file database.

The basket holds every listed unit plus 5 goods the list does not name (so both the list's prices and the
catalog's are read), scanned in a shuffled order.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.bench_catalog import T0, synthetic_catalog
from bench.bench_decision import presentation
from bench.stats import latency_metrics, metric
from gate.lane.audit import Audit
from gate.legality import Decision, GateIdentity, Policy, check
from gate.protocol.keys import SigningKey, TrustedKeys
from gate.protocol.parties import item
from gate.store import GateStore

LINES = 200
EXTRA = 5
SAMPLES = 200


def _decision(store: GateStore, catalog: list, rng: random.Random) -> Decision:
    ps, shopper = (SigningKey.from_seed(bytes([i]) * 32) for i in (1, 2))
    gate = GateIdentity("store-0001", "gate-01", "EUR")
    items = [item(p.code, p.price, qty=rng.randint(1, 3)) for p in catalog[:LINES]]
    raw, challenge = presentation(ps, shopper, gate, items, T0)
    policy = Policy(attendant_categories=frozenset(), max_items=LINES)
    trusted = TrustedKeys([ps.public_key])
    return check(
        raw, challenge, now=T0, catalog=store, state=store, policy=policy, trusted=trusted, gate=gate
    )


def run() -> Iterator[dict]:
    rng = random.Random(2)
    catalog = synthetic_catalog()
    sample = rng.sample(catalog, LINES + EXTRA)
    policy = Policy(attendant_categories=frozenset(), max_items=LINES)
    with tempfile.TemporaryDirectory() as tmp, GateStore(Path(tmp) / "gate.db") as store:
        store.import_catalog(catalog)
        decision = _decision(store, sample, rng)
        assert decision.passed, decision.reasons
        audit = Audit(decision, T0)
        basket = [it.code for it in decision.list.items for _ in range(it.qty)] + [
            p.code for p in sample[LINES:]
        ]
        rng.shuffle(basket)
        for code in basket:
            audit.add_scan(code, None)
        timings = []
        for _ in range(SAMPLES):
            t0 = time.perf_counter()
            comparison = audit.compare(store, policy, now=T0)
            timings.append(time.perf_counter() - t0)
        assert len(comparison.lines) == LINES + EXTRA and comparison.difference > 0
        yield from latency_metrics("audit.compare_200_lines", timings)
        yield metric("audit.compare_200_lines.scans", len(basket), "scans")
