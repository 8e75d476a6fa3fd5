"""Booking: slots, the booking itself and what follows it, through booking.services."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from booking import services
from booking.availability import calendars_for, free_slots
from booking.ics import parse_times
from booking.models import DayOff, Meeting
from booking.services import BookingRefused, meeting_book
from capture.models import Quarantine
from core.models import DomainEvent
from leads.models import Activity, Lead, StageChange
from leads.pipeline import LeadStatus
from nurturing.models import Enrollment
from nurturing.services import enrollment_create
from tests.factories import LeadFactory, manager, rep, sequence_with_steps

from .conftest import NOW, at, calendar, context, person

pytestmark = pytest.mark.django_db


def slots(page, days=1, start=NOW, **kwargs):
    """The free slots' starts from `start` for `days` (one day: the rest of `start`'s UTC day)."""
    found = [slot.starts_at for slot in services.page_slots(page, start=start, days=days, now=NOW, **kwargs)]
    return [moment for moment in found if days > 1 or moment.date() == start.date()]


def book(page, when, *, data=None, address="203.0.113.7", time_zone="America/New_York", lead=None):
    return meeting_book(page=page, starts_at=when, time_zone=time_zone, data=data or person(), context=context(address),
                        lead=lead)


# --- Slots -----------------------------------------------------------------------------------------


def test_slots_follow_the_reps_hours_in_their_time_zone_after_the_notice(page):
    today = slots(page)
    # 9-17 in Berlin is 07:00-15:00 UTC in June; two hours' notice from 08:00 UTC: from 10:00.
    assert today[0] == at("2026-06-02 10:00") and today[-1] == at("2026-06-02 14:30")
    assert len(today) == 10


def test_a_day_off_a_weekend_and_the_horizon_have_no_slots(page, ada):
    DayOff.objects.create(calendar=ada.booking_calendar, date=date(2026, 6, 3))
    week = slots(page, days=7)
    days = {moment.date() for moment in week}
    assert date(2026, 6, 3) not in days and date(2026, 6, 6) not in days and date(2026, 6, 7) not in days
    assert date(2026, 6, 4) in days
    ada.booking_calendar.horizon_days = 1
    ada.booking_calendar.save()
    assert max(slots(page, days=7)) < NOW + timedelta(days=1)


def test_a_booked_meeting_and_its_buffer_take_the_slots_around_it(page, ada):
    ada.booking_calendar.buffer_after_minutes = 15
    ada.booking_calendar.save()
    book(page, at("2026-06-02 11:00"))
    today = slots(page)
    # 11:00-11:30 taken; 15 minutes kept free on each side: 10:30 (ends 11:00, 0 min gap) and 11:30 are gone too.
    assert at("2026-06-02 11:00") not in today
    assert at("2026-06-02 10:30") not in today and at("2026-06-02 11:30") not in today
    assert at("2026-06-02 10:00") in today and at("2026-06-02 12:00") in today


def test_the_daily_maximum_closes_the_day(page, ada):
    ada.booking_calendar.daily_max = 2
    ada.booking_calendar.save()
    book(page, at("2026-06-03 08:00"), data=person("a@example.org"))
    book(page, at("2026-06-03 09:00"), data=person("b@example.org"))
    assert not [s for s in slots(page, days=3) if s.date() == date(2026, 6, 3)]


def test_a_wall_time_the_clocks_skip_is_never_offered(db, booking_form, clock):
    # 29 March 2026: Berlin's clocks go from 02:00 to 03:00. Hours 01:00-04:00 that Sunday.
    night = rep(username="night")
    calendar(night, days=[6], starts=__import__("datetime").time(1), ends=__import__("datetime").time(4),
             notice_minutes=0, horizon_days=400)
    found = free_slots(calendars_for([night.pk], minutes=30, start=at("2026-03-28 00:00"), end=at("2026-03-30 00:00")),
                       minutes=30, start=at("2026-03-28 00:00"), end=at("2026-03-30 00:00"), now=at("2026-03-01 00:00"))
    berlin = [slot.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).strftime("%H:%M")
              for slot in found]
    assert berlin == ["01:00", "01:30", "03:00", "03:30"]


# --- Booking ---------------------------------------------------------------------------------------


def test_a_booking_captures_the_person_and_logs_the_meeting(page, ada, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        booked = book(page, at("2026-06-02 12:00"))
    meeting = booked.meeting
    lead = Lead.objects.get(email="grace@example.org")
    assert meeting.lead == lead and meeting.rep == ada and meeting.status == Meeting.Status.BOOKED
    assert meeting.ends_at - meeting.starts_at == timedelta(minutes=30)
    assert meeting.meeting_url == "https://meet.example.com/ada"
    assert lead.owner == ada  # an unowned lead goes to the rep it booked with
    assert lead.submissions.get().form_slug == "book-demo"
    assert lead.conversions.get().kind.slug == "demo-booked"
    activity = Activity.objects.get(lead=lead, kind=Activity.Kind.MEETING)
    assert activity.author == ada and "Tue 2 Jun 2026 08:00 (America/New_York)" in activity.body
    assert "https://meet.example.com/ada" in activity.body and "Sequences" in activity.body
    assert DomainEvent.objects.filter(type="meeting.booked", lead_id=lead.pk).count() == 1
    # Both sides get the invitation, each in their own time zone.
    to_lead, to_rep = mail.outbox
    assert to_lead.to == ["grace@example.org"] and "08:00–08:30 (America/New_York)" in to_lead.subject
    assert to_rep.to == ["ada@acme.example"] and "14:00–14:30 (Europe/Berlin)" in to_rep.subject
    assert "/booking/" in to_lead.body  # the signed link to reschedule or cancel
    name, content, mimetype = to_lead.attachments[0]
    assert name == "invite.ics" and mimetype.startswith("text/calendar; method=REQUEST")
    assert parse_times(content) == [(at("2026-06-02 12:00"), at("2026-06-02 12:30"))]


def test_a_booking_ends_the_leads_sequences_and_moves_it_to_the_pages_stage(page, ada,
                                                                            django_capture_on_commit_callbacks):
    page.move_to_status = LeadStatus.SQL
    page.save()
    lead = LeadFactory(email="grace@example.org", owner=ada)
    sequence = sequence_with_steps({}, {"delay": timedelta(days=2)})
    enrollment = enrollment_create(lead=lead, sequence=sequence)
    with django_capture_on_commit_callbacks(execute=True):
        book(page, at("2026-06-02 12:00"))
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED and "Meeting" in enrollment.exit_reason
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SQL
    change = StageChange.objects.get(lead=lead, to_status=LeadStatus.SQL)
    assert "Product demo" in change.reason


def test_a_known_person_is_not_made_twice(page):
    lead = LeadFactory(email="grace@example.org", first_name="Grace")
    book(page, at("2026-06-02 12:00"), data=person("GRACE@example.org"))
    assert Lead.objects.filter(email__iexact="grace@example.org").count() == 1
    assert Meeting.objects.get().lead == lead


def test_a_signed_lead_books_without_typing_its_details(page):
    lead = LeadFactory(email="grace@example.org", first_name="Grace", last_name="Hopper")
    booked = book(page, at("2026-06-02 12:00"), data={"goal": "", "consent": "on"}, lead=lead)
    assert booked.meeting.lead == lead


def test_round_robin_books_the_rep_booked_longest_ago_and_the_owner_first(page, ada):
    bob = rep(username="bob", email="bob@acme.example")
    calendar(bob)
    page.reps.add(bob)
    first = book(page, at("2026-06-02 12:00"), data=person("a@example.org")).meeting
    second = book(page, at("2026-06-02 12:00"), data=person("b@example.org")).meeting
    assert {first.rep, second.rep} == {ada, bob}  # the same slot, once with each rep
    with pytest.raises(BookingRefused) as refused:
        book(page, at("2026-06-02 12:00"), data=person("c@example.org"))
    assert refused.value.status == 409
    # A lead owned by a rep on the page books with that rep, even when the other was booked longer ago.
    owned = LeadFactory(email="d@example.org", owner=second.rep)
    third = book(page, at("2026-06-02 13:00"), data=person("d@example.org")).meeting
    assert third.rep == owned.owner


@pytest.mark.parametrize(("when", "message"), [
    ("2026-06-02 07:00", "passed"),
    ("2026-06-02 09:00", "too soon"),
    ("2026-07-20 10:00", "too far ahead"),
    ("2026-06-02 16:00", "outside the hours"),
    ("2026-06-06 10:00", "outside the hours"),
    ("2026-06-02 12:10", "outside the hours"),
])
def test_a_slot_the_page_does_not_offer_is_refused_and_nothing_is_written(page, when, message):
    with pytest.raises(BookingRefused) as refused:
        book(page, at(when))
    assert message in refused.value.errors["slot"]
    assert not Lead.objects.exists() and not Meeting.objects.exists() and not Activity.objects.exists()


def test_a_taken_slot_offers_the_next_free_ones(page):
    book(page, at("2026-06-02 12:00"), data=person("first@example.org"))
    with pytest.raises(BookingRefused) as refused:
        book(page, at("2026-06-02 12:00"), data=person("second@example.org"))
    assert "just taken" in refused.value.errors["slot"]
    assert [s.starts_at for s in refused.value.alternatives] == [at("2026-06-02 12:30"), at("2026-06-02 13:00"),
                                                                  at("2026-06-02 13:30")]
    assert not Lead.objects.filter(email="second@example.org").exists()


def test_a_time_zone_that_does_not_exist_is_refused(page):
    with pytest.raises(BookingRefused) as refused:
        book(page, at("2026-06-02 12:00"), time_zone="Mars/Olympus_Mons")
    assert "Mars/Olympus_Mons" in refused.value.errors["time_zone"]
    assert not Meeting.objects.exists() and not Lead.objects.exists()


def test_a_refused_capture_books_nothing(page):
    with pytest.raises(BookingRefused) as refused:
        book(page, at("2026-06-02 12:00"), data=person(consent=""))
    assert "consent" in refused.value.errors
    assert not Meeting.objects.exists() and not Lead.objects.exists()


def test_a_booking_flood_from_one_address_is_stopped(page, settings):
    settings.CRM_BOOKING_PER_ADDRESS_PER_HOUR = 3
    for n in range(3):
        book(page, at(f"2026-06-03 {8 + n:02d}:00"), data=person(f"p{n}@example.org"))
    with pytest.raises(BookingRefused) as refused:
        book(page, at("2026-06-03 12:00"), data=person("p9@example.org"))
    assert refused.value.status == 429 and refused.value.retry_after > 0
    assert Meeting.objects.count() == 3
    assert book(page, at("2026-06-03 12:00"), data=person("other@example.org"), address="198.51.100.1").meeting


def test_a_booking_held_as_spam_books_nothing(page):
    booked = book(page, at("2026-06-02 12:00"), data=person())
    assert booked.meeting
    spam = services.meeting_book(
        page=page, starts_at=at("2026-06-02 13:00"), time_zone="UTC", data=person("bot@example.org"),
        context=context().__class__(address="203.0.113.9", hosted=True, fill_token=None, honeypot="http://spam"),
    )
    assert spam.held_as_spam and spam.meeting is None
    assert Quarantine.objects.count() == 1 and Meeting.objects.count() == 1


# --- Reschedule, cancel, reminders, held or no-show ---------------------------------------------------


def test_rescheduling_moves_the_meeting_and_sends_the_next_revision(page, django_capture_on_commit_callbacks):
    meeting = book(page, at("2026-06-02 12:00")).meeting
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        moved = services.meeting_reschedule(meeting=meeting, starts_at=at("2026-06-03 09:00"), time_zone="Asia/Tokyo")
    assert moved.starts_at == at("2026-06-03 09:00") and moved.sequence == 1
    assert at("2026-06-02 12:00") in slots(page)  # the old time is free again
    assert "Moved:" in mail.outbox[0].subject and "18:00–18:30 (Asia/Tokyo)" in mail.outbox[0].subject
    assert "SEQUENCE:1" in mail.outbox[0].attachments[0][1]


def test_cancelling_frees_the_slot_and_sends_a_cancellation(page, django_capture_on_commit_callbacks):
    meeting = book(page, at("2026-06-02 12:00")).meeting
    assert at("2026-06-02 12:00") not in slots(page)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.meeting_cancel(meeting=meeting, reason="Found another time")
    assert at("2026-06-02 12:00") in slots(page)
    assert "Cancelled:" in mail.outbox[0].subject
    invitation = mail.outbox[0].attachments[0][1]
    assert "METHOD:CANCEL" in invitation and "STATUS:CANCELLED" in invitation
    with pytest.raises(BookingRefused):
        services.meeting_cancel(meeting=meeting)
    assert Activity.objects.get(kind=Activity.Kind.MEETING).body.startswith("Cancelled by the booker (Found another time).")


def test_a_meeting_that_started_cannot_be_moved_or_cancelled(page, clock):
    meeting = book(page, at("2026-06-02 12:00")).meeting
    clock.move_to(at("2026-06-02 12:05"))
    with pytest.raises(BookingRefused, match="started or passed"):
        services.meeting_cancel(meeting=meeting)
    with pytest.raises(BookingRefused, match="started or passed"):
        services.meeting_reschedule(meeting=meeting, starts_at=at("2026-06-03 09:00"), time_zone="UTC")


def test_the_reminder_goes_out_once_before_the_meeting(page, clock, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        meeting = book(page, at("2026-06-02 12:00")).meeting
    mail.outbox.clear()
    clock.move_to(at("2026-06-02 10:30"))  # 90 minutes before: the page reminds 60 minutes before
    assert services.reminders_due() == []
    clock.move_to(at("2026-06-02 11:01"))
    from booking.tasks import send_reminders

    send_reminders()
    send_reminders()
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@acme.example", "grace@example.org"]
    assert all(m.subject.startswith("Reminder:") for m in mail.outbox)
    meeting.refresh_from_db()
    assert meeting.reminder_sent_at == at("2026-06-02 11:01")


def test_the_rep_marks_a_no_show_and_the_lead_goes_into_the_follow_up(page, ada, clock):
    page.no_show_sequence = sequence_with_steps({}, name="Sorry we missed you")
    page.save()
    meeting = book(page, at("2026-06-02 12:00")).meeting
    with pytest.raises(ValidationError, match="not started"):
        services.meeting_mark(meeting=meeting, outcome="no_show", by=ada)
    clock.move_to(at("2026-06-02 12:40"))
    with pytest.raises(PermissionDenied):
        services.meeting_mark(meeting=meeting, outcome="no_show", by=rep(username="other"))
    marked = services.meeting_mark(meeting=meeting, outcome="no_show", by=ada)
    assert marked.enrolled and marked.meeting.status == Meeting.Status.NO_SHOW
    assert Enrollment.objects.get(lead=meeting.lead).sequence.name == "Sorry we missed you"
    assert DomainEvent.objects.filter(type="meeting.no_show").count() == 1


def test_a_manager_marks_a_meeting_held(page, clock):
    meeting = book(page, at("2026-06-02 12:00")).meeting
    clock.move_to(at("2026-06-02 12:40"))
    marked = services.meeting_mark(meeting=meeting, outcome="held", by=manager())
    assert marked.meeting.status == Meeting.Status.HELD and not marked.enrolled


def test_emails_that_could_not_go_out_are_sent_by_the_next_tick(page, clock, settings, django_capture_on_commit_callbacks):
    import socket

    from booking.tasks import send_reminders

    with socket.socket() as probe:  # a port nobody listens on: the mail server is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    with django_capture_on_commit_callbacks(execute=True):
        meeting = book(page, at("2026-06-02 12:00")).meeting  # booked all the same
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED and meeting.emails_sent_for is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_reminders()
    assert mail.outbox == []  # not yet: the task's own retries come first
    clock.shift(timedelta(minutes=3))
    send_reminders()
    send_reminders()
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@acme.example", "grace@example.org"]
    assert all(m.subject.startswith("Confirmed:") for m in mail.outbox)
