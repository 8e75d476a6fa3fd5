"""A rep's tasks: Today shows the first 25 due and links to all of them, a page at a time; Done and Snooze say what
they did, with an Undo that works for ten minutes, for the task's assignee or a manager only."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import DomainEvent
from leads import services
from leads.models import Task
from tests.factories import LeadFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
TUESDAY = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def frozen(settings):
    settings.TIME_ZONE = "UTC"  # the weekdays and hours the messages name
    with time_machine.travel(TUESDAY, tick=False) as traveller:
        yield traveller


def tasks_due(user, count, *, start=0, due=None, lead=None):
    due = due or TUESDAY - timedelta(hours=2)
    Task.objects.bulk_create(
        Task(assignee=user, lead=lead, title=f"Task {i:03d}", due_at=due + timedelta(minutes=i), created_at=due)
        for i in range(start, start + count)
    )


def rows(html: str, list_id: str) -> list[str]:
    section = html.split(f'id="{list_id}"')[1].split("</ul>")[0]
    return re.findall(r"Task \d{3}", section)


# --- Today's first 25, and the rest -------------------------------------------------------------


def test_today_counts_every_task_due_and_links_to_all_of_them(frozen, rep_client, rep_user):
    tasks_due(rep_user, 30)
    tasks_due(rep_user, 2, start=100, due=TUESDAY + timedelta(days=2))  # not due yet

    body = rep_client.get(reverse("workspace:today")).content.decode()

    assert 'id="today-tasks-count">30<' in body
    assert rows(body, "today-tasks") == [f"Task {i:03d}" for i in range(25)]
    assert f'href="{reverse("workspace:task_list")}?due=today">Show all 30 tasks</a>' in body


def test_today_offers_no_more_when_it_shows_them_all(frozen, rep_client, rep_user):
    tasks_due(rep_user, 25)
    body = rep_client.get(reverse("workspace:today")).content.decode()
    assert 'id="today-tasks-count">25<' in body and "Show all" not in body
    assert len(rows(body, "today-tasks")) == 25


def test_the_task_list_shows_all_my_open_tasks_a_page_at_a_time(frozen, rep_client, rep_user, other_rep):
    tasks_due(rep_user, 30)
    tasks_due(rep_user, 2, start=100, due=TUESDAY + timedelta(days=2))
    tasks_due(other_rep, 3, start=200)
    done = Task.objects.get(assignee=rep_user, title="Task 000")
    services.task_complete(task=done, by=rep_user)
    url = reverse("workspace:task_list")

    first = rep_client.get(url, {"due": "today"}).content.decode()
    second = rep_client.get(url, {"due": "today", "page": 2}).content.decode()
    everything = rep_client.get(url, {"due": "all", "page": 2}).content.decode()

    assert "29 open tasks due by the end of today" in first
    assert rows(first, "task-list") == [f"Task {i:03d}" for i in range(1, 26)]
    assert rows(second, "task-list") == [f"Task {i:03d}" for i in range(26, 30)]
    assert 'href="?due=today&amp;page=1">Previous</a>' in second
    assert "31 open tasks, the earliest due first" in everything
    assert rows(everything, "task-list") == [*(f"Task {i:03d}" for i in range(26, 30)), "Task 100", "Task 101"]


@pytest.mark.parametrize("url_name", ["workspace:today", "workspace:task_list"])
def test_today_and_the_task_list_make_the_same_queries_at_30_and_300_tasks(frozen, rep_client, rep_user, url_name):
    lead = LeadFactory(owner=rep_user)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert rep_client.get(reverse(url_name)).status_code == 200
        return len(ctx.captured_queries)

    tasks_due(rep_user, 30, lead=lead)
    at_30 = queries()
    tasks_due(rep_user, 270, start=30, lead=lead)
    assert queries() == at_30


# --- Done and Snooze say what they did, with an Undo ---------------------------------------------


def test_done_says_so_in_place_of_the_row_and_undo_brings_the_row_back(frozen, rep_client, rep_user):
    lead = LeadFactory(owner=rep_user)
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=TUESDAY + timedelta(hours=2), lead=lead,
                                by=rep_user)

    done = rep_client.post(reverse("workspace:task_done", args=[task.pk]), {"next": "/today/"}, **HTMX).content.decode()

    assert f'id="task-{task.pk}"' in done and "Task “Call Ann” done." in done
    undo_url = reverse("workspace:task_undo", args=[task.pk])
    assert f'hx-post="{undo_url}"' in done and 'name="undo" value="done"' in done
    task.refresh_from_db()
    assert task.completed_at == TUESDAY

    frozen.shift(timedelta(minutes=3))
    back = rep_client.post(undo_url, {"undo": "done", "next": "/today/"}, **HTMX).content.decode()

    assert f'id="task-{task.pk}"' in back and "Call Ann" in back and ">Done</button>" in back
    task.refresh_from_db()
    assert task.completed_at is None
    assert list(DomainEvent.objects.filter(subject_type="task", subject_id=task.pk).values_list("type", flat=True)) == [
        "task.created", "task.done", "task.reopened"]


def test_snooze_says_until_when_and_undo_brings_back_the_due_time(frozen, rep_client, rep_user):
    overdue = TUESDAY - timedelta(hours=1)  # Tue 9:00
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=overdue, lead=LeadFactory(owner=rep_user),
                                by=rep_user, allow_past_due=True)

    page = rep_client.post(reverse("workspace:task_snooze", args=[task.pk]), {"until": "2026-03-05T09:00"}, follow=True)

    body = page.content.decode()
    assert page.redirect_chain[-1][0] == reverse("workspace:today")
    assert "Task “Call Ann” snoozed until Thu 9:00." in body
    undo = body.split("snoozed until Thu 9:00.")[1].split("</form>")[0]
    assert f'action="{reverse("workspace:task_undo", args=[task.pk])}"' in undo
    fields = dict(re.findall(r'name="(undo|snoozed_to|next)" value="([^"]*)"', undo))
    assert fields == {"undo": "snooze", "snoozed_to": "2026-03-05T09:00:00+00:00", "next": "/today/"}

    frozen.shift(timedelta(minutes=9))
    page = rep_client.post(reverse("workspace:task_undo", args=[task.pk]), fields, follow=True)

    assert "Undone: task “Call Ann” is due Tue 9:00, as before." in page.content.decode()
    task.refresh_from_db()
    assert task.due_at == overdue
    event = DomainEvent.objects.get(type="task.snooze_undone")
    assert (event.actor_user, event.payload["due_at"]) == (rep_user, overdue.isoformat())


def test_undo_is_refused_after_ten_minutes(frozen, rep_client, rep_user):
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=TUESDAY + timedelta(hours=2), by=rep_user)
    rep_client.post(reverse("workspace:task_done", args=[task.pk]))
    frozen.shift(timedelta(minutes=11))

    late = rep_client.post(reverse("workspace:task_undo", args=[task.pk]), {"undo": "done"}, **HTMX)

    assert late.status_code == 422 and "more than 10 minutes ago" in late.content.decode()
    task.refresh_from_db()
    assert task.completed_at == TUESDAY


def test_another_rep_cannot_undo_and_a_manager_can(frozen, client, rep_user, other_rep, manager_user):
    on_lead = services.task_create(assignee=rep_user, title="On my lead", due_at=TUESDAY + timedelta(hours=2),
                                   lead=LeadFactory(owner=rep_user), by=rep_user)
    no_lead = services.task_create(assignee=rep_user, title="No lead", due_at=TUESDAY + timedelta(hours=2), by=rep_user)
    for task in (on_lead, no_lead):
        services.task_complete(task=task, by=rep_user)

    client.force_login(other_rep)
    assert client.post(reverse("workspace:task_undo", args=[on_lead.pk]), {"undo": "done"}).status_code == 404
    assert client.post(reverse("workspace:task_undo", args=[no_lead.pk]), {"undo": "done"}).status_code == 403
    assert Task.objects.filter(completed_at__isnull=True).count() == 0

    client.force_login(manager_user)
    assert client.post(reverse("workspace:task_undo", args=[no_lead.pk]), {"undo": "done"}).status_code == 302
    assert Task.objects.get(pk=no_lead.pk).completed_at is None


@pytest.mark.parametrize("fields", [{}, {"undo": "everything"}, {"undo": "snooze"}, {"undo": "snooze", "snoozed_to": "tomorrow"},
                                    {"undo": "snooze", "snoozed_to": "2026-03-05T09:00"}])
def test_an_undo_that_does_not_say_what_is_a_bad_request(frozen, rep_client, rep_user, fields):
    task = services.task_create(assignee=rep_user, title="Call Ann", due_at=TUESDAY + timedelta(hours=2), by=rep_user)
    assert rep_client.post(reverse("workspace:task_undo", args=[task.pk]), fields).status_code == 400
