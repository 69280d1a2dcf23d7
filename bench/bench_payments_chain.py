"""A chain on one PostgreSQL: 100 stores, each with its own payment-system database and 10 enrolled gates,
all on one server (fsync on), placing holds at once.

Each store's payment system runs in this process (a pool of 2 connections each, 200 in all) against one
simulated bank (one connection pool to it for the chain); 16 threads play the phones, each picking a store
and a shopper at random and placing a hold (signature check, stored-value reservation, the bank's hold, the
voucher signed: two transactions) for 10 seconds.

- `payments.chain.holds_per_s`: holds placed per second across the chain.
- `payments.chain.hold.p99`: the latency of one hold under that load.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

from bench.stats import latency_metrics, metric
from gate.protocol.keys import SigningKey
from payments.bank import HttpBank
from payments.context import PaymentsConfig
from payments.db.cluster import PostgresCluster
from payments.local import LocalBank, SimShopper
from payments.system import PaymentSystem

STORES, GATES, SHOPPERS = 100, 10, 10
THREADS = 16
SECONDS = 10.0
CURRENCY = "EUR"


def run() -> Iterator[dict]:
    with PostgresCluster(max_connections=400) as cluster, _Bank() as bank:
        connector = HttpBank(bank.url, connections=THREADS)  # one acquirer connection pool for the chain
        systems = [_store(cluster, connector, n) for n in range(STORES)]
        try:
            shoppers = {n: [SimShopper(f"shopper-{n}-{i}") for i in range(SHOPPERS)] for n in range(STORES)}
            for n, system in enumerate(systems):
                for shopper in shoppers[n]:
                    system.enrol_shopper(shopper.name, shopper.key.public_key, f"DE-{n}-{shopper.name}")
            samples: list[float] = []
            lock = threading.Lock()
            stop = time.monotonic() + SECONDS

            def phone(seed: int) -> None:
                rng = random.Random(seed)
                mine = []
                while time.monotonic() < stop:
                    n = rng.randrange(STORES)
                    system = systems[n]
                    shopper = rng.choice(shoppers[n])
                    request = shopper.hold_request(system.config.store_id, CURRENCY, 2000, system.now())
                    started = time.perf_counter()
                    status, _ = system.place_hold(request)
                    mine.append(time.perf_counter() - started)
                    if status != 201:
                        raise RuntimeError(f"hold answered {status}")
                with lock:
                    samples.extend(mine)

            started = time.monotonic()
            threads = [threading.Thread(target=phone, args=(seed,)) for seed in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        finally:
            for system in systems:
                system.close()
    yield metric("payments.chain.holds_per_s", len(samples) / elapsed, "holds/s")
    yield from latency_metrics("payments.chain.hold", samples)
    yield metric("payments.chain.stores", STORES, "count")
    yield metric("payments.chain.gates", STORES * GATES, "count")


def _store(cluster: PostgresCluster, connector: HttpBank, n: int) -> PaymentSystem:
    """Store n: its own database on the shared server, its key, its gates."""
    system = PaymentSystem(
        PaymentsConfig(
            database=cluster.create_database(f"store{n:03d}"),
            store_id=f"store-{n:04d}",
            currency=CURRENCY,
            key=SigningKey.generate(),
            bank=connector,
            db_connections=2,
        )
    )
    for g in range(GATES):
        system.enrol_gate(f"gate-{g:02d}", SigningKey.generate().public_key)
    return system


class _Bank:
    """The simulated bank, in this process, with enough threads for the phones."""

    def __enter__(self) -> LocalBank:
        self.bank = LocalBank(threads=THREADS * 2)
        return self.bank

    def __exit__(self, *exc: object) -> None:
        self.bank.close()
