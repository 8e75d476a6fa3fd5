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


NOW = timezone.make_aware(timezone.datetime(2026, 11, 3, 10, 0))


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_the_score_and_tag_rules_narrow_the_audience(frozen, marketer_user):
    from leads.tags import lead_tag_add

    low, mid, high = LeadFactory(score=5), LeadFactory(score=30), LeadFactory(score=80)
    lead_tag_add(lead=mid, name="VIP", by=marketer_user)
    lead_tag_add(lead=high, name="vip", by=marketer_user)
    lead_tag_add(lead=low, name="Newsletter", by=marketer_user)
    vip = mid.tags.get()

    def members(**rules):
        return set(audience_leads(Audience(name="x", **rules)))

    assert members(score_min=30) == {mid, high}
    assert members(score_max=30) == {low, mid}
    assert members(score_min=10, score_max=50) == {mid}
    assert members(tag=vip) == {mid, high}
    assert members(tag=vip, score_min=50) == {high}


def test_an_audience_whose_lowest_score_is_above_its_highest_is_refused(frozen, marketer_user):
    from django.core.exceptions import ValidationError

    from nurturing.services import audience_save

    with pytest.raises(ValidationError, match="swap them"):
        audience_save(audience=Audience(name="Odd", score_min=50, score_max=10), by=marketer_user)
    assert not Audience.objects.exists()


def live(client, **rules):
    return client.post(reverse("admin:nurturing_audience_live_count"), rules)


def test_the_live_count_answers_for_unsaved_rules_with_a_sample_and_saves_nothing(frozen, marketer_client):
    ads = SourceFactory(slug="ads", name="Ads")
    LeadFactory(source=ads, first_name="Ann", score=40)
    LeadFactory(source=ads, first_name="Bob", score=10)
    LeadFactory(first_name="Cid", score=90)

    response = live(marketer_client, source=ads.pk, score_min="20")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and [row["name"].split()[0] for row in body["sample"]] == ["Ann"]
    assert set(body["sample"][0]) == {"name", "email", "stage"} and body["sample"][0]["stage"] == "New"
    assert live(marketer_client).json()["count"] == 3  # no rule: every live lead
    assert not Audience.objects.exists()


def test_the_live_count_refuses_bad_rules_with_the_fields_message(frozen, marketer_client):
    response = live(marketer_client, score_min="50", score_max="10")
    assert response.status_code == 400 and "swap them" in response.json()["errors"]["score_max"][0]
    response = live(marketer_client, score_min="lots")
    assert response.status_code == 400 and response.json()["errors"]["score_min"] == ["Enter a whole number."]


def test_the_live_count_refuses_a_rep_and_a_get(frozen, client, rep_user, marketer_client):
    client.force_login(rep_user)
    assert live(client).status_code == 403
    assert marketer_client.get(reverse("admin:nurturing_audience_live_count")).status_code == 405


def test_the_audience_page_loads_the_live_count_script_from_the_sites_static_files(frozen, marketer_client):
    page = marketer_client.get(reverse("admin:nurturing_audience_add")).content.decode()
    assert 'src="/static/nurturing/audience_live.js"' in page
    assert f'data-live-url="{reverse("admin:nurturing_audience_live_count")}"' in page
    assert "Save the audience to see how many leads it holds" in page


def test_the_live_count_checks_the_csrf_token_like_every_admin_form(frozen, marketer_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(marketer_user)
    response = live(strict)
    assert response.status_code == 403 and "CSRF" in response.content.decode()


@pytest.mark.django_db
def test_the_clicked_link_rule_holds_for_a_persons_click_on_a_matching_link_not_a_scanners(frozen):
    pricing, scanned, blog = LeadFactory(), LeadFactory(), LeadFactory()
    for lead, url, machine, key in ((pricing, "https://example.com/Pricing?plan=team", False, "p"),
                                    (scanned, "https://example.com/pricing", True, "s"),
                                    (blog, "https://example.com/blog/plans", False, "b")):
        EmailEvent.objects.create(lead=lead, kind="clicked", is_machine=machine, provider="test", occurred_at=NOW,
                                  url=url, dedupe_key=key)

    assert set(audience_leads(Audience(name="x", clicked_link_contains=" /pricing"))) == {pricing}
    assert set(audience_leads(Audience(name="x", clicked_link_contains="PLAN"))) == {pricing, blog}


@pytest.mark.django_db
def test_clicked_pricing_but_did_not_book_leaves_out_who_booked_or_met(frozen):
    from tests.factories import rep

    owner = rep()
    booked, met, waiting = LeadFactory(owner=owner), LeadFactory(owner=owner), LeadFactory(owner=owner)
    for n, lead in enumerate((booked, met, waiting)):
        EmailEvent.objects.create(lead=lead, kind="clicked", is_machine=False, provider="test", occurred_at=NOW,
                                  url="https://example.com/pricing", dedupe_key=f"k{n}")
    lead_services.activity_log_meeting(lead=booked, by=owner, occurred_at=NOW, body="Booked on the demo page")
    lead_services.activity_log_meeting(lead=met, by=owner, occurred_at=NOW - timedelta(days=3))
    lead_services.activity_add_note(lead=waiting, by=owner, body="A note is not a meeting")

    rule = Audience(name="Clicked pricing, did not book", clicked_link_contains="/pricing", meetings="none")
    assert set(audience_leads(rule)) == {waiting}
    rule.meetings = "booked"
    assert set(audience_leads(rule)) == {booked, met}
