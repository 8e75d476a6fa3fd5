"""The leads over the API: what the pages show and allow, through the same services."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from core.events import actor_label
from core.models import DomainEvent
from leads.models import Deal, Lead, LeadMerge, StageChange
from leads.services import lead_update
from tests.api.conftest import assert_problem
from tests.factories import CampaignFactory, LeadFactory, SourceFactory, lead_at

LEADS = "/api/v1/leads/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def page_ids(client, params) -> set[int]:
    body = client.get(reverse("workspace:lead_list"), params).content.decode()
    return {int(pk) for pk in re.findall(r'href="/leads/(\d+)/"', body)}


@pytest.fixture
def leads(frozen, rep_user, other_rep):
    """Two of rep1's, one of rep2's, one in the pool, one archived of rep1's; a minute apart, oldest first."""
    made = {}
    for name, owner in (("mine_old", rep_user), ("theirs", other_rep), ("pool", None), ("mine_new", rep_user),
                        ("archived", rep_user)):
        made[name] = LeadFactory(first_name=name, owner=owner)
        frozen.shift(timedelta(minutes=1))
    Lead.objects.filter(pk=made["archived"].pk).update(archived_at=timezone.now())
    return made


# --- What a user sees -----------------------------------------------------------------------------------


def test_a_rep_lists_exactly_what_their_leads_page_shows(leads, rep_api, client, rep_user):
    client.force_login(rep_user)
    mine, pool = page_ids(client, {"scope": "mine"}), page_ids(client, {"scope": "pool"})
    assert mine == {leads["mine_old"].pk, leads["mine_new"].pk}
    assert set(ids(rep_api.get(LEADS, {"scope": "mine"}))) == mine
    assert set(ids(rep_api.get(LEADS, {"scope": "pool"}))) == pool
    assert set(ids(rep_api.get(LEADS))) == mine | pool
    assert leads["theirs"].pk not in ids(rep_api.get(LEADS))


def test_a_manager_lists_every_live_lead_newest_first(leads, manager_api):
    expected = [leads[name].pk for name in ("mine_new", "pool", "theirs", "mine_old")]
    assert ids(manager_api.get(LEADS)) == expected
    assert ids(manager_api.get(LEADS, {"ordering": "created_at"})) == expected[::-1]


@pytest.mark.parametrize("method", ["get", "patch"])
def test_another_reps_lead_is_404_to_read_and_to_change(leads, rep_api, method):
    path = f"{LEADS}{leads['theirs'].pk}/"
    response = rep_api.get(path) if method == "get" else rep_api.patch(path, {"first_name": "Mallory"})
    assert_problem(response, 404)
    assert Lead.objects.get(pk=leads["theirs"].pk).first_name == "theirs"


@pytest.mark.parametrize("action", ["stage", "convert", "assign", "claim", "merge"])
def test_every_action_on_another_reps_lead_is_404(leads, rep_api, action):
    body = {"stage": {"to_status": "contacted"}, "convert": {"deal_value": "10"}, "assign": {"owner": None},
            "claim": None, "merge": {"merge": leads["mine_old"].pk}}[action]
    assert_problem(rep_api.post(f"{LEADS}{leads['theirs'].pk}/{action}/", body), 404)
    assert StageChange.objects.filter(lead=leads["theirs"]).count() == 1


def test_an_archived_lead_is_404(leads, manager_api):
    assert_problem(manager_api.get(f"{LEADS}{leads['archived'].pk}/"), 404)


def test_a_pool_lead_is_readable_but_changing_it_is_403_until_claimed(leads, rep_api, rep_user):
    path = f"{LEADS}{leads['pool'].pk}/"
    assert rep_api.get(path).json()["owner"] is None
    assert_problem(rep_api.patch(path, {"title": "CTO"}), 403)
    claimed = rep_api.post(f"{path}claim/")
    assert claimed.status_code == 200
    assert claimed.json()["owner"]["username"] == rep_user.username
    assert rep_api.patch(path, {"title": "CTO"}).json()["title"] == "CTO"


def test_a_lead_shows_its_details(frozen, rep_api, rep_user):
    source = SourceFactory(slug="google", name="Google")
    lead = LeadFactory(first_name="Ada", owner=rep_user, source=source, score=7)
    body = rep_api.get(f"{LEADS}{lead.pk}/").json()
    assert body["first_name"] == "Ada"
    assert body["source"] == {"id": source.pk, "slug": "google", "name": "Google"}
    assert body["owner"] == {"id": rep_user.pk, "username": "rep1", "name": rep_user.get_full_name()}
    assert (body["status"], body["score"], body["campaign"], body["next_task_due_at"]) == ("new", 7, None, None)
    assert body["created_at"] == "2026-06-01T09:00:00Z"


# --- Filters, search, pages ----------------------------------------------------------------------------------


def test_filters_narrow_the_list(frozen, manager_api, rep_user, other_rep):
    campaign = CampaignFactory()
    a = LeadFactory(first_name="Grace", last_name="Hopper", owner=rep_user, campaign=campaign, source=campaign.source)
    frozen.shift(timedelta(hours=1))
    b = lead_at("contacted", owner=other_rep, first_name="Alan", email="alan@turing.example")
    assert ids(manager_api.get(LEADS, {"status": "contacted"})) == [b.pk]
    assert ids(manager_api.get(LEADS, {"owner": rep_user.pk})) == [a.pk]
    assert ids(manager_api.get(LEADS, {"campaign": campaign.pk})) == [a.pk]
    assert ids(manager_api.get(LEADS, {"source": campaign.source_id})) == [a.pk]
    assert ids(manager_api.get(LEADS, {"q": "hopper"})) == [a.pk]
    assert ids(manager_api.get(LEADS, {"q": "turing.example"})) == [b.pk]
    assert ids(manager_api.get(LEADS, {"created_after": "2026-06-01T09:30:00Z"})) == [b.pk]
    assert ids(manager_api.get(LEADS, {"created_before": "2026-06-01T09:30:00Z"})) == [a.pk]
    frozen.shift(timedelta(hours=1))
    manager_api.patch(f"{LEADS}{a.pk}/", {"title": "Rear admiral"})
    assert ids(manager_api.get(LEADS, {"updated_since": "2026-06-01T10:30:00Z"})) == [a.pk]


def test_a_rep_filtering_by_another_reps_leads_gets_none(leads, rep_api, other_rep):
    assert ids(rep_api.get(LEADS, {"owner": other_rep.pk})) == []


def test_pages_follow_the_cursor_and_stay_stable_when_leads_are_added(frozen, manager_api):
    made = []
    for n in range(5):
        made.append(LeadFactory(first_name=f"n{n}").pk)
        frozen.shift(timedelta(seconds=1))
    first = manager_api.get(LEADS, {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [made[4], made[3]]
    LeadFactory(first_name="newer")  # added while the client pages: before the cursor, so never on a later page
    second = manager_api.get(LEADS, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    assert [row["id"] for row in second["results"]] == [made[2], made[1]]
    third = manager_api.get(LEADS, {"page_size": 2, "cursor": second["next_cursor"]}).json()
    assert ([row["id"] for row in third["results"]], third["next_cursor"]) == ([made[0]], None)


def test_leads_made_in_the_same_instant_are_paged_by_id(frozen, manager_api):
    made = [LeadFactory().pk for _ in range(3)]
    first = manager_api.get(LEADS, {"page_size": 2}).json()
    second = manager_api.get(LEADS, {"page_size": 2, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == made[::-1]


def test_a_huge_page_size_is_capped(frozen, manager_api, settings):
    settings.CRM_API_MAX_PAGE_SIZE = 3
    for _ in range(4):
        LeadFactory()
    body = manager_api.get(LEADS, {"page_size": 10**12}).json()
    assert len(body["results"]) == 3 and body["next_cursor"]


@pytest.mark.parametrize("cursor", ["garbage", "e30", "eyJvIjoiLWNyZWF0ZWRfYXQiLCJ2IjoxLCJpZCI6MX0"])
def test_a_bad_cursor_is_400_naming_it(frozen, manager_api, cursor):
    assert_problem(manager_api.get(LEADS, {"cursor": cursor}), 400, field="cursor")


def test_a_cursor_from_another_ordering_is_400(frozen, manager_api):
    LeadFactory(), LeadFactory()
    cursor = manager_api.get(LEADS, {"page_size": 1}).json()["next_cursor"]
    assert_problem(manager_api.get(LEADS, {"cursor": cursor, "ordering": "created_at"}), 400, field="cursor")


def test_the_list_makes_the_same_queries_for_10_and_100_rows(frozen, manager_api, rep_user, django_assert_num_queries):
    campaign = CampaignFactory()
    for _ in range(100):
        LeadFactory(owner=rep_user, campaign=campaign, source=campaign.source)
    manager_api.get(LEADS)  # last use written: later requests are read-only but for the rate counter
    counts = []
    for size in (10, 100):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(manager_api.get(LEADS, {"page_size": size}))) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
    with django_assert_num_queries(counts[0]):
        manager_api.get(LEADS, {"page_size": 100})


# --- Changes through the services -------------------------------------------------------------------------------


def test_a_rep_creates_a_lead_they_own(frozen, rep_api, rep_user):
    response = rep_api.post(LEADS, {"first_name": "Ada", "email": "ADA@Example.org", "company": "Analytical"})
    assert response.status_code == 201, response.content
    body = response.json()
    lead = Lead.objects.get(pk=body["id"])
    assert (lead.email, lead.owner, lead.company.name, lead.status) == ("ada@example.org", rep_user, "Analytical", "new")
    assert body["owner"]["id"] == rep_user.pk
    assert StageChange.objects.get(lead=lead).changed_by == rep_user


def test_a_duplicate_email_is_422_naming_email(frozen, rep_api, rep_user):
    LeadFactory(email="ada@example.org", owner=rep_user)
    body = assert_problem(rep_api.post(LEADS, {"email": "Ada@example.org"}), 422, field="email")
    assert "Another lead already has this email address" in body["errors"][0]["detail"]
    assert Lead.objects.count() == 1


def test_a_lead_without_email_or_phone_is_422(frozen, rep_api):
    assert_problem(rep_api.post(LEADS, {"first_name": "Nobody"}), 422, field="email")
    assert not Lead.objects.exists()


def test_a_rep_cannot_create_a_lead_for_another_rep_but_a_manager_can(frozen, rep_api, manager_api, other_rep):
    assert_problem(rep_api.post(LEADS, {"email": "a@example.org", "owner": other_rep.pk}), 403)
    response = manager_api.post(LEADS, {"email": "a@example.org", "owner": other_rep.pk})
    assert response.json()["owner"]["id"] == other_rep.pk
    assert Lead.objects.get().owner == other_rep


def test_a_marketers_new_lead_goes_to_the_pool(frozen, marketer_api):
    assert marketer_api.post(LEADS, {"email": "a@example.org"}).json()["owner"] is None


def test_the_owner_changes_a_lead(frozen, rep_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    response = rep_api.patch(f"{LEADS}{lead.pk}/", {"title": "CTO", "company": None})
    assert response.status_code == 200, response.content
    lead.refresh_from_db()
    assert (lead.title, lead.company) == ("CTO", None)


def test_a_manager_assigns_and_a_rep_may_not(frozen, rep_api, manager_api, rep_user, other_rep):
    lead = LeadFactory(owner=rep_user)
    assert_problem(rep_api.post(f"{LEADS}{lead.pk}/assign/", {"owner": other_rep.pk}), 403)
    assert manager_api.post(f"{LEADS}{lead.pk}/assign/", {"owner": other_rep.pk}).json()["owner"]["id"] == other_rep.pk
    assert Lead.objects.get().owner == other_rep


def test_assigning_to_someone_who_cannot_own_leads_is_422_naming_owner(frozen, manager_api, marketer_user):
    lead = LeadFactory()
    assert_problem(manager_api.post(f"{LEADS}{lead.pk}/assign/", {"owner": marketer_user.pk}), 422, field="owner")


def test_the_owner_moves_the_stage_with_the_pipelines_rules(frozen, rep_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    path = f"{LEADS}{lead.pk}/stage/"
    assert rep_api.post(path, {"to_status": "contacted"}).json()["status"] == "contacted"
    assert_problem(rep_api.post(path, {"to_status": "lost"}), 422, field="reason")
    assert_problem(rep_api.post(path, {"to_status": "customer"}), 422, field="to_status")
    assert rep_api.post(path, {"to_status": "lost", "reason": "Chose a competitor"}).json()["lost_reason"] == "Chose a competitor"
    assert list(StageChange.objects.filter(lead=lead).order_by("id").values_list("to_status", flat=True)) == ["new", "contacted", "lost"]


def test_a_marketer_may_only_mark_a_lead_mql(frozen, marketer_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    assert_problem(marketer_api.post(f"{LEADS}{lead.pk}/stage/", {"to_status": "contacted"}), 403)
    assert marketer_api.post(f"{LEADS}{lead.pk}/stage/", {"to_status": "mql"}).json()["status"] == "mql"


def test_converting_records_the_won_deal(frozen, rep_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    response = rep_api.post(f"{LEADS}{lead.pk}/convert/", {"deal_value": "1200.50", "currency": "USD"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lead"]["status"] == "customer"
    assert body["deal"] == {"id": Deal.objects.get().pk, "value": "1200.50", "currency": "USD", "status": "won"}


def test_a_manager_merges_two_leads_and_a_rep_may_not(frozen, rep_api, manager_api, rep_user):
    keep = LeadFactory(owner=rep_user, phone="+1 555 0100", email="")
    other = LeadFactory(owner=rep_user, email="keep@example.org")
    assert_problem(rep_api.post(f"{LEADS}{keep.pk}/merge/", {"merge": other.pk}), 403)
    response = manager_api.post(f"{LEADS}{keep.pk}/merge/", {"merge": other.pk})
    assert response.status_code == 200, response.content
    assert response.json()["merge_id"] == LeadMerge.objects.get().pk
    assert response.json()["lead"]["email"] == "keep@example.org"
    assert Lead.objects.get(pk=other.pk).archived_at is not None


def test_the_event_log_names_the_token_a_change_was_made_with(frozen, rep_api, rep_user):
    lead_id = rep_api.post(LEADS, {"email": "ada@example.org"}).json()["id"]
    token = ApiToken.objects.get(user=rep_user)
    event = DomainEvent.objects.get(type="lead.created", lead_id=lead_id)
    assert (event.actor_kind, event.actor_user, event.actor_ref) == ("user", rep_user, {"api_token": token.pk})
    assert actor_label(event).endswith(f"with API token #{token.pk}")
    # Once the request is answered, a change made elsewhere names no token.
    lead = Lead.objects.get(pk=lead_id)
    lead_update(lead=lead, by=rep_user, title="CTO")
    assert DomainEvent.objects.get(type="lead.updated").actor_ref == {}


def test_a_manager_undoes_a_merge_once_and_a_rep_may_not(frozen, rep_api, manager_api, rep_user):
    keep = LeadFactory(owner=rep_user, phone="+1 555 0100", email="")
    other = LeadFactory(owner=rep_user, email="keep@example.org")
    merge_id = manager_api.post(f"{LEADS}{keep.pk}/merge/", {"merge": other.pk}).json()["merge_id"]
    assert_problem(rep_api.post(f"/api/v1/merges/{merge_id}/undo/"), 403)
    assert_problem(manager_api.post(f"/api/v1/merges/{merge_id + 1}/undo/"), 404)
    assert_problem(manager_api.post(f"/api/v1/merges/{merge_id}/undo/", {"why": "x"}), 400)
    response = manager_api.post(f"/api/v1/merges/{merge_id}/undo/")
    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["email"]) == (other.pk, "keep@example.org")
    assert Lead.objects.get(pk=other.pk).archived_at is None
    assert Lead.objects.get(pk=keep.pk).email == ""
    assert LeadMerge.objects.get().undone_at is not None
    again = manager_api.post(f"/api/v1/merges/{merge_id}/undo/")
    assert_problem(again, 422)
    assert "already undone" in str(again.json())
