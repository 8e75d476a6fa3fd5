"""Saved audiences: leads by rules, a live count and sample, and enrolling them with the preview."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from leads import services as lead_services
from leads.models import Resource
from nurturing.audiences import audience_count_and_sample, audience_leads
from nurturing.models import Audience, EmailEvent, Enrollment, Suppression
from tests.factories import CompanyFactory, LeadFactory, SourceFactory, sequence_with_steps


def test_every_rule_narrows_the_audience_and_an_empty_rule_holds_for_all(rep_user):
    now = timezone.now()
    ads = SourceFactory(slug="ads", name="Ads")
    guide = Resource.objects.create(name="CRM guide", slug="crm-guide", kind="guide")
    with time_machine.travel(now - timedelta(days=40)):
        quiet = LeadFactory(source=ads, company=CompanyFactory(country="Germany"), owner=rep_user)
    engaged = LeadFactory(source=ads, company=CompanyFactory(country="germany"), utm_medium="cpc")
    other = LeadFactory(company=CompanyFactory(country="France"))
    lead_services.form_submission_record(lead=engaged, form_name="Guide", form_slug="guide", resource=guide)
    EmailEvent.objects.create(lead=engaged, kind="clicked", is_machine=False, provider="test", occurred_at=now,
                              dedupe_key="human-click")
    EmailEvent.objects.create(lead=quiet, kind="clicked", is_machine=True, provider="test", occurred_at=now,
                              dedupe_key="scanner-click")
    archived = LeadFactory(source=ads)
    lead_services.lead_archive(leads=[archived])

    def members(**rules):
        return set(audience_leads(Audience(name="x", **rules), now=now))

    assert members() == {quiet, engaged, other}  # live leads only
    assert members(source=ads) == {quiet, engaged}
    assert members(source=ads, country="Germany ") == {quiet, engaged}  # the company's country, any case
    assert members(utm_medium="cpc") == members(resource=guide) == members(form_slug="guide") == {engaged}
    assert members(engaged_within_days=7) == {engaged}  # the scanner's click on quiet's email is no engagement
    assert members(inactive_for_days=30) == {quiet}
    assert members(owner=rep_user, stage="new") == {quiet}
    assert members(stage="mql") == set()
    count, sample = audience_count_and_sample(Audience(name="x", source=ads))
    assert (count, set(sample)) == (2, {quiet, engaged})


@pytest.fixture
def marketer_client(client, marketer_user):
    client.force_login(marketer_user)
    return client


def test_a_marketer_saves_an_audience_sees_its_count_and_enrolls_it_after_the_preview(
        marketer_client, django_capture_on_commit_callbacks):
    ads = SourceFactory(slug="ads", name="Ads")
    sequence = sequence_with_steps(name="Ads follow-up")
    a, b = LeadFactory(source=ads, first_name="Ann"), LeadFactory(source=ads, first_name="Bob")
    LeadFactory(first_name="Cid")
    Suppression.objects.create(email=b.email)

    response = marketer_client.post(reverse("admin:nurturing_audience_add"), {"name": "From ads", "source": ads.pk})
    assert response.status_code == 302
    audience = Audience.objects.get()
    page = marketer_client.get(reverse("admin:nurturing_audience_change", args=[audience.pk])).content.decode()
    assert '<strong id="audience-count">2</strong> leads' in page and "Ann" in page and "Cid" not in page

    url = reverse("admin:nurturing_audience_enroll", args=[audience.pk])
    assert "Show who will be enrolled" in marketer_client.get(url).content.decode()
    preview = marketer_client.post(url, {"sequence": sequence.pk})
    assert preview.context_data["plan"].enroll == [a] and not Enrollment.objects.exists()
    assert "the address is suppressed" in preview.content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the background job, run at once by the test's Celery
        marketer_client.post(url, {"sequence": sequence.pk, "apply": "1"})
    assert list(Enrollment.objects.values_list("lead_id", flat=True)) == [a.pk]
    page = marketer_client.get(reverse("admin:nurturing_audience_change", args=[audience.pk])).content.decode()
    assert '<progress max="100" value="100">' in page and "2 of 2" in page
    assert "1: the address is suppressed (unsubscribed, bounced or blocked)" in page


def test_a_rep_cannot_enroll_an_audience(client, rep_user):
    audience = Audience.objects.create(name="All")
    client.force_login(rep_user)
    assert client.get(reverse("admin:nurturing_audience_enroll", args=[audience.pk])).status_code in (302, 403)
