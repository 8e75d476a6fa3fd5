"""Social touches and social profile links: a LinkedIn message, a comment or a connection is a touch (the lead is
not gone cold), shows on the timeline, and is refused without its network and what happened; profile links are
addresses on their network, never a script; erasure blanks them."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from leads import services
from leads.models import Activity, Company, Lead
from leads.selectors import lead_timeline, untouched_since
from nurturing.privacy import person_erase
from tests.factories import LeadFactory, manager

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=dt_timezone.utc)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def rep_client(client, rep_user):
    client.force_login(rep_user)
    return client


def test_a_social_touch_touches_the_lead_and_shows_on_the_timeline(rep_user):
    with time_machine.travel(NOW - timedelta(days=30), tick=False):
        lead = LeadFactory(owner=rep_user)
    cutoff = NOW - timedelta(days=14)
    assert Lead.objects.filter(untouched_since(cutoff), pk=lead.pk).exists()

    services.activity_log_social(lead=lead, by=rep_user, channel="linkedin", social_action="connection_accepted",
                                 body="Accepted after the webinar", occurred_at=NOW - timedelta(hours=2))

    lead.refresh_from_db()
    assert lead.last_touch_at == NOW - timedelta(hours=2)
    assert not Lead.objects.filter(untouched_since(cutoff), pk=lead.pk).exists()
    row = lead_timeline(lead=lead)[0]
    assert (row["kind"], row["title"], row["detail"]) == ("social", "LinkedIn: connection accepted",
                                                          "Accepted after the webinar")


@pytest.mark.parametrize("channel, action, field", [("", "comment", "channel"), ("myspace", "comment", "channel"),
                                                    ("linkedin", "", "social_action"),
                                                    ("linkedin", "poke", "social_action")])
def test_a_social_touch_needs_its_network_and_what_happened(rep_user, channel, action, field):
    lead = LeadFactory(owner=rep_user)

    with pytest.raises(ValidationError) as refused:
        services.activity_log_social(lead=lead, by=rep_user, channel=channel, social_action=action)

    assert field in refused.value.message_dict
    assert not Activity.objects.exists()
    assert Lead.objects.get(pk=lead.pk).last_touch_at is None


def test_only_who_works_the_lead_logs_a_social_touch(rep_user, other_rep):
    lead = LeadFactory(owner=other_rep)
    with pytest.raises(PermissionDenied):
        services.activity_log_social(lead=lead, by=rep_user, channel="x", social_action="comment")
    assert not Activity.objects.exists()


@pytest.mark.parametrize("field, value, ok", [
    ("linkedin_url", "https://www.linkedin.com/in/ada-lovelace", True),
    ("linkedin_url", "https://linkedin.com/in/ada", True),
    ("linkedin_url", "javascript:alert(document.cookie)//linkedin.com", False),
    ("linkedin_url", "https://linkedin.com.evil.example/in/ada", False),
    ("linkedin_url", "https://evil.example/?u=linkedin.com", False),
    ("x_url", "https://x.com/ada", True),
    ("x_url", "https://twitter.com/ada", True),
    ("x_url", "https://www.linkedin.com/in/ada", False),
])
def test_a_profile_link_is_an_address_on_its_network(rep_user, field, value, ok):
    lead = LeadFactory(owner=rep_user)

    if ok:
        services.lead_update(lead=lead, by=rep_user, **{field: value})
        assert getattr(Lead.objects.get(pk=lead.pk), field) == value
    else:
        with pytest.raises(ValidationError) as refused:
            services.lead_update(lead=lead, by=rep_user, **{field: value})
        assert field in refused.value.message_dict
        assert getattr(Lead.objects.get(pk=lead.pk), field) == ""


def test_the_lead_page_links_the_profiles_and_logs_a_social_touch(rep_client, rep_user):
    company = Company.objects.create(name="Analytical Engines", linkedin_url="https://www.linkedin.com/company/ae")
    lead = LeadFactory(owner=rep_user, company=company, linkedin_url="https://www.linkedin.com/in/ada")
    url = reverse("workspace:lead_action", args=[lead.pk, "social"])

    page = rep_client.post(url, {"channel": "linkedin", "social_action": "message_sent",
                                 "occurred_at": "2026-11-24T09:30", "body": "Sent the case study"},
                           HTTP_HX_REQUEST="true").content.decode()

    assert "LinkedIn touch logged: message sent." in page
    assert "LinkedIn: message sent" in page
    social = page.split('id="lead-social"')[1].split("</dd>")[0]
    assert 'href="https://www.linkedin.com/in/ada" rel="noopener noreferrer"' in social
    assert "Analytical Engines on LinkedIn" in social
    assert Activity.objects.get().kind == "social"


def test_the_edit_page_refuses_a_script_as_a_profile_link(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user, email="ada@example.com")
    response = rep_client.post(reverse("workspace:lead_edit", args=[lead.pk]), {
        "first_name": lead.first_name, "last_name": lead.last_name, "email": "ada@example.com",
        "linkedin_url": "javascript:alert(1)"})

    assert response.status_code == 422
    assert "Give the LinkedIn profile" in response.content.decode() or "Enter a valid URL" in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).linkedin_url == ""


def test_erasure_blanks_the_profile_links(rep_user):
    boss = manager(username="boss")
    lead = LeadFactory(owner=rep_user, linkedin_url="https://www.linkedin.com/in/ada", x_url="https://x.com/ada")
    services.activity_log_social(lead=lead, by=rep_user, channel="x", social_action="comment")

    person_erase(lead=lead, by=boss)

    erased = Lead.objects.get(pk=lead.pk)
    assert (erased.linkedin_url, erased.x_url) == ("", "")
    assert not Activity.objects.filter(lead=lead).exists()
