"""The funnel figures of a small pipeline, each worked out by hand (see tests/reports/conftest.py for the story)."""

from datetime import date

import pytest

from reports.ranges import DateRange, Slice
from reports.selectors.funnel import cohort_funnel, period_funnel
from tests.reports.conftest import local, view

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))
EVERYTHING = Slice()


def counts(funnel):
    return {step.key: step.count for step in funnel.steps}


@pytest.fixture
def visits(pipeline):
    view("a", local(2026, 3, 2, 10), utm_source="ads")
    view("a", local(2026, 3, 3, 10), utm_source="ads")
    view("b", local(2026, 3, 31, 23))          # the last hour of March on the team's clock
    view("c", local(2026, 3, 5, 10), kind="bot")
    view("d", local(2026, 4, 1, 0, 10))        # just after
    view("e", local(2026, 3, 6, 10), kind="customer")
    view("f", local(2026, 2, 28, 23, 50))      # just before
    return pipeline


def test_the_cohort_funnel_counts_march_leads_by_the_furthest_stage_they_ever_reached(visits):
    funnel = cohort_funnel(MARCH, EVERYTHING)

    # L1, L2, L3, L5 were created in March (L3 in its last half hour); L6 was merged into L5; L4 is February's.
    # MQL: L1 (went on), L2 (skipped MQL for SQL: it passed it), L3 (reached it in April: by now counts).
    assert counts(funnel) == {"leads": 4, "mql": 3, "sql": 2, "opportunity": 1, "customer": 1}
    assert [step.rate for step in funnel.steps] == [None, 3 / 4, 2 / 3, 1 / 2, 1 / 1]
    assert funnel.visitors == 2  # a (twice) and b; not the bot, the customer, nor the visits either side of March
    assert funnel.traffic_to_lead == 4 / 2
    assert funnel.lead_to_customer == 1 / 4


def test_the_period_funnel_counts_entries_into_each_stage_made_in_march(visits):
    funnel = period_funnel(MARCH, EVERYTHING)

    # MQL entries: L1 on 5 Mar, L4 on 1 Mar and again on 3 Mar after recycling (L3's is April's).
    # Customer: L1 (20 Mar) and L8 (31 Mar, 23:30); L10 converted half an hour after March.
    assert counts(funnel) == {"leads": 4, "mql": 3, "sql": 2, "opportunity": 1, "customer": 2}
    assert funnel.kind == "period"
    assert funnel.steps[-1].rate == 2 / 1  # activity, not people: a ratio over 100 % is possible


def test_a_slice_by_source_counts_its_leads_and_its_visits(visits):
    funnel = cohort_funnel(MARCH, Slice(source=visits.ads.pk))

    assert counts(funnel) == {"leads": 1, "mql": 1, "sql": 1, "opportunity": 1, "customer": 1}
    assert funnel.visitors == 1


def test_a_slice_by_owner_has_no_visitor_count(visits):
    funnel = cohort_funnel(MARCH, Slice(owner=visits.boss.pk))

    assert funnel.visitors is None and funnel.traffic_to_lead is None
    assert funnel.leads == 0  # the manager made the leads but owns none of them


def test_the_range_is_read_on_the_teams_clock(visits):
    april_first = DateRange(date(2026, 4, 1), date(2026, 4, 1))
    assert counts(period_funnel(april_first, EVERYTHING))["mql"] == 1   # L3, at 00:30
    assert counts(cohort_funnel(april_first, EVERYTHING))["leads"] == 0
    assert cohort_funnel(april_first, EVERYTHING).visitors == 1        # d, at 00:10


def test_a_range_that_ends_before_it_starts_or_runs_for_years_is_refused():
    with pytest.raises(ValueError, match="earlier day first"):
        DateRange(date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError, match="at most"):
        DateRange(date(2020, 1, 1), date(2026, 1, 1))
