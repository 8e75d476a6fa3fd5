import pytest
from django.core.management import call_command
from django.urls import reverse

from booking.models import BookingPage, Meeting
from leads.pipeline import LeadStatus
from tests.factories import lead_at, marketer, rep

pytestmark = pytest.mark.django_db


def test_the_demo_booking_page_is_made_once_with_a_few_meetings_booked(client, clock, django_capture_on_commit_callbacks):
    marketer(username="marketer")
    reps = [rep(username="rep"), rep(username="rep2")]
    for n in range(4):
        lead_at(LeadStatus.MQL, email=f"lead{n}@example.org", owner=reps[n % 2])
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo_booking", if_empty=True, verbosity=0)
    call_command("seed_demo_booking", if_empty=True, verbosity=0)
    page = BookingPage.objects.get()
    assert page.is_default and set(page.reps.all()) == set(reps)
    assert Meeting.objects.count() == 3
    assert all(m.rep == m.lead.owner for m in Meeting.objects.select_related("lead"))
    html = client.get(reverse("booking:page", args=["demo"]), {"tz": "Europe/London"}).content.decode()
    assert html.count("booking-slot") > 10
