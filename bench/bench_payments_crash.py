"""The payment system's kill harness at bench size: 3 processes on one PostgreSQL (fsync on), 200 SIGKILLs
at seeded random moments while 800 charges arrive in batches; then every charge must be settled once
(tests/fixtures/payments_crash.py says how).

- `payments.crash.lost`: charges the gate sent that never settled.
- `payments.crash.duplicate`: charges with more than one stored-value debit, bank capture or debt.
"""

from __future__ import annotations

from collections.abc import Iterator

from bench.stats import metric
from payments.db.cluster import PostgresCluster
from tests.fixtures.payments_crash import run_payments_crash

KILLS = 200
CHARGES = 800


def run() -> Iterator[dict]:
    with PostgresCluster() as cluster:
        result = run_payments_crash(
            cluster.create_database("crash"), charges=CHARGES, kills=KILLS, processes=3
        )
    if not result.balanced:
        raise RuntimeError(f"the ledger does not balance after the kills: {result.problems}")
    yield metric("payments.crash.lost", result.lost, "count")
    yield metric("payments.crash.duplicate", result.duplicate, "count")
    yield metric("payments.crash.kills", result.kills, "count")
    yield metric("payments.crash.charges", result.charges, "count")
    yield metric("payments.crash.seconds", result.seconds, "s")
