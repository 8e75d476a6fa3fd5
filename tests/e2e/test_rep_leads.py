"""A rep makes a lead, edits it in place, moves two leads at once and sorts the list; then the same list on a
phone: cards and a Filters button. No Content-Security-Policy violation on the way."""

import re

import pytest
from django.core.management import call_command

from leads.models import Lead
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_rep_creates_edits_moves_and_sorts_leads_then_sees_cards_on_a_phone(new_page, artifacts):
    call_command("seed_demo", leads=20, verbosity=0)
    page = new_page()
    violations = watch_for_violations(page)
    log_in(page, "rep1")

    # A new lead.
    page.goto("/leads/new/")
    page.get_by_label("First name").fill("Hedy")
    page.get_by_label("Last name").fill("Lamarr")
    page.get_by_label("Email").fill("hedy.lamarr@example.com")
    page.get_by_label("Company").fill("Frequency Hopping Inc")
    page.get_by_role("button", name="Create the lead").click()
    page.wait_for_url(re.compile(r"/leads/\d+/$"))
    lead = Lead.objects.get(email="hedy.lamarr@example.com")
    page.screenshot(path=artifacts / "rep-leads-01-created.png", full_page=True)

    # Its job title, in place.
    page.get_by_role("link", name="Edit job title").click()
    page.locator("#lead-title").get_by_label("Job title", exact=True).fill("Inventor")  # not the "Edit job title" link, swapped out by htmx
    page.locator("#lead-title").get_by_role("button", name="Save").click()
    page.get_by_text("Job title saved.").wait_for()
    assert "Inventor" in page.locator("#lead-title").inner_text()
    page.screenshot(path=artifacts / "rep-leads-02-title.png", full_page=True)

    # Two leads moved to Contacted at once.
    other = LeadFactory(first_name="Katherine", last_name="Johnson", owner=lead.owner)
    page.goto("/leads/?status=new&sort=newest")
    page.get_by_label(f"Select {lead}").check()
    page.get_by_label(f"Select {other}").check()
    assert page.locator("#bulk-count").inner_text() == "2 selected"
    page.locator("#bulk-action").select_option("stage")
    page.get_by_role("button", name="Apply").click()
    page.get_by_label("Move to").select_option("contacted")
    page.screenshot(path=artifacts / "rep-leads-03-bulk.png", full_page=True)
    page.get_by_role("button", name="Change stage").click()
    page.get_by_text("2 leads moved to Contacted.").wait_for()
    assert set(Lead.objects.filter(pk__in=[lead.pk, other.pk]).values_list("status", flat=True)) == {"contacted"}

    # Sorted by score, highest first.
    page.goto("/leads/")
    page.locator("a.sort-link[data-sort='score']").click()
    page.wait_for_url(re.compile(r"sort=score"))
    assert page.locator("th[aria-sort='descending'] a[data-sort='score']").count() == 1
    page.screenshot(path=artifacts / "rep-leads-04-sorted.png", full_page=True)
    assert violations == []

    # The same list on a phone.
    phone = new_page(width=390, height=844)
    phone_violations = watch_for_violations(phone)
    log_in(phone, "rep1")
    phone.goto("/leads/?sort=score")
    filters = phone.get_by_text("Filters", exact=True)
    assert filters.is_visible()
    assert not phone.get_by_label("Search").is_visible()
    row = phone.locator("#lead-results tbody tr").first
    assert row.evaluate("tr => getComputedStyle(tr).display") == "block"
    assert row.bounding_box()["width"] <= 390
    assert not phone.locator("#lead-results thead").is_visible() or phone.locator("#lead-results thead").bounding_box()["height"] <= 1
    phone.screenshot(path=artifacts / "rep-leads-05-phone.png", full_page=False)
    filters.click()
    assert phone.get_by_label("Search").is_visible()
    phone.screenshot(path=artifacts / "rep-leads-06-phone-filters.png", full_page=False)
    assert phone_violations == []
