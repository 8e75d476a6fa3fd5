"""The public machine endpoints take the short way through the middleware (core.middleware), and forms are read
from the process's copy (capture.selectors)."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse

from capture import selectors, services
from capture.models import CaptureForm
from leads.models import FormSubmission
from tests.capture.test_capture import ANSWERS, post_json

pytestmark = pytest.mark.django_db

PAGE_VIEW = {"v": "b7f1c0de9a8e4f2a8c1d2e3f4a5b6c7d", "u": "https://www.example.com/pricing", "l": 1}


@pytest.fixture(autouse=True)
def fresh_forms():
    selectors.forget_forms()
    yield
    selectors.forget_forms()


def test_tracking_and_form_json_skip_the_page_middleware_but_keep_the_security_headers(client, demo_form, clock):
    hit = client.post(reverse("traffic:hit"), json.dumps(PAGE_VIEW), content_type="text/plain")
    token = client.get(reverse("capture:token", args=[demo_form.slug]), HTTP_ORIGIN="https://www.example.com")
    page = client.get(reverse("capture:hosted", args=[demo_form.slug]))

    assert (hit.status_code, token.status_code, page.status_code) == (204, 200, 200)
    for lean in (hit, token):
        assert lean["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still answers
        assert not lean.has_header("Content-Security-Policy")  # CSP, frames, sessions: not on this way
        assert not lean.has_header("X-Frame-Options")
        assert not lean.cookies
    # The hosted page is a page: it goes the whole way.
    assert page.has_header("Content-Security-Policy") and page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"


def test_a_lean_endpoint_still_refuses_a_host_not_allowed(client, settings, demo_form):
    settings.ALLOWED_HOSTS = ["crm.example.com"]

    response = client.post(reverse("traffic:hit"), json.dumps(PAGE_VIEW), content_type="text/plain",
                           HTTP_HOST="evil.example.net")

    assert response.status_code == 400


def test_an_unknown_form_under_the_lean_paths_is_a_404_as_anywhere(client, db):
    assert client.post("/api/forms/no-such-form", "{}", content_type="application/json").status_code == 404
    assert client.get("/t/no-such-endpoint").status_code == 404


def test_a_form_closed_in_this_process_is_closed_at_once(client, demo_form, clock):
    assert client.get(reverse("capture:token", args=[demo_form.slug])).status_code == 200

    demo_form.is_active = False
    demo_form.save()

    assert client.get(reverse("capture:token", args=[demo_form.slug])).status_code == 404


def test_a_change_made_by_another_process_is_seen_within_the_cache_time(client, demo_form, clock, settings,
                                                                       monkeypatch):
    settings.CRM_CAPTURE_FORM_CACHE_SECONDS = 5
    moment = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: moment[0])
    token = services.fill_token(demo_form)
    clock.shift(timedelta(seconds=8))
    assert post_json(client, demo_form, {"fields": {**ANSWERS, "consent": True}, "crm_token": token}).status_code == 201

    # As another process's save looks to this one: no signal here.
    CaptureForm.objects.filter(pk=demo_form.pk).update(thank_you_message="Changed elsewhere.")
    moment[0] += 4.9
    answers = {**ANSWERS, "email": "grace@example.com", "consent": True}
    kept = post_json(client, demo_form, {"fields": answers, "crm_token": token})
    moment[0] += 0.2
    answers["email"] = "edsger@example.com"
    read_again = post_json(client, demo_form, {"fields": answers, "crm_token": token})

    assert kept.json()["message"] == "Thanks! We will call you within the hour."
    assert read_again.json()["message"] == "Changed elsewhere."
    assert FormSubmission.objects.count() == 3  # each written from the database's form, whichever copy answered


def test_slugs_that_are_no_form_cannot_grow_the_process_copy_without_end(client, db, settings):
    settings.CRM_CAPTURE_FORM_CACHE_SECONDS = 60
    for n in range(1500):
        assert selectors.capture_form_get(f"nothing-{n}") is None

    assert len(selectors._forms) <= 1000
