"""The audience page counts the leads the rules hold as a marketer edits them, before saving, under the
Content-Security-Policy, writing names as text."""

import re

import pytest

from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory, SourceFactory, marketer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_count_and_sample_follow_the_rules_as_they_change(new_page, artifacts):
    ads = SourceFactory(slug="ads", name="Ads")
    LeadFactory(source=ads, first_name="<b>Bold</b>", last_name="Ann", score=40)
    LeadFactory(source=ads, first_name="Bob", last_name="Low", score=10)
    LeadFactory(first_name="Cid", score=90)
    marketer(username="mk")
    page = new_page()
    violations = watch_for_violations(page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("mk")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/leads/$"))

    page.goto("/admin/nurturing/audience/add/")
    live = page.locator("#audience-live")
    page.locator("#id_source").select_option(label="Ads")
    page.locator("#audience-live-count").filter(has_text="2").wait_for()
    page.locator("#id_score_min").fill("30")
    page.locator("#audience-live-count").filter(has_text="1").wait_for()
    assert live.locator("li").all_inner_texts() == [f"<b>Bold</b> Ann <{_email_of('Ann')}> · New"]
    assert live.locator("b").count() == 0  # the name is text, not markup
    page.locator("#id_score_max").fill("10")
    live.get_by_text("swap them").wait_for()
    page.screenshot(path=artifacts / "audience-live-count.png", full_page=True)

    assert violations == []


def _email_of(last_name: str) -> str:
    from leads.models import Lead

    return Lead.objects.get(last_name=last_name).email
