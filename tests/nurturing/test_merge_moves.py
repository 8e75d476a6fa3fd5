"""Two leads merged: their sequences and email events follow the person to the lead kept, and back on undo."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from core.events import EventType
from core.models import DomainEvent
from leads import services as lead_services
from nurturing import services
from nurturing.models import Delivery, EmailEvent, Enrollment
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db

TUESDAY_10 = "2026-03-10 10:00:00Z"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(TUESDAY_10, tick=False) as traveller:
        yield traveller


def email_event(lead, key):
    return EmailEvent.objects.create(
        lead=lead, kind=EmailEvent.Kind.OPENED, provider="manual", occurred_at=timezone.now(), dedupe_key=key,
    )


def test_enrollments_and_email_events_move_to_the_kept_lead(manager_user):
    welcome, webinar = sequence_with_steps(name="Welcome"), sequence_with_steps(name="Webinar")
    keep, merge = LeadFactory(), LeadFactory()
    kept_enrollment = services.enrollment_create(lead=keep, sequence=welcome)
    enrollment = services.enrollment_create(lead=merge, sequence=webinar)
    delivery = enrollment.deliveries.get()
    events = [email_event(merge, "a"), email_event(merge, "b")]
    keeps_event = email_event(keep, "c")

    record = lead_services.lead_merge(keep=keep, merge=merge, by=manager_user)

    enrollment.refresh_from_db()
    delivery.refresh_from_db()
    assert (enrollment.lead, enrollment.status) == (keep, Enrollment.Status.ACTIVE)
    assert delivery.enrollment == enrollment and delivery.status == Delivery.Status.SCHEDULED
    assert set(EmailEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("lead_id", flat=True)) == {keep.pk}
    assert record.moved["nurturing.enrollment"] == [enrollment.pk]
    assert record.moved["nurturing.emailevent"] == [e.pk for e in events]
    assert "nurturing.enrollment.ended" not in record.moved
    kept_enrollment.refresh_from_db()
    keeps_event.refresh_from_db()
    assert (kept_enrollment.lead, keeps_event.lead) == (keep, keep)


def test_in_the_same_sequence_the_merged_leads_enrollment_ends_and_stays_with_it(manager_user):
    welcome = sequence_with_steps(name="Welcome")
    keep, merge = LeadFactory(), LeadFactory()
    kept = services.enrollment_create(lead=keep, sequence=welcome)
    theirs = services.enrollment_create(lead=merge, sequence=welcome)

    record = lead_services.lead_merge(keep=keep, merge=merge, by=manager_user)

    theirs.refresh_from_db()
    kept.refresh_from_db()
    assert (theirs.lead, theirs.status, theirs.exit_reason) == (merge, Enrollment.Status.EXITED, f"merged into lead #{keep.pk}")
    assert theirs.deliveries.get().status == Delivery.Status.SKIPPED
    assert (kept.lead, kept.status) == (keep, Enrollment.Status.ACTIVE)
    assert kept.deliveries.get().status == Delivery.Status.SCHEDULED
    assert record.moved["nurturing.enrollment.ended"] == [theirs.pk]
    assert "nurturing.enrollment" not in record.moved
    exit_event = DomainEvent.objects.get(type=EventType.ENROLLMENT_EXITED, subject_id=theirs.pk)
    assert exit_event.pk in record.events_moved and exit_event.actor_user == manager_user


def test_a_finished_enrollment_in_the_kept_leads_sequence_moves(manager_user, frozen):
    welcome = sequence_with_steps(name="Welcome")
    keep, merge = LeadFactory(), LeadFactory()
    old = services.enrollment_create(lead=merge, sequence=welcome)
    services.enrollment_exit(enrollment=old, reason="Paused by hand", by=manager_user)
    frozen.shift(timedelta(hours=1))
    services.enrollment_create(lead=keep, sequence=welcome)

    record = lead_services.lead_merge(keep=keep, merge=merge, by=manager_user)

    old.refresh_from_db()
    assert (old.lead, old.status) == (keep, Enrollment.Status.EXITED)
    assert record.moved["nurturing.enrollment"] == [old.pk]


def test_undo_moves_enrollments_and_email_events_back_and_an_ended_enrollment_stays_ended(manager_user, frozen):
    welcome, webinar = sequence_with_steps(name="Welcome"), sequence_with_steps(name="Webinar")
    keep, merge = LeadFactory(), LeadFactory()
    services.enrollment_create(lead=keep, sequence=welcome)
    ended = services.enrollment_create(lead=merge, sequence=welcome)
    moved = services.enrollment_create(lead=merge, sequence=webinar)
    event = email_event(merge, "a")
    record = lead_services.lead_merge(keep=keep, merge=merge, by=manager_user)
    frozen.shift(timedelta(hours=1))
    since = email_event(keep, "b")

    lead_services.lead_merge_undo(merge=record, by=manager_user)

    for row in (ended, moved, event, since):
        row.refresh_from_db()
    assert (moved.lead, moved.status) == (merge, Enrollment.Status.ACTIVE)
    assert event.lead == merge
    assert since.lead == keep
    assert (ended.lead, ended.status) == (merge, Enrollment.Status.EXITED)
    exit_event = DomainEvent.objects.get(type=EventType.ENROLLMENT_EXITED, subject_id=ended.pk)
    assert exit_event.lead_id == merge.pk
