"""Schemathesis fuzzes every API operation from the OpenAPI schema, in-process: no 500s, and every answer
matches the schema (status, content type, body). Bounded and deterministic: a fixed number of examples per
operation from a derandomized Hypothesis."""

import os

import pytest
import schemathesis
import time_machine
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.api.conftest import T0, token_for
from tests.factories import LeadFactory, lead_at, sales_records

# Loaded once, at collection: the schema view needs no database. (schemathesis.pytest.from_fixture would load
# it per test, but does not run under pytest 9.)
WSGI_APP = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGI_APP)


@pytest.fixture(autouse=True)
def in_the_tests_transaction(db, settings):
    # As Django's test client does: a request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.CRM_API_RATE_LIMIT_PER_MINUTE = 1_000_000
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(manager_user, rep_user):
    with time_machine.travel(T0, tick=True):
        # A few leads with small ids, which Hypothesis tries first, in several stages.
        for status in ("new", "contacted", "sql"):
            lead_at(status, owner=rep_user)
        pool = LeadFactory(owner=None)
        # And a record of each other kind, with small ids too: a deal, a task, an objection, a customer.
        sales_records(lead=pool, by=manager_user)
        yield token_for(manager_user)


@pytest.mark.slow
@schema.parametrize()
@hypothesis_settings(
    # A deeper run by hand: CRM_API_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/api/test_schemathesis.py
    max_examples=int(os.environ.get("CRM_API_FUZZ_EXAMPLES", "30")), derandomize=True, deadline=None, database=None,
    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
)
def test_the_api_answers_every_generated_request_as_its_schema_says(case, fuzz_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
