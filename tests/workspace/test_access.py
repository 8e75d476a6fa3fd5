"""Who may see and do what on the reps' pages: a matrix of role x page x action.

Every cell is a real request (GET or POST) and, for a refused POST, a check
that nothing was written.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.policy import access_for
from leads.models import Activity, Deal, Lead, Objection, StageChange, Task
from nurturing.models import EmailEvent, Enrollment
from tests.factories import LeadFactory, sequence_with_steps
from workspace.selectors import lead_list

ROLES = ("owner", "other_rep", "manager", "marketer", "no_role", "anonymous")


@pytest.fixture
def actor(request, client, rep_user, other_rep, manager_user, marketer_user, no_role_user):
    users = {"owner": rep_user, "other_rep": other_rep, "manager": manager_user, "marketer": marketer_user,
             "no_role": no_role_user, "anonymous": None}
    user = users[request.param]
    if user is not None:
        client.force_login(user)
    return client


def _valid_post(name):
    soon = timezone.localtime() + timedelta(days=1)
    earlier = timezone.localtime() - timedelta(hours=1)
    return {
        "call": {"direction": "outbound", "outcome": "connected", "duration_minutes": "5"},
        "objection": {"category": "price", "lead_words": "Too expensive"},
        "note": {"body": "Prefers email"},
        "meeting": {"occurred_at": earlier.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "30"},
        "task": {"title": "Send the case study", "due_at": soon.strftime("%Y-%m-%dT%H:%M")},
        "stage": {"to_status": "contacted"},
        "convert": {"deal_value": "1200", "currency": "EUR"},
        "deal": {"value": "1200", "currency": "EUR"},
        "social": {"channel": "linkedin", "social_action": "comment", "occurred_at": earlier.strftime("%Y-%m-%dT%H:%M")},
        "reply": {"occurred_at": earlier.strftime("%Y-%m-%dT%H:%M"), "note": "Interested"},
        "enroll": {"sequence": ""},  # filled in by the test
    }[name]


def _written():
    return (Activity.objects.count(), Objection.objects.count(), Task.objects.count(), StageChange.objects.count(),
            Deal.objects.count(), Enrollment.objects.count(), EmailEvent.objects.count(),
            list(Lead.objects.values_list("owner_id", flat=True)))


PAGES = {  # role -> expected status of (rep1's lead page, Today, the leads list)
    "owner": (200, 200, 200),
    "other_rep": (404, 200, 200),  # Today and the list exist for any rep; another rep's lead does not
    "manager": (200, 200, 200),
    "marketer": (200, 302, 200),  # marketers own no leads: Today sends them to the leads list
    "no_role": (403, 403, 403),
    "anonymous": (302, 302, 302),
}


@pytest.mark.parametrize("actor", ROLES, indirect=True)
def test_pages_by_role(actor, own_lead, request):
    role = request.node.callspec.params["actor"]
    lead_page, today, leads = PAGES[role]
    assert actor.get(reverse("workspace:lead_detail", args=[own_lead.pk])).status_code == lead_page
    assert actor.get(reverse("workspace:today")).status_code == today
    assert actor.get(reverse("workspace:lead_list")).status_code == leads
    if role == "anonymous":
        response = actor.get(reverse("workspace:lead_detail", args=[own_lead.pk]))
        assert response["Location"].startswith(reverse("login"))


WORK = ("call", "objection", "note", "meeting", "task", "stage", "convert", "deal", "social", "reply")
ACTIONS = (*WORK, "enroll")

# role -> action -> expected status of the POST on rep1's lead (302: done, then back to the lead)
EXPECTED = {
    "owner": dict.fromkeys(ACTIONS, 302),
    "other_rep": dict.fromkeys(ACTIONS, 404),
    "manager": dict.fromkeys(ACTIONS, 302),
    "marketer": {**dict.fromkeys(WORK, 403), "enroll": 302},
    "no_role": dict.fromkeys(ACTIONS, 403),
    "anonymous": dict.fromkeys(ACTIONS, 302),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("actor", ROLES, indirect=True)
def test_actions_by_role(actor, action, own_lead, request):
    role = request.node.callspec.params["actor"]
    data = _valid_post(action)
    if action == "enroll":
        data["sequence"] = sequence_with_steps(name="Welcome").pk
    url = reverse("workspace:lead_action", args=[own_lead.pk, action])
    before = _written()

    get = actor.get(url)
    post = actor.post(url, data)

    expected = EXPECTED[role][action]
    assert post.status_code == expected, post.content[:500]
    if role in ("owner", "manager") or (role == "marketer" and action == "enroll"):
        assert get.status_code == 200
        assert post["Location"] == reverse("workspace:lead_detail", args=[own_lead.pk])
        assert _written() != before
    else:
        assert get.status_code == expected
        assert _written() == before
        if role == "anonymous":
            assert post["Location"].startswith(reverse("login"))


# The same matrix asked of the services directly, with the acting user: the answers must match the pages'.
def _service_calls():
    from leads import services

    earlier = timezone.now() - timedelta(hours=1)
    return {
        "call": lambda lead, user: services.activity_log_call(lead=lead, by=user, direction="outbound", outcome="connected"),
        "objection": lambda lead, user: services.objection_log(lead=lead, by=user, category="price", lead_words="Too much"),
        "note": lambda lead, user: services.activity_add_note(lead=lead, by=user, body="Prefers email"),
        "meeting": lambda lead, user: services.activity_log_meeting(lead=lead, by=user, occurred_at=earlier),
        "stage": lambda lead, user: services.lead_change_stage(lead=lead, to_status="contacted", by=user),
        "convert": lambda lead, user: services.lead_convert_to_customer(lead=lead, deal_value="1200", by=user),
        "deal": lambda lead, user: services.deal_open(lead=lead, value="1200", by=user),
        "social": lambda lead, user: services.activity_log_social(lead=lead, by=user, channel="x", social_action="comment"),
    }


SERVICE_ACTIONS = ("call", "objection", "note", "meeting", "stage", "convert", "deal", "social")


@pytest.mark.parametrize("action", SERVICE_ACTIONS)
@pytest.mark.parametrize("role", ("owner", "other_rep", "manager", "marketer", "no_role"))
def test_the_services_give_the_pages_answers(role, action, own_lead, rep_user, other_rep, manager_user, marketer_user,
                                             no_role_user):
    from django.core.exceptions import PermissionDenied

    user = {"owner": rep_user, "other_rep": other_rep, "manager": manager_user, "marketer": marketer_user,
            "no_role": no_role_user}[role]
    allowed = EXPECTED[role][action] == 302
    before = _written()
    if allowed:
        _service_calls()[action](own_lead, user)
        assert _written() != before
    else:
        with pytest.raises(PermissionDenied, match="Only the lead's owner \\(or a manager\\) can "):
            _service_calls()[action](own_lead, user)
        assert _written() == before


@pytest.mark.parametrize(
    "actor, view, claim, work",
    [("owner", 200, 302, 403), ("manager", 200, 302, 302), ("marketer", 200, 403, 403), ("no_role", 403, 403, 403)],
    indirect=["actor"],
)
def test_the_unassigned_pool_is_claimed_before_it_is_worked(actor, view, claim, work, pool_lead):
    assert actor.get(reverse("workspace:lead_detail", args=[pool_lead.pk])).status_code == view
    note = actor.post(reverse("workspace:lead_action", args=[pool_lead.pk, "note"]), {"body": "hello"})
    assert note.status_code == work
    response = actor.post(reverse("workspace:lead_claim", args=[pool_lead.pk]))
    assert response.status_code == claim
    pool_lead.refresh_from_db()
    assert (pool_lead.owner_id is not None) == (claim == 302)


def test_a_rep_cannot_see_another_reps_lead_in_lists_or_search(rep_client, other_rep, own_lead):
    from tests.factories import LeadFactory

    theirs = LeadFactory(first_name="Secret", last_name="Prospect", owner=other_rep)
    for params in ({}, {"scope": "all"}, {"q": "secret"}, {"scope": "pool", "q": "secret"}):
        body = rep_client.get(reverse("workspace:lead_list"), params).content.decode()
        assert "Secret Prospect" not in body
        assert reverse("workspace:lead_detail", args=[theirs.pk]) not in body


@pytest.mark.parametrize("op", ["pause", "resume", "remove"])
def test_another_rep_cannot_change_an_enrollment(client, other_rep, own_lead, op):
    from nurturing.services import enrollment_create

    enrollment = enrollment_create(lead=own_lead, sequence=sequence_with_steps())
    client.force_login(other_rep)
    response = client.post(reverse("workspace:enrollment_change", args=[enrollment.pk, op]))
    assert response.status_code == 404
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_a_rep_cannot_close_or_snooze_someone_elses_task(client, rep_user, other_rep, own_lead):
    from leads.services import task_create

    task = task_create(assignee=rep_user, title="Call back", due_at=timezone.now() + timedelta(hours=2), lead=own_lead)
    client.force_login(other_rep)
    assert client.post(reverse("workspace:task_done", args=[task.pk])).status_code == 404
    assert client.post(reverse("workspace:task_snooze", args=[task.pk]), {"until": "2099-01-01T09:00"}).status_code == 404
    task.refresh_from_db()
    assert task.completed_at is None and task.due_at.year != 2099


# --- What each role's lists hold ------------------------------------------------------------


def test_a_rep_who_asks_for_all_leads_gets_only_their_own_and_the_pool(rep_user, other_rep, manager_user, own_lead, pool_lead):
    # The page offers a rep no "all" list; the selector holds the line for any other caller.
    theirs = LeadFactory(first_name="Theirs", owner=other_rep)
    as_rep = set(lead_list(access=access_for(rep_user), filters={"scope": "all"}))
    assert as_rep == {own_lead, pool_lead}
    assert set(lead_list(access=access_for(manager_user), filters={"scope": "all"})) == {own_lead, pool_lead, theirs}


def test_a_rep_who_asks_for_all_leads_by_address_is_told_and_sees_none_of_another_reps(client, rep_user, other_rep, own_lead):
    LeadFactory(first_name="Theirs", last_name="Secret", owner=other_rep)
    client.force_login(rep_user)
    body = client.get(reverse("workspace:lead_list"), {"scope": "all"}).content.decode()
    assert "all is not one of the available choices" in body
    assert "Secret" not in body
