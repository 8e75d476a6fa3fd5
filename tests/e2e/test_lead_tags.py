"""A rep tags their lead on its page and takes the tag off again, in place, in a real browser, under the
Content-Security-Policy; a hostile tag name shows as text."""

import re

import pytest

from leads.models import LeadTag
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory, rep

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_rep_adds_and_removes_tags_in_place(new_page, artifacts):
    owner = rep(username="tagger")
    lead = LeadFactory(owner=owner, first_name="Ada", last_name="Tagged")
    page = new_page()
    violations = watch_for_violations(page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("tagger")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/today/$"))
    page.goto(f"/leads/{lead.pk}/")

    tags = page.locator("#lead-tags")
    page.get_by_label("Add a tag").fill("<img src=x>VIP")
    with page.expect_response(lambda response: "/tags/add/" in response.url and response.status == 200):
        page.get_by_role("button", name="Add", exact=True).click()
    tags.get_by_text("<img src=x>VIP").wait_for()
    assert tags.locator("img").count() == 0
    assert page.url.endswith(f"/leads/{lead.pk}/")  # redrawn in place, no page load
    page.screenshot(path=artifacts / "lead-tags.png", full_page=True)

    page.get_by_role("button", name="Remove the tag <img src=x>VIP").click()
    tags.get_by_text("No tag.").wait_for()

    assert not LeadTag.objects.exists()
    assert violations == []
