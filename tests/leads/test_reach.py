"""The reached stages kept on each lead (leads.reach) are what its stage history says, through every writer of
the history: the stage service, conversion, merges and their undo, the historical import, the data migration."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine

from core.events import Actor
from leads import services
from leads.history import WON, HistoryRow, history_import_batch
from leads.models import Lead
from leads.reach import REACHED, refresh_all_reached
from tests.factories import LeadFactory

T0 = datetime(2026, 3, 2, 9, tzinfo=dt_timezone.utc)
FIELDS = [field for _, field in REACHED]


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def reached(lead) -> list:
    lead.refresh_from_db()
    return [getattr(lead, field) for field in FIELDS]


def recomputed(lead) -> list:
    """What the history says, computed in Python: the first entry into each stage or one after it."""
    order = [status for status, _ in REACHED]
    firsts = []
    for status in order:
        later = order[order.index(status):]
        entries = [c.changed_at for c in lead.stage_changes.all() if c.to_status in later]
        firsts.append(min(entries) if entries else None)
    return firsts


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(day(60), tick=False):
        yield


@pytest.mark.django_db
def test_a_skipped_stage_is_reached_when_a_later_one_is_entered(manager_user):
    lead = LeadFactory(created_at=day(0), by=manager_user)
    assert reached(lead) == [None, None, None, None]
    services.lead_change_stage(lead=lead, to_status="sql", at=day(1), by=manager_user)
    assert reached(lead) == [day(1), day(1), None, None]
    services.deal_open(lead=lead, value=100, currency="EUR", at=day(2), by=manager_user)
    services.lead_convert_to_customer(lead=lead, deal_value=100, currency="EUR", at=day(5), by=manager_user)
    assert reached(lead) == [day(1), day(1), day(2), day(5)] == recomputed(lead)


@pytest.mark.django_db
def test_recycling_and_reentering_keeps_the_first_time(manager_user):
    lead = LeadFactory(created_at=day(0), by=manager_user)
    services.lead_change_stage(lead=lead, to_status="mql", at=day(1), by=manager_user)
    services.lead_change_stage(lead=lead, to_status="nurturing", at=day(2), by=manager_user)
    services.lead_change_stage(lead=lead, to_status="mql", at=day(3), by=manager_user)
    services.lead_change_stage(lead=lead, to_status="lost", reason="No budget", at=day(4), by=manager_user)
    services.lead_change_stage(lead=lead, to_status="nurturing", at=day(5), by=manager_user)
    services.lead_change_stage(lead=lead, to_status="sql", at=day(6), by=manager_user)
    assert reached(lead) == [day(1), day(6), None, None] == recomputed(lead)


@pytest.mark.django_db
def test_a_merge_gives_the_kept_lead_the_earlier_reach_and_its_undo_takes_it_back(manager_user):
    keep = LeadFactory(created_at=day(0), by=manager_user)
    services.lead_change_stage(lead=keep, to_status="mql", at=day(10), by=manager_user)
    other = LeadFactory(created_at=day(1), by=manager_user)
    services.lead_change_stage(lead=other, to_status="sql", at=day(3), by=manager_user)

    record = services.lead_merge(keep=keep, merge=other, by=manager_user)
    assert reached(keep) == [day(3), day(3), None, None] == recomputed(keep)
    assert reached(other) == [None, None, None, None]

    services.lead_merge_undo(merge=record, by=manager_user)
    assert reached(keep) == [day(10), None, None, None] == recomputed(keep)
    assert reached(other) == [day(3), day(3), None, None] == recomputed(other)


@pytest.mark.django_db
def test_the_historical_import_sets_what_its_history_says(manager_user):
    row = HistoryRow(external_ref="OPP-1", outcome=WON, engaged_at=day(0), closed_at=day(20), value=500,
                     currency="EUR")
    deal, = history_import_batch(rows=[row], made_by=Actor.of(manager_user), by=manager_user)
    # New, then opportunity on the engage date (MQL and SQL skipped), customer when won.
    assert reached(deal.lead) == [day(0), day(0), day(0), day(20)] == recomputed(deal.lead)


@pytest.mark.django_db
def test_a_full_recompute_matches_what_the_services_kept(manager_user):
    leads = [LeadFactory(created_at=day(i), by=manager_user) for i in range(4)]
    services.lead_change_stage(lead=leads[0], to_status="mql", at=day(5), by=manager_user)
    services.lead_change_stage(lead=leads[1], to_status="opportunity", at=day(6), by=manager_user)
    services.lead_change_stage(lead=leads[2], to_status="lost", reason="Gone", at=day(7), by=manager_user)
    kept = [reached(lead) for lead in leads]
    Lead.objects.update(**{field: None for field in FIELDS})
    refresh_all_reached()
    assert [reached(lead) for lead in leads] == kept == [recomputed(lead) for lead in leads]
    assert kept[1] == [day(6), day(6), day(6), None]
