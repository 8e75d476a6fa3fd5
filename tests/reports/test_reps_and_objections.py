"""Reps' work and objections in March 2026, worked out by hand."""

from datetime import date

import pytest
import time_machine

from leads import services
from reports.ranges import DateRange, Slice
from reports.selectors.objections import by_category, by_dimension
from reports.selectors.reps import rep_rows
from tests.factories import LeadFactory, SourceFactory
from tests.reports.conftest import local

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))


@pytest.fixture
def march(db, rep_user, other_rep):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        by = {"by": rep_user}
        ads = SourceFactory(slug="ads", name="Ads")
        # A (from ads): three calls on 10 Mar (two connected), a price objection at noon resolved two days later,
        # a meeting and a "Pro" deal on 11 Mar, converted (500 EUR) on 20 Mar.
        a = LeadFactory(owner=rep_user, created_at=local(2026, 3, 1, 9), source=ads, **by)
        for outcome, minute in (("connected", 0), ("no_answer", 10), ("connected", 20)):
            services.activity_log_call(lead=a, direction="outbound", outcome=outcome,
                                       occurred_at=local(2026, 3, 10, 10, minute), **by)
        price = services.objection_log(lead=a, category="price", lead_words="Too dear", at=local(2026, 3, 10, 12), **by)
        services.objection_resolve(objection=price, response="ROI case", at=local(2026, 3, 12, 12), **by)
        services.activity_log_meeting(lead=a, occurred_at=local(2026, 3, 11, 9), **by)
        services.deal_open(lead=a, value=500, currency="EUR", product="Pro", at=local(2026, 3, 11, 10), **by)
        services.lead_convert_to_customer(lead=a, deal_value=500, currency="EUR", at=local(2026, 3, 20, 10), **by)
        # B: a "Basic" deal on 14 Mar, a timing objection on 15 Mar never resolved, the deal lost on 25 Mar;
        # a call on 1 April (after March).
        b = LeadFactory(owner=rep_user, created_at=local(2026, 3, 2, 9), **by)
        deal = services.deal_open(lead=b, value=300, currency="EUR", product="Basic", at=local(2026, 3, 14, 10), **by)
        services.objection_log(lead=b, category="timing", lead_words="Next year", at=local(2026, 3, 15, 10), **by)
        services.deal_mark_lost(deal=deal, reason="Timing", at=local(2026, 3, 25, 10), **by)
        b.refresh_from_db()
        services.activity_log_call(lead=b, direction="outbound", outcome="connected",
                                   occurred_at=local(2026, 4, 1, 10), **by)
        yield {"a": a, "b": b, "ads": ads}


def test_each_reps_work_and_results_and_the_team_total(march, rep_user, other_rep):
    rows, team = rep_rows(MARCH, Slice())
    mine = next(row for row in rows if row.user_id == rep_user.pk)
    theirs = next(row for row in rows if row.user_id == other_rep.pk)

    assert (mine.calls, mine.connects, mine.meetings, mine.objections, mine.conversions, mine.deals_won) == (3, 2, 1, 2, 1, 1)
    assert mine.won_value == {"EUR": 500}
    assert (theirs.calls, theirs.deals_won) == (0, 0)
    assert (team.calls, team.connects, team.objections, team.won_value) == (3, 2, 2, {"EUR": 500})
    only = rep_rows(MARCH, Slice(), only_user=other_rep)[0]
    assert [row.user_id for row in only] == [other_rep.pk]


def test_objections_by_category_with_resolution_and_the_win_rate_after(march):
    rows = {row.category: row for row in by_category(MARCH, Slice())}

    assert set(rows) == {"price", "timing"}
    price, timing = rows["price"], rows["timing"]
    assert (price.raised, price.resolved, price.resolution_rate, price.win_rate_after) == (1, 1, 1.0, 1.0)
    assert price.resolution.median_days == pytest.approx(2.0)
    assert (timing.raised, timing.resolved, timing.resolution_rate, timing.win_rate_after) == (1, 0, 0.0, 0.0)
    assert timing.resolution.count == 0


def test_objections_by_stage_then_source_and_product(march):
    # A had been called (Contacted) when it objected; B had a deal (Opportunity).
    assert by_dimension(MARCH, Slice(), "stage") == [("price", "contacted", 1), ("timing", "opportunity", 1)]
    assert by_dimension(MARCH, Slice(), "source") == [("price", "Ads", 1), ("timing", "", 1)]
    assert by_dimension(MARCH, Slice(), "product") == [("price", "Pro", 1), ("timing", "Basic", 1)]
    assert by_dimension(MARCH, Slice(source=march["ads"].pk), "stage") == [("price", "contacted", 1)]
    with pytest.raises(ValueError, match="stage, source or product"):
        by_dimension(MARCH, Slice(), "colour")


def test_the_page_breaks_objections_down_by_stage_source_and_product(client, march, manager_user):
    client.force_login(manager_user)
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        page = client.get("/reports/objections/", {"start": "2026-03-01", "end": "2026-03-31"})
    breakdowns = {title: rows for title, rows, _ in page.context["objections"]["breakdowns"]}
    assert breakdowns["By product"] == [("price", "Pro", 1), ("timing", "Basic", 1)]
    html = page.content.decode()
    assert "<caption>By source</caption>" in html and "<td>Basic</td>" in html
    # Categories and stages by their names; the raised and resolved bars with their numbers written beside them.
    assert "<td>Price</td><td>Contacted</td>" in html and "<td>Timing</td><td>Opportunity</td>" in html
    assert 'id="objections-chart"' in html and "<title>Resolved, Price: 1</title>" in html


def test_every_reps_count_drills_down_to_as_many_rows_for_the_rep_and_for_the_team(client, march, manager_user,
                                                                                 rep_user):
    client.force_login(manager_user)
    figures = {"calls": "rep-calls", "connects": "rep-connects", "objections": "rep-objections",
               "meetings": "rep-meetings", "conversions": "rep-conversions", "deals_won": "rep-deals-won"}
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        page = client.get("/reports/reps/", {"start": "2026-03-01", "end": "2026-03-31"})
        mine = next(row for row in page.context["reps"] if row.user_id == rep_user.pk)
        for column, key in figures.items():
            for who, expected in (({"owner": rep_user.pk}, getattr(mine, column)),
                                  ({}, getattr(page.context["team"], column))):
                listing = client.get(f"/reports/figures/{key}/", {"start": "2026-03-01", "end": "2026-03-31", **who})
                assert listing.status_code == 200, key
                assert listing.context["page"].paginator.count == expected > 0, (key, who)
        # The rep's counts link to their own rows, the team's to everyone's.
        html = page.content.decode()
        assert f'href="/reports/figures/rep-calls/?start=2026-03-01&amp;end=2026-03-31&amp;owner={rep_user.pk}"' in html
        assert 'href="/reports/figures/rep-calls/?start=2026-03-01&amp;end=2026-03-31"' in html
