"""A lead books a demo from a nurture email's link, in Chromium, on a phone in New York: the slots are in the
lead's own time zone, the lead is known (no details to type), the rep sees the meeting on Today and the lead's
sequence ends; the invitation (.ics) opens at the right time in Tokyo; the signed links reschedule and cancel,
and a cancelled time is offered again. Screenshots of each page go to the test artifacts."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from booking.ics import parse_times
from booking.models import BookingPage, Meeting
from booking.views import stamp
from capture.models import CaptureForm
from leads.models import ConversionKind
from nurturing import rendering
from nurturing.models import Enrollment
from nurturing.services import enrollment_create
from nurturing.tasks import dispatch_due
from tests.booking.conftest import calendar
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory, rep, sequence_with_steps

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}
NEW_YORK, TOKYO = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
# Tuesday 16 March 2027, 06:00 UTC: between America's and Europe's changes to summer time, so New York is
# UTC-4 while Berlin is still UTC+1 (a fixed offset between the two would show). The clock ticks from there.
NOW = datetime(2027, 3, 16, 6, 0, tzinfo=UTC)
BOOKED = datetime(2027, 3, 16, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, 06:00 in New York, 19:00 in Tokyo
MOVED = datetime(2027, 3, 17, 14, 0, tzinfo=UTC)  # Wednesday 15:00 in Berlin, 10:00 in New York, 23:00 in Tokyo


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def nurtured(settings, live_server, clock):
    """Ada (Berlin, weekdays 9 to 17) on the team's booking page; Grace, her lead, in a nurture sequence whose
    first email carries {{ links.book_demo }}."""
    settings.CRM_SITE_URL = live_server.url  # the email's links lead to this server
    settings.CRM_BOOKING_URL = ""
    settings.CRM_CAPTURE_MIN_FILL_SECONDS = 0
    rendering.book_demo_links.forget()  # which pages exist is read again
    ada = rep(username="ada", first_name="Ada", last_name="Byron", email="ada@acme.example")
    ada.set_password("crm-demo")
    ada.save()
    calendar(ada, meeting_url="https://meet.example.com/ada")
    form = CaptureForm.objects.create(
        name="Demo", slug="demo", conversion_kind=ConversionKind.objects.get(slug="demo-booked"),
        fields=[{"name": "email", "label": "Work email", "type": "email", "required": True, "maps_to": "email"},
                {"name": "goal", "label": "What would you like to see?", "type": "textarea"}],
        consent_text="Acme may keep my details to prepare the demo.", consent_version="2027-03", consent_required=True,
    )
    page = BookingPage.objects.create(slug="demo", title="Product demo", form=form, is_default=True)
    page.reps.add(ada)
    grace = LeadFactory(first_name="Grace", last_name="Hopper", email="grace.hopper@example.org", owner=ada)
    sequence = sequence_with_steps(
        {"subject_template": "A demo, {{ first_name }}?",
         "text_template": "Hello {{ first_name }}, pick a time that suits you: {{ links.book_demo }}"},
        {"delay": timedelta(days=3)},
        name="Trial follow-up",
    )
    enrollment = enrollment_create(lead=grace, sequence=sequence)
    return {"rep": ada, "lead": grace, "enrollment": enrollment}


def nurture_email_link(lead) -> str:
    """The dispatcher's tick sends the due step (Celery runs in-process in the tests); the link in its text."""
    dispatch_due()
    (email,) = [message for message in mail.outbox if message.to == [lead.email]]
    assert email.subject == "A demo, Grace?"
    return re.search(r"https?://\S+/book/for/\S+", email.body)[0]


def slots_shown(page) -> list[tuple[str, str, str]]:
    """(UTC stamp, time shown, day heading) of each slot button on the page."""
    return page.locator("a.booking-slot").evaluate_all(
        "links => links.map(a => [a.dataset.slot, a.textContent.trim(),"
        " a.closest('section').querySelector('h2').textContent.trim()])"
    )


def in_zone(slot_stamp: str, tz) -> datetime:
    return datetime.strptime(slot_stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(tz)


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def shot(page, artifacts, name):
    page.screenshot(path=artifacts / f"booking-{name}.png", full_page=True)


def test_a_lead_books_a_demo_from_a_nurture_email_in_its_own_time_zone(new_page, artifacts, nurtured):
    lead, ada = nurtured["lead"], nurtured["rep"]
    link = nurture_email_link(lead)

    # Grace opens the link on her phone in New York: the page asks the browser's zone and shows the week in it.
    phone = new_page(**PHONE, timezone_id="America/New_York")
    violations = watch_for_violations(phone)
    phone.goto(link)
    phone.wait_for_url(re.compile(r"/book/demo/\?.*tz=America%2FNew_York"))
    expect(phone.locator("#booking-tz")).to_have_value("America/New_York")
    expect(phone.get_by_text("booking as Grace")).to_be_visible()
    shown = slots_shown(phone)
    assert shown, "no slot offered"
    for slot_stamp, time_shown, heading in shown:
        local = in_zone(slot_stamp, NEW_YORK)
        assert (time_shown, heading) == (f"{local:%H:%M}", f"{local:%A} {local.day} {local:%B}"), slot_stamp
    # Ada's Berlin day, 9:00 to 17:00 (UTC+1), is 04:00 to 12:00 in New York (UTC-4) this week.
    assert [time for slot_stamp, time, _ in shown if slot_stamp.startswith("20270317")][:1] == ["04:00"]
    assert fits_the_screen(phone)
    shot(phone, artifacts, "01-page-new-york")

    # She books Tuesday 06:00 her time: she is known, so no email is asked, only her consent.
    phone.locator(f'a.booking-slot[data-slot="{stamp(BOOKED)}"]').click()
    expect(phone.locator("#slot-time")).to_have_text("Tuesday 16 March 2027, 06:00–06:30")
    expect(phone.locator("#booking-as")).to_contain_text("Grace Hopper")
    expect(phone.locator('input[name="email"]')).to_have_count(0)
    phone.get_by_label("Acme may keep my details to prepare the demo.").check()
    assert fits_the_screen(phone)
    shot(phone, artifacts, "02-slot")
    phone.get_by_role("button", name="Book this time").click()
    phone.wait_for_url(re.compile(r"/booking/[^/]+/\?booked=1"))
    expect(phone.locator("#booked")).to_be_visible()
    expect(phone.locator("#meeting-time")).to_have_text("Tuesday 16 March 2027, 06:00–06:30")
    expect(phone.get_by_text("America/New_York", exact=True)).to_be_visible()
    assert fits_the_screen(phone)
    shot(phone, artifacts, "03-booked")

    confirmed = "Confirmed: Product demo on Tuesday 16 March 2027, 06:00–06:30 (America/New_York)"
    assert [message.subject for message in mail.outbox if message.to == [lead.email]][-1] == confirmed
    meeting = Meeting.objects.get(lead=lead)
    assert (meeting.rep, meeting.starts_at, meeting.time_zone) == (ada, BOOKED, "America/New_York")
    enrollment = Enrollment.objects.get(pk=nurtured["enrollment"].pk)
    assert enrollment.status == Enrollment.Status.EXITED and "Meeting" in enrollment.exit_reason

    # Ada sees it on Today, at her account's time.
    desk = new_page()
    rep_violations = watch_for_violations(desk)
    log_in(desk, "ada")
    row = desk.locator(f'#today-meetings [data-meeting="{meeting.pk}"]')
    starts, ends = timezone.localtime(meeting.starts_at), timezone.localtime(meeting.ends_at)
    expect(row).to_contain_text(f"{starts:%H:%M}–{ends:%H:%M}")
    expect(row).to_contain_text("Grace Hopper")
    shot(desk, artifacts, "04-today")

    # The invitation, opened by a calendar in Tokyo: 19:00 there.
    with phone.expect_download() as download:
        phone.get_by_role("link", name="Add to calendar (.ics)").click()
    ((start, end),) = parse_times(download.value.path().read_bytes())
    assert (f"{start.astimezone(TOKYO):%Y-%m-%d %H:%M}", end - start) == ("2027-03-16 19:00", timedelta(minutes=30))

    # She moves it to Wednesday 10:00 her time through the signed link.
    phone.get_by_role("link", name="Reschedule").click()
    phone.wait_for_url(re.compile(r"/reschedule/"))
    expect(phone.get_by_text("Now: Tuesday 16 March, 06:00 (America/New_York)")).to_be_visible()
    moved = phone.locator(f'button.booking-slot[value="{stamp(MOVED)}"]')
    expect(moved).to_have_text("10:00")
    assert fits_the_screen(phone)
    shot(phone, artifacts, "05-reschedule")
    moved.click()
    phone.wait_for_url(re.compile(r"/booking/[^/]+/\?tz="))
    expect(phone.locator("#meeting-time")).to_have_text("Wednesday 17 March 2027, 10:00–10:30")
    meeting.refresh_from_db()
    assert (meeting.starts_at, meeting.status, meeting.sequence) == (MOVED, Meeting.Status.BOOKED, 1)
    invite = phone.request.get(phone.get_by_role("link", name="Add to calendar (.ics)").get_attribute("href"))
    assert [start.astimezone(TOKYO).strftime("%a %H:%M") for start, _ in parse_times(invite.body())] == ["Wed 23:00"]
    desk.reload()  # no longer today
    expect(desk.locator(f'#today-meetings [data-meeting="{meeting.pk}"]')).to_have_count(0)

    # Tuesday's time is offered again; Wednesday's is taken, until she cancels.
    manage = phone.url
    phone.goto("/book/demo/?tz=America%2FNew_York")
    expect(phone.locator(f'a.booking-slot[data-slot="{stamp(BOOKED)}"]')).to_have_count(1)
    expect(phone.locator(f'a.booking-slot[data-slot="{stamp(MOVED)}"]')).to_have_count(0)
    phone.goto(manage)
    phone.get_by_label(re.compile("^Cancel the meeting")).fill("We found another date")
    phone.get_by_role("button", name="Cancel the meeting").click()
    expect(phone.locator("#cancelled")).to_be_visible()
    expect(phone.locator("#meeting")).to_have_attribute("data-status", "cancelled")
    shot(phone, artifacts, "06-cancelled")
    meeting.refresh_from_db()
    assert (meeting.status, meeting.cancel_reason) == (Meeting.Status.CANCELLED, "We found another date")

    phone.get_by_role("link", name="Book another time").click()
    phone.wait_for_url(re.compile(r"/book/demo/\?t=.+&tz=America%2FNew_York"))
    expect(phone.get_by_text("booking as Grace")).to_be_visible()  # still known: nothing to type again
    wednesday = phone.locator(f'a.booking-slot[data-slot="{stamp(MOVED)}"]')
    expect(wednesday).to_have_text("10:00")
    expect(phone.locator(f'a.booking-slot[data-slot="{stamp(BOOKED)}"]')).to_have_count(1)
    assert fits_the_screen(phone)
    shot(phone, artifacts, "07-free-again")

    assert violations == [] and rep_violations == []
