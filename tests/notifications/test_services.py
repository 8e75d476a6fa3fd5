"""Who is told what, once: assignments read from the event log, tasks coming due and deals gone quiet."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.http import Http404

from core.models import EventCursor
from leads import services as lead_services
from notifications import services
from notifications.models import Notification
from tests.factories import LeadFactory

NOW = datetime(2026, 6, 3, 10, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def told(kind=None) -> list[tuple[str, str]]:
    rows = Notification.objects.order_by("pk")
    if kind:
        rows = rows.filter(kind=kind)
    return list(rows.values_list("recipient__username", "kind"))


def test_a_lead_assigned_to_another_rep_notifies_them_and_reading_the_log_twice_notifies_once(
        clock, manager_user, rep_user, other_rep):
    lead = LeadFactory(first_name="Ada", last_name="Lovelace", owner=None)
    lead_services.lead_assign_owner(leads=[lead], owner=other_rep, by=manager_user)

    services.notifications_from_events()
    services.notifications_from_events()
    EventCursor.objects.filter(name=services.CURSOR).update(position=0)  # the log read again from the start
    services.notifications_from_events()

    assert told() == [("rep2", "assigned")]
    assert Notification.objects.get().title == "Ada Lovelace was assigned to you"


def test_a_rep_claiming_a_lead_or_a_manager_taking_one_is_not_told_of_it(clock, manager_user, rep_user):
    pooled, taken = LeadFactory(owner=None), LeadFactory(owner=None)
    lead_services.lead_claim(lead=pooled, by=rep_user)
    lead_services.lead_assign_owner(leads=[taken], owner=manager_user, by=manager_user)
    assert services.notifications_from_events() == 1  # the assignment; a claim is not read at all
    assert told() == []


def test_a_task_coming_due_notifies_its_assignee_once_however_often_the_check_runs(clock, rep_user):
    lead = LeadFactory(first_name="Ada", last_name="Lovelace", owner=rep_user)
    task = lead_services.task_create(assignee=rep_user, lead=lead, title="Call back", due_at=NOW + timedelta(minutes=10),
                                     by=rep_user)
    lead_services.task_create(assignee=rep_user, title="Later", due_at=NOW + timedelta(hours=2), by=rep_user)

    assert services.notifications_check_due(now=NOW) == 1
    assert services.notifications_check_due(now=NOW + timedelta(minutes=1)) == 0
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.lead) == (rep_user, "task_due", lead)
    assert notification.title == "Task due: Call back (Ada Lovelace)"
    assert notification.source == f"task:{task.pk}:{task.due_at.isoformat()}"


def test_a_snoozed_task_is_told_again_when_it_comes_due_again_and_a_done_one_not(clock, rep_user):
    task = lead_services.task_create(assignee=rep_user, title="Call back", due_at=NOW + timedelta(minutes=5), by=rep_user)
    done = lead_services.task_create(assignee=rep_user, title="Sent", due_at=NOW + timedelta(minutes=5), by=rep_user)
    lead_services.task_complete(task=done, by=rep_user)
    services.notifications_check_due(now=NOW)
    lead_services.task_snooze(task=task, until=NOW + timedelta(days=1), by=rep_user)

    assert services.notifications_check_due(now=NOW + timedelta(days=1, minutes=-10)) == 1
    assert told() == [("rep1", "task_due"), ("rep1", "task_due")]


def test_an_open_deal_without_change_for_the_stalled_days_notifies_the_leads_owner_once(clock, rep_user, settings):
    settings.CRM_DEAL_STALLED_DAYS = 14
    lead = LeadFactory(owner=rep_user, first_name="Ada", last_name="Lovelace")
    deal = lead_services.deal_open(lead=lead, value="1200", currency="EUR", product="Team plan", by=rep_user)
    fresh = lead_services.deal_open(lead=LeadFactory(owner=rep_user), value="10", currency="EUR", by=rep_user)

    assert services.notifications_check_due(now=NOW + timedelta(days=13)) == 0
    clock.move_to(NOW + timedelta(days=10))
    lead_services.deal_update(deal=fresh, value="20", by=rep_user)  # a change: its stall starts again
    later = NOW + timedelta(days=15)
    assert services.notifications_check_due(now=later) == 1
    assert services.notifications_check_due(now=later + timedelta(hours=1)) == 0

    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.lead_id) == (rep_user, "deal_stalled", deal.lead_id)
    assert notification.title == "Deal stalled: Team plan with Ada Lovelace, no change in 15 days"


def test_a_won_deal_is_never_stalled(clock, rep_user):
    lead = LeadFactory(owner=rep_user)
    lead_services.lead_convert_to_customer(lead=lead, deal_value="100", by=rep_user)
    assert services.notifications_check_due(now=NOW + timedelta(days=60)) == 0


def test_a_user_cannot_mark_another_users_notification_read(clock, rep_user, other_rep):
    notification = Notification.objects.create(recipient=other_rep, kind="reply", title="Ada replied", url="/today/",
                                               source="event:1")
    with pytest.raises(Http404):
        services.notification_mark_read(notification=notification, by=rep_user)
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_all_read_marks_only_the_users_own_unread_notifications(clock, rep_user, other_rep):
    for n, user in enumerate((rep_user, rep_user, other_rep)):
        Notification.objects.create(recipient=user, kind="reply", title="Ada replied", url="/today/", source=f"event:{n}")
    assert services.notifications_mark_all_read(user=rep_user) == 2
    assert list(Notification.objects.filter(read_at__isnull=True).values_list("recipient__username", flat=True)) == ["rep2"]
