"""A rep's day in one journey, in Chromium, on a desktop and on a phone-sized screen: create a lead, move it
across the pipeline board (a refused move snaps back with the reason), open a deal with a value and expected
close date, find the company with "/", and see the notification when the lead's reply comes in through the
email provider's webhook. Screenshots of the board, the lead page and the lists go to the test artifacts."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import Deal, DealStage, Lead
from notifications.services import notifications_from_events
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import rep
from tests.nurturing.provider_payloads import ses_inbound
from tests.nurturing.webhook_posts import anymail_settings, post_sns

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# Where a drag starts: the card's edge, away from its links.
GRIP = {"x": 4, "y": 4}


@pytest.fixture
def day_rep(settings):
    settings.ANYMAIL = anymail_settings()
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    user = rep(username="dayrep", first_name="Dana", last_name="Day")
    user.set_password("crm-demo")
    user.save()
    return user


def move_on_board(page, card, target_label, *, screen, column=None, reason=""):
    """Desktop: drag the card onto the column; phone: its Move… dialog, with the thumb."""
    if screen == "desktop" and column is not None:
        target = page.locator(f'[data-column="{column}"]')
        target.scroll_into_view_if_needed()  # as a person scrolls the board sideways first
        card.drag_to(target, source_position=GRIP)
        if reason:
            dialog = page.locator("#board-reason")
            dialog.get_by_role("textbox").fill(reason)
            dialog.get_by_role("button", name="Move").click()
        return
    card.locator("[data-move-open]").click()
    dialog = page.locator("#board-move")
    expect(dialog).to_be_visible()
    dialog.get_by_label("To").select_option(label=target_label)
    if reason:
        dialog.get_by_label(re.compile("Why")).fill(reason)
    dialog.get_by_role("button", name="Move").click()


def shot(page, artifacts, screen, name):
    page.screenshot(path=artifacts / f"rep-day-{screen}-{name}.png", full_page=screen == "desktop")


@pytest.mark.parametrize("screen", SCREENS)
def test_a_reps_day_from_a_new_lead_to_a_deal_and_a_reply(new_page, artifacts, day_rep, screen):
    page = new_page(**SCREENS[screen])
    violations = watch_for_violations(page)
    log_in(page, "dayrep")

    # A new lead, from the Leads page.
    page.get_by_role("link", name="Leads", exact=True).click()
    page.get_by_role("link", name="New lead").click()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email").fill("grace.hopper@cobol.example")
    page.get_by_label("Company").fill("Compiler Works")
    page.get_by_role("button", name="Create the lead").click()
    page.wait_for_url(re.compile(r"/leads/\d+/$"))
    lead = Lead.objects.get(email="grace.hopper@cobol.example")
    assert lead.owner == day_rep and lead.status == "new"

    # Across the board: to Contacted, then a refused move to Customer snaps back with the service's reason.
    page.get_by_role("link", name="Board", exact=True).click()
    page.wait_for_url("**/board/")
    card = page.locator(f'[data-card="lead-{lead.pk}"]')
    expect(card).to_contain_text("Grace Hopper")
    expect(card).to_contain_text("Compiler Works")
    shot(page, artifacts, screen, "01-board")
    move_on_board(page, card, "Contacted", screen=screen, column="lead-contacted")
    page.locator("#board-status").get_by_text("Grace Hopper moved to Contacted.").wait_for()
    expect(page.locator('[data-column="lead-contacted"] [data-summary]')).to_have_text("1 lead")
    move_on_board(page, card, "Customer", screen=screen, column="lead-customer")
    page.locator("#board-status").get_by_text("becomes a customer by converting").wait_for()
    expect(page.locator(f'[data-column="lead-contacted"] [data-card="lead-{lead.pk}"]')).to_have_count(1)
    assert Lead.objects.get(pk=lead.pk).status == "contacted"
    shot(page, artifacts, screen, "02-board-refused")
    move_on_board(page, card, "SQL", screen=screen)  # four columns away: the Move… dialog, on a desktop too
    page.locator("#board-status").get_by_text("Grace Hopper moved to SQL.").wait_for()

    # A deal, on the lead page: value and expected close date.
    card.get_by_role("link", name="Grace Hopper", exact=True).click()
    page.wait_for_url(re.compile(rf"/leads/{lead.pk}/$"))
    page.get_by_role("link", name=re.compile("^Open a deal")).click()
    close_on = timezone.localdate() + timedelta(days=45)
    page.get_by_label("Deal value").fill("24000")
    page.get_by_label("Expected close date").fill(close_on.isoformat())
    page.get_by_label("Next step").fill("Send the proposal")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Deal opened in Qualification: 24,000 EUR.").wait_for()
    deal = Deal.objects.get(lead=lead)
    assert (deal.value, deal.expected_close_on, deal.stage.name) == (24000, close_on, "Qualification")
    expect(page.locator("#deals")).to_contain_text(f"closes {close_on.day} {close_on:%b %Y}")
    shot(page, artifacts, screen, "03-lead-page")

    # The deal on the board, moved to Proposal; the column totals follow.
    page.get_by_role("link", name="Board", exact=True).click()
    qualification, proposal = (DealStage.objects.get(name=name).pk for name in ("Qualification", "Proposal"))
    deal_card = page.locator(f'[data-card="deal-{deal.pk}"]')
    expect(page.locator(f'[data-column="deal-{qualification}"] [data-summary]')).to_have_text("1 deal · 24,000 EUR")
    move_on_board(page, deal_card, "Proposal", screen=screen, column=f"deal-{proposal}")
    page.locator("#board-status").get_by_text("deal moved to “Proposal”").wait_for()
    expect(page.locator(f'[data-column="deal-{proposal}"] [data-summary]')).to_have_text("1 deal · 24,000 EUR")
    expect(page.locator(f'[data-column="deal-{qualification}"] [data-summary]')).to_have_text("0 deals")
    expect(page.locator(f'[data-column="deal-{qualification}"] [data-empty]')).to_have_text("No cards.")
    assert Deal.objects.get(pk=deal.pk).stage_id == proposal
    shot(page, artifacts, screen, "04-board-deal")

    # The company, found with "/" from any page.
    page.keyboard.press("/")
    box = page.get_by_role("combobox", name="Find leads, companies and deals")
    expect(box).to_be_focused()
    box.press_sequentially("compiler", delay=20)
    page.get_by_role("listbox").get_by_role("option", name=re.compile("Compiler Works.*1 lead")).wait_for()
    shot(page, artifacts, screen, "05-search")
    box.press("ArrowDown")
    while box.get_attribute("aria-activedescendant") != f"gs-company-{lead.company_id}":
        box.press("ArrowDown")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/leads/\?q=Compiler"))
    expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
    shot(page, artifacts, screen, "06-leads-list")

    # Her reply comes in through the provider's inbound webhook (Amazon SES over SNS); the beat's reader runs.
    answer = post_sns(Client(), "amazon_ses_inbound_webhook", ses_inbound(
        sender="Grace Hopper <grace.hopper@cobol.example>", to="dayrep@example.com", subject="Re: our call",
        text="Send me the proposal, please."))
    assert answer.status_code == 200
    assert notifications_from_events() == 1
    page.goto("/today/")
    bell = page.locator("#notifications-bell")
    expect(bell.locator("[data-unread]")).to_have_text("1")
    bell.click()
    page.wait_for_url(re.compile(r"/notifications/$"))
    shot(page, artifacts, screen, "07-notifications")
    page.get_by_role("button", name="Grace Hopper replied").click()
    page.wait_for_url(re.compile(rf"/leads/{lead.pk}/$"))
    expect(page.locator("#notifications-bell [data-unread]")).to_have_count(0)

    # Nothing wider than the screen on the way.
    assert page.evaluate("document.documentElement.scrollWidth") <= SCREENS[screen]["width"]
    assert violations == []
