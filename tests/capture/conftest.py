import pytest
import time_machine

from leads.models import ConversionKind, Resource

# Everything a capture test makes is made at this moment (the clock moves on only where a test moves it).
SHOWN_AT = "2026-06-02 10:00Z"


@pytest.fixture(autouse=True)
def capture_settings(settings, tmp_path):
    from django.core.cache import cache

    settings.CRM_TRACKING_QUEUE_URL = f"spool:{tmp_path / 'spool'}"
    settings.CRM_TRACKING_SITES = []
    settings.CRM_CAPTURE_MIN_FILL_SECONDS = 3
    settings.CRM_CAPTURE_PER_ADDRESS_PER_HOUR = 30
    settings.CRM_CAPTURE_PER_EMAIL_PER_HOUR = 5
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    settings.CRM_RATE_LIMIT_URL = ""
    cache.clear()
    yield settings


@pytest.fixture
def clock():
    with time_machine.travel(SHOWN_AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def demo_form(db, clock):
    from capture.models import CaptureForm

    return CaptureForm.objects.create(
        name="Book a demo", slug="demo", conversion_kind=ConversionKind.objects.get(slug="demo-request"),
        resource=Resource.objects.create(name="Pipeline guide", slug="pipeline-guide", url="https://www.example.com/guide.pdf"),
        fields=[
            {"name": "email", "label": "Work email", "type": "email", "required": True, "maps_to": "email"},
            {"name": "first_name", "label": "First name", "type": "text", "maps_to": "first_name"},
            {"name": "company", "label": "Company", "type": "text", "maps_to": "company"},
            {"name": "team_size", "label": "Team size", "type": "select", "choices": ["1-10", "11-50", "51+"]},
        ],
        consent_text="I agree that Acme keeps my details to contact me about the demo.", consent_version="2026-05",
        consent_required=True, thank_you_message="Thanks! We will call you within the hour.",
        allowed_sites="www.example.com,.example.org",
    )
