"""An import's queries grow with its chunks, not with its rows."""

import math

import pytest
from django.db import connection

from core.events import EventType
from core.models import DomainEvent
from imports.services import lead_import_run
from leads.models import Lead, StageChange
from tests.factories import LeadFactory

from .conftest import uploaded

pytestmark = pytest.mark.django_db



def _inserts(model, rows: int) -> int:
    """The INSERTs the database needs for `rows` rows of `model`: one on PostgreSQL, one per 999 values on SQLite."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    return math.ceil(rows / connection.ops.bulk_batch_size(fields, [None] * rows))


# Per chunk of 1,000 rows: the duplicates in the CRM, the companies found and made, the leads, their stage
# changes, their events, the leads filled in and their events, the job's progress, the savepoints; the
# inserts as many as the database's limit on the values of one statement asks.
PER_CHUNK = 12 + _inserts(Lead, 1000) + _inserts(StageChange, 1000) + _inserts(DomainEvent, 1000)
# Once per run: the user's groups, claiming the job, reading it back, counting rows, the end.
PER_RUN = 10


def _rows(n):
    return [["Email", "First name", "Company"], *[[f"lead{i}@example.com", f"Name {i}", f"Company {i % 50}"] for i in range(n)]]


def test_ten_thousand_rows_take_a_fixed_number_of_queries_per_chunk(manager_user, settings, django_assert_max_num_queries):
    settings.CRM_IMPORT_CHUNK_ROWS = 1000
    LeadFactory(email="lead7@example.com", first_name="")  # one duplicate to fill in
    job = uploaded(_rows(10_000), by=manager_user)

    with django_assert_max_num_queries(10 * PER_CHUNK + PER_RUN):
        job = lead_import_run(job=job, by=manager_user)

    assert (job.created_count, job.updated_count, job.error_count) == (9_999, 1, 0)
    assert Lead.objects.count() == 10_000
    assert StageChange.objects.count() == 10_000
    assert DomainEvent.objects.filter(type=EventType.LEAD_CREATED).count() == 10_000
