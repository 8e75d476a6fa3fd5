"""Bulk actions on the Leads list: each asks the policy per lead, and a summary says what was done and why not."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from leads.models import Lead, LeadExport, Task
from nurturing.models import Enrollment
from tests.factories import LeadFactory, lead_at, sequence_with_steps
from workspace.lead_forms import BULK_MAX

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
BULK = reverse("workspace:lead_bulk")


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def summary(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def test_the_list_offers_checkboxes_and_only_the_actions_the_role_may_take(rep_client, client, own_lead, manager_user):
    page = rep_client.get(reverse("workspace:lead_list")).content.decode()
    assert f'name="lead" value="{own_lead.pk}"' in page and 'id="bulk-all"' in page
    assert 'value="assign"' not in page and 'value="export"' not in page
    client.force_login(manager_user)
    page = client.get(reverse("workspace:lead_list")).content.decode()
    assert 'value="assign"' in page and 'value="export"' in page


def test_a_rep_cannot_assign_leads_in_bulk(rep_client, own_lead, other_rep):
    response = rep_client.post(BULK, {"action": "assign", "lead": [own_lead.pk], "step": "confirm", "owner": other_rep.pk})
    assert response.status_code == 403
    own_lead.refresh_from_db()
    assert own_lead.owner_id != other_rep.pk


def test_a_manager_assigns_leads_in_bulk(client, manager_user, other_rep, own_lead, pool_lead):
    client.force_login(manager_user)
    response = client.post(BULK, {"action": "assign", "lead": [own_lead.pk, pool_lead.pk], "step": "confirm",
                                  "owner": other_rep.pk, "next": "/leads/?status=new"})
    assert response["Location"] == "/leads/?status=new"
    assert set(Lead.objects.filter(owner=other_rep).values_list("pk", flat=True)) == {own_lead.pk, pool_lead.pk}
    assert "2 leads given to" in summary(response)


def test_a_stage_change_in_bulk_lists_the_refused_leads_with_why(rep_client, rep_user, own_lead, pool_lead):
    customer = lead_at("customer", owner=rep_user, first_name="Won")
    response = rep_client.post(BULK, {"action": "stage", "lead": [own_lead.pk, pool_lead.pk, customer.pk],
                                      "step": "confirm", "to_status": "contacted"})
    own_lead.refresh_from_db()
    pool_lead.refresh_from_db()
    assert own_lead.status == "contacted" and pool_lead.status == "new"
    text = summary(response)
    assert "1 lead moved to Contacted" in text
    assert "2 not:" in text and "Pool Person: Only the lead's owner" in text and "Won" in text


def test_a_bulk_move_to_lost_without_a_reason_is_refused_by_field_and_moves_nothing(rep_client, own_lead):
    response = rep_client.post(BULK, {"action": "stage", "lead": [own_lead.pk], "step": "confirm", "to_status": "lost"})
    assert response.status_code == 422
    assert "a reason is required" in response.content.decode()
    own_lead.refresh_from_db()
    assert own_lead.status == "new"


def test_enrolling_in_bulk_previews_who_is_skipped_and_why_then_enrolls_the_rest(rep_client, rep_user, own_lead, pool_lead):
    sequence = sequence_with_steps(name="Nurture")
    no_email = LeadFactory(email="", phone="+1 555", owner=rep_user, first_name="Phoneonly")
    data = {"action": "enroll", "lead": [own_lead.pk, pool_lead.pk, no_email.pk], "sequence": sequence.pk}
    preview = rep_client.post(BULK, {**data, "step": "preview"})
    page = preview.content.decode()
    assert preview.status_code == 200 and 'id="enroll-preview"' in page
    assert "Not yours" in page and "Pool Person" in page and "Phoneonly" in page
    assert not Enrollment.objects.exists()
    response = rep_client.post(BULK, {**data, "step": "confirm"})
    assert list(Enrollment.objects.values_list("lead_id", flat=True)) == [own_lead.pk]
    assert "1 lead enrolled in Nurture" in summary(response)


def test_a_task_is_added_to_each_selected_lead_for_its_owner(client, manager_user, own_lead, other_rep, pool_lead):
    other = LeadFactory(owner=other_rep)
    client.force_login(manager_user)
    response = client.post(BULK, {"action": "task", "lead": [own_lead.pk, other.pk, pool_lead.pk], "step": "confirm",
                                  "title": "Send the case study", "due_at": "2026-11-04T09:00", "assignee": "owner"})
    assignees = dict(Task.objects.values_list("lead_id", "assignee__username"))
    assert assignees == {own_lead.pk: "rep1", other.pk: "rep2", pool_lead.pk: "manager"}
    assert "3 leads given the task" in summary(response)


def test_a_rep_adds_a_task_only_to_leads_they_work(rep_client, own_lead, pool_lead):
    response = rep_client.post(BULK, {"action": "task", "lead": [own_lead.pk, pool_lead.pk], "step": "confirm",
                                      "title": "Call", "due_at": "2026-11-04T09:00", "assignee": "me"})
    assert list(Task.objects.values_list("lead_id", flat=True)) == [own_lead.pk]
    assert "1 not: Pool Person" in summary(response)


def test_a_past_due_time_for_a_bulk_task_is_said_once_by_field(rep_client, own_lead):
    response = rep_client.post(BULK, {"action": "task", "lead": [own_lead.pk], "step": "confirm",
                                      "title": "Call", "due_at": "2020-01-01T09:00", "assignee": "me"})
    assert response.status_code == 422 and "in the past" in response.content.decode()
    assert not Task.objects.exists()


def test_exporting_the_selected_leads_needs_the_export_permission(rep_client, client, manager_user, own_lead, pool_lead):
    assert rep_client.post(BULK, {"action": "export", "lead": [own_lead.pk]}).status_code == 403
    client.force_login(manager_user)
    response = client.post(BULK, {"action": "export", "lead": [own_lead.pk]})
    body = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
    assert response.status_code == 200 and own_lead.email in body and pool_lead.email not in body
    assert LeadExport.objects.get().row_count == 1


def test_leads_another_rep_owns_are_not_found_rather_than_revealed(client, other_rep, own_lead):
    client.force_login(other_rep)
    response = client.post(BULK, {"action": "stage", "lead": [own_lead.pk], "step": "confirm", "to_status": "contacted"})
    own_lead.refresh_from_db()
    assert own_lead.status == "new"
    assert "0 leads moved" in summary(response) and "1 not found" in summary(response)


def test_more_than_the_bulk_limit_is_refused_and_says_the_limit(rep_client, own_lead):
    response = rep_client.post(BULK, {"action": "stage", "lead": list(range(1, BULK_MAX + 2)), "to_status": "contacted"})
    assert f"at most {BULK_MAX}" in summary(response)
    own_lead.refresh_from_db()
    assert own_lead.status == "new"


def test_a_hostile_lead_name_is_escaped_on_the_bulk_page(rep_client, rep_user):
    lead = LeadFactory(first_name="<script>x</script>", owner=rep_user)
    page = rep_client.post(BULK, {"action": "stage", "lead": [lead.pk]}).content.decode()
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_a_hostile_lead_name_is_escaped_in_the_list_and_in_the_summary(rep_client, own_lead):
    hostile = LeadFactory(first_name="<script>alert(2)</script>", owner=None)
    page = rep_client.get(reverse("workspace:lead_list"), {"scope": "pool"}).content.decode()
    assert "<script>alert(2)</script>" not in page and 'aria-label="Select &lt;script&gt;alert(2)&lt;/script&gt;' in page
    response = rep_client.post(BULK, {"action": "stage", "lead": [own_lead.pk, hostile.pk], "step": "confirm",
                                      "to_status": "contacted"}, follow=True)
    page = response.content.decode()
    assert "1 not: &lt;script&gt;alert(2)&lt;/script&gt;" in page and "<script>alert(2)</script>" not in page
