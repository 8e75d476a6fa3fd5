"""What a report page reads once and shares between its figures gives the figures each reads alone, and a
slice by first landing page narrows every kind of row (stage changes, deals) to its leads."""

from datetime import date

import time_machine

from leads.models import LeadTouch
from reports.ranges import DateRange, Slice
from reports.selectors import attention, funnel, pipeline, sales
from tests.reports.conftest import local

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))


def test_the_open_deals_read_once_give_the_pipeline_forecast_and_velocity_read_alone(with_may_deal):
    totals = pipeline.open_deal_totals(Slice())

    assert sum(t.deals for t in totals) == 2  # L9's open deal and L3's new one
    assert pipeline.pipeline_by_stage(Slice(), totals=totals) == pipeline.pipeline_by_stage(Slice())
    assert pipeline.weighted_forecast(Slice(), totals=totals) == pipeline.weighted_forecast(Slice())
    assert pipeline.pipeline_velocity(MARCH, Slice(), totals=totals) == \
        pipeline.pipeline_velocity(MARCH, Slice())


def test_time_in_stage_read_once_gives_the_stuck_leads_read_alone(with_may_deal):
    stays = sales.time_in_stage(MARCH, Slice())

    assert any(row.spread.count for row in stays)
    assert attention.stuck_by_stage(MARCH, Slice(), stays=stays) == attention.stuck_by_stage(MARCH, Slice())


def test_the_open_leads_read_once_give_the_stuck_and_cold_leads_read_alone_and_the_pipelines_count(with_may_deal, settings):
    settings.CRM_COLD_AFTER_DAYS = 14
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        stays = sales.time_in_stage(MARCH, Slice())
        counts = attention.open_lead_counts(MARCH, Slice(), stays=stays)

        assert sum(row.open for row in counts) == sum(row.leads for row in pipeline.pipeline_by_stage(Slice()))
        assert sum(row.cold for row in counts) > 0
        assert attention.stuck_by_stage(MARCH, Slice(), stays=stays, counts=counts) == \
            attention.stuck_by_stage(MARCH, Slice())
        assert attention.cold_by_owner(Slice(), counts=counts) == attention.cold_by_owner(Slice())


def test_visitors_counted_once_give_both_funnels_as_counted_alone(pipeline):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        from tests.reports.conftest import view

        view("v1", local(2026, 3, 3, 9))
        view("v2", local(2026, 3, 4, 9))
        visitors = funnel.human_visitors(MARCH, Slice())

        assert visitors == 2
        assert funnel.cohort_funnel(MARCH, Slice(), visitors=visitors) == funnel.cohort_funnel(MARCH, Slice())
        assert funnel.period_funnel(MARCH, Slice(), visitors=visitors) == funnel.period_funnel(MARCH, Slice())


def test_a_first_landing_page_narrows_stage_entries_and_deals_to_the_leads_that_landed_there(pipeline):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        # L1 (MQL 5 Mar, SQL 10 Mar, won 20 Mar) first landed on /pricing; L2 (SQL 4 Mar) and L4 on the home page.
        LeadTouch.objects.create(lead=pipeline.l1, kind="first", landing_page="/pricing")
        LeadTouch.objects.create(lead=pipeline.l1, kind="last", landing_page="/")
        LeadTouch.objects.create(lead=pipeline.l2, kind="first", landing_page="/")
        LeadTouch.objects.create(lead=pipeline.l4, kind="first", landing_page="/")
        part = Slice(landing_page="/pricing")

        entries = funnel.stage_entries(MARCH, part, ["mql", "sql", "customer"])
        assert sorted(entries.values_list("lead_id", "to_status")) == sorted(
            [(pipeline.l1.pk, "mql"), (pipeline.l1.pk, "sql"), (pipeline.l1.pk, "customer")])
        assert sales.win_rate(MARCH, part) == sales.WinRate(won=1, lost=0)
        assert [(row.currency, row.won) for row in sales.deal_size(MARCH, part)] == [("EUR", 1)]
        home = Slice(landing_page="/")
        assert sorted(funnel.stage_entries(MARCH, home, "sql").values_list("lead_id", flat=True)) == [pipeline.l2.pk]
        assert sales.win_rate(MARCH, home) == sales.WinRate(won=0, lost=0)
