"""A rep finds a company from the Today page with "/", the keyboard only, in a real browser, under the
Content-Security-Policy; hostile names in the dropdown show as text."""

import re

import pytest
import time_machine

from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import CompanyFactory, LeadFactory, rep

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_rep_finds_a_company_with_slash_and_the_arrow_keys(new_page, artifacts):
    with time_machine.travel("2026-11-30 10:00:00Z", tick=False):
        owner = rep(username="finder")
        company = CompanyFactory(name="Stark Industries", domain="stark.example")
        lead = LeadFactory(owner=owner, first_name="Pepper", last_name="Potts", company=company)
        LeadFactory(owner=owner, first_name="<img src=x>", last_name="Starkey", company=CompanyFactory(name="Other"))
    page = new_page()
    violations = watch_for_violations(page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("finder")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/today/$"))

    page.keyboard.press("/")
    box = page.get_by_role("combobox", name="Find leads, companies and deals")
    assert box.evaluate("element => element === document.activeElement")
    box.press_sequentially("stark ind", delay=20)
    listbox = page.get_by_role("listbox")
    company_option = listbox.get_by_role("option", name=re.compile("Stark Industries.*1 lead"))
    company_option.wait_for()
    assert box.get_attribute("aria-expanded") == "true"
    options = listbox.get_by_role("option")
    position = [options.nth(i).get_attribute("id") for i in range(options.count())].index(f"gs-company-{company.pk}")
    for _ in range(position + 1):
        box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == f"gs-company-{company.pk}"
    assert company_option.get_attribute("aria-selected") == "true"
    page.screenshot(path=artifacts / "global-search.png")
    box.press("Enter")

    page.wait_for_url(re.compile(r"/leads/\?q=Stark"))
    assert page.get_by_role("link", name="Pepper Potts").get_attribute("href") == f"/leads/{lead.pk}/"

    # Escape closes the dropdown; a hostile name is text, not an element.
    page.goto("/today/")
    page.keyboard.press("/")
    box.press_sequentially("starkey", delay=20)
    listbox.get_by_role("option", name=re.compile("Starkey")).wait_for()
    assert listbox.locator("img").count() == 0
    box.press("Escape")
    assert box.get_attribute("aria-expanded") == "false"
    assert violations == []
