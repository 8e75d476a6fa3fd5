"""The public booking pages and the booker's signed links, through the real views."""

from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.core import mail, signing
from django.urls import reverse

from booking.ics import parse_times
from booking.models import Meeting
from booking.services import meeting_feed_create, meeting_feed_revoke
from booking.tokens import lead_token, manage_token
from booking.views import stamp
from capture.services import fill_token
from leads.models import Lead
from tests.factories import LeadFactory

from .conftest import at, person

pytestmark = pytest.mark.django_db


def post_booking(client, page, when, *, tz="Asia/Tokyo", data=None, **extra):
    return client.post(reverse("booking:slot", args=[page.slug, stamp(when)]),
                       {**(data or person()), "tz": tz, "crm_token": fill_token(page.form), **extra},
                       REMOTE_ADDR="203.0.113.7")


def test_the_page_lists_free_slots_in_the_visitors_time_zone(client, page):
    response = client.get(reverse("booking:page", args=["demo"]), {"tz": "America/Los_Angeles"})
    html = response.content.decode()
    assert response.status_code == 200
    # 12:00 UTC is 05:00 in Los Angeles; the Berlin working day (07:00-15:00 UTC) is 00:00-08:00 there.
    assert f'data-slot="{stamp(at("2026-06-02 12:00"))}"' in html and ">05:00<" in html
    assert 'option selected>America/Los_Angeles<' in html


@pytest.mark.parametrize("first", ["9999-12-31", "0001-01-01", "2026-13-45", "<b>"])
def test_a_week_asked_for_far_away_or_garbled_is_a_page_not_an_error(client, page, first):
    response = client.get(reverse("booking:page", args=["demo"]), {"tz": "Pacific/Kiritimati", "from": first})
    assert response.status_code == 200


def test_an_unknown_time_zone_is_said_and_the_reps_is_used(client, page):
    response = client.get(reverse("booking:page", args=["demo"]), {"tz": "<script>alert(1)</script>"})
    html = response.content.decode()
    assert "We do not know the time zone" in html and "Times are shown in Europe/Berlin" in html
    assert "<script>alert(1)" not in html
    assert ">14:00<" in html  # 12:00 UTC in Berlin


def test_booking_through_the_page(client, page, ada, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_booking(client, page, at("2026-06-02 12:00"),
                                data=person(first_name="<script>x</script>"))
    assert response.status_code == 302
    meeting = Meeting.objects.get()
    assert meeting.time_zone == "Asia/Tokyo" and meeting.lead.first_name == "<script>x</script>"
    page_html = client.get(response["Location"]).content.decode()
    assert "You are booked" in page_html and "21:00–21:30" in page_html  # 12:00 UTC in Tokyo
    assert "Hello <script>x</script>" in mail.outbox[0].body  # plain text email: no HTML to inject into
    invite = client.get(reverse("booking:invite", args=[manage_token(meeting)]))
    assert invite["Content-Type"].startswith("text/calendar")
    assert parse_times(invite.content) == [(at("2026-06-02 12:00"), at("2026-06-02 12:30"))]


def test_a_taken_slot_is_said_with_the_next_free_times(client, page):
    post_booking(client, page, at("2026-06-02 12:00"), data=person("first@example.org"))
    response = post_booking(client, page, at("2026-06-02 12:00"), data=person("second@example.org"))
    html = response.content.decode()
    assert response.status_code == 409 and "just taken" in html
    assert stamp(at("2026-06-02 12:30")) in html
    assert not Lead.objects.filter(email="second@example.org").exists()


def test_a_form_error_keeps_the_answers_and_books_nothing(client, page):
    response = post_booking(client, page, at("2026-06-02 12:00"), data=person(email="not-an-email", consent=""))
    html = response.content.decode()
    assert response.status_code == 422 and "Enter a valid email address." in html and "Tick the box" in html
    assert 'value="not-an-email"' in html
    assert not Meeting.objects.exists()


def test_a_forged_fill_token_books_nothing(client, page):
    response = post_booking(client, page, at("2026-06-02 12:00"), crm_token="forged")
    assert response.status_code == 422 and not Meeting.objects.exists()


def test_a_bad_time_in_the_address_is_a_clear_error(client, page):
    response = client.get(reverse("booking:slot", args=["demo", "tomorrow-ish"]))
    assert response.status_code == 400 and "could not be read" in response.content.decode()
    response = client.get(reverse("booking:slot", args=["demo", stamp(at("2026-06-02 16:00"))]))
    assert response.status_code == 422 and "outside the hours" in response.content.decode()


def test_a_signed_lead_link_prefills_who_is_booking(client, page, ada):
    lead = LeadFactory(email="grace@example.org", first_name="Grace", last_name="Hopper", owner=ada)
    response = client.get(reverse("booking:for_lead", args=[lead_token(lead.pk)]))
    assert response.status_code == 302 and response["Location"].startswith("/book/demo/?t=")
    token = unquote(response["Location"].split("t=")[1])
    slot_page = client.get(reverse("booking:slot", args=["demo", stamp(at("2026-06-02 12:00"))]), {"t": token})
    html = slot_page.content.decode()
    assert "Booking as <strong>Grace Hopper</strong> (g…@example.org)" in html
    assert 'name="email"' not in html
    response = post_booking(client, page, at("2026-06-02 12:00"), data={"consent": "on", "t": token})
    assert response.status_code == 302 and Meeting.objects.get().lead == lead


def test_a_forged_lead_link_asks_for_the_details(client, page):
    response = client.get(reverse("booking:page", args=["demo"]), {"t": "forged:token"})
    assert "not valid: fill in your details" in response.content.decode()


def test_cancel_and_reschedule_through_the_signed_link(client, page):
    post_booking(client, page, at("2026-06-02 12:00"))
    meeting = Meeting.objects.get()
    token = manage_token(meeting)
    html = client.get(reverse("booking:reschedule", args=[token])).content.decode()
    assert stamp(at("2026-06-02 12:30")) in html
    response = client.post(reverse("booking:reschedule", args=[token]),
                           {"starts": stamp(at("2026-06-03 08:00")), "tz": "Asia/Tokyo"})
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.starts_at == at("2026-06-03 08:00")
    response = client.post(reverse("booking:manage", args=[token]), {"reason": "Sorry"})
    assert response.status_code == 302  # a reload does not post the cancel again
    html = client.get(response["Location"]).content.decode()
    assert "This meeting is cancelled" in html
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.CANCELLED
    # Booking again knows who books: the lead's signed link, nothing to type twice.
    rebook = html.split('id="rebook"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    slot_page = client.get(reverse("booking:slot", args=["demo", stamp(at("2026-06-02 12:00"))]) + rebook[rebook.index("?"):])
    assert "Booking as <strong>Grace Hopper</strong>" in slot_page.content.decode()


def test_a_forged_or_expired_manage_link_changes_nothing(client, page, clock):
    post_booking(client, page, at("2026-06-02 12:00"))
    meeting = Meeting.objects.get()
    forged = signing.dumps({"m": meeting.pk}, salt="another.salt", compress=True)
    for token in (forged, "nonsense"):
        response = client.post(reverse("booking:manage", args=[token]))
        assert response.status_code == 400 and "not valid" in response.content.decode()
    token = manage_token(meeting)
    clock.move_to(at("2026-06-02 08:00") + timedelta(days=121))
    response = client.post(reverse("booking:manage", args=[token]))
    assert response.status_code == 400 and "expired" in response.content.decode()
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED


def test_a_reps_private_feed_lists_the_booked_meetings_until_revoked(client, page, ada):
    post_booking(client, page, at("2026-06-02 12:00"))
    token = meeting_feed_create(calendar=ada.booking_calendar, by=ada)
    response = client.get(reverse("booking:feed", args=[token]))
    assert response.status_code == 200 and parse_times(response.content) == [(at("2026-06-02 12:00"), at("2026-06-02 12:30"))]
    assert b"X-WR-CALNAME:Booked meetings: Ada Byron" in response.content
    meeting_feed_revoke(calendar=ada.booking_calendar, by=ada)
    assert client.get(reverse("booking:feed", args=[token])).status_code == 404
    assert client.get(reverse("booking:feed", args=["guess"])).status_code == 404


def test_a_closed_page_is_not_found(client, page):
    page.is_active = False
    page.save()
    assert client.get(reverse("booking:page", args=["demo"])).status_code == 404


def test_with_a_captcha_on_the_booking_form_shows_it_and_its_token_is_verified(client, page, settings):
    import json

    from tests.local_http import LocalServer

    verify = LocalServer(lambda method, path, body: (200, "application/json", json.dumps(
        {"success": True, "challenge_ts": "2026-06-02T08:00:00Z", "hostname": "crm.example.com"}).encode()))
    settings.CRM_CAPTCHA_PROVIDER = "turnstile"
    settings.CRM_CAPTCHA_SITE_KEY, settings.CRM_CAPTCHA_SECRET = "site-key", "secret-key"
    settings.CRM_CAPTCHA_VERIFY_URL = f"{verify.url}/siteverify"
    try:
        form = client.get(reverse("booking:slot", args=["demo", stamp(at("2026-06-02 12:00"))]))
        assert 'data-sitekey="site-key"' in form.content.decode()
        assert "https://challenges.cloudflare.com" in form["Content-Security-Policy"]
        response = post_booking(client, page, at("2026-06-02 12:00"), **{"cf-turnstile-response": "XXXX.DUMMY.TOKEN"})
    finally:
        verify.close()
    assert response.status_code == 302 and Meeting.objects.count() == 1
    assert b"response=XXXX.DUMMY.TOKEN" in verify.received[0][2]
