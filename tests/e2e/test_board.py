"""A rep drags cards across the pipeline board in a real browser; a refused move snaps back with the reason."""

import pytest

from leads.models import Lead
from tests.e2e.conftest import log_in
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory, rep

# Where a drag starts: the card's edge (its middle holds the "Move to" control, which a drag does not start from).
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
    assert page.locator('[data-column="lead-contacted"] [data-count]').inner_text() == "1"

    page.locator(f'[data-card="lead-{bea.pk}"]').drag_to(page.locator('[data-column="lead-customer"]'), source_position=GRIP)
    page.locator("#board-status").get_by_text("becomes a customer by converting").wait_for()
    assert page.locator(f'[data-column="lead-new"] [data-card="lead-{bea.pk}"]').count() == 1
    assert Lead.objects.get(pk=bea.pk).status == "new"
    page.screenshot(path=artifacts / "board-02-refused.png", full_page=True)
    assert violations == []


def test_on_a_phone_the_move_to_control_moves_a_card_with_the_keyboard(new_page, artifacts, board_rep):
    cy = LeadFactory(first_name="Cy", last_name="Phone", owner=board_rep)

    page = new_page(width=390, height=844)
    violations = watch_for_violations(page)
    log_in(page, "boardrep")
    page.goto("/board/")
    card = page.locator(f'[data-card="lead-{cy.pk}"]')
    card.get_by_label("Move Cy Phone to").select_option("customer")
    card.get_by_role("button", name="Move").press("Enter")
    page.locator("#board-status").get_by_text("becomes a customer by converting").wait_for()
    assert page.locator(f'[data-column="lead-new"] [data-card="lead-{cy.pk}"]').count() == 1

    card.get_by_label("Move Cy Phone to").select_option("contacted")
    card.get_by_role("button", name="Move").press("Enter")
    page.locator("#board-status").get_by_text("Cy Phone moved to Contacted.").wait_for()
    assert Lead.objects.get(pk=cy.pk).status == "contacted"
    page.screenshot(path=artifacts / "board-03-phone.png", full_page=False)
    assert violations == []
