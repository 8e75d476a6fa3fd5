"""A rep's new-lead and edit pages: the duplicate check with a link, errors by field, the policy."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from leads.models import Company, Lead, StageChange
from tests.factories import CompanyFactory, LeadFactory

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_a_rep_creates_a_lead_they_own_with_a_new_company(rep_client, rep_user):
    response = rep_client.post(reverse("workspace:lead_new"), {
        "first_name": "Grace", "last_name": "Hopper", "email": "Grace@Example.com", "company_name": "Navy Labs",
    })
    lead = Lead.objects.get(email="grace@example.com")
    assert response["Location"] == reverse("workspace:lead_detail", args=[lead.pk])
    assert lead.owner == rep_user
    assert lead.status == "new"
    assert lead.company.name == "Navy Labs"
    assert StageChange.objects.filter(lead=lead, to_status="new").exists()


def test_a_new_lead_reuses_the_company_of_that_name_in_any_case(rep_client):
    company = CompanyFactory(name="Acme")
    rep_client.post(reverse("workspace:lead_new"), {"first_name": "A", "email": "a@acme.test", "company_name": "ACME"})
    assert Lead.objects.get(email="a@acme.test").company == company
    assert Company.objects.count() == 1


def test_a_duplicate_email_shows_a_link_to_the_existing_lead_and_writes_nothing(rep_client, rep_user):
    existing = LeadFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com", owner=rep_user)
    response = rep_client.post(reverse("workspace:lead_new"), {
        "first_name": "Other", "email": "ADA@example.com", "company_name": "A new company",
    })
    assert response.status_code == 422
    page = response.content.decode()
    assert "A lead with this email exists:" in page
    assert f'href="{reverse("workspace:lead_detail", args=[existing.pk])}"' in page
    assert Lead.objects.count() == 1
    assert not Company.objects.filter(name="A new company").exists()


def test_a_hostile_name_in_the_duplicate_link_is_escaped(rep_client, rep_user):
    LeadFactory(first_name="<script>alert(1)</script>", email="x@example.com", owner=rep_user)
    page = rep_client.post(reverse("workspace:lead_new"), {"email": "x@example.com"}).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_lead_without_email_or_phone_is_refused_by_field(rep_client):
    response = rep_client.post(reverse("workspace:lead_new"), {"first_name": "Nobody"})
    assert response.status_code == 422
    assert "Give an email address or a phone number" in response.content.decode()
    assert not Lead.objects.exists()


def test_the_owner_edits_a_lead_but_not_its_stage_or_score(rep_client, own_lead):
    response = rep_client.post(reverse("workspace:lead_edit", args=[own_lead.pk]), {
        "first_name": "Ada", "last_name": "Byron", "email": own_lead.email, "title": "Countess",
        "company_name": "Analytical Engines", "status": "customer", "score": "99",
    })
    assert response.status_code == 302
    own_lead.refresh_from_db()
    assert (own_lead.last_name, own_lead.title, own_lead.company.name) == ("Byron", "Countess", "Analytical Engines")
    assert (own_lead.status, own_lead.score) == ("new", 0)


def test_the_edit_page_shows_the_lead_as_it_is(rep_client, own_lead):
    page = rep_client.get(reverse("workspace:lead_edit", args=[own_lead.pk])).content.decode()
    assert f'value="{own_lead.email}"' in page


def test_another_reps_lead_is_not_found_and_a_pool_lead_is_refused(client, other_rep, own_lead, pool_lead):
    client.force_login(other_rep)
    assert client.get(reverse("workspace:lead_edit", args=[own_lead.pk])).status_code == 404
    assert client.post(reverse("workspace:lead_edit", args=[own_lead.pk]), {"email": "x@y.z"}).status_code == 404
    assert client.get(reverse("workspace:lead_edit", args=[pool_lead.pk])).status_code == 403
    own_lead.refresh_from_db()
    assert own_lead.email != "x@y.z"


def test_a_manager_edits_any_lead(client, manager_user, own_lead):
    client.force_login(manager_user)
    response = client.post(reverse("workspace:lead_edit", args=[own_lead.pk]), {"email": own_lead.email, "phone": "+33 1 23"})
    assert response.status_code == 302
    own_lead.refresh_from_db()
    assert own_lead.phone == "+33 1 23"


def test_editing_to_another_leads_email_links_to_it(rep_client, rep_user, own_lead):
    other = LeadFactory(email="taken@example.com", owner=rep_user)
    response = rep_client.post(reverse("workspace:lead_edit", args=[own_lead.pk]), {"email": "taken@example.com"})
    assert response.status_code == 422
    assert reverse("workspace:lead_detail", args=[other.pk]) in response.content.decode()


def test_the_lead_page_links_to_its_edit_page_only_for_who_may_work_it(client, rep_client, own_lead, marketer_user):
    edit = reverse("workspace:lead_edit", args=[own_lead.pk])
    assert edit in rep_client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()
    client.force_login(marketer_user)
    assert edit not in client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()


# --- In-place edits ---------------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def field_url(lead, name):
    return reverse("workspace:lead_field", args=[lead.pk, name])


def test_the_owner_edits_the_title_in_place_and_the_lead_is_redrawn(rep_client, own_lead):
    form = rep_client.get(field_url(own_lead, "title"), **HTMX)
    assert form.status_code == 200 and 'name="title"' in form.content.decode()
    response = rep_client.post(field_url(own_lead, "title"), {"title": "CTO"}, **HTMX)
    assert response.status_code == 200
    assert 'id="lead-main"' in response.content.decode() and "CTO" in response.content.decode()
    own_lead.refresh_from_db()
    assert own_lead.title == "CTO"


def test_without_javascript_an_in_place_edit_is_a_page_then_back_to_the_lead(rep_client, own_lead):
    page = rep_client.get(field_url(own_lead, "phone"))
    assert "<html" in page.content.decode()
    response = rep_client.post(field_url(own_lead, "phone"), {"phone": "+44 20 7946 0000"})
    assert response["Location"] == reverse("workspace:lead_detail", args=[own_lead.pk])
    own_lead.refresh_from_db()
    assert own_lead.phone == "+44 20 7946 0000"


def test_a_bad_time_zone_is_refused_next_to_the_field(rep_client, own_lead):
    response = rep_client.post(field_url(own_lead, "timezone"), {"timezone": "Mars/Olympus"}, **HTMX)
    assert response.status_code == 422
    assert 'name="timezone"' in response.content.decode()
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#lead-timezone", "innerHTML")
    own_lead.refresh_from_db()
    assert own_lead.timezone == ""


def test_the_company_is_set_by_name_in_place(rep_client, own_lead):
    rep_client.post(field_url(own_lead, "company"), {"company_name": "Difference Engines"}, **HTMX)
    own_lead.refresh_from_db()
    assert own_lead.company.name == "Difference Engines"


def test_a_rep_cannot_give_a_lead_to_someone_but_a_manager_can(client, rep_client, own_lead, other_rep, manager_user):
    assert rep_client.post(field_url(own_lead, "owner"), {"owner": other_rep.pk}).status_code == 403
    own_lead.refresh_from_db()
    assert own_lead.owner_id != other_rep.pk
    client.force_login(manager_user)
    client.post(field_url(own_lead, "owner"), {"owner": other_rep.pk}, **HTMX)
    own_lead.refresh_from_db()
    assert own_lead.owner == other_rep


def test_another_rep_cannot_edit_in_place(client, other_rep, own_lead):
    client.force_login(other_rep)
    assert client.post(field_url(own_lead, "title"), {"title": "X"}).status_code == 404


def test_the_next_task_is_scheduled_then_rescheduled_in_place(rep_client, rep_user, own_lead):
    rep_client.post(field_url(own_lead, "next_task"), {"title": "Call back", "due_at": "2026-11-04T09:00"}, **HTMX)
    task = own_lead.tasks.get()
    assert (task.title, task.assignee) == ("Call back", rep_user)
    rep_client.post(field_url(own_lead, "next_task"), {"title": "Call back", "due_at": "2026-11-06T15:30"}, **HTMX)
    task.refresh_from_db()
    assert own_lead.tasks.count() == 1
    assert timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M") == "2026-11-06 15:30"


def test_a_next_task_in_the_past_is_refused(rep_client, own_lead):
    response = rep_client.post(field_url(own_lead, "next_task"), {"title": "Call", "due_at": "2020-01-01T09:00"}, **HTMX)
    assert response.status_code == 422
    assert "in the past" in response.content.decode()
    assert not own_lead.tasks.exists()


def test_the_lead_page_offers_in_place_edits_only_to_who_may_make_them(client, rep_client, own_lead, marketer_user):
    page = rep_client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()
    assert field_url(own_lead, "title") in page and field_url(own_lead, "owner") not in page
    client.force_login(marketer_user)
    page = client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()
    assert field_url(own_lead, "title") not in page
