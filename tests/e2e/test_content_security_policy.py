"""Under the Content-Security-Policy, the reps' pages and the admin work and the browser reports no violation."""

import re

import pytest
from django.core.management import call_command

from leads.models import Lead
from tests.e2e.conftest import log_in
from tests.factories import sequence_with_steps

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def watch_for_violations(page) -> list[str]:
    """Every violation the page reports: Chromium's console messages, and each securitypolicyviolation event."""
    reports = []
    page.on("console", lambda message: reports.append(message.text) if "Content Security Policy" in message.text else None)
    # Init scripts come from the browser, not the page, so the policy does not stop this one.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    return reports


def test_the_reps_pages_report_no_violation(new_page, artifacts):
    call_command("seed_demo", leads=30, verbosity=0)
    lead = Lead.objects.filter(owner__username="rep1").order_by("pk").first()
    page = new_page()
    violations = watch_for_violations(page)

    log_in(page, "rep1")
    page.get_by_role("link", name="Leads", exact=True).click()
    page.get_by_label("Search").fill(lead.last_name)
    page.locator("#lead-results").get_by_role("link", name=str(lead)).wait_for()
    page.goto(f"/leads/{lead.pk}/")
    page.get_by_role("link", name=re.compile("^Log a call")).click()
    page.locator("#action-panel").get_by_role("button", name="Save").click()
    page.locator("#action-panel").get_by_text("Choose the call's outcome.").wait_for()
    page.goto("/numbers/")
    page.screenshot(path=artifacts / "csp-rep-numbers.png", full_page=True)

    assert violations == []


def test_the_admin_reports_no_violation(new_page, artifacts):
    call_command("seed_demo", leads=30, verbosity=0)
    lead = Lead.objects.order_by("pk").first()
    styled_email = {"html_template": '<p style="color:#0d6efd">Hello {{ first_name }}</p>'}
    step = sequence_with_steps(styled_email, name="Styled").steps.get()
    page = new_page()
    violations = watch_for_violations(page)

    log_in(page, "manager")
    page.goto("/admin/leads/lead/")
    page.locator("#result_list").wait_for()
    page.screenshot(path=artifacts / "csp-admin-lead-list.png", full_page=True)
    page.goto(f"/admin/leads/lead/{lead.pk}/change/")
    page.goto("/admin/leads/lead/pipeline/")
    page.get_by_label("Owner").select_option(label="Unassigned")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"owner=none"))
    page.screenshot(path=artifacts / "csp-admin-pipeline.png", full_page=True)
    page.goto(f"/admin/nurturing/sequence/step/{step.pk}/preview/?lead={lead.pk}")
    greeting = page.frame_locator("#preview-html").get_by_text("Hello")
    assert greeting.evaluate("p => getComputedStyle(p).color") == "rgb(13, 110, 253)"  # the email keeps its inline style
    page.screenshot(path=artifacts / "csp-admin-step-preview.png", full_page=True)

    assert violations == []


def test_the_api_docs_work_under_the_policy(new_page, artifacts):
    page = new_page()
    violations = watch_for_violations(page)

    page.goto("/api/docs/")
    page.locator('[data-path="/api/v1/leads/{id}/stage/"]').first.wait_for()
    page.screenshot(path=artifacts / "csp-api-docs.png", full_page=True)

    assert violations == []
