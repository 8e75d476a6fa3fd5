"""Booking pages and calendars in the admin: marketers set up pages, managers also the reps' calendars."""

import pytest
from django.urls import reverse

from booking.models import BookingPage
from booking.services import meeting_book
from tests.factories import manager, marketer, rep

from .conftest import at, context, person

pytestmark = pytest.mark.django_db


def test_a_marketer_makes_a_team_page_and_sees_its_public_address(client, booking_form, ada):
    client.force_login(marketer())
    response = client.post(reverse("admin:booking_bookingpage_add"), {
        "title": "Talk to sales", "slug": "sales", "is_active": "on", "form": booking_form.pk, "reps": [ada.pk],
        "duration_minutes": 45, "reminder_minutes": 30, "move_to_status": "sql", "intro": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    page = BookingPage.objects.get(slug="sales")
    assert list(page.reps.all()) == [ada] and page.move_to_status == "sql"
    html = client.get(reverse("admin:booking_bookingpage_change", args=[page.pk])).content.decode()
    assert 'href="/book/sales/"' in html
    assert client.get(reverse("admin:booking_calendar_changelist")).status_code == 403


def test_the_reserved_slug_and_a_second_team_page_are_refused(client, page, booking_form, ada):
    client.force_login(manager())
    response = client.post(reverse("admin:booking_bookingpage_add"), {
        "title": "For", "slug": "for", "is_active": "on", "is_default": "on", "form": booking_form.pk,
        "reps": [ada.pk], "duration_minutes": 30, "reminder_minutes": 60, "intro": "",
    })
    html = response.content.decode()
    assert response.status_code == 200
    assert "is used by the booking links" in html and "Another page is already the team&#x27;s page." in html
    assert BookingPage.objects.count() == 1


def test_a_manager_sets_a_reps_calendar_and_an_unknown_zone_is_refused(client, ada):
    client.force_login(manager())
    calendar = ada.booking_calendar
    url = reverse("admin:booking_calendar_change", args=[calendar.pk])
    form = {"rep": ada.pk, "time_zone": "Europe/Atlantis", "meeting_minutes": "[30]", "buffer_before_minutes": 0,
            "buffer_after_minutes": 0, "notice_minutes": 60, "horizon_days": 30, "daily_max": 5, "meeting_url": "",
            "is_available": "on", "hours-TOTAL_FORMS": 0, "hours-INITIAL_FORMS": 0, "days_off-TOTAL_FORMS": 0,
            "days_off-INITIAL_FORMS": 0}
    response = client.post(url, form)
    assert "We do not know the time zone “Europe/Atlantis”" in response.content.decode()
    response = client.post(url, {**form, "time_zone": "America/Chicago"})
    assert response.status_code == 302
    calendar.refresh_from_db()
    assert calendar.time_zone == "America/Chicago"


def test_meetings_are_read_only_in_the_admin(client, page):
    meeting = meeting_book(page=page, starts_at=at("2026-06-02 12:00"), time_zone="UTC", data=person(),
                           context=context()).meeting
    client.force_login(manager())
    assert client.get(reverse("admin:booking_meeting_changelist")).status_code == 200
    html = client.get(reverse("admin:booking_meeting_change", args=[meeting.pk])).content.decode()
    assert 'name="_save"' not in html
    client.force_login(rep())
    assert client.get(reverse("admin:booking_meeting_changelist")).status_code in (302, 403)
