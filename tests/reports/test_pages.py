"""The reports pages: who may open them, the range and slice from the address, and drill-downs that sum to the figure."""

import csv
import io

import pytest
import time_machine
from django.urls import reverse

from tests.reports.conftest import local

MARCH = {"start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def at_april(pipeline):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        yield pipeline


def test_a_manager_sees_the_funnel_and_the_sales_figures_and_each_drills_down_to_as_many_rows(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), MARCH)
    assert page.status_code == 200
    funnel, sales = page.context["cohort"], page.context["sales"]
    assert [step.count for step in funnel.steps] == [4, 3, 2, 1, 1]
    assert (sales["win_rate"].won, sales["win_rate"].lost) == (2, 1)
    html = page.content.decode()
    assert 'id="win-rate">66.7 %' in html and "Cohort funnel" in html

    for key, expected in (("cohort-leads", 4), ("cohort-mql", 3), ("period-mql", 3), ("period-customer", 2),
                          ("deals-won", 2), ("deals-lost", 1)):
        rows = client.get(reverse("reports:figure", args=[key]), MARCH)
        assert rows.status_code == 200, key
        assert rows.context["page"].paginator.count == expected, key
        download = client.get(reverse("reports:figure", args=[key]), {**MARCH, "format": "csv"})
        lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
        assert len(lines) == expected + 1, key  # a header, then one line per row


def test_the_cohort_drill_down_lists_the_leads_that_reached_the_step(client, at_april):
    client.force_login(at_april.boss)
    rows = client.get(reverse("reports:figure", args=["cohort-mql"]), MARCH)
    assert {row[0] for row in rows.context["rows"]} == {at_april.l1.pk, at_april.l2.pk, at_april.l3.pk}


def test_a_marketer_sees_the_funnel_but_not_sales_and_a_rep_sees_neither(client, at_april, marketer_user, rep_user):
    client.force_login(marketer_user)
    page = client.get(reverse("reports:dashboard"), MARCH)
    assert page.status_code == 200 and "sales" not in page.context
    assert client.get(reverse("reports:figure", args=["cohort-leads"]), MARCH).status_code == 200
    assert client.get(reverse("reports:figure", args=["deals-won"]), MARCH).status_code == 403

    client.force_login(rep_user)
    assert client.get(reverse("reports:dashboard"), MARCH).status_code == 403
    assert client.get(reverse("reports:figure", args=["cohort-leads"]), MARCH).status_code == 403
    assert client.get(reverse("workspace:numbers")).status_code == 200  # their own figures still work
    assert b"Reports</a>" not in client.get(reverse("workspace:today")).content


def test_a_bad_range_says_what_to_fix_and_computes_nothing(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), {"start": "2026-03-31", "end": "2026-03-01"})
    assert page.status_code == 200 and "cohort" not in page.context
    assert "put the earlier day in From" in page.content.decode()
    assert client.get(reverse("reports:dashboard"), {"start": "31/02/2026"}).context["form"].errors["start"]
    assert client.get(reverse("reports:figure", args=["cohort-leads"]), {"start": "2026-04-01", "end": "2026-03-01"}).status_code == 404
    assert client.get(reverse("reports:figure", args=["no-such-figure"]), MARCH).status_code == 404


def test_a_slice_from_the_address_narrows_every_figure(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), {**MARCH, "source": at_april.ads.pk})
    assert [step.count for step in page.context["cohort"].steps] == [1, 1, 1, 1, 1]
    assert page.context["sales"]["win_rate"].won == 1


def test_the_pipeline_now_drills_down_to_its_open_leads_and_deals(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), MARCH)
    by_stage = {row.status: row.leads for row in page.context["sales"]["by_stage"]}
    for status, count in by_stage.items():
        rows = client.get(reverse("reports:figure", args=[f"open-{status}"]), MARCH)
        assert rows.context["page"].paginator.count == count, status
    assert client.get(reverse("reports:figure", args=["deals-open"]), MARCH).context["page"].paginator.count == 1
    assert 'id="forecast"' in page.content.decode()


def test_the_cohort_heat_map_and_the_stuck_leads_are_on_the_page(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), {"start": "2026-01-01", "end": "2026-03-31", "cohort_target": "mql"})
    assert [row.reached for row in page.context["cohorts"]] == [[2, 2, 2, 3], [1, 2, 2], [2, 3]]
    html = page.content.decode()
    assert 'class="share heat-4">66.7 %' in html  # January's 2 of 3 by month 0: the number is there, not only the shade
    # Over the quarter, Opportunity stays ended were 8, 37 and 85 days: L9, one since 3 Jan (102 days), is stuck.
    stuck = {row.status: row.stuck for row in page.context["sales"]["stuck"]}
    assert stuck["opportunity"] == 1
    march = {row.status: row.stuck for row in client.get(reverse("reports:dashboard"), MARCH).context["sales"]["stuck"]}
    for status in ("new", "mql", "opportunity"):
        rows = client.get(reverse("reports:figure", args=[f"stuck-{status}"]), MARCH)
        assert rows.context["page"].paginator.count == march[status] > 0, status


def test_objections_and_reps_are_for_managers(client, at_april, marketer_user):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), MARCH)
    assert page.context["team"].name == "Team" and 'id="reps"' in page.content.decode()
    assert client.get(reverse("reports:figure", args=["objections-price"]), MARCH).status_code == 200
    client.force_login(marketer_user)
    assert client.get(reverse("reports:figure", args=["objections-price"]), MARCH).status_code == 403
    assert 'id="reps"' not in client.get(reverse("reports:dashboard"), MARCH).content.decode()
