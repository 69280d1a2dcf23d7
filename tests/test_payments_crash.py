"""Several payment-system processes on one PostgreSQL, SIGKILLed at random moments while a gate sends its
charges: every charge settles exactly once and the ledger balances (tests/fixtures/payments_crash.py)."""

from __future__ import annotations

from payments.db.cluster import PostgresCluster
from tests.fixtures.payments_crash import run_payments_crash


def test_payment_systems_killed_at_random_lose_and_double_nothing(postgres_cluster: PostgresCluster) -> None:
    result = run_payments_crash(postgres_cluster.create_database("crash"), charges=40, kills=12, processes=3)
    assert result.kills == 12
    assert (result.lost, result.duplicate) == (0, 0)
    assert result.balanced, result.problems
    assert result.bank_captures == result.charges == 40  # each charge has a bank part: one capture each
