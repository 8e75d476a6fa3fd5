"""Tasks over the API: a rep's own by default, scheduled on the leads they work, changed by their assignee or a manager."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import Scope
from leads import services
from leads.models import Lead, Task
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import LeadFactory

TASKS = "/api/v1/tasks/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def task(assignee, *, hours=1, lead=None, title="Follow up"):
    return services.task_create(assignee=assignee, title=title, lead=lead,
                                due_at=timezone.now() + timedelta(hours=hours))


@pytest.fixture
def leads(frozen, rep_user, other_rep):
    return {"mine": LeadFactory(owner=rep_user), "theirs": LeadFactory(owner=other_rep),
            "pool": LeadFactory(owner=None)}


def test_a_rep_lists_their_own_tasks_soonest_first_and_all_they_see_on_request(leads, rep_api, rep_user, other_rep):
    later = task(rep_user, hours=5, lead=leads["mine"])
    sooner = task(rep_user, hours=1)
    on_pool = task(other_rep, hours=2, lead=leads["pool"])
    private = task(other_rep, hours=3)
    on_theirs = task(other_rep, hours=4, lead=leads["theirs"])
    assert ids(rep_api.get(TASKS)) == [sooner.pk, later.pk]
    assert ids(rep_api.get(TASKS, {"scope": "all"})) == [sooner.pk, on_pool.pk, later.pk]
    assert not {private.pk, on_theirs.pk} & set(ids(rep_api.get(TASKS, {"assignee": other_rep.pk})))


def test_a_manager_lists_every_task_and_filters_by_assignee(leads, manager_api, rep_user, other_rep):
    mine, theirs, private = task(rep_user, hours=1), task(other_rep, hours=2, lead=leads["theirs"]), task(other_rep, hours=3)
    assert ids(manager_api.get(TASKS)) == [mine.pk, theirs.pk, private.pk]
    assert ids(manager_api.get(TASKS, {"assignee": other_rep.pk})) == [theirs.pk, private.pk]
    assert ids(manager_api.get(TASKS, {"lead": leads["theirs"].pk})) == [theirs.pk]


def test_filters_by_state_and_due_time(leads, rep_api, rep_user):
    done, soon, late = task(rep_user, hours=1), task(rep_user, hours=2), task(rep_user, hours=30)
    services.task_complete(task=done, by=rep_user)
    assert ids(rep_api.get(TASKS, {"status": "open"})) == [soon.pk, late.pk]
    assert ids(rep_api.get(TASKS, {"status": "done"})) == [done.pk]
    assert ids(rep_api.get(TASKS, {"due_before": "2026-06-02T09:00:00Z"})) == [done.pk, soon.pk]
    assert ids(rep_api.get(TASKS, {"due_after": "2026-06-01T10:30:00Z"})) == [soon.pk, late.pk]
    assert_problem(rep_api.get(TASKS, {"status": "later"}), 400, field="status")
    assert_problem(rep_api.get(TASKS, {"due": "today"}), 400, field="due")


def test_a_task_on_an_archived_lead_is_gone(leads, manager_api, rep_user):
    archived = task(rep_user, lead=leads["mine"])
    Lead.objects.filter(pk=leads["mine"].pk).update(archived_at=timezone.now())
    assert ids(manager_api.get(TASKS)) == []
    assert_problem(manager_api.get(f"{TASKS}{archived.pk}/"), 404)


def test_another_reps_task_is_404_to_read_and_change(leads, rep_api, other_rep):
    theirs = task(other_rep, lead=leads["theirs"])
    private = task(other_rep)
    for pk in (theirs.pk, private.pk):
        assert_problem(rep_api.get(f"{TASKS}{pk}/"), 404)
        assert_problem(rep_api.patch(f"{TASKS}{pk}/", {"title": "Mine"}), 404)
        assert_problem(rep_api.post(f"{TASKS}{pk}/complete/"), 404)
    assert_problem(rep_api.get(TASKS, {"lead": leads["theirs"].pk}), 404)
    assert not Task.objects.filter(completed_at__isnull=False).exists()


def test_a_task_seen_on_a_pool_lead_is_only_changed_by_its_assignee(leads, rep_api, other_rep):
    on_pool = task(other_rep, lead=leads["pool"])
    assert rep_api.get(f"{TASKS}{on_pool.pk}/").json()["assignee"]["id"] == other_rep.pk
    assert_problem(rep_api.post(f"{TASKS}{on_pool.pk}/complete/"), 403)
    assert Task.objects.get(pk=on_pool.pk).completed_at is None


def test_a_rep_schedules_a_task_for_themselves(leads, rep_api, rep_user):
    response = rep_api.post(TASKS, {"title": "Call back", "due_at": "2026-06-02T09:00:00Z", "lead": leads["mine"].pk,
                                    "notes": "About pricing"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["assignee"]["id"], body["lead"]["id"], body["due_at"], body["is_done"]) == (
        rep_user.pk, leads["mine"].pk, "2026-06-02T09:00:00Z", False)
    assert Task.objects.get().created_by == rep_user


def test_scheduling_for_someone_else_is_a_managers_call(leads, rep_api, manager_api, other_rep):
    body = {"title": "Call back", "due_at": "2026-06-02T09:00:00Z", "assignee": other_rep.pk}
    assert_problem(rep_api.post(TASKS, body), 403)
    assert_problem(rep_api.post(TASKS, {**body, "assignee": None}), 400, field="assignee")
    assert manager_api.post(TASKS, body).json()["assignee"]["id"] == other_rep.pk
    assert Task.objects.get().assignee == other_rep


def test_scheduling_on_a_lead_one_does_not_work_is_refused(leads, rep_api):
    body = {"title": "Call back", "due_at": "2026-06-02T09:00:00Z"}
    assert_problem(rep_api.post(TASKS, {**body, "lead": leads["theirs"].pk}), 404)
    assert_problem(rep_api.post(TASKS, {**body, "lead": leads["pool"].pk}), 403)
    assert not Task.objects.exists()


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"due_at": "2026-06-02T09:00:00Z"}, 400, "title"),
    ({"title": "  ", "due_at": "2026-06-02T09:00:00Z"}, 400, "title"),
    ({"title": "x"}, 400, "due_at"),
    ({"title": "x", "due_at": "2026-05-31T09:00:00Z"}, 422, "due_at"),
    ({"title": "x", "due_at": "9999-12-31T23:59:59-23:59"}, 400, "due_at"),
    ({"title": "x", "due_at": "2026-06-02T09:00:00Z", "done": True}, 400, "done"),
    ({"title": "x", "due_at": "2026-06-02T09:00:00Z", "assignee": 2**63}, 400, "assignee"),
])
def test_bad_tasks_name_the_field(leads, rep_api, body, status, field):
    assert_problem(rep_api.post(TASKS, body), status, field=field)
    assert not Task.objects.exists()


def test_the_assignee_changes_snoozes_and_completes_a_task(leads, rep_api, rep_user, other_rep):
    mine = task(rep_user, lead=leads["mine"])
    changed = rep_api.patch(f"{TASKS}{mine.pk}/", {"title": "Call back", "notes": "Ask for Ada"})
    assert (changed.json()["title"], changed.json()["notes"]) == ("Call back", "Ask for Ada")
    assert_problem(rep_api.patch(f"{TASKS}{mine.pk}/", {"assignee": other_rep.pk}), 403)
    assert_problem(rep_api.post(f"{TASKS}{mine.pk}/snooze/", {"due_at": "2026-05-01T09:00:00Z"}), 422, field="due_at")
    snoozed = rep_api.post(f"{TASKS}{mine.pk}/snooze/", {"due_at": "2026-06-03T09:00:00Z"})
    assert snoozed.json()["due_at"] == "2026-06-03T09:00:00Z"
    done = rep_api.post(f"{TASKS}{mine.pk}/complete/")
    assert (done.json()["is_done"], done.json()["completed_at"]) == (True, "2026-06-01T09:00:00Z")
    assert_problem(rep_api.post(f"{TASKS}{mine.pk}/snooze/", {"due_at": "2026-06-04T09:00:00Z"}), 422)
    assert_problem(rep_api.post(f"{TASKS}{mine.pk}/complete/", {"now": True}), 400, field="now")


def test_a_manager_gives_a_task_to_another_rep(leads, manager_api, rep_user, other_rep):
    mine = task(rep_user)
    assert manager_api.patch(f"{TASKS}{mine.pk}/", {"assignee": other_rep.pk}).json()["assignee"]["id"] == other_rep.pk


def test_the_scopes_are_tasks_read_and_write(leads, rep_user):
    mine = task(rep_user)
    reader = Api(token_for(rep_user, scopes=[Scope.TASKS_READ]))
    assert reader.get(f"{TASKS}{mine.pk}/").status_code == 200
    assert assert_problem(reader.post(f"{TASKS}{mine.pk}/complete/"), 403)["missing_scope"] == "tasks:write"
    assert assert_problem(Api(token_for(rep_user, scopes=[Scope.DEALS_READ])).get(TASKS), 403)["missing_scope"] == \
        "tasks:read"


def test_a_retried_create_with_the_same_key_schedules_one_task(leads, rep_api):
    body, headers = {"title": "Call back", "due_at": "2026-06-02T09:00:00Z"}, {"Idempotency-Key": "task-1"}
    assert rep_api.post(TASKS, body, headers=headers).status_code == 201
    assert rep_api.post(TASKS, body, headers=headers)["Idempotent-Replayed"] == "true"
    assert_problem(rep_api.post(TASKS, {**body, "title": "Other"}, headers=headers), 422)
    assert Task.objects.count() == 1


def test_pages_follow_the_cursor_by_due_time(leads, rep_api, rep_user):
    made = [task(rep_user, hours=n + 1).pk for n in range(5)]
    first = rep_api.get(TASKS, {"page_size": 2}).json()
    second = rep_api.get(TASKS, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    third = rep_api.get(TASKS, {"page_size": 2, "cursor": second["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"] + third["results"]] == made
    assert third["next_cursor"] is None


def test_the_list_makes_the_same_queries_for_10_and_100_rows(leads, manager_api, rep_user,
                                                              django_assert_max_num_queries):
    for n in range(100):
        task(rep_user, hours=n + 1, lead=leads["mine"] if n % 2 else None)
    manager_api.get(TASKS)
    with CaptureQueriesContext(connection) as small:
        assert len(ids(manager_api.get(TASKS, {"page_size": 10}))) == 10
    with django_assert_max_num_queries(len(small)):
        assert len(ids(manager_api.get(TASKS, {"page_size": 100}))) == 100


def test_a_marketer_reads_the_tasks_on_leads_but_changes_only_their_own(leads, marketer_api, marketer_user, rep_user):
    on_lead, private = task(rep_user, hours=1, lead=leads["mine"]), task(rep_user, hours=2)
    own = task(marketer_user, hours=3)
    assert ids(marketer_api.get(TASKS)) == [on_lead.pk, own.pk]
    assert_problem(marketer_api.get(f"{TASKS}{private.pk}/"), 404)
    assert_problem(marketer_api.post(f"{TASKS}{on_lead.pk}/complete/"), 403)
    assert marketer_api.post(f"{TASKS}{own.pk}/complete/").json()["is_done"] is True
