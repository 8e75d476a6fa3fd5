"""Calls, notes, meetings and objections over the API: logged on the leads the user works, read on those they see."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import Scope
from leads import services
from leads.models import Activity, Lead, Objection, Task
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import LeadFactory

ACTIVITIES = "/api/v1/activities/"
OBJECTIONS = "/api/v1/objections/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def leads(frozen, rep_user, other_rep):
    return {"mine": LeadFactory(owner=rep_user), "theirs": LeadFactory(owner=other_rep),
            "pool": LeadFactory(owner=None)}


def note(lead, by, body="Note", minutes_ago=0):
    return services.activity_add_note(lead=lead, by=by, body=body,
                                      occurred_at=timezone.now() - timedelta(minutes=minutes_ago))


# --- Reading ------------------------------------------------------------------------------------------


def test_a_rep_lists_the_activities_of_the_leads_they_see_newest_first(leads, rep_api, rep_user, other_rep,
                                                                          manager_user):
    old = note(leads["mine"], rep_user, minutes_ago=5)
    new = note(leads["mine"], rep_user, minutes_ago=1)
    on_pool = note(leads["pool"], manager_user, minutes_ago=3)
    theirs = note(leads["theirs"], other_rep)
    assert ids(rep_api.get(ACTIVITIES)) == [new.pk, on_pool.pk, old.pk]
    assert ids(rep_api.get(ACTIVITIES, {"lead": leads["mine"].pk})) == [new.pk, old.pk]
    assert theirs.pk not in ids(rep_api.get(ACTIVITIES))


def test_another_reps_lead_is_404_as_a_filter_and_as_a_target(leads, rep_api):
    theirs = leads["theirs"].pk
    assert_problem(rep_api.get(ACTIVITIES, {"lead": theirs}), 404)
    assert_problem(rep_api.get(OBJECTIONS, {"lead": theirs}), 404)
    assert_problem(rep_api.post(f"{ACTIVITIES}notes/", {"lead": theirs, "body": "Hi"}), 404)
    assert_problem(rep_api.post(OBJECTIONS, {"lead": theirs, "category": "price", "lead_words": "Too dear"}), 404)
    assert not Activity.objects.exists() and not Objection.objects.exists()


def test_a_manager_and_a_marketer_read_every_leads_activities(leads, manager_api, marketer_api, other_rep):
    theirs = note(leads["theirs"], other_rep)
    assert ids(manager_api.get(ACTIVITIES)) == [theirs.pk]
    assert ids(marketer_api.get(ACTIVITIES, {"kind": "note"})) == [theirs.pk]
    assert ids(marketer_api.get(ACTIVITIES, {"kind": "call"})) == []


def test_an_archived_leads_activities_are_not_listed(leads, manager_api, rep_user):
    note(leads["mine"], rep_user)
    Lead.objects.filter(pk=leads["mine"].pk).update(archived_at=timezone.now())
    assert ids(manager_api.get(ACTIVITIES)) == []


def test_pages_follow_the_cursor(leads, rep_api, rep_user):
    made = [note(leads["mine"], rep_user, minutes_ago=10 - n).pk for n in range(5)]
    first = rep_api.get(ACTIVITIES, {"page_size": 2}).json()
    second = rep_api.get(ACTIVITIES, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    third = rep_api.get(ACTIVITIES, {"page_size": 2, "cursor": second["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"] + third["results"]] == made[::-1]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("path", [ACTIVITIES, OBJECTIONS])
def test_the_lists_make_the_same_queries_for_10_and_100_rows(leads, rep_api, rep_user, path,
                                                              django_assert_max_num_queries):
    for n in range(100):
        services.objection_log(lead=leads["mine"], by=rep_user, category="price", lead_words=f"w{n}")
        note(leads["mine"], rep_user, minutes_ago=n)
    rep_api.get(path)
    with CaptureQueriesContext(connection) as small:
        assert len(ids(rep_api.get(path, {"page_size": 10}))) == 10
    with django_assert_max_num_queries(len(small)):
        assert len(ids(rep_api.get(path, {"page_size": 100}))) == 100


# --- Logging ------------------------------------------------------------------------------------------


def test_the_owner_logs_a_call_with_a_follow_up_and_the_lead_is_contacted(leads, rep_api, rep_user):
    due = (timezone.now() + timedelta(days=2)).isoformat()
    response = rep_api.post(f"{ACTIVITIES}calls/", {
        "lead": leads["mine"].pk, "direction": "outbound", "outcome": "connected", "duration_seconds": 300,
        "body": "Wants a demo", "follow_up_title": "Send the demo link", "follow_up_due_at": due,
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["outcome"], body["lead"]["id"], body["author"]["id"]) == (
        "call", "connected", leads["mine"].pk, rep_user.pk)
    assert body["occurred_at"] == "2026-06-01T09:00:00Z"
    lead = Lead.objects.get(pk=leads["mine"].pk)
    assert (lead.status, lead.last_touch_at) == ("contacted", timezone.now())
    assert Task.objects.get().title == "Send the demo link"


def test_a_note_and_a_meeting(leads, rep_api):
    lead = leads["mine"].pk
    assert rep_api.post(f"{ACTIVITIES}notes/", {"lead": lead, "body": "<b>Prefers</b> mornings"}).json()["body"] == \
        "<b>Prefers</b> mornings"
    met = rep_api.post(f"{ACTIVITIES}meetings/", {"lead": lead, "occurred_at": "2026-06-01T08:00:00Z",
                                                   "duration_seconds": 1800})
    assert met.status_code == 201, met.content
    assert (met.json()["kind"], met.json()["duration_seconds"]) == ("meeting", 1800)
    assert Lead.objects.get(pk=lead).last_touch_at.isoformat() == "2026-06-01T08:00:00+00:00"


def test_a_social_touch_touches_the_lead(leads, rep_api):
    lead = leads["mine"].pk
    touched = rep_api.post(f"{ACTIVITIES}social/", {"lead": lead, "channel": "linkedin",
                                                     "social_action": "connection_accepted", "body": "Via the webinar"})
    assert touched.status_code == 201, touched.content
    body = touched.json()
    assert (body["kind"], body["channel"], body["social_action"]) == ("social", "linkedin", "connection_accepted")
    assert Lead.objects.get(pk=lead).last_touch_at == timezone.now()
    listed = rep_api.get(ACTIVITIES, {"lead": lead}).json()["results"]
    assert [(a["kind"], a["channel"]) for a in listed] == [("social", "linkedin")]


def test_logging_on_a_pool_lead_is_403_until_it_is_claimed(leads, rep_api, marketer_api):
    body = {"lead": leads["pool"].pk, "body": "Hi"}
    assert "Claim the lead first" in assert_problem(rep_api.post(f"{ACTIVITIES}notes/", body), 403)["detail"]
    assert_problem(marketer_api.post(f"{ACTIVITIES}notes/", {**body, "lead": leads["mine"].pk}), 403)
    assert not Activity.objects.exists()


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("calls/", {"direction": "outbound"}, 400, "outcome"),
    ("calls/", {"direction": "sideways", "outcome": "connected"}, 400, "direction"),
    ("calls/", {"direction": "outbound", "outcome": "busy", "duration_seconds": -1}, 400, "duration_seconds"),
    ("calls/", {"direction": "outbound", "outcome": "busy", "duration_seconds": "60"}, 400, "duration_seconds"),
    ("calls/", {"direction": "outbound", "outcome": "busy", "follow_up_title": "Again"}, 422, "follow_up_due_at"),
    ("calls/", {"direction": "outbound", "outcome": "busy", "occurred_at": "2026-06-02T09:00:00Z"}, 422, "occurred_at"),
    ("notes/", {"body": ""}, 400, "body"),
    ("notes/", {"body": "x", "mood": "good"}, 400, "mood"),
    ("meetings/", {}, 400, "occurred_at"),
    ("meetings/", {"occurred_at": "yesterday"}, 400, "occurred_at"),
    ("social/", {"social_action": "comment"}, 400, "channel"),
    ("social/", {"channel": "myspace", "social_action": "comment"}, 400, "channel"),
    ("social/", {"channel": "x", "social_action": "poked"}, 400, "social_action"),
])
def test_bad_activities_name_the_field(leads, rep_api, path, body, status, field):
    assert_problem(rep_api.post(f"{ACTIVITIES}{path}", {"lead": leads["mine"].pk, **body}), status, field=field)
    assert not Activity.objects.exists() and not Task.objects.exists()


@pytest.mark.parametrize("lead", ["1", None, True, 2**63])
def test_a_lead_that_is_not_an_id_is_400(leads, rep_api, lead):
    assert_problem(rep_api.post(f"{ACTIVITIES}notes/", {"lead": lead, "body": "x"}), 400, field="lead")


# --- Objections ---------------------------------------------------------------------------------------


def test_the_owner_logs_and_resolves_an_objection(leads, rep_api, rep_user):
    call = services.activity_log_call(lead=leads["mine"], by=rep_user, direction="outbound", outcome="connected")
    response = rep_api.post(OBJECTIONS, {"lead": leads["mine"].pk, "category": "price",
                                         "lead_words": "Too expensive", "activity": call.pk})
    assert response.status_code == 201, response.content
    objection = response.json()
    assert (objection["is_resolved"], objection["activity_id"], objection["raised_by"]["id"]) == (
        False, call.pk, rep_user.pk)
    path = f"{OBJECTIONS}{objection['id']}/resolve/"
    assert_problem(rep_api.post(path, {}), 422, field="response")
    resolved = rep_api.post(path, {"response": "Showed the ROI"}).json()
    assert (resolved["is_resolved"], resolved["response"], resolved["resolved_at"]) == (
        True, "Showed the ROI", "2026-06-01T09:00:00Z")
    assert ids(rep_api.get(OBJECTIONS, {"is_resolved": "true"})) == [objection["id"]]
    assert ids(rep_api.get(OBJECTIONS, {"is_resolved": "false"})) == []


def test_logging_an_objection_resolved_needs_the_answer(leads, rep_api):
    body = {"lead": leads["mine"].pk, "category": "timing", "lead_words": "Next year", "is_resolved": True}
    assert_problem(rep_api.post(OBJECTIONS, body), 422, field="response")
    assert_problem(rep_api.post(OBJECTIONS, {**body, "category": "mood"}), 400, field="category")
    assert not Objection.objects.exists()


def test_an_objection_tied_to_another_leads_call_is_422(leads, rep_api, rep_user):
    other = LeadFactory(owner=rep_user)
    call = services.activity_log_call(lead=other, by=rep_user, direction="outbound", outcome="connected")
    body = {"lead": leads["mine"].pk, "category": "price", "lead_words": "No", "activity": call.pk}
    assert_problem(rep_api.post(OBJECTIONS, body), 422, field="activity")


def test_another_reps_objection_is_404_to_resolve(leads, rep_api, other_rep):
    objection = services.objection_log(lead=leads["theirs"], by=other_rep, category="need", lead_words="No")
    assert_problem(rep_api.post(f"{OBJECTIONS}{objection.pk}/resolve/", {"response": "Yes"}), 404)
    assert not Objection.objects.get().is_resolved


def test_the_scopes_are_activities_read_and_write(leads, rep_user):
    reader = Api(token_for(rep_user, scopes=[Scope.ACTIVITIES_READ]))
    assert reader.get(ACTIVITIES).status_code == 200
    refused = reader.post(f"{ACTIVITIES}notes/", {"lead": leads["mine"].pk, "body": "x"})
    assert assert_problem(refused, 403)["missing_scope"] == "activities:write"
    assert assert_problem(Api(token_for(rep_user, scopes=[Scope.LEADS_READ])).get(OBJECTIONS), 403)["missing_scope"] == \
        "activities:read"


def test_a_retried_call_with_the_same_key_is_logged_once(leads, rep_api):
    body = {"lead": leads["mine"].pk, "direction": "inbound", "outcome": "connected"}
    headers = {"Idempotency-Key": "call-1"}
    first = rep_api.post(f"{ACTIVITIES}calls/", body, headers=headers)
    again = rep_api.post(f"{ACTIVITIES}calls/", body, headers=headers)
    assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
    assert Activity.objects.count() == 1
