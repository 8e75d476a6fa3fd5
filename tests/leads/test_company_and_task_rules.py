"""The rules of the company, task and deal services that every entry point (admin, pages, API) gets."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.models import DomainEvent
from leads import services
from leads.models import Company, Task
from tests.factories import CompanyFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel("2026-06-01T09:00Z", tick=False):
        yield


def test_a_new_company_is_stored_with_a_bare_domain_and_recorded(rep_user):
    company = services.company_create(by=rep_user, name=" Analytical Engines ", domain="https://www.Analytical.example/about")
    assert (company.name, company.domain) == ("Analytical Engines", "analytical.example")
    event = DomainEvent.objects.get(type="company.created")
    assert (event.subject_id, event.actor_user) == (company.pk, rep_user)


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "ANALYTICAL ENGINES"}, "name"),
    ({"name": "Other", "domain": "www.analytical.example"}, "domain"),
])
def test_a_second_company_of_the_same_name_or_domain_is_refused_naming_the_first(rep_user, fields, field):
    first = CompanyFactory(name="Analytical Engines", domain="analytical.example")
    with pytest.raises(ValidationError) as caught:
        services.company_create(by=rep_user, **fields)
    assert f"company #{first.pk}" in caught.value.message_dict[field][0]
    assert Company.objects.count() == 1


def test_a_company_needs_a_name(rep_user):
    with pytest.raises(ValidationError) as caught:
        services.company_create(by=rep_user, name="  ")
    assert "name" in caught.value.message_dict


def test_renaming_onto_another_company_is_refused_but_editing_other_fields_is_not(manager_user):
    CompanyFactory(name="Taken", domain="taken.example")
    twin = Company.objects.create(name="taken")  # made before the rule
    with pytest.raises(ValidationError):
        services.company_update(company=Company.objects.create(name="Free"), by=manager_user, name="TAKEN")
    services.company_update(company=twin, by=manager_user, industry="Looms")
    assert Company.objects.get(pk=twin.pk).industry == "Looms"


def test_marketers_read_companies_but_do_not_change_them(marketer_user):
    with pytest.raises(PermissionDenied):
        services.company_create(by=marketer_user, name="Analytical")
    with pytest.raises(PermissionDenied):
        services.company_update(company=CompanyFactory(), by=marketer_user, name="Renamed")


def test_a_rep_schedules_tasks_for_themselves_on_their_own_leads_only(rep_user, other_rep):
    due = timezone.now() + timedelta(days=1)
    mine, theirs = LeadFactory(owner=rep_user), LeadFactory(owner=other_rep)
    services.task_create(assignee=rep_user, title="Call", due_at=due, lead=mine, by=rep_user)
    with pytest.raises(PermissionDenied):
        services.task_create(assignee=rep_user, title="Call", due_at=due, lead=theirs, by=rep_user)
    with pytest.raises(PermissionDenied):
        services.task_create(assignee=other_rep, title="Call", due_at=due, lead=mine, by=rep_user)
    assert Task.objects.count() == 1


def test_only_the_assignee_or_a_manager_changes_a_task(rep_user, other_rep, manager_user):
    task = services.task_create(assignee=rep_user, title="Call", due_at=timezone.now() + timedelta(days=1), by=rep_user)
    later = timezone.now() + timedelta(days=2)
    for change in (
        lambda: services.task_complete(task=task, by=other_rep),
        lambda: services.task_snooze(task=task, until=later, by=other_rep),
        lambda: services.task_update(task=task, by=other_rep, title="Mine now"),
        lambda: services.task_update(task=task, by=rep_user, assignee=other_rep),
    ):
        with pytest.raises(PermissionDenied):
            change()
    services.task_update(task=task, by=manager_user, assignee=other_rep)
    assert Task.objects.get(pk=task.pk).assignee == other_rep


def test_only_who_works_the_lead_changes_its_deal(rep_user, other_rep):
    lead = LeadFactory(owner=rep_user)
    deal = services.deal_open(lead=lead, value=Decimal("100"), by=rep_user)
    with pytest.raises(PermissionDenied):
        services.deal_update(deal=deal, by=other_rep, value=Decimal("1"))
    services.deal_update(deal=deal, by=rep_user, value=Decimal("150"))
    deal.refresh_from_db()
    assert deal.value == Decimal("150")


# --- Undoing a Done or a Snooze ------------------------------------------------------------------


def test_a_done_task_is_reopened_within_ten_minutes_and_the_reopening_is_recorded(rep_user):
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=timezone.now() + timedelta(hours=1), by=rep_user)
    services.task_complete(task=task, by=rep_user)
    with time_machine.travel("2026-06-01T09:10Z", tick=False):  # 10 minutes on: still in time
        services.task_reopen(task=task, by=rep_user)

    stored = Task.objects.get(pk=task.pk)
    assert stored.completed_at is None and stored.due_at == task.due_at
    event = DomainEvent.objects.get(type="task.reopened")
    assert (event.subject_id, event.actor_user, event.payload) == (task.pk, rep_user, {"completed_at": "2026-06-01T09:00:00+00:00"})


def test_a_done_task_is_not_reopened_by_undo_after_ten_minutes_nor_when_it_is_open(rep_user):
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=timezone.now() + timedelta(hours=1), by=rep_user)
    with pytest.raises(ValidationError, match="not done: there is nothing to undo"):
        services.task_reopen(task=task, by=rep_user)
    services.task_complete(task=task, by=rep_user)
    with time_machine.travel("2026-06-01T09:10:01Z", tick=False):
        with pytest.raises(ValidationError, match=r"done more than 10 minutes ago \(\d\d:\d\d\): it is too late to undo"):
            services.task_reopen(task=task, by=rep_user)
    assert Task.objects.get(pk=task.pk).completed_at is not None
    assert not DomainEvent.objects.filter(type="task.reopened").exists()


def test_undoing_a_snooze_brings_back_the_due_time_before_it_and_is_recorded(rep_user, manager_user):
    overdue = timezone.now() - timedelta(days=1)
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=overdue, by=rep_user, allow_past_due=True)
    tomorrow = timezone.now() + timedelta(days=1)
    services.task_snooze(task=task, until=tomorrow, by=rep_user)
    with time_machine.travel("2026-06-01T09:05Z", tick=False):
        services.task_snooze_undo(task=task, snoozed_to=tomorrow, by=manager_user)

    assert Task.objects.get(pk=task.pk).due_at == overdue == task.due_at
    event = DomainEvent.objects.get(type="task.snooze_undone")
    assert (event.actor_user, event.payload) == (manager_user, {"due_at": overdue.isoformat(), "from": tomorrow.isoformat()})


def test_a_snooze_is_not_undone_late_or_once_the_task_changed(rep_user):
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=timezone.now() + timedelta(hours=1), by=rep_user)
    tomorrow, later = timezone.now() + timedelta(days=1), timezone.now() + timedelta(days=2)
    services.task_snooze(task=task, until=tomorrow, by=rep_user)
    with time_machine.travel("2026-06-01T09:10:01Z", tick=False):
        with pytest.raises(ValidationError, match="snoozed more than 10 minutes ago"):
            services.task_snooze_undo(task=task, snoozed_to=tomorrow, by=rep_user)
    services.task_snooze(task=task, until=later, by=rep_user)
    with pytest.raises(ValidationError, match="has changed since that snooze"):
        services.task_snooze_undo(task=task, snoozed_to=tomorrow, by=rep_user)
    services.task_complete(task=task, by=rep_user)
    with pytest.raises(ValidationError, match="done since"):
        services.task_snooze_undo(task=task, snoozed_to=later, by=rep_user)
    assert Task.objects.get(pk=task.pk).due_at == later
    assert not DomainEvent.objects.filter(type="task.snooze_undone").exists()


def test_a_due_time_a_snooze_never_set_is_not_undone(rep_user):
    due = timezone.now() + timedelta(hours=1)
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=due, by=rep_user)
    with pytest.raises(ValidationError, match="was not snoozed to that time"):
        services.task_snooze_undo(task=task, snoozed_to=due, by=rep_user)


def test_only_the_assignee_or_a_manager_undoes(rep_user, other_rep, manager_user):
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=timezone.now() + timedelta(hours=1), by=rep_user)
    tomorrow = timezone.now() + timedelta(days=1)
    services.task_snooze(task=task, until=tomorrow, by=rep_user)
    with pytest.raises(PermissionDenied):
        services.task_snooze_undo(task=task, snoozed_to=tomorrow, by=other_rep)
    services.task_complete(task=task, by=rep_user)
    with pytest.raises(PermissionDenied):
        services.task_reopen(task=task, by=other_rep)
    services.task_reopen(task=task, by=manager_user)
    assert Task.objects.get(pk=task.pk).completed_at is None
