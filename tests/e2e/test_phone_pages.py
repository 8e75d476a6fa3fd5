"""Every reps' page at 390 px wide in Chromium, on the demo data: nothing wider than the screen (the board
scrolls inside itself), the main action within reach, no Content-Security-Policy violation. Screenshots at
phone and desktop sizes go to the test artifacts."""

import pytest
import time_machine
from django.core.management import call_command

from leads.models import Deal, Lead
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import watch_for_violations

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def demo():
    with time_machine.travel("2026-11-30 09:00:00Z", tick=False):
        call_command("seed_demo", leads=40, verbosity=0)
    lead = Lead.objects.filter(owner__username="rep1").order_by("pk").first()
    deal = Deal.objects.filter(lead__owner__username="rep1").order_by("pk").first()
    return {"lead": lead, "deal": deal}


def pages(demo):
    """(name, path, a control the page is for, as (role, name))."""
    lead = demo["lead"]
    return [
        ("today", "/today/", ("heading", "Today")),
        ("leads", "/leads/", ("link", "New lead")),
        ("lead", f"/leads/{lead.pk}/", ("link", "Log a call")),
        ("lead-new", "/leads/new/", ("button", "Create the lead")),
        ("lead-edit", f"/leads/{lead.pk}/edit/", ("button", "Save")),
        ("tasks", "/tasks/", ("heading", "My tasks")),
        ("board", "/board/", ("button", None)),
        ("search", "/search/?q=a", ("heading", None)),
        ("notifications", "/notifications/", ("heading", "Notifications")),
        ("numbers", "/numbers/", ("heading", None)),
    ]


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_reps_page_fits_the_screen(new_page, artifacts, demo, size):
    viewport = PHONE if size == "phone" else DESKTOP
    page = new_page(**viewport)
    violations = watch_for_violations(page)
    log_in(page, "rep1")
    too_wide = {}
    for name, path, (role, label) in pages(demo):
        response = page.goto(path)
        assert response.status == 200, (path, response.status)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            too_wide[name] = width
        if label:
            control = page.get_by_role(role, name=label).first
            control.scroll_into_view_if_needed()
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (name, box)
        page.screenshot(path=artifacts / f"pages-{size}-{name}.png", full_page=True)
    assert too_wide == {}
    assert violations == []


def test_on_a_phone_the_lead_pages_actions_and_the_leads_cards_are_thumb_sized(new_page, demo):
    page = new_page(**PHONE)
    log_in(page, "rep1")
    page.goto(f"/leads/{demo['lead'].pk}/")
    for label in ("Log a call", "Add a note", "Schedule a follow-up"):
        box = page.get_by_role("link", name=label).first.bounding_box()
        assert box["height"] >= 30, (label, box)
    page.goto("/leads/")
    first = page.locator("#lead-results tbody tr").first
    assert first.bounding_box()["width"] <= PHONE["width"]
