"""A manager reads the reports in a real browser: a range and a slice, a drill-down that sums to its figure, a CSV."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from leads.models import Source
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_manager_changes_the_range_and_slice_drills_down_and_downloads(new_page, artifacts):
    call_command("seed_demo", leads=80, verbosity=0)
    page = new_page()
    log_in(page, "manager")

    page.get_by_role("link", name="Reports", exact=True).click()
    page.wait_for_url(re.compile(r"/reports/$"))
    assert page.get_by_role("heading", name="Funnel", exact=True).is_visible()

    # A range of the last 180 days and one source: the figures follow the address.
    today = timezone.localdate()
    page.get_by_label("From", exact=True).fill((today - timedelta(days=179)).isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    source = Source.objects.filter(leads__isnull=False).order_by("pk").first()
    page.get_by_label("Source", exact=True).select_option(str(source.pk))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf"source={source.pk}"))
    page.screenshot(path=artifacts / "reports-dashboard.png", full_page=True)
    assert page.locator("#cohort-funnel").is_visible()
    assert "(commonly 5.0 %–10.0 %)" in page.locator("body").inner_text()

    # The cohort's leads: the list behind the number has as many rows as the number says.
    link = page.locator('a[data-figure="cohort-leads"]')
    figure = int(link.inner_text())
    assert figure > 0
    link.click()
    page.wait_for_url(re.compile(r"/reports/figures/cohort-leads/"))
    assert int(page.locator("#row-count").inner_text()) == figure
    page.screenshot(path=artifacts / "reports-drill-down.png", full_page=True)

    # Its CSV: a header and one line per lead.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    lines = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert lines[0][0] == "Lead" and lines[0][1].startswith("Created (") and lines[0][2] == "Stage now"
    assert len(lines) == figure + 1
    assert download.suggested_filename.startswith("cohort-leads-")

    # Every other report, by its tab: each keeps the range and the slice, and shows its own section.
    page.go_back()
    headings = {"Cohorts": "Cohorts", "Economics": "Economics", "Nurturing": "Nurturing", "Sales": "Sales",
                "Pipeline": "Pipeline", "Stuck and cold": "Stuck and cold", "Objections": "Objections", "Reps": "Reps"}
    for tab, heading in headings.items():
        page.locator("#report-tabs").get_by_role("link", name=tab, exact=True).click()
        page.wait_for_url(re.compile(rf"/reports/[a-z]+/\?.*source={source.pk}"))
        assert page.get_by_role("heading", name=heading, exact=True).is_visible(), tab
        assert page.locator("#report-tabs a[aria-current=page]").inner_text() == tab
        if tab == "Sales":
            # Hover text gives each figure's definition.
            assert "won / (won + lost)" in page.locator("#win-rate").locator("xpath=..").get_attribute("title")
    page.screenshot(path=artifacts / "reports-reps.png", full_page=True)
