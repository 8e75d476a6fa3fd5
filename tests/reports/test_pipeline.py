"""The open pipeline of the small pipeline on 15 April 2026, worked out by hand."""

from datetime import UTC, date
from decimal import Decimal

import pytest
import time_machine

from reports.ranges import DateRange, Slice
from reports.selectors.pipeline import pipeline_by_stage, pipeline_velocity, weighted_forecast
from tests.reports.conftest import local

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))


def test_pipeline_by_stage_counts_open_leads_now_with_their_open_deal_value(with_may_deal):
    rows = {row.status: row for row in pipeline_by_stage(Slice())}

    # Open now: L5 (new), L4 (MQL), L3 and L9 (opportunity, 1000 + 700 EUR). Lost, won and merged leads are not.
    assert {status: row.leads for status, row in rows.items()} == {
        "new": 1, "contacted": 0, "nurturing": 0, "mql": 1, "sql": 0, "opportunity": 2}
    assert rows["opportunity"].value == {"EUR": Decimal("1700.00")}
    assert rows["opportunity"].probability == Decimal("0.4") and rows["new"].value == {}


def test_the_weighted_forecast_is_value_times_the_deal_stage_probability_by_expected_close_month(with_may_deal):
    # Both deals opened in the first deal stage, Qualification (10 %).
    forecast = [(row.month, row.currency, row.deals, row.value, row.weighted) for row in weighted_forecast(Slice())]

    assert forecast == [
        (date(2026, 5, 1), "EUR", 1, Decimal("1000.00"), Decimal("100.00")),
        (None, "EUR", 1, Decimal("700.00"), Decimal("70.00")),  # L9's deal has no expected close date
    ]


def test_a_deal_moved_to_proposal_weighs_at_its_probability_and_one_without_a_stage_at_its_leads(with_may_deal):
    from leads.deals import deal_change_stage
    from leads.models import Deal, DealStage

    may = Deal.objects.get(lead=with_may_deal.l3)
    with time_machine.travel(local(2026, 4, 15, 13), tick=False):
        deal_change_stage(deal=may, stage=DealStage.objects.get(name="Proposal"), by=with_may_deal.boss)
    Deal.objects.exclude(pk=may.pk).filter(status="open").update(stage=None)  # opened before stages were in use

    weighted = {row.month: row.weighted for row in weighted_forecast(Slice())}

    assert weighted == {date(2026, 5, 1): Decimal("400.00"), None: Decimal("280.00")}  # 40 %; the lead's 40 %


def test_velocity_is_open_deals_times_win_rate_times_deal_size_over_the_cycle(with_may_deal):
    [eur] = pipeline_velocity(MARCH, Slice())

    cycles = [(local(2026, 3, 20, 10).astimezone(UTC) - local(2026, 3, 2, 10).astimezone(UTC)),
              (local(2026, 3, 31, 23, 30).astimezone(UTC) - local(2026, 1, 1, 10).astimezone(UTC))]
    mean_days = sum(c.total_seconds() for c in cycles) / 2 / 86400
    assert (eur.currency, eur.open_deals, eur.win_rate, eur.average_deal) == ("EUR", 2, 2 / 3, Decimal("1500.00"))
    assert eur.cycle_days == pytest.approx(mean_days)
    assert float(eur.per_day) == pytest.approx(2 * (2 / 3) * 1500 / mean_days, abs=0.01)
