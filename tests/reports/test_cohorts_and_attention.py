"""Cohorts, stuck and cold leads of the small pipeline on 15 April 2026, worked out by hand."""

from datetime import date

import pytest
import time_machine

from reports.ranges import DateRange, Slice
from reports.selectors.attention import cold_by_owner, stuck_by_stage, stuck_leads
from reports.selectors.cohorts import cohort_table
from tests.reports.conftest import local

FIRST_QUARTER = DateRange(date(2026, 1, 1), date(2026, 3, 31))
MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))


@pytest.fixture
def mid_april(pipeline):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        yield pipeline


def table(target):
    return [(row.month, row.leads, row.reached) for row in cohort_table(FIRST_QUARTER, Slice(), target)]


def test_customers_by_month_created_and_month_after(mid_april):
    # January: L8 became a customer on 31 Mar (month 2 after), L10 on 1 Apr (month 3), L9 not yet.
    # February: L7 lost, L4 an MQL. March: L1 a customer in March (month 0); L2, L3, L5 not.
    assert table("customer") == [
        (date(2026, 1, 1), 3, [0, 0, 1, 2]),
        (date(2026, 2, 1), 2, [0, 0, 0]),
        (date(2026, 3, 1), 4, [1, 1]),
    ]
    assert cohort_table(FIRST_QUARTER, Slice(), "customer")[0].shares == [0, 0, 1 / 3, 2 / 3]


def test_mql_reached_counts_a_lead_that_went_past_it(mid_april):
    # January: L8 and L9 went to Opportunity in January (past MQL), L10 straight to customer in April.
    # February: L7 to Opportunity on 1 Feb, L4 MQL on 1 Mar. March: L1 and L2 in March, L3 on 1 April.
    assert table("mql") == [
        (date(2026, 1, 1), 3, [2, 2, 2, 3]),
        (date(2026, 2, 1), 2, [1, 2, 2]),
        (date(2026, 3, 1), 4, [2, 3]),
    ]


def test_stuck_leads_are_in_their_stage_longer_than_its_p90(mid_april):
    rows = {row.status: row for row in stuck_by_stage(MARCH, Slice())}

    # New: p90 of March's stays is L1's 3 days; L5 has been new since 15 Mar. MQL: p90 5 days (L1); L4 (since
    # 3 Mar) and L3 (since 1 Apr) are past it. Opportunity: p90 is L8's 85 days; L9 has been one since 3 Jan.
    assert {status: row.stuck for status, row in rows.items()} == {
        "new": 1, "contacted": 0, "nurturing": 0, "mql": 2, "sql": 0, "opportunity": 1}
    assert rows["contacted"].usual_days is None  # no stay in Contacted ended in March
    assert set(stuck_leads(MARCH, Slice(), "mql")) == {mid_april.l3, mid_april.l4}


def test_cold_leads_by_owner_with_the_pool_as_a_row(mid_april, rep_user):
    from leads import services

    services.lead_assign_owner(leads=[mid_april.l3], owner=rep_user, by=mid_april.boss)
    mid_april.l3.refresh_from_db()
    services.activity_log_call(lead=mid_april.l3, by=rep_user, outcome="connected", direction="outbound")
    rows = [(row.owner, row.cold, row.open) for row in cold_by_owner(Slice())]

    # The pool's three open leads were last touched (or made) more than 14 days ago; rep1 called L3 just now.
    assert rows == [("Unassigned", 3, 3), (rep_user.get_full_name() or "rep1", 0, 1)]
