"""A demo rep works a lead from search to customer in a real browser; another rep cannot open it."""

import re
from datetime import timedelta
from urllib.parse import quote_plus

import pytest
from django.core.management import call_command
from django.utils import timezone

from leads.models import Activity, Deal, Lead, Objection, Task
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_rep_takes_a_lead_from_search_to_customer(new_page, artifacts):
    call_command("seed_demo", leads=60, verbosity=0)
    lead = Lead.objects.filter(owner__username="rep1", status="contacted").order_by("pk").first()
    assert lead is not None, "the demo data has a contacted lead for rep1"
    before_calls = Activity.objects.filter(lead=lead, kind="call").count()

    page = new_page()
    log_in(page, "rep1")
    assert page.get_by_role("heading", name="Today", exact=True).is_visible()
    page.screenshot(path=artifacts / "01-today.png", full_page=True)

    # Find the lead: typing in the search box filters the list in place.
    page.get_by_role("link", name="Leads", exact=True).click()
    # Typing before the page's scripts have run (htmx binds the search on load) would send no search at all.
    page.wait_for_url("**/leads/")
    page.wait_for_load_state()
    # Wait for the search's answer to be in place: a click on a row the swap is about to replace would be lost.
    searched = f"q={quote_plus(lead.last_name)}"
    with page.expect_response(lambda response: searched in response.url and response.status == 200):
        page.get_by_label("Search").press_sequentially(lead.last_name)
    row_link = page.locator("#lead-results").get_by_role("link", name=str(lead))
    row_link.wait_for()
    page.screenshot(path=artifacts / "02-leads-search.png", full_page=True)
    row_link.click()
    page.wait_for_url(f"**/leads/{lead.pk}/")
    page.screenshot(path=artifacts / "03-lead.png", full_page=True)

    # Log a call with a next step; a first attempt without the outcome is refused next to the field.
    page.get_by_role("link", name=re.compile("^Log a call")).click()
    panel = page.locator("#action-panel")
    panel.get_by_label("Duration (minutes)").fill("15")
    panel.get_by_role("button", name="Save").click()
    panel.get_by_text("Choose the call's outcome.").wait_for()
    assert page.locator("#timeline").is_visible()  # the rest of the page is intact
    page.screenshot(path=artifacts / "04-call-error.png", full_page=True)
    panel.get_by_label("Outcome").select_option("connected")
    panel.get_by_label("Notes").fill("Interested; budget approved for Q1.")
    panel.get_by_label("Next step", exact=True).fill("Send the pricing sheet")
    due = timezone.localtime() + timedelta(days=2)
    panel.get_by_label("Next step due").fill(due.strftime("%Y-%m-%dT%H:%M"))
    panel.get_by_role("button", name="Save").click()
    page.get_by_text("Call logged with its next step.").wait_for()
    assert "Send the pricing sheet" in page.locator("#open-tasks").inner_text()
    assert "Call (outbound, connected" in page.locator("#timeline").inner_text()
    page.screenshot(path=artifacts / "05-call-logged.png", full_page=True)

    # A price objection, by keyboard shortcut.
    page.locator("body").press("o")
    panel.get_by_label("Category").select_option("price")
    panel.get_by_label("The lead's words").fill("It costs more than our current tool.")
    panel.get_by_label("My answer").fill("It replaces two tools; ROI in three months.")
    panel.get_by_role("button", name="Save").click()
    page.get_by_text("Objection logged.").wait_for()
    assert "Objection: Price" in page.locator("#timeline").inner_text()

    # Move to SQL.
    page.get_by_role("link", name=re.compile("^Change stage")).click()
    panel.get_by_label("Move to").select_option("sql")
    panel.get_by_label("Reason").fill("Budget and authority confirmed on the call.")
    panel.get_by_role("button", name="Save").click()
    page.get_by_text("Moved to SQL.").wait_for()
    assert page.locator("#lead-status").inner_text() == "SQL"
    page.screenshot(path=artifacts / "06-sql.png", full_page=True)

    # Convert with a deal value.
    page.get_by_role("link", name=re.compile("^Convert to customer")).click()
    panel.get_by_label("Deal value").fill("4800")
    panel.get_by_label("Product").fill("Team plan")
    panel.get_by_role("button", name="Save").click()
    page.get_by_text(re.compile("Converted to a customer")).wait_for()
    assert page.locator("#lead-status").inner_text() == "Customer"
    assert "4,800 EUR" in page.locator("#deals").inner_text()
    page.screenshot(path=artifacts / "07-customer.png", full_page=True)

    # On a phone-sized screen the lead page still reads and has its actions.
    phone = new_page(width=390, height=844)
    log_in(phone, "rep1")
    phone.goto(f"/leads/{lead.pk}/")
    assert phone.locator("#lead-status").inner_text() == "Customer"
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.screenshot(path=artifacts / "08-lead-phone.png", full_page=True)

    # What the browser did is in the database.
    lead.refresh_from_db()
    assert lead.status == "customer"
    assert Activity.objects.filter(lead=lead, kind="call").count() == before_calls + 1
    assert Task.objects.filter(lead=lead, title="Send the pricing sheet", completed_at__isnull=True).exists()
    assert Objection.objects.filter(lead=lead, category="price").exists()
    assert Deal.objects.get(lead=lead, status="won").value == 4800

    # Another rep cannot open it, even with the address.
    other = new_page()
    log_in(other, "rep2")
    response = other.goto(f"/leads/{lead.pk}/")
    assert response.status == 404
    other.screenshot(path=artifacts / "09-other-rep-404.png", full_page=True)
    response = other.goto(f"/leads/{lead.pk}/call/")
    assert response.status == 404
