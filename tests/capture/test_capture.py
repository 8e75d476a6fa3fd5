"""Capture: every way a form comes in, the rules it is held to, and what a submission leaves behind."""

import json
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from capture import followups, services
from capture.models import CaptureForm, FollowupDone, Quarantine
from core.models import DomainEvent
from leads.models import Conversion, FormSubmission, Lead, LeadTouch, Task
from tests.factories import LeadFactory, marketer, rep

pytestmark = pytest.mark.django_db

ANSWERS = {"email": "Ada.Lovelace@Example.com", "first_name": "Ada", "company": "Analytical Engines",
           "team_size": "11-50", "consent": "on"}


def shown(client, form):
    """GET the hosted page as a person would; returns the hidden token it carries."""
    page = client.get(reverse("capture:hosted", args=[form.slug]))
    assert page.status_code == 200
    return re.search(r'name="crm_token" value="([^"]+)"', page.content.decode()).group(1)


def send_hosted(client, form, clock, answers=None, *, after=10, **extra):
    token = shown(client, form)
    clock.shift(timedelta(seconds=after))
    return client.post(reverse("capture:hosted", args=[form.slug]),
                       {**(ANSWERS if answers is None else answers), "crm_token": token, **extra}, REMOTE_ADDR="203.0.113.5")


# --- The hosted page ----------------------------------------------------------------------------


def test_a_hosted_submission_makes_a_lead_with_its_consent_submission_and_conversion(client, demo_form, clock):
    response = send_hosted(client, demo_form, clock)

    assert response.status_code == 200 and "Thanks! We will call you within the hour." in response.content.decode()
    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, lead.company.name) == ("ada.lovelace@example.com", "Ada", "Analytical Engines")
    assert lead.consent_text == demo_form.consent_text and lead.consent_source == "form demo (version 2026-05)"
    submission = FormSubmission.objects.get()
    assert (submission.form_slug, submission.consent_given, submission.consent_version) == ("demo", True, "2026-05")
    assert submission.data == {"email": "ada.lovelace@example.com", "first_name": "Ada", "company": "Analytical Engines",
                               "team_size": "11-50"}
    conversion = Conversion.objects.get()
    assert (conversion.kind.slug, conversion.lead, conversion.submission) == ("demo-request", lead, submission)
    event = DomainEvent.objects.get(type="form.submitted")
    assert (event.actor_kind, event.actor_ref) == ("form", {"form": demo_form.pk})
    assert event.payload == {"resource": demo_form.resource_id, "form": "demo", "capture_form": demo_form.pk,
                             "created": True, "kind": "demo-request"}
    assert DomainEvent.objects.get(type="lead.created").actor_kind == "form"


@pytest.mark.parametrize("answers, field, message", [
    ({**ANSWERS, "email": "not-an-email"}, "email", "Enter a valid email address."),
    ({**ANSWERS, "email": ""}, "email", "Work email is required."),
    ({**ANSWERS, "consent": ""}, "consent", "Tick the box to agree"),
    ({**ANSWERS, "team_size": "a thousand"}, "team_size", "Choose one of the options."),
    ({**ANSWERS, "first_name": "A" * 101}, "first_name", "At most 100 characters."),
])
def test_a_bad_answer_is_shown_by_its_field_and_nothing_is_written(client, demo_form, clock, answers, field, message):
    response = send_hosted(client, demo_form, clock, answers)

    assert response.status_code == 422
    html = response.content.decode()
    assert f'id="crm-{field}-error"' in html and message in html
    assert not Lead.objects.exists() and not FormSubmission.objects.exists() and not DomainEvent.objects.exists()


def test_a_script_typed_into_a_field_comes_back_as_text(client, demo_form, clock):
    response = send_hosted(client, demo_form, clock, {**ANSWERS, "email": "x", "first_name": "<script>alert(1)</script>"})
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- Spam: quarantined, never a lead, never dropped -------------------------------------------------


def test_a_form_sent_faster_than_a_person_can_is_quarantined_and_thanked_like_any_other(client, demo_form, clock):
    response = send_hosted(client, demo_form, clock, after=1)

    assert "Thanks! We will call you within the hour." in response.content.decode()
    assert not Lead.objects.exists() and not DomainEvent.objects.exists()
    held = Quarantine.objects.get()
    assert held.reason.startswith("sent 1.0 s after the form was shown")
    assert held.data["email"] == "ada.lovelace@example.com"


def test_the_honeypot_filled_in_is_quarantined(client, demo_form, clock):
    send_hosted(client, demo_form, clock, crm_hp="http://spam.example")
    assert Quarantine.objects.get().reason == "the hidden field people never see was filled in"
    assert not Lead.objects.exists()


@pytest.mark.parametrize("token, wait, message", [
    ("forged:token:value", 10, "could not be checked"),
    (None, 2 * 86400, "opened too long ago"),
])
def test_a_forged_or_expired_token_is_an_error_not_a_quarantine(client, demo_form, clock, token, wait, message):
    real = shown(client, demo_form)
    clock.shift(timedelta(seconds=wait))
    response = client.post(reverse("capture:hosted", args=[demo_form.slug]), {**ANSWERS, "crm_token": token or real})

    assert response.status_code == 422 and message in response.content.decode()
    assert not Quarantine.objects.exists() and not Lead.objects.exists()


def test_a_marketer_releases_a_quarantined_submission_and_a_rep_cannot(client, demo_form, clock):
    from django.core.exceptions import PermissionDenied

    send_hosted(client, demo_form, clock, after=0)
    held = Quarantine.objects.get()
    with pytest.raises(PermissionDenied):
        services.quarantine_release(quarantine=held, by=rep(username="r"))
    assert not Lead.objects.exists()

    result = services.quarantine_release(quarantine=held, by=marketer(username="m"))

    held.refresh_from_db()
    assert result.lead.email == "ada.lovelace@example.com" and held.released_lead_id == result.lead.pk
    assert FormSubmission.objects.get().consent_given
    with pytest.raises(Exception, match="already released"):
        services.quarantine_release(quarantine=held, by=marketer(username="m"))


# --- Dedupe -------------------------------------------------------------------------------------------


def test_an_existing_lead_gets_the_submission_and_consent_never_a_second_row(client, demo_form, clock):
    lead = LeadFactory(email="ada.lovelace@example.com", first_name="Augusta", title="")
    send_hosted(client, demo_form, clock, {**ANSWERS, "first_name": "Ada"})

    assert Lead.objects.count() == 1
    lead.refresh_from_db()
    assert lead.first_name == "Augusta"  # what the CRM knew stays; only blanks are filled
    assert lead.consent_source == "form demo (version 2026-05)"
    assert FormSubmission.objects.get().lead == lead
    assert DomainEvent.objects.get(type="form.submitted").payload["created"] is False


# --- The JSON endpoint and the embedded form ------------------------------------------------------


def post_json(client, form, body, *, origin="https://www.example.com", content_type="application/json", **headers):
    return client.post(reverse("capture:api_submit", args=[form.slug]),
                       body if isinstance(body, (str, bytes)) else json.dumps(body), content_type=content_type,
                       HTTP_ORIGIN=origin, REMOTE_ADDR="198.51.100.7", **headers)


def test_the_json_endpoint_captures_and_answers_with_the_thank_you_for_the_allowed_site(client, demo_form, clock):
    token = services.fill_token(demo_form)
    clock.shift(timedelta(seconds=8))
    response = post_json(client, demo_form, {"fields": {**ANSWERS, "consent": True}, "crm_token": token,
                                             "context": {"page_url": "https://www.example.com/demo", "visitor_id": ""}})

    assert response.status_code == 201, response.content
    assert response.json() == {"message": "Thanks! We will call you within the hour."}
    assert response["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert FormSubmission.objects.get().page_url == "https://www.example.com/demo"


JSON_BAD = {
    "an unknown field": ({"fields": {**ANSWERS, "password": "x"}}, 400, "password"),
    "an invalid email": ({"fields": {**ANSWERS, "email": "nope"}}, 400, "email"),
    "fields not an object": ({"fields": ["email"]}, 400, "fields"),
    "an unknown top-level key": ({"fields": ANSWERS, "lead_id": 1}, 400, "lead_id"),
    "a context key not known": ({"fields": ANSWERS, "context": {"owner": "me"}}, 400, "context"),
    "no token": ({"fields": {**ANSWERS, "consent": True}}, 400, "crm_token"),
}


@pytest.mark.parametrize("body, status, field", JSON_BAD.values(), ids=JSON_BAD.keys())
def test_bad_json_gets_errors_naming_the_field_and_nothing_is_written(client, demo_form, clock, body, status, field):
    response = post_json(client, demo_form, body)
    assert response.status_code == status and field in response.json()["errors"]
    assert not Lead.objects.exists() and not Quarantine.objects.exists()


def test_the_json_endpoint_refuses_other_sites_other_types_and_big_bodies(client, demo_form):
    assert post_json(client, demo_form, {"fields": ANSWERS}, origin="https://evil.example.net").status_code == 403
    assert post_json(client, demo_form, "email=x", content_type="application/x-www-form-urlencoded").status_code == 415
    big = json.dumps({"fields": {**ANSWERS, "first_name": "x" * 20_000}})
    assert post_json(client, demo_form, big).status_code == 413
    assert not Lead.objects.exists()


def test_a_plain_html_form_embedded_in_the_website_works_without_a_token_from_an_allowed_site(client, demo_form, clock):
    url = reverse("capture:embedded", args=[demo_form.slug])
    ok = client.post(url, ANSWERS, HTTP_REFERER="https://blog.example.org/post")
    refused = client.post(url, {**ANSWERS, "email": "eve@example.com"}, HTTP_REFERER="https://evil.example.net/")

    assert ok.status_code == 200 and "Thanks!" in ok.content.decode()
    assert refused.status_code == 403
    assert list(Lead.objects.values_list("email", flat=True)) == ["ada.lovelace@example.com"]


def test_the_embed_snippet_posts_to_the_crm_and_hides_the_honeypot(demo_form):
    from capture.snippet import embed_html

    html = embed_html(demo_form, "https://crm.example.com")
    assert 'action="https://crm.example.com/f/demo/submit"' in html and 'data-crm-form="demo"' in html
    assert 'name="crm_hp"' in html and ".crm-hp{position:absolute" in html
    assert 'src="https://crm.example.com/static/capture/capture.js"' in html
    assert demo_form.consent_text in html


def test_a_flood_from_one_address_is_slowed_with_retry_after(client, demo_form, clock, capture_settings):
    capture_settings.CRM_CAPTURE_PER_ADDRESS_PER_HOUR = 2
    statuses = []
    for i in range(4):
        response = send_hosted(client, demo_form, clock, {**ANSWERS, "email": f"p{i}@example.com"})
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429, 429]
    assert int(response["Retry-After"]) > 0
    assert Lead.objects.count() == 2


def test_the_same_email_is_limited_per_form(client, demo_form, clock, capture_settings):
    capture_settings.CRM_CAPTURE_PER_EMAIL_PER_HOUR = 1
    assert send_hosted(client, demo_form, clock).status_code == 200
    assert send_hosted(client, demo_form, clock).status_code == 429


# --- Attribution: the visitor's page views ------------------------------------------------------------


def test_the_visitors_page_views_are_linked_and_give_the_first_and_last_touch(client, demo_form, clock):
    from traffic import ingest
    from traffic.models import PageView

    visitor = "0123456789abcdef0123456789abcdef"
    hit = {"v": visitor, "l": 1, "t": "Guide"}
    ua = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
          "HTTP_ACCEPT_LANGUAGE": "en"}
    for day, url in ((0, "https://www.example.com/guide?utm_source=linkedin&utm_medium=social&utm_campaign=launch"),
                     (3, "https://www.example.com/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=abc")):
        clock.shift(timedelta(days=day))
        client.post(reverse("traffic:hit"), json.dumps({**hit, "u": url}), content_type="text/plain", **ua)
    ingest.hits_ingest()

    token = shown(client, demo_form)
    clock.shift(timedelta(seconds=30))
    client.post(reverse("capture:hosted", args=[demo_form.slug]), {**ANSWERS, "crm_token": token, "crm_visitor": visitor})

    lead = Lead.objects.get()
    assert set(PageView.objects.values_list("lead_id", flat=True)) == {lead.pk}
    touches = {t.kind: t for t in LeadTouch.objects.filter(lead=lead)}
    assert (touches["first"].utm_source, touches["first"].utm_campaign) == ("linkedin", "launch")
    assert (touches["last"].utm_source, touches["last"].utm_medium, touches["last"].click_id_type) == ("google", "cpc", "gclid")
    submission = FormSubmission.objects.get()
    assert (submission.utm_source, submission.visitor_id) == ("google", visitor)


def test_without_page_views_the_touch_comes_from_the_landing_page_sent_with_the_form(client, demo_form, clock):
    token = services.fill_token(demo_form)
    clock.shift(timedelta(seconds=8))
    post_json(client, demo_form, {"fields": {**ANSWERS, "consent": True}, "crm_token": token, "context": {
        "landing_page": "https://www.example.com/?utm_source=newsletter&utm_campaign=june", "referrer": "https://mail.example.net/"}})
    last = LeadTouch.objects.get(kind="last")
    assert (last.utm_source, last.utm_campaign, last.referrer) == ("newsletter", "june", "https://mail.example.net/")


# --- What follows, from the event log ----------------------------------------------------------------


def test_what_follows_a_capture_is_done_once_from_the_event_log(client, demo_form, clock):
    from tests.factories import sequence_with_steps

    reps = [rep(username="a_rep"), rep(username="b_rep")]
    demo_form.owner_rule = CaptureForm.OwnerRule.ROUND_ROBIN
    demo_form.sequence = sequence_with_steps(name="Demo follow-up")
    demo_form.save()
    for i in range(3):
        send_hosted(client, demo_form, clock, {**ANSWERS, "email": f"p{i}@example.com"})

    assert followups.followups_run() >= 3

    owners = list(Lead.objects.order_by("pk").values_list("owner__username", flat=True))
    assert owners == ["a_rep", "b_rep", "a_rep"]
    tasks = Task.objects.order_by("lead_id")
    assert [(t.assignee.username, t.due_at - t.created_at <= timedelta(hours=1)) for t in tasks] == [
        ("a_rep", True), ("b_rep", True), ("a_rep", True)]
    assert sorted(Lead.objects.values_list("enrollments__sequence__name", flat=True)) == ["Demo follow-up"] * 3
    assert len(mail.outbox) == 3 and demo_form.resource.url in mail.outbox[0].body
    assert reps

    # Read again from the start (a cursor lost): nothing is done twice.
    from core.models import EventCursor

    EventCursor.objects.update(position=0)
    followups.followups_run()
    assert (Task.objects.count(), len(mail.outbox)) == (3, 3)
    assert FollowupDone.objects.count() == 12


def test_a_customers_visitors_are_marked_from_the_stage_change(client, demo_form, clock):
    from leads import services as lead_services
    from traffic.models import Visitor

    visitor = "fedcba9876543210fedcba9876543210"
    token = shown(client, demo_form)
    clock.shift(timedelta(seconds=10))
    client.post(reverse("capture:hosted", args=[demo_form.slug]), {**ANSWERS, "crm_token": token, "crm_visitor": visitor})
    lead = Lead.objects.get()
    lead_services.lead_change_stage(lead=lead, to_status="contacted")
    lead_services.lead_convert_to_customer(lead=lead, deal_value="1000")

    followups.followups_run()
    assert Visitor.objects.get(visitor_id=visitor).kind == "customer"


# --- The form's definition -------------------------------------------------------------------------


@pytest.mark.parametrize("change, field, message", [
    ({"fields": []}, "fields", "at least an email"),
    ({"fields": [{"name": "note", "type": "text"}]}, "fields", "Map one field to the lead's email or phone"),
    ({"fields": [{"name": "email", "type": "email", "maps_to": "password"}]}, "fields", "maps_to is one of"),
    ({"fields": [{"name": "crm_x", "type": "email", "maps_to": "email"}]}, "fields", "not starting with crm_"),
    ({"consent_text": "", "consent_required": True}, "consent_text", "Write the consent wording"),
    ({"consent_version": ""}, "consent_version", "Give the wording a version"),
    ({"owner_rule": "fixed"}, "owner", "Choose the rep"),
    ({"allowed_sites": "https://www.example.com/"}, "allowed_sites", "host names only"),
])
def test_a_form_definition_that_cannot_work_is_refused_by_field(demo_form, change, field, message):
    from django.core.exceptions import ValidationError

    for name, value in change.items():
        setattr(demo_form, name, value)
    with pytest.raises(ValidationError) as refused:
        services.capture_form_save(form=demo_form, by=marketer(username="m"))
    assert message in " ".join(refused.value.message_dict[field])


def test_merging_two_captured_leads_moves_their_page_views_touches_and_conversions_and_undo_gives_them_back(
    client, demo_form, clock, manager_user
):
    from leads import services as lead_services
    from leads.models import LeadMerge
    from traffic.models import PageView, Visitor

    for i, visitor in enumerate(("1" * 32, "2" * 32)):
        PageView.objects.create(
            hit_id=f"{i:032d}", received_at=timezone.now(), visitor_id=visitor, url="https://www.example.com/",
            host="www.example.com", path="/", is_landing=True, utm_source=f"s{i}",
        )
        token = shown(client, demo_form)
        clock.shift(timedelta(seconds=10))
        client.post(reverse("capture:hosted", args=[demo_form.slug]),
                    {**ANSWERS, "email": f"person{i}@example.com", "crm_token": token, "crm_visitor": visitor})
    keep, merge = Lead.objects.order_by("pk")

    record = lead_services.lead_merge(keep=keep, merge=merge, by=manager_user)

    assert set(PageView.objects.values_list("lead_id", flat=True)) == {keep.pk}
    assert set(Visitor.objects.values_list("lead_id", flat=True)) == {keep.pk}
    assert set(Conversion.objects.values_list("lead_id", flat=True)) == {keep.pk}
    assert LeadTouch.objects.filter(lead=keep).count() == 2 and LeadTouch.objects.filter(lead=merge).count() == 2

    lead_services.lead_merge_undo(merge=LeadMerge.objects.get(pk=record.pk), by=manager_user)

    assert dict(Visitor.objects.values_list("visitor_id", "lead_id")) == {"1" * 32: keep.pk, "2" * 32: merge.pk}
    assert dict(PageView.objects.values_list("visitor_id", "lead_id")) == {"1" * 32: keep.pk, "2" * 32: merge.pk}
    assert sorted(Conversion.objects.values_list("lead_id", flat=True)) == [keep.pk, merge.pk]


def test_a_visitors_anonymous_conversions_become_the_leads_when_it_is_captured(client, demo_form, clock):
    from leads import services as lead_services

    visitor = "abcdefabcdefabcdefabcdefabcdef12"
    earlier = lead_services.conversion_record(kind="newsletter-signup", visitor_id=visitor)
    other = lead_services.conversion_record(kind="newsletter-signup", visitor_id="9" * 32)
    token = shown(client, demo_form)
    clock.shift(timedelta(seconds=10))
    client.post(reverse("capture:hosted", args=[demo_form.slug]), {**ANSWERS, "crm_token": token, "crm_visitor": visitor})

    lead = Lead.objects.get()
    earlier.refresh_from_db()
    other.refresh_from_db()
    assert (earlier.lead, other.lead) == (lead, None)
    assert Conversion.objects.filter(lead=lead).count() == 2  # the newsletter signup and the demo request


def test_a_captured_persons_export_holds_their_visits_and_erasing_unlinks_them_and_deletes_what_was_held_back(client, demo_form, clock, manager_user):
    from nurturing.privacy import person_erase
    from traffic.models import PageView, Visitor

    visitor = "5" * 32
    PageView.objects.create(hit_id="0" * 32, received_at=timezone.now(), visitor_id=visitor, url="https://www.example.com/",
                            host="www.example.com", path="/", is_landing=True, utm_source="linkedin")
    token = shown(client, demo_form)
    clock.shift(timedelta(seconds=10))
    client.post(reverse("capture:hosted", args=[demo_form.slug]), {**ANSWERS, "crm_token": token, "crm_visitor": visitor})
    send_hosted(client, demo_form, clock, after=0)  # the same person again, too fast: held back
    assert Quarantine.objects.count() == 1
    lead = Lead.objects.get()

    from nurturing.privacy import person_export

    export = person_export(lead=lead)
    assert [v["url"] for v in export["website_page_views"]] == ["https://www.example.com/"]
    assert {t["kind"] for t in export["touches"]} == {"first", "last"} and export["conversions"][0]["kind"] == "Demo request"
    assert export["held_back_submissions"][0]["data"]["email"] == "ada.lovelace@example.com"

    result = person_erase(lead=lead, by=manager_user)

    assert PageView.objects.get().lead_id is None and Visitor.objects.get().lead_id is None
    assert not Quarantine.objects.exists() and not LeadTouch.objects.exists()
    assert result.deleted["quarantined submissions"] == 1 and result.deleted["links from website visits"] == 1


def test_assignment_rules_by_source_and_country_win_over_the_forms_round_robin(client, demo_form, clock):
    from capture.models import AssignmentRule
    from leads.models import Company

    google_rep, german_rep, pool_rep = rep(username="g_rep"), rep(username="d_rep"), rep(username="p_rep")
    demo_form.owner_rule = CaptureForm.OwnerRule.ROUND_ROBIN
    demo_form.save()
    AssignmentRule.objects.create(form=demo_form, position=1, utm_source="google", owner=google_rep)
    AssignmentRule.objects.create(position=2, country="Germany", owner=german_rep)  # every form
    Company.objects.create(name="Berliner GmbH", country="germany")

    token = services.fill_token(demo_form)
    clock.shift(timedelta(seconds=8))
    for email, landing, company in (
        ("a@example.com", "https://www.example.com/?utm_source=Google", "Analytical Engines"),
        ("b@example.com", "https://www.example.com/?utm_source=bing", "Berliner GmbH"),
        ("c@example.com", "https://www.example.com/", "Elsewhere Ltd"),
    ):
        response = post_json(client, demo_form, {"fields": {**ANSWERS, "email": email, "company": company, "consent": True},
                                                 "crm_token": token, "context": {"landing_page": landing}})
        assert response.status_code == 201, response.content
    followups.followups_run()

    owners = dict(Lead.objects.values_list("email", "owner__username"))
    assert owners["a@example.com"] == "g_rep" and owners["b@example.com"] == "d_rep"
    assert owners["c@example.com"] in {"g_rep", "d_rep", "p_rep"}  # no rule: the form's round robin
    assert pool_rep


def test_the_reps_lead_page_says_where_a_captured_lead_came_from(client, demo_form, clock):
    from leads.services import lead_assign_owner

    token = services.fill_token(demo_form)
    clock.shift(timedelta(seconds=8))
    post_json(client, demo_form, {"fields": {**ANSWERS, "consent": True}, "crm_token": token, "context": {
        "landing_page": "https://www.example.com/?utm_source=linkedin&utm_medium=social&utm_campaign=<b>autumn</b>"}})
    lead = Lead.objects.get()
    owner = rep(username="owner_rep")
    lead_assign_owner(leads=[lead], owner=owner)
    client.force_login(owner)

    html = client.get(reverse("workspace:lead_detail", args=[lead.pk])).content.decode()
    touches = html[html.index('id="lead-touches"'):]
    touches = touches[:touches.index("</dd>")]
    assert "First visit: linkedin / social / &lt;b&gt;autumn&lt;/b&gt;" in touches and "Latest visit: linkedin" in touches


class Siteverify:
    """A local stand-in for the provider's siteverify endpoint, answering its documented JSON."""

    def __init__(self, answer):
        from urllib.parse import parse_qs

        from tests.local_http import LocalServer

        self.local = LocalServer(lambda method, path, body: (200, "application/json", json.dumps(answer).encode()))
        self.url = f"{self.local.url}/turnstile/v0/siteverify"
        self._parse = parse_qs

    @property
    def received(self):
        return [{k: v[0] for k, v in self._parse(body.decode()).items()} for _, _, body in self.local.received]

    def close(self):
        self.local.close()


@pytest.mark.parametrize("answer, quarantined", [
    ({"success": True, "challenge_ts": "2026-06-02T10:00:10Z", "hostname": "www.example.com", "error-codes": []}, False),
    ({"success": False, "error-codes": ["invalid-input-response"]}, True),
])
def test_with_turnstile_on_the_token_is_verified_and_a_failed_check_is_quarantined(
    client, demo_form, clock, capture_settings, answer, quarantined
):
    verify = Siteverify(answer)
    capture_settings.CRM_CAPTCHA_PROVIDER = "turnstile"
    capture_settings.CRM_CAPTCHA_SITE_KEY, capture_settings.CRM_CAPTCHA_SECRET = "site-key", "secret-key"
    capture_settings.CRM_CAPTCHA_VERIFY_URL = verify.url
    try:
        page = client.get(reverse("capture:hosted", args=[demo_form.slug]))
        assert 'class="cf-turnstile mb-3" data-sitekey="site-key"' in page.content.decode()
        assert "https://challenges.cloudflare.com" in page["Content-Security-Policy"]
        send_hosted(client, demo_form, clock, **{"cf-turnstile-response": "XXXX.DUMMY.TOKEN"})
    finally:
        verify.close()

    assert verify.received == [{"secret": "secret-key", "response": "XXXX.DUMMY.TOKEN", "remoteip": "203.0.113.5"}]
    assert Lead.objects.exists() is not quarantined
    if quarantined:
        assert Quarantine.objects.get().reason == "the CAPTCHA check failed (invalid-input-response)"


def test_an_unreachable_captcha_provider_quarantines_instead_of_losing_the_submission(client, demo_form, clock, capture_settings):
    capture_settings.CRM_CAPTCHA_PROVIDER = "turnstile"
    capture_settings.CRM_CAPTCHA_VERIFY_URL = "http://127.0.0.1:9/siteverify"  # nothing listens there
    send_hosted(client, demo_form, clock, **{"cf-turnstile-response": "token"})
    assert not Lead.objects.exists()
    assert Quarantine.objects.get().reason.startswith("the CAPTCHA could not be checked")


def test_two_submissions_of_one_person_at_once_make_one_lead(client, demo_form, clock, monkeypatch):
    from capture import services as capture_services

    real = capture_services.lead_duplicate_of
    calls = []
    LeadFactory(email="ada.lovelace@example.com", first_name="Other request")

    def raced(*, email, exclude_pk=None):
        calls.append(email)
        if len(calls) == 1:  # the other request's lead committed just after this one looked: a miss
            return None
        return real(email=email, exclude_pk=exclude_pk)

    monkeypatch.setattr(capture_services, "lead_duplicate_of", raced)
    assert send_hosted(client, demo_form, clock).status_code == 200

    assert Lead.objects.count() == 1 and FormSubmission.objects.get().lead.first_name == "Other request"
    assert len(calls) == 2
