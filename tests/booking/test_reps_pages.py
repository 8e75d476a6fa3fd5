"""The rep's side of booking: Today's meetings, held or no-show, availability, and the booking link in emails."""

from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone

from booking.models import Meeting
from booking.services import meeting_book
from booking.tokens import lead_from_token
from nurturing.models import Enrollment
from nurturing.previews import empty_field_counts
from nurturing.rendering import lead_context
from nurturing.services import enrollment_create
from tests.factories import LeadFactory, marketer, rep, sequence_with_steps

from .conftest import at, context, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(page):
    return meeting_book(page=page, starts_at=at("2026-06-02 12:00"), time_zone="UTC", data=person(),
                        context=context()).meeting


def test_today_shows_the_booked_meeting_and_asks_how_it_went_once_it_started(client, ada, booked, clock):
    client.force_login(ada)
    html = client.get(reverse("workspace:today")).content.decode()
    # In the account's time zone (the suite also runs as if in Berlin).
    local = f"{timezone.localtime(booked.starts_at):%H:%M}–{timezone.localtime(booked.ends_at):%H:%M}"
    assert f'data-meeting="{booked.pk}"' in html and "Grace Hopper" in html and local in html
    assert reverse("workspace:meeting_mark", args=[booked.pk, "held"]) not in html
    clock.move_to(at("2026-06-02 12:35"))
    html = client.get(reverse("workspace:today")).content.decode()
    assert reverse("workspace:meeting_mark", args=[booked.pk, "no_show"]) in html


def test_a_no_show_marked_from_today_enrolls_the_lead_in_the_follow_up(client, ada, page, booked, clock):
    page.no_show_sequence = sequence_with_steps({}, name="Missed you")
    page.save()
    clock.move_to(at("2026-06-02 12:35"))
    client.force_login(ada)
    response = client.post(reverse("workspace:meeting_mark", args=[booked.pk, "no_show"]), follow=True)
    assert "Enrolled in “Missed you”" in response.content.decode()
    booked.refresh_from_db()
    assert booked.status == Meeting.Status.NO_SHOW
    assert Enrollment.objects.get(lead=booked.lead).sequence.name == "Missed you"
    assert f'data-meeting="{booked.pk}"' not in response.content.decode()  # marked: off Today


def test_another_rep_cannot_mark_the_meeting(client, booked, clock):
    clock.move_to(at("2026-06-02 12:35"))
    client.force_login(rep(username="eve"))
    assert client.post(reverse("workspace:meeting_mark", args=[booked.pk, "held"])).status_code == 403
    booked.refresh_from_db()
    assert booked.status == Meeting.Status.BOOKED


def test_a_rep_sets_hours_with_a_lunch_break_and_the_page_follows(client, ada, page):
    client.force_login(ada)
    form = {"time_zone": "Europe/Berlin", "meeting_minutes": "30, 45", "buffer_before_minutes": 0,
            "buffer_after_minutes": 0, "notice_minutes": 60, "horizon_days": 30, "daily_max": 8,
            "meeting_url": "meet.example.com/ada", "is_available": "on", "days_off": "2026-06-03",
            "hours_0": "", "hours_1": "09:00-12:00, 13:00-17:00", "hours_2": "09:00-17:00",
            "hours_3": "", "hours_4": "", "hours_5": "", "hours_6": ""}
    response = client.post(reverse("workspace:availability"), form)
    assert response.status_code == 302
    calendar = ada.booking_calendar
    calendar.refresh_from_db()
    assert calendar.meeting_minutes == [30, 45] and calendar.meeting_url == "https://meet.example.com/ada"
    assert [(h.weekday, h.starts, h.ends) for h in calendar.hours.all()] == [
        (1, time(9), time(12)), (1, time(13), time(17)), (2, time(9), time(17))]
    html = client.get(reverse("booking:page", args=["demo"]), {"tz": "Europe/Berlin"}).content.decode()
    assert ">11:30<" in html and ">12:00<" not in html and ">13:00<" in html  # the lunch break is not offered
    assert "Wednesday 3 June" not in html  # the day off


def test_bad_hours_are_refused_with_what_to_write(client, ada):
    client.force_login(ada)
    response = client.post(reverse("workspace:availability"), {
        "time_zone": "Europe/Berlin", "meeting_minutes": "30", "buffer_before_minutes": 0, "buffer_after_minutes": 0,
        "notice_minutes": 60, "horizon_days": 30, "daily_max": 8, "hours_1": "17:00-09:00", "hours_2": "nine to five",
        "days_off": "next friday"})
    html = response.content.decode()
    assert response.status_code == 422
    assert "write hours as 09:00-17:00" in html and "write dates as 2026-12-24" in html
    response = client.post(reverse("workspace:availability"), {
        "time_zone": "Europe/Berlin", "meeting_minutes": "30", "buffer_before_minutes": 0, "buffer_after_minutes": 0,
        "notice_minutes": 60, "horizon_days": 30, "daily_max": 8, "hours_1": "17:00-09:00", "days_off": ""})
    assert "Tuesday: the hours end after they start." in response.content.decode()
    assert list(ada.booking_calendar.hours.values_list("weekday", flat=True)) == [0, 1, 2, 3, 4]  # unchanged


def test_the_feed_address_is_shown_once_and_can_be_stopped(client, ada):
    client.force_login(ada)
    html = client.post(reverse("workspace:availability"), {"feed": "new"}).content.decode()
    start = html.index("/feeds/meetings/")
    url = html[start:html.index('"', start)]
    assert client.get(url).status_code == 200
    assert "/feeds/meetings/" not in client.get(reverse("workspace:availability")).content.decode()
    client.post(reverse("workspace:availability"), {"feed": "stop"})
    assert client.get(url).status_code == 404


def test_a_marketer_has_no_availability_page(client, db):
    client.force_login(marketer())
    assert client.get(reverse("workspace:availability")).status_code == 403


def test_the_book_demo_link_identifies_the_lead_and_is_empty_without_a_page(page, ada, settings):
    lead = LeadFactory(email="grace@example.org", owner=ada)
    link = lead_context(lead)["links"]["book_demo"]()
    assert link.startswith("https://crm.example.com/book/for/")
    assert lead_from_token(link.rsplit("/", 2)[-2]) == lead.pk
    page.is_active = False
    page.save()
    assert lead_context(lead)["links"]["book_demo"]() == ""
    settings.CRM_BOOKING_URL = "https://cal.example.com/acme"
    assert lead_context(lead)["links"]["book_demo"]() == "https://cal.example.com/acme"


def test_the_empty_field_warning_counts_the_leads_without_a_booking_page(page, ada):
    page.is_default = False
    page.save()
    sequence = sequence_with_steps({"text_template": "Book: {{ links.book_demo }}"})
    enrollment_create(lead=LeadFactory(owner=ada), sequence=sequence)
    enrollment_create(lead=LeadFactory(owner=rep(username="no_page")), sequence=sequence)
    enrollment_create(lead=LeadFactory(owner=None), sequence=sequence)
    (field,) = empty_field_counts(step=sequence.steps.get())
    assert field.path == "links.book_demo" and (field.leads, field.of) == (2, 3)
    page.is_default = True
    page.save()
    assert empty_field_counts(step=sequence.steps.get()) == []
