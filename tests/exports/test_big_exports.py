"""A long list exports in bounded queries and flat memory: rows are read in chunks and written as they come."""

import tracemalloc
from datetime import UTC, datetime

import pytest
import time_machine

from leads.exports import CHUNK_ROWS, LEADS, list_export
from leads.models import Company, Lead, Source
from tests.factories import rep

pytestmark = pytest.mark.django_db

SMALL, BIG = 2_000, 20_000


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(datetime(2026, 3, 2, 10, 30, tzinfo=UTC), tick=False):
        yield


def add_leads(count: int, *, start: int, owner, company, source) -> None:
    Lead.objects.bulk_create(
        (Lead(first_name=f"First{n}", last_name=f"Last{n}", email=f"lead{n}@example.org", phone="+49 30 1234",
              owner=owner, company=company, source=source, search_text=f"first{n} last{n}") for n in range(start, start + count)),
        batch_size=2_000,
    )


def export_and_measure(file_format: str, by) -> tuple[int, int]:
    """Export every lead; the rows written and the peak of memory allocated meanwhile, in bytes."""
    tracemalloc.start()
    try:
        export = list_export(spec=LEADS, rows=Lead.objects.all(), by=by, file_format=file_format)
        if export.lines is not None:
            written = sum(chunk.count("\n") for chunk in export.lines) - 1
        else:
            with export.file as file:
                written = export.record.row_count if file.read(2) == b"PK" else -1
        return written, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_twenty_thousand_leads_export_in_a_few_queries_and_the_memory_of_a_few_thousand(
    file_format, manager_user, django_assert_max_num_queries
):
    owner, company = rep(first_name="Tom", last_name="Becker"), Company.objects.create(name="Acme")
    source = Source.objects.create(name="Ads", slug="ads")
    add_leads(SMALL, start=0, owner=owner, company=company, source=source)
    _, small_peak = export_and_measure(file_format, manager_user)
    add_leads(BIG - SMALL, start=SMALL, owner=owner, company=company, source=source)

    # The count, the record and its event, then one query per chunk of rows (one cursor on PostgreSQL), with the
    # owner, company, source, campaign and persona joined: never a query per row.
    with django_assert_max_num_queries(6 + BIG // CHUNK_ROWS):
        written, big_peak = export_and_measure(file_format, manager_user)

    assert written == BIG
    # Ten times the rows, not ten times the memory: a chunk or two of rows is held at a time (measured: 3.8 MB
    # for 2,000 rows, 6.9 MB for 20,000; holding them all would take about 38 MB).
    assert big_peak < 3 * small_peak, (small_peak, big_peak)
