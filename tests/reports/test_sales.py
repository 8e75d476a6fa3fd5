"""Win rate, deal size, time to close, sales cycle and time in stage of the small pipeline, worked out by hand."""

from datetime import UTC, date
from decimal import Decimal

import pytest

from reports.ranges import DateRange, Slice
from reports.selectors.sales import deal_size, sales_cycle, time_in_stage, time_to_close, win_rate
from tests.reports.conftest import local

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))
EVERYTHING = Slice()


def days(start, end) -> float:
    # In UTC: Python subtracts two times of one zone by their wall clocks, ignoring a daylight-saving change.
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 86400


def test_win_rate_counts_the_deals_closed_in_march_and_leaves_open_ones_out(pipeline):
    # Won: L1 (20 Mar), L8 (31 Mar, 23:30). Lost: L7's deal (10 Mar). L2 was lost as a lead, with no deal;
    # L9's deal is open; L10's was won on 1 April.
    result = win_rate(MARCH, EVERYTHING)
    assert (result.won, result.lost, result.rate) == (2, 1, 2 / 3)


def test_deal_size_is_the_mean_of_won_deals_per_currency(pipeline):
    [eur] = deal_size(MARCH, EVERYTHING)
    assert (eur.currency, eur.won, eur.total, eur.average) == ("EUR", 2, Decimal("3000.00"), Decimal("1500.00"))


def test_time_to_close_runs_from_the_deal_to_the_win(pipeline):
    spread = time_to_close(MARCH, EVERYTHING)
    # Elapsed time, as the clock on the wall reads it where the team works: across a daylight-saving change a
    # "day" is 23 or 25 hours.
    l1 = days(local(2026, 3, 12, 10), local(2026, 3, 20, 10))
    l8 = days(local(2026, 1, 5, 10), local(2026, 3, 31, 23, 30))
    assert spread.count == 2
    assert spread.median_days == pytest.approx(l1)  # nearest rank: the 1st of 2
    assert spread.p90_days == pytest.approx(l8)
    assert spread.mean_days == pytest.approx((l1 + l8) / 2)


def test_the_sales_cycle_runs_from_the_lead_to_the_win(pipeline):
    spread = sales_cycle(MARCH, EVERYTHING)
    l1 = days(local(2026, 3, 2, 10), local(2026, 3, 20, 10))
    l8 = days(local(2026, 1, 1, 10), local(2026, 3, 31, 23, 30))
    assert (spread.count, spread.median_days, spread.p90_days) == (2, pytest.approx(l1), pytest.approx(l8))


def test_time_in_stage_is_read_from_the_stays_that_ended_in_march(pipeline):
    stages = {row.status: row.spread for row in time_in_stage(MARCH, EVERYTHING)}

    # New: L2 1 day, L1 3 days, L4 from 23:59 on 28 Feb to 10:00 on 1 Mar (the shortest).
    new = [days(local(2026, 3, 3, 10), local(2026, 3, 4, 10)), days(local(2026, 3, 2, 10), local(2026, 3, 5, 10)),
           days(local(2026, 2, 28, 23, 59), local(2026, 3, 1, 10))]
    assert stages["new"].count == 3
    assert (stages["new"].median_days, stages["new"].p90_days) == (pytest.approx(new[0]), pytest.approx(new[1]))
    assert stages["new"].mean_days == pytest.approx(sum(new) / 3)
    # MQL: L4 1 day (before recycling), L1 5 days. SQL: L1 and L2 2 days each. Nurturing: L4 1 day.
    mql = [days(local(2026, 3, 1, 10), local(2026, 3, 2, 10)), days(local(2026, 3, 5, 10), local(2026, 3, 10, 10))]
    assert (stages["mql"].count, stages["mql"].median_days, stages["mql"].p90_days) == (
        2, pytest.approx(mql[0]), pytest.approx(mql[1]))
    assert (stages["sql"].count, stages["sql"].median_days) == (2, pytest.approx(2.0))
    assert (stages["nurturing"].count, stages["nurturing"].median_days) == (1, pytest.approx(1.0))
    # Opportunity: L1 8 days, L7 37 days (lost with its deal), L8 from 5 Jan to 31 Mar, 23:30.
    l7 = days(local(2026, 2, 1, 10), local(2026, 3, 10, 10))
    l8 = days(local(2026, 1, 5, 10), local(2026, 3, 31, 23, 30))
    assert (stages["opportunity"].count, stages["opportunity"].median_days) == (3, pytest.approx(l7))
    assert stages["opportunity"].p90_days == pytest.approx(l8)
    assert stages["contacted"] == stages["contacted"].__class__(0, None, None, None)


def test_a_slice_by_source_and_by_deal_owner(pipeline, rep_user):
    assert (win_rate(MARCH, Slice(source=pipeline.ads.pk)).won, win_rate(MARCH, Slice(source=pipeline.ads.pk)).lost) == (1, 0)
    # The deals are owned by who opened them (the manager); the rep sold none.
    assert win_rate(MARCH, Slice(owner=rep_user.pk)).rate is None
    assert win_rate(MARCH, Slice(owner=pipeline.boss.pk)).won == 2
