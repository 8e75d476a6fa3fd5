"""A rep drags cards across the pipeline board in a real browser; a refused move snaps back with the reason."""

import pytest
from playwright.sync_api import expect

from leads.models import Lead
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory, rep

# Where a drag starts: the card's edge, away from its links.
GRIP = {"x": 4, "y": 4}

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def board_rep():
    user = rep(username="boardrep", first_name="Bo", last_name="Ard")
    user.set_password("crm-demo")
    user.save()
    return user


def test_a_rep_drags_cards_across_the_board_and_a_refused_move_snaps_back(new_page, artifacts, board_rep):
    ada = LeadFactory(first_name="Ada", last_name="Drag", owner=board_rep)
    bea = LeadFactory(first_name="Bea", last_name="Refused", owner=board_rep)

    page = new_page()
    violations = watch_for_violations(page)
    log_in(page, "boardrep")
    page.get_by_role("link", name="Board", exact=True).click()
    page.wait_for_url("**/board/")
    page.screenshot(path=artifacts / "board-01.png", full_page=True)

    page.locator(f'[data-card="lead-{ada.pk}"]').drag_to(page.locator('[data-column="lead-contacted"]'), source_position=GRIP)
    page.locator("#board-status").get_by_text("Ada Drag moved to Contacted.").wait_for()
    assert page.locator(f'[data-column="lead-contacted"] [data-card="lead-{ada.pk}"]').count() == 1
    assert Lead.objects.get(pk=ada.pk).status == "contacted"
    # the heads are read again after the move
    expect(page.locator('[data-column="lead-contacted"] [data-summary]')).to_have_text("1 lead")
    expect(page.locator('[data-column="lead-new"] [data-summary]')).to_have_text("1 lead")

    page.locator(f'[data-card="lead-{bea.pk}"]').drag_to(page.locator('[data-column="lead-customer"]'), source_position=GRIP)
    page.locator("#board-status").get_by_text("becomes a customer by converting").wait_for()
    assert page.locator(f'[data-column="lead-new"] [data-card="lead-{bea.pk}"]').count() == 1
    assert Lead.objects.get(pk=bea.pk).status == "new"
    page.screenshot(path=artifacts / "board-02-refused.png", full_page=True)
    assert violations == []


def test_on_a_phone_the_move_dialog_moves_a_card_with_the_keyboard(new_page, artifacts, board_rep):
    cy = LeadFactory(first_name="Cy", last_name="Phone", owner=board_rep)

    page = new_page(width=390, height=844)
    violations = watch_for_violations(page)
    log_in(page, "boardrep")
    page.goto("/board/")
    card = page.locator(f'[data-card="lead-{cy.pk}"]')
    dialog = page.locator("#board-move")

    card.get_by_role("link", name="Move Cy Phone").press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("To")).to_be_focused()
    dialog.get_by_label("To").select_option("customer")
    dialog.get_by_role("button", name="Move").press("Enter")
    page.locator("#board-status").get_by_text("becomes a customer by converting").wait_for()
    assert page.locator(f'[data-column="lead-new"] [data-card="lead-{cy.pk}"]').count() == 1
    expect(card.get_by_role("link", name="Move Cy Phone")).to_be_focused()

    card.get_by_role("link", name="Move Cy Phone").press("Enter")
    dialog.get_by_label("To").select_option("lost")
    expect(dialog.get_by_label("Why?")).to_be_visible()
    dialog.get_by_label("Why?").fill("Chose a competitor")
    page.screenshot(path=artifacts / "board-03-phone-dialog.png", full_page=False)
    dialog.get_by_role("button", name="Move").press("Enter")
    page.locator("#board-status").get_by_text("Cy Phone moved to Lost.").wait_for()
    lead = Lead.objects.get(pk=cy.pk)
    assert lead.status == "lost" and lead.lost_reason == "Chose a competitor"
    assert page.locator(f'[data-card="lead-{cy.pk}"]').count() == 0
    page.screenshot(path=artifacts / "board-04-phone.png", full_page=False)
    assert violations == []
