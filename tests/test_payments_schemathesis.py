"""Schemathesis over docs/payments-openapi.yaml against the real payment system: generated requests, valid
and invalid, for every operation; no answer may be a 500, undocumented, or off its schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from payments.local import LocalStack
from tests.fixtures.payments import SPEC_PATH, engine_fixture

schema = schemathesis.openapi.from_path(SPEC_PATH)
ps_engine = engine_fixture()  # on SQLite and on PostgreSQL
# A schema cannot say "signed by an enrolled key": generated holds and charges are refused with a documented
# 4xx, which is the right answer, so "schema-valid data is accepted" does not apply here.
NOT_APPLICABLE = [schemathesis.checks.positive_data_acceptance]


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case: schemathesis.Case, payments_stack: LocalStack) -> None:
    case.call_and_validate(
        base_url=payments_stack.url,
        headers={"Authorization": f"Bearer {payments_stack.admin_token}"},
        excluded_checks=NOT_APPLICABLE,
    )
