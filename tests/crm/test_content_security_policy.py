"""The Content-Security-Policy: sent on every kind of page, and nothing inline that it would block."""

import re

import pytest
from django.urls import reverse

from tests.conftest import ROOT
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def directives(response) -> dict:
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))


@pytest.mark.parametrize(
    ("user", "url"),
    [
        ("rep_user", reverse("workspace:today")),
        ("rep_user", reverse("workspace:lead_list")),
        ("manager_user", reverse("admin:leads_lead_changelist")),
        ("manager_user", reverse("admin:leads_lead_pipeline")),
        (None, reverse("login")),
        (None, reverse("admin:login")),
    ],
    ids=["today", "leads", "admin-lead-list", "admin-pipeline", "login", "admin-login"],
)
def test_every_kind_of_page_sends_the_policy(client, request, user, url):
    LeadFactory()
    if user:
        client.force_login(request.getfixturevalue(user))
    response = client.get(url)
    assert response.status_code == 200
    assert directives(response) == POLICY


def test_a_step_preview_lets_the_emails_html_keep_its_inline_styles_and_images_but_no_script(client, manager_user):
    step = sequence_with_steps({"html_template": '<p style="color:red">Hi</p>'}).steps.get()
    LeadFactory()
    client.force_login(manager_user)
    response = client.get(reverse("admin:nurturing_step_preview", args=[step.pk]))
    assert response.status_code == 200
    assert directives(response) == {**POLICY, "style-src": "'self' 'unsafe-inline'", "img-src": "'self' data: https:"}


INLINE = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_no_template_or_admin_html_has_what_the_policy_blocks():
    sources = [*(ROOT / "templates").rglob("*.html"), *(ROOT / path for path in ("leads/admin/lead.py", "nurturing/admin_reports.py"))]
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in sources for match in INLINE.finditer(path.read_text())]
    assert found == []
