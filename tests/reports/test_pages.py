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


def report(key: str) -> str:
    return reverse("reports:report", args=[key])


def test_a_manager_sees_the_funnel_and_the_sales_figures_and_each_drills_down_to_as_many_rows(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), MARCH)
    assert page.status_code == 200
    assert [step.count for step in page.context["cohort"].steps] == [4, 3, 2, 1, 1]
    assert "Cohort funnel" in page.content.decode()
    sales = client.get(report("sales"), MARCH)
    assert (sales.context["sales"]["win_rate"].won, sales.context["sales"]["win_rate"].lost) == (2, 1)
    assert 'id="win-rate">66.7 %' in sales.content.decode()

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
    assert page.status_code == 200
    tabs = [tab["key"] for tab in page.context["tabs"]]
    assert tabs == ["funnel", "cohorts", "economics", "nurturing"]
    for key in ("sales", "pipeline", "attention", "objections", "reps"):
        assert client.get(report(key), MARCH).status_code == 403, key
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
    backwards = client.get(reverse("reports:figure", args=["cohort-leads"]), {"start": "2026-04-01", "end": "2026-03-01"})
    assert backwards.status_code == 400 and "To: The range ends before it starts" in backwards.content.decode()
    assert client.get(reverse("reports:figure", args=["no-such-figure"]), MARCH).status_code == 404


def test_a_slice_from_the_address_narrows_every_figure(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), {**MARCH, "source": at_april.ads.pk})
    assert [step.count for step in page.context["cohort"].steps] == [1, 1, 1, 1, 1]
    assert client.get(report("sales"), {**MARCH, "source": at_april.ads.pk}).context["sales"]["win_rate"].won == 1
    # The tabs keep the range and the slice.
    assert f'href="/reports/sales/?start=2026-03-01&amp;end=2026-03-31&amp;source={at_april.ads.pk}"' in (
        page.content.decode())


def test_the_pipeline_now_drills_down_to_its_open_leads_and_deals(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(report("pipeline"), MARCH)
    by_stage = {row.status: row.leads for row in page.context["pipeline"]["by_stage"]}
    for status, count in by_stage.items():
        rows = client.get(reverse("reports:figure", args=[f"open-{status}"]), MARCH)
        assert rows.context["page"].paginator.count == count, status
    assert client.get(reverse("reports:figure", args=["deals-open"]), MARCH).context["page"].paginator.count == 1
    assert 'id="forecast"' in page.content.decode()


def test_the_cohort_heat_map_and_the_stuck_leads_are_on_the_page(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(report("cohorts"), {"start": "2026-01-01", "end": "2026-03-31", "cohort_target": "mql"})
    assert [row.reached for row in page.context["cohorts"]] == [[2, 2, 2, 3], [1, 2, 2], [2, 3]]
    html = page.content.decode()
    # January's 2 of 3 by month 0: the number is there, not only the shade, and it links to those 2 leads.
    assert ('class="share heat-4"><a href="/reports/figures/cohort-cell/?start=2026-01-01&amp;end=2026-03-31&amp;'
            'cohort_target=mql&amp;month=2026-01&amp;after=0" title="2 of 3 leads">66.7 %</a>') in html
    for row in page.context["cohorts"]:
        month = {"start": "2026-01-01", "end": "2026-03-31", "cohort_target": "mql", "month": f"{row.month:%Y-%m}"}
        everyone = client.get(reverse("reports:figure", args=["cohort-cell"]), month)
        assert everyone.context["page"].paginator.count == row.leads
        for after, reached in enumerate(row.reached):
            cell = client.get(reverse("reports:figure", args=["cohort-cell"]), {**month, "after": after})
            assert cell.context["page"].paginator.count == reached, (row.month, after)
    wrong = client.get(reverse("reports:figure", args=["cohort-cell"]), {"month": "January", "after": "-1"})
    assert wrong.status_code == 400 and "YYYY-MM" in wrong.content.decode()
    # Each target's button keeps the range and sets the target once.
    assert 'href="?start=2026-01-01&amp;end=2026-03-31&amp;cohort_target=sql"' in html
    assert html.count("cohort_target=") == 4 + sum(len(row.reached) for row in page.context["cohorts"])
    # Over the quarter, Opportunity stays ended were 8, 37 and 85 days: L9, one since 3 Jan (102 days), is stuck.
    quarter = client.get(report("attention"), {"start": "2026-01-01", "end": "2026-03-31"})
    stuck = {row.status: row.stuck for row in quarter.context["attention"]["stuck"]}
    assert stuck["opportunity"] == 1
    march = {row.status: row.stuck for row in client.get(report("attention"), MARCH).context["attention"]["stuck"]}
    for status in ("new", "mql", "opportunity"):
        rows = client.get(reverse("reports:figure", args=[f"stuck-{status}"]), MARCH)
        assert rows.context["page"].paginator.count == march[status] > 0, status


def test_objections_and_reps_are_for_managers(client, at_april, marketer_user):
    client.force_login(at_april.boss)
    page = client.get(report("reps"), MARCH)
    assert page.context["team"].name == "Team" and 'id="reps"' in page.content.decode()
    assert client.get(reverse("reports:figure", args=["objections-price"]), MARCH).status_code == 200
    client.force_login(marketer_user)
    assert client.get(reverse("reports:figure", args=["objections-price"]), MARCH).status_code == 403
    assert client.get(report("reps"), MARCH).status_code == 403
    assert client.get(report("objections"), MARCH).status_code == 403
    assert 'href="/reports/reps/' not in client.get(reverse("reports:dashboard"), MARCH).content.decode()


def test_the_week_by_week_chart_draws_each_week_and_names_its_lines(client, at_april):
    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), MARCH)
    weeks = page.context["weeks"]
    assert len(weeks) == 6 and sum(w.leads for w in weeks) == 4 and sum(w.won for w in weeks) == 2
    html = page.content.decode()
    assert html.count("<polyline") == 2 and "● solid: Leads created" in html and "▪ dashed: Deals won" in html
    assert "<title>Deals won: 1</title>" in html


def test_an_unknown_report_is_not_found(client, at_april):
    client.force_login(at_april.boss)
    assert client.get(report("no-such-report"), MARCH).status_code == 404


def test_each_page_reads_only_its_own_report(client, at_april, django_assert_max_num_queries):
    client.force_login(at_april.boss)
    client.get(report("reps"), MARCH)  # the session and the user read once
    with django_assert_max_num_queries(13):  # one of them the bell's unread count
        page = client.get(report("reps"), MARCH)
    assert "cohort" not in page.context and "sales" not in page.context


def test_time_in_stage_drills_down_to_its_stays_in_the_order_the_median_is_counted(client, at_april):
    from reports.selectors.common import nearest_rank

    client.force_login(at_april.boss)
    page = client.get(report("sales"), MARCH)
    rows = [row for row in page.context["sales"]["time_in_stage"] if row.spread.count]
    # In March leads left New (L1, L2, L4), MQL (L1, L4) and SQL (L1, L2).
    assert {"new", "mql", "sql"} <= {row.status for row in rows}
    for row in rows:
        listing = client.get(reverse("reports:figure", args=[f"stays-{row.status}"]), MARCH)
        assert listing.context["page"].paginator.count == row.spread.count, row.status
        days = [line[2] for line in listing.context["rows"]]
        assert days == sorted(days), row.status
        assert days[nearest_rank(len(days), 0.5)] == pytest.approx(row.spread.median_days, abs=1e-4), row.status
        assert days[nearest_rank(len(days), 0.9)] == pytest.approx(row.spread.p90_days, abs=1e-4), row.status
        assert f'href="/reports/figures/stays-{row.status}/?' in page.content.decode()
        assert f"<title>p90, {row.label}: {row.spread.p90_days:.1f} d</title>" in page.content.decode()


def test_cold_leads_drill_down_per_owner_and_for_the_unassigned_pool(client, at_april, rep_user):
    from leads import services

    services.lead_assign_owner(leads=[at_april.l4, at_april.l9], owner=rep_user, by=at_april.boss)
    client.force_login(at_april.boss)
    page = client.get(report("attention"), MARCH)
    cold = page.context["attention"]["cold"]
    assert sum(row.cold for row in cold) > 0
    html = page.content.decode()
    for row in cold:
        if row.owner_id:
            listing = client.get(reverse("reports:figure", args=["cold"]), {**MARCH, "owner": row.owner_id})
            assert f"owner={row.owner_id}" in html
        else:
            listing = client.get(reverse("reports:figure", args=["cold-unassigned"]), MARCH)
        assert listing.status_code == 200
        assert listing.context["page"].paginator.count == row.cold, row.owner
    rep_row = next(row for row in cold if row.owner_id == rep_user.pk)
    assert rep_row.cold == 2  # L4 and L9: nobody called, met or emailed them since before the cut-off


def test_a_slice_that_names_nothing_known_says_so_and_filters_cost_no_query(client, at_april, rep_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(at_april.boss)
    page = client.get(reverse("reports:dashboard"), {**MARCH, "source": 999999})
    assert page.status_code == 200 and "cohort" not in page.context
    assert "Select a valid choice" in page.context["form"].errors["source"][0]
    assert client.get(reverse("reports:dashboard"), {**MARCH, "owner": "tom"}).context["form"].errors["owner"]
    assert client.get(reverse("reports:figure", args=["cohort-leads"]), {**MARCH, "source": 999999}).status_code == 400
    # The chosen source and owner are checked against the options the page shows anyway: no query of their own.
    counts = []
    for query in (MARCH, {**MARCH, "source": at_april.ads.pk, "owner": rep_user.pk, "landing_page": "/"}):
        client.get(report("cohorts"), query)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(report("cohorts"), query).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    html = client.get(reverse("reports:dashboard"), {**MARCH, "source": at_april.ads.pk}).content.decode()
    assert f'<option value="{at_april.ads.pk}" selected>Ads</option>' in html
