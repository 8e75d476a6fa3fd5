"""The Leads list's sortable columns: both directions, aria-sort, the sort kept in the URL, queries fixed."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leads.models import Lead
from workspace.selectors import SORTS
from workspace.sorting import COLUMNS

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
LIST = reverse("workspace:lead_list")


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _leads(owner, start, count):
    Lead.objects.bulk_create(
        Lead(first_name=f"F{i:04d}", last_name=f"L{i:04d}", email=f"s{i}@example.com", owner=owner, score=i % 97,
             created_at=NOW - timedelta(minutes=i), last_touch_at=NOW - timedelta(hours=i), search_text=f"s{i}")
        for i in range(start, start + count)
    )


def _names(response):
    return [lead.last_name for lead in response.context["page"].object_list]


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_each_column_sorts_both_ways_with_the_same_queries_at_10_and_1000_leads(client, manager_user, rep_user,
                                                                                   other_rep, column):
    client.force_login(manager_user)
    sorts = COLUMNS[column]

    def queries(sort):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST, {"sort": sort, "scope": "all", "page": 2})
        assert response.status_code == 200
        return len(ctx.captured_queries)

    _leads(rep_user, 0, 5)
    _leads(other_rep, 5, 5)
    at_10 = [queries(sort) for sort in sorts]
    _leads(rep_user, 10, 990)
    assert [queries(sort) for sort in sorts] == at_10
    ascending = _names(client.get(LIST, {"sort": sorts[0], "scope": "all"}))
    descending = _names(client.get(LIST, {"sort": sorts[1], "scope": "all"}))
    assert ascending != descending and len(ascending) == 25


def test_sorting_by_score_orders_the_rows_and_the_header_says_so(rep_client, rep_user):
    _leads(rep_user, 0, 30)
    response = rep_client.get(LIST, {"sort": "score"})
    scores = [lead.score for lead in response.context["page"].object_list]
    assert scores == sorted(scores, reverse=True)
    page = response.content.decode()
    assert 'aria-sort="descending"><a class="sort-link" href="?sort=score_asc" data-sort="score">' in page
    assert 'aria-sort="none"><a class="sort-link" href="?sort=name" data-sort="name">' in page
    low = [lead.score for lead in rep_client.get(LIST, {"sort": "score_asc"}).context["page"].object_list]
    assert low == sorted(low) and low[0] == 0


def test_sorting_by_name_keeps_the_filters_and_drops_the_page(rep_client, rep_user):
    _leads(rep_user, 0, 3)
    page = rep_client.get(LIST, {"status": "new", "sort": "name", "page": "1"}).content.decode()
    assert 'aria-sort="ascending"><a class="sort-link" href="?status=new&amp;sort=name_desc"' in page
    names = _names(rep_client.get(LIST, {"sort": "name_desc"}))
    assert names == ["L0002", "L0001", "L0000"]


def test_every_list_sort_reads_an_index_of_the_lead_table_forwards_or_backwards():
    def backwards(fields):
        return tuple(field[1:] if field.startswith("-") else f"-{field}" for field in fields)

    indexed = {tuple(index.fields) for index in Lead._meta.indexes}
    for name, ordering in SORTS.items():
        assert tuple(ordering) in indexed or backwards(ordering) in indexed, name
