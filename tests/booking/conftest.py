from datetime import UTC, datetime, time

import pytest
import time_machine

from booking.models import BookingPage, Calendar, WorkingHours
from capture.services import CaptureContext
from leads.models import ConversionKind
from tests.factories import rep

# Everything a booking test makes is made at this moment: Tuesday 2 June 2026, 10:00 in Berlin.
NOW = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def booking_settings(settings):
    from django.core.cache import cache

    settings.CRM_CAPTURE_MIN_FILL_SECONDS = 0
    settings.CRM_CAPTURE_PER_ADDRESS_PER_HOUR = 1000
    settings.CRM_CAPTURE_PER_EMAIL_PER_HOUR = 1000
    settings.CRM_BOOKING_PER_ADDRESS_PER_HOUR = 1000
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    settings.CRM_RATE_LIMIT_URL = ""
    settings.CRM_BOOKING_URL = ""
    settings.CRM_SITE_URL = "https://crm.example.com"
    cache.clear()
    yield settings


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def calendar(user, *, time_zone="Europe/Berlin", days=range(5), starts=time(9), ends=time(17), **fields):
    made = Calendar.objects.create(rep=user, time_zone=time_zone, meeting_minutes=[30],
                                   **{"notice_minutes": 120, "buffer_after_minutes": 0, **fields})
    WorkingHours.objects.bulk_create(WorkingHours(calendar=made, weekday=day, starts=starts, ends=ends) for day in days)
    return made


@pytest.fixture
def booking_form(db, clock):
    from capture.models import CaptureForm

    return CaptureForm.objects.create(
        name="Book a demo", slug="book-demo", conversion_kind=ConversionKind.objects.get(slug="demo-booked"),
        fields=[
            {"name": "email", "label": "Work email", "type": "email", "required": True, "maps_to": "email"},
            {"name": "first_name", "label": "First name", "type": "text", "maps_to": "first_name"},
            {"name": "last_name", "label": "Last name", "type": "text", "maps_to": "last_name"},
            {"name": "goal", "label": "What would you like to see?", "type": "textarea"},
        ],
        consent_text="I agree that Acme keeps my details to prepare the demo.", consent_version="2026-05",
        consent_required=True,
    )


@pytest.fixture
def ada(db, clock):
    user = rep(username="ada", first_name="Ada", last_name="Byron", email="ada@acme.example")
    calendar(user, meeting_url="https://meet.example.com/ada")
    return user


@pytest.fixture
def page(db, booking_form, ada):
    made = BookingPage.objects.create(slug="demo", title="Product demo", form=booking_form, duration_minutes=30,
                                      is_default=True)
    made.reps.add(ada)
    return made


def person(email="grace@example.org", **extra):
    return {"email": email, "first_name": "Grace", "last_name": "Hopper", "goal": "Sequences", "consent": "on",
            **extra}


def context(address="203.0.113.7"):
    return CaptureContext(address=address, hosted=True, fill_token=None)


def at(text: str) -> datetime:
    """A UTC moment from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
