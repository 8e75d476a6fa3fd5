"""A marketer builds a sequence on the studio pages in a real browser, previews and tests it, activates it, then
enrolls an audience (in the admin) and reads the per-step report."""

import re

import pytest
from django.core import mail

from leads.models import Lead
from nurturing.models import Audience, Enrollment, Sequence, Step
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import CompanyFactory, LeadFactory, marketer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _subjects(sequence):
    return list(sequence.steps.order_by("position").values_list("subject_template", flat=True))


def _add_step(page, kind_link, *, days, hours="0", subject=None, text=None):
    page.get_by_role("link", name=kind_link).click()
    page.get_by_label("Days").fill(days)
    page.get_by_label("Hours").fill(hours)
    if subject is not None:
        page.get_by_label("Subject").fill(subject)
        page.get_by_label("Plain text").fill(text)


def test_a_marketer_builds_previews_tests_activates_and_enrolls_a_sequence(new_page, artifacts):
    user = marketer(username="mia", email="mia@example.com", first_name="Mia", last_name="Marketer")
    LeadFactory(first_name="Grace", last_name="Hopper", company=None)
    for name in ("Initech", "Globex"):
        LeadFactory(company=CompanyFactory(name=name))
    audience = Audience.objects.create(name="Everyone new", stage="new")
    mail.outbox = []

    page = new_page()
    violations = watch_for_violations(page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("mia")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/leads/$"))

    # A new sequence, from the nav.
    page.get_by_role("link", name="Sequences", exact=True).click()
    page.get_by_role("link", name="New sequence").click()
    page.get_by_label("Name").fill("Guide follow-up")
    page.get_by_role("button", name="Create the sequence").click()
    page.wait_for_url(re.compile(r"/studio/sequences/\d+/$"))
    sequence = Sequence.objects.get(name="Guide follow-up")

    # Three steps: an email, a call task, and an email with a condition and a click action.
    _add_step(page, "Add an email", days="0", hours="1", subject="Your guide, {{ first_name|default:'there' }}",
              text="Hi {{ first_name }}, how is {{ company.name }} getting on with the guide?")
    page.get_by_role("button", name="Add the step").click()
    page.get_by_text("Step 1 added.").wait_for()
    _add_step(page, "Add a call task", days="2")
    page.get_by_role("button", name="Add the step").click()
    page.get_by_text("Step 2 added.").wait_for()
    _add_step(page, "Add an email", days="3", subject="Prices, {{ first_name|default:'there' }}",
              text="Our prices: https://example.com/pricing")
    resource = page.get_by_label("The resource")
    assert resource.is_hidden()  # it matters only for "only if the lead downloaded…"
    page.get_by_label("Send it").select_option("downloaded")
    resource.wait_for()
    page.get_by_label("Send it").select_option("no_reply")
    assert resource.is_hidden()
    page.get_by_label("When a person clicks a link containing").fill("/pricing")
    page.get_by_label("On that click, move the lead to").select_option("mql")
    page.get_by_label("On that click, create a call task for the lead's rep").check()
    page.locator("label[for=id_send_days_5]").click()  # Saturday too
    page.get_by_role("button", name="Add the step").click()
    page.get_by_text("Step 3 added.").wait_for()
    flow = page.locator("#step-flow")
    assert "Sent only if no earlier email of this sequence got a reply; otherwise skipped." in flow.inner_text()
    assert "When a person clicks a link containing “/pricing”: move the lead to MQL" in flow.inner_text()
    assert "3 days after the previous step" in flow.inner_text()
    page.screenshot(path=artifacts / "studio-01-flow.png", full_page=True)

    # Reorder by keyboard: step 2 (the call) down, then back up.
    page.get_by_role("button", name="Down: move step 2 down").focus()
    page.keyboard.press("Enter")
    page.get_by_text("Step moved down.").wait_for()
    assert list(sequence.steps.order_by("position").values_list("kind", flat=True)) == ["email", "email", "call_task"]
    page.get_by_role("button", name="Up: move step 3 up").focus()
    page.keyboard.press("Enter")
    page.get_by_text("Step moved up.").wait_for()
    assert list(sequence.steps.order_by("position").values_list("kind", flat=True)) == ["email", "call_task", "email"]

    # Reorder by drag and drop: the pricing email to the top; then by keyboard the guide back to first.
    items = page.locator("#step-flow > li")
    items.nth(2).drag_to(items.nth(0), target_position={"x": 40, "y": 5})
    page.get_by_text("Steps reordered.").wait_for()
    assert _subjects(sequence) == ["Prices, {{ first_name|default:'there' }}", "Your guide, {{ first_name|default:'there' }}", ""]
    page.get_by_role("button", name="Up: move step 2 up").focus()
    page.keyboard.press("Enter")
    page.get_by_text("Step moved up.").wait_for()
    assert _subjects(sequence)[:2] == ["Your guide, {{ first_name|default:'there' }}", "Prices, {{ first_name|default:'there' }}"]

    # Preview step 1 on a lead found by name: her company is empty, and the page says so. Then a test to myself.
    page.get_by_role("link", name="Edit step 1").click()
    page.get_by_label("Render for the lead (name or email)").press_sequentially("Hopper")
    page.locator("#preview-lead").get_by_text("Grace Hopper").wait_for()
    empty = page.locator("#empty-fields")
    empty.wait_for()
    assert "For Grace Hopper: {{ company.name }} will be empty" in empty.inner_text()
    assert "Hi Grace, how is  getting on" in page.locator("#preview-text").inner_text()
    # An HTML body, typed and previewed before saving: shown in a sandboxed frame, its inline style kept.
    page.get_by_label("HTML (optional)").fill('<p style="color:#0d6efd">Hello {{ first_name }}</p>')
    frame = page.frame_locator("#preview-html")
    frame.get_by_text("Hello Grace").wait_for()
    page.screenshot(path=artifacts / "studio-02-preview.png", full_page=True)
    page.get_by_role("button", name=re.compile("^Send a test to me")).click()
    page.get_by_text("Test sent to mia@example.com, rendered for Grace Hopper.").wait_for()
    assert [message.to for message in mail.outbox] == [["mia@example.com"]]
    assert mail.outbox[0].subject == "[Test] Your guide, Grace"
    assert "Hello Grace" in mail.outbox[0].alternatives[0][0]
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Step 1 saved.").wait_for()

    # Activate.
    page.get_by_role("button", name="Activate").click()
    page.get_by_text("“Guide follow-up” is active").wait_for()
    assert page.locator("#sequence-status").inner_text() == "Active"

    # Enroll the audience (in the admin), with the preview of who is enrolled first.
    page.goto(f"/admin/nurturing/audience/{audience.pk}/enroll/")
    page.get_by_label("Sequence").select_option(str(sequence.pk))
    page.get_by_role("button", name="Show who will be enrolled").click()
    assert "3 leads would be enrolled" in page.locator("#enroll-summary").inner_text()
    page.get_by_role("button", name="Enroll 3 leads").click()
    page.get_by_text("Enrolling the 3 lead(s) of “Everyone new” in Guide follow-up in the background").wait_for()
    assert "3 of 3" in page.locator("#audience-enrollments").inner_text()  # the test's Celery runs it at once
    assert Enrollment.objects.filter(sequence=sequence).count() == 3

    # The per-step report, from the sequence's page.
    page.goto(f"/studio/sequences/{sequence.pk}/")
    page.get_by_role("link", name="Report per step").click()
    report = page.locator("table.sequence-report")
    report.wait_for()
    assert report.locator("tbody tr").count() == Step.objects.filter(sequence=sequence).count() == 3
    page.screenshot(path=artifacts / "studio-03-report.png", full_page=True)
    assert violations == []
    assert Lead.objects.count() == 3 and user.is_staff
