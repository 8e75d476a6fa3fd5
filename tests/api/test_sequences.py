"""Sequences (read) and enrollments over the API: enroll, pause, resume, remove, under the same policy as the pages."""

from datetime import timedelta

import pytest

from core.events import EventType, actor_label
from core.models import DomainEvent
from nurturing.models import Enrollment, Sequence
from nurturing.services import enrollment_create
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import LeadFactory, PersonaFactory, sequence_with_steps

SEQUENCES = "/api/v1/sequences/"
ENROLLMENTS = "/api/v1/enrollments/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def world(frozen, rep_user, other_rep):
    """A welcome sequence (two steps) and a draft one; leads of rep1, of rep2 and of the pool, each enrolled in
    the welcome sequence a minute apart (oldest first)."""
    welcome = sequence_with_steps({}, {"delay": timedelta(days=2)}, name="Welcome", target_persona=PersonaFactory())
    frozen.shift(timedelta(minutes=1))
    draft = sequence_with_steps(name="Draft", status="draft")
    made = {"welcome": welcome, "draft": draft}
    for name, owner in (("mine", rep_user), ("theirs", other_rep), ("pool", None)):
        lead = LeadFactory(first_name=name, owner=owner)
        made[name] = lead
        made[f"{name}_enrollment"] = enrollment_create(lead=lead, sequence=welcome)
        frozen.shift(timedelta(minutes=1))
    return made


# --- Sequences -----------------------------------------------------------------------------------------


def test_sequences_are_listed_newest_first_with_steps_and_live_counts(world, rep_api):
    Enrollment.objects.filter(pk=world["pool_enrollment"].pk).update(status=Enrollment.Status.PAUSED)
    response = rep_api.get(SEQUENCES)
    assert ids(response) == [world["draft"].pk, world["welcome"].pk]
    welcome = response.json()["results"][1]
    assert (welcome["name"], welcome["status"], welcome["active_enrollments"], welcome["paused_enrollments"]) == (
        "Welcome", "active", 2, 1)
    assert [step["position"] for step in welcome["steps"]] == [1, 2]
    assert [step["delay_seconds"] for step in welcome["steps"]] == [0, 2 * 86400]
    assert welcome["target_persona"]["id"] == world["welcome"].target_persona_id
    assert ids(rep_api.get(SEQUENCES, {"status": "draft"})) == [world["draft"].pk]


def test_a_sequence_is_read_by_id_and_an_unknown_one_is_404(world, rep_api):
    body = rep_api.get(f"{SEQUENCES}{world['welcome'].pk}/").json()
    assert (body["id"], body["active_enrollments"], len(body["steps"])) == (world["welcome"].pk, 3, 2)
    assert_problem(rep_api.get(f"{SEQUENCES}999999/"), 404)
    assert_problem(rep_api.get(f"{SEQUENCES}{2**63}/"), 404)


@pytest.mark.parametrize("size", [10, 100])
def test_listing_sequences_takes_the_same_queries_at_any_page_size(frozen, manager_user, django_assert_max_num_queries, size):
    for index in range(size):
        sequence_with_steps({}, {}, name=f"S{index}")
    api = Api(token_for(manager_user))
    api.get(SEQUENCES, {"page_size": 1})  # warm up: the token's first use is written
    with django_assert_max_num_queries(8):
        assert len(ids(api.get(SEQUENCES, {"page_size": size}))) == size


# --- Enrollments: reading -----------------------------------------------------------------------------------


def test_a_rep_lists_the_enrollments_of_the_leads_they_may_see(world, rep_api, manager_api):
    assert ids(rep_api.get(ENROLLMENTS)) == [world["pool_enrollment"].pk, world["mine_enrollment"].pk]
    assert ids(manager_api.get(ENROLLMENTS)) == [world[f"{n}_enrollment"].pk for n in ("pool", "theirs", "mine")]
    assert ids(rep_api.get(ENROLLMENTS, {"lead": world["theirs"].pk})) == []
    assert_problem(rep_api.get(f"{ENROLLMENTS}{world['theirs_enrollment'].pk}/"), 404)
    assert rep_api.get(f"{ENROLLMENTS}{world['mine_enrollment'].pk}/").json()["lead_id"] == world["mine"].pk


def test_enrollments_filter_by_sequence_lead_and_status(world, manager_api):
    Enrollment.objects.filter(pk=world["mine_enrollment"].pk).update(status=Enrollment.Status.PAUSED)
    assert ids(manager_api.get(ENROLLMENTS, {"status": "paused"})) == [world["mine_enrollment"].pk]
    assert ids(manager_api.get(ENROLLMENTS, {"lead": world["pool"].pk})) == [world["pool_enrollment"].pk]
    assert ids(manager_api.get(ENROLLMENTS, {"sequence": world["draft"].pk})) == []


def test_enrollments_page_with_a_cursor_without_gaps_or_repeats(world, manager_api):
    first = manager_api.get(ENROLLMENTS, {"page_size": 2}).json()
    second = manager_api.get(ENROLLMENTS, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    assert [row["id"] for row in first["results"] + second["results"]] == [
        world[f"{n}_enrollment"].pk for n in ("pool", "theirs", "mine")]
    assert second["next_cursor"] is None
    assert_problem(manager_api.get(ENROLLMENTS, {"cursor": "nonsense"}), 400, field="cursor")


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "gone"}, "status"), ({"lead": "x"}, "lead"), ({"sequence": 0}, "sequence"), ({"colour": "red"}, "colour"),
])
def test_bad_enrollment_filters_are_400_naming_them(world, manager_api, params, field):
    assert_problem(manager_api.get(ENROLLMENTS, params), 400, field=field)


@pytest.mark.parametrize("size", [10, 100])
def test_listing_enrollments_takes_the_same_queries_at_any_page_size(frozen, manager_user, django_assert_max_num_queries, size):
    sequence = sequence_with_steps()
    for _ in range(size):
        enrollment_create(lead=LeadFactory(), sequence=sequence)
    api = Api(token_for(manager_user))
    api.get(ENROLLMENTS, {"page_size": 1})
    with django_assert_max_num_queries(7):
        assert len(ids(api.get(ENROLLMENTS, {"page_size": size}))) == size


# --- Enrolling -----------------------------------------------------------------------------------------------


def test_a_rep_enrolls_their_lead_and_the_event_names_the_token(world, rep_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    response = rep_api.post(ENROLLMENTS, {"lead": lead.pk, "sequence": world["welcome"].pk})
    assert response.status_code == 201, response.content
    body = response.json()
    enrollment = Enrollment.objects.get(pk=body["id"])
    assert (enrollment.lead, enrollment.enrolled_by, body["status"]) == (lead, rep_user, "active")
    assert body["sequence"] == {"id": world["welcome"].pk, "name": "Welcome"}
    event = DomainEvent.objects.get(type=EventType.ENROLLMENT_STARTED, lead_id=lead.pk)
    assert "with API token" in actor_label(event)


def test_enrolling_is_idempotent_with_a_key(world, rep_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    body = {"lead": lead.pk, "sequence": world["welcome"].pk}
    first = rep_api.post(ENROLLMENTS, body, headers={"Idempotency-Key": "enroll-1"})
    again = rep_api.post(ENROLLMENTS, body, headers={"Idempotency-Key": "enroll-1"})
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert first.json() == again.json()
    assert Enrollment.objects.filter(lead=lead).count() == 1


def test_enrolling_another_reps_lead_is_404_naming_the_lead(world, rep_api):
    other = LeadFactory(owner=world["theirs"].owner)
    body = assert_problem(rep_api.post(ENROLLMENTS, {"lead": other.pk, "sequence": world["welcome"].pk}), 404, field="lead")
    assert "not one you may see" in body["detail"]
    assert_problem(rep_api.post(ENROLLMENTS, {"lead": 987654, "sequence": world["welcome"].pk}), 404, field="lead")
    assert not Enrollment.objects.filter(lead=other).exists()


def test_enrolling_a_pool_lead_is_403_with_the_policys_reason(world, rep_api):
    pool = LeadFactory(owner=None)
    body = assert_problem(rep_api.post(ENROLLMENTS, {"lead": pool.pk, "sequence": world["welcome"].pk}), 403)
    assert "owner" in body["detail"]
    assert not Enrollment.objects.filter(lead=pool).exists()


def test_a_marketer_enrolls_any_lead_but_a_refusal_is_422_naming_the_sequence(world, marketer_api):
    lead = LeadFactory(owner=world["theirs"].owner)
    assert marketer_api.post(ENROLLMENTS, {"lead": lead.pk, "sequence": world["welcome"].pk}).status_code == 201
    body = assert_problem(marketer_api.post(ENROLLMENTS, {"lead": lead.pk, "sequence": world["welcome"].pk}), 422,
                          field="sequence")
    assert "already in this sequence" in body["errors"][0]["detail"]
    body = assert_problem(marketer_api.post(ENROLLMENTS, {"lead": LeadFactory().pk, "sequence": world["draft"].pk}), 422,
                          field="sequence")
    assert "activate it first" in body["errors"][0]["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"lead": "1", "sequence": 1}, "lead"),
    ({"lead": 1, "sequence": "welcome"}, "sequence"),
    ({"lead": 1, "sequence": 999999}, "sequence"),
    ({"lead": 1, "sequence": 1, "status": "paused"}, "status"),
    ({"sequence": 1}, "lead"),
])
def test_a_bad_enroll_body_is_400_naming_the_field(world, manager_api, body, field):
    assert_problem(manager_api.post(ENROLLMENTS, body), 400, field=field)


def test_a_read_only_token_may_not_enroll(world, rep_user, frozen):
    api = Api(token_for(rep_user, scopes=["sequences:read"]))
    body = assert_problem(api.post(ENROLLMENTS, {"lead": world["mine"].pk, "sequence": world["welcome"].pk}), 403)
    assert body["missing_scope"] == "sequences:write"
    assert_problem(Api(token_for(rep_user, scopes=["leads:read"])).get(ENROLLMENTS), 403)


# --- Pause, resume, remove --------------------------------------------------------------------------------


def test_pause_and_resume_through_the_services(world, rep_api):
    path = f"{ENROLLMENTS}{world['mine_enrollment'].pk}/"
    assert rep_api.post(f"{path}pause/").json()["status"] == "paused"
    assert rep_api.post(f"{path}pause/").json()["status"] == "paused"  # already so: no error, no second event
    assert rep_api.post(f"{path}resume/").json()["status"] == "active"
    types = list(DomainEvent.objects.filter(subject_type="enrollment", subject_id=world["mine_enrollment"].pk)
                 .order_by("id").values_list("type", flat=True))
    assert types == [EventType.ENROLLMENT_STARTED, EventType.ENROLLMENT_PAUSED, EventType.ENROLLMENT_RESUMED]


def test_removing_keeps_the_reason_and_an_ended_enrollment_cannot_be_changed(world, manager_api):
    path = f"{ENROLLMENTS}{world['theirs_enrollment'].pk}/"
    body = manager_api.post(f"{path}remove/", {"reason": "Asked to stop"}).json()
    assert (body["status"], body["exit_reason"], body["finished_at"]) == ("exited", "Asked to stop", "2026-06-01T09:04:00Z")
    for action, payload in (("pause", None), ("resume", None), ("remove", {"reason": "again"})):
        problem = assert_problem(manager_api.post(f"{path}{action}/", payload), 422, field="status")
        assert "exited" in problem["detail"] or "exited" in problem["errors"][0]["detail"]
    assert DomainEvent.objects.filter(type=EventType.ENROLLMENT_EXITED).count() == 1


def test_a_rep_may_not_touch_the_enrollments_of_leads_they_do_not_own(world, rep_api):
    for action in ("pause", "resume"):
        assert_problem(rep_api.post(f"{ENROLLMENTS}{world['theirs_enrollment'].pk}/{action}/"), 404)
        assert_problem(rep_api.post(f"{ENROLLMENTS}{world['pool_enrollment'].pk}/{action}/"), 403)
    assert_problem(rep_api.post(f"{ENROLLMENTS}{world['pool_enrollment'].pk}/remove/", {"reason": "x"}), 403)
    assert set(Enrollment.objects.values_list("status", flat=True)) == {"active"}


@pytest.mark.parametrize(("action", "body", "field"), [
    ("remove", {}, "reason"), ("remove", {"reason": 5}, "reason"), ("remove", {"reason": "x" * 301}, "reason"),
    ("pause", {"reason": "x"}, "reason"),
])
def test_a_bad_action_body_is_400_naming_the_field(world, rep_api, action, body, field):
    assert_problem(rep_api.post(f"{ENROLLMENTS}{world['mine_enrollment'].pk}/{action}/", body), 400, field=field)
    assert Enrollment.objects.get(pk=world["mine_enrollment"].pk).status == "active"


def test_sequences_stay_read_only(world, manager_api):
    assert_problem(manager_api.post(SEQUENCES, {"name": "New"}), 405)
    assert_problem(manager_api.patch(f"{SEQUENCES}{world['welcome'].pk}/", {"name": "X"}), 405)
    assert Sequence.objects.filter(name="New").count() == 0

