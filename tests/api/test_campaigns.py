"""Campaigns and their spend over the API: every role reads them, marketers and managers write them."""

from datetime import date
from decimal import Decimal

import pytest

from core.events import EventType, actor_label
from core.models import DomainEvent
from leads import campaigns
from leads.models import Campaign, CampaignSpend
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import CampaignFactory, PersonaFactory, SourceFactory

CAMPAIGNS = "/api/v1/campaigns/"
SPEND = "/api/v1/campaign-spend/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def world(frozen, manager_user):
    google = SourceFactory(slug="google")
    spring = CampaignFactory(name="Spring", slug="spring", source=google, starts_on=date(2026, 3, 1))
    autumn = CampaignFactory(name="Autumn", slug="autumn", source=SourceFactory(slug="linkedin"))
    rows = {}
    for name, campaign, start, end in (("spring_may", spring, date(2026, 5, 1), date(2026, 5, 31)),
                                       ("spring_june", spring, date(2026, 6, 1), date(2026, 6, 30)),
                                       ("autumn_may", autumn, date(2026, 5, 1), date(2026, 5, 31))):
        rows[name] = campaigns.spend_record(campaign=campaign, by=manager_user, period_start=start, period_end=end,
                                            amount="100")
    return {"google": google, "spring": spring, "autumn": autumn, **rows}


# --- Reading ---------------------------------------------------------------------------------------------


def test_every_role_reads_campaigns_oldest_first(world, rep_api):
    response = rep_api.get(CAMPAIGNS)
    assert ids(response) == [world["spring"].pk, world["autumn"].pk]
    spring = response.json()["results"][0]
    assert (spring["slug"], spring["source"]["slug"], spring["starts_on"], spring["ends_on"]) == (
        "spring", "google", "2026-03-01", None)
    assert ids(rep_api.get(CAMPAIGNS, {"source": world["google"].pk})) == [world["spring"].pk]
    assert rep_api.get(f"{CAMPAIGNS}{world['autumn'].pk}/").json()["name"] == "Autumn"
    assert_problem(rep_api.get(f"{CAMPAIGNS}999999/"), 404)


def test_campaigns_page_by_id_with_a_cursor(world, rep_api):
    first = rep_api.get(CAMPAIGNS, {"page_size": 1}).json()
    second = rep_api.get(CAMPAIGNS, {"page_size": 1, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == [world["spring"].pk, world["autumn"].pk]
    assert second["next_cursor"] is None
    assert_problem(rep_api.get(CAMPAIGNS, {"cursor": first["next_cursor"] + "x"}), 400, field="cursor")
    assert_problem(rep_api.get(SPEND, {"cursor": first["next_cursor"]}), 400, field="cursor")  # another list's


def test_spend_is_read_by_every_role_with_filters(world, rep_api):
    assert ids(rep_api.get(SPEND)) == [world[n].pk for n in ("spring_may", "spring_june", "autumn_may")]
    assert ids(rep_api.get(SPEND, {"campaign": world["spring"].pk})) == [world["spring_may"].pk, world["spring_june"].pk]
    assert ids(rep_api.get(SPEND, {"period_from": "2026-06-01"})) == [world["spring_june"].pk]
    assert ids(rep_api.get(SPEND, {"period_to": "2026-05-31"})) == [world["spring_may"].pk, world["autumn_may"].pk]
    row = rep_api.get(f"{SPEND}{world['spring_may'].pk}/").json()
    assert row == {"id": world["spring_may"].pk, "campaign_id": world["spring"].pk, "period_start": "2026-05-01",
                   "period_end": "2026-05-31", "amount": "100.00", "currency": "EUR"}


@pytest.mark.parametrize(("path", "params", "field"), [
    (CAMPAIGNS, {"source": "google"}, "source"), (CAMPAIGNS, {"q": "x"}, "q"),
    (SPEND, {"period_from": "May"}, "period_from"), (SPEND, {"campaign": -1}, "campaign"),
])
def test_bad_filters_are_400_naming_them(world, rep_api, path, params, field):
    assert_problem(rep_api.get(path, params), 400, field=field)


# --- Campaigns: writing ------------------------------------------------------------------------------------


def test_a_marketer_creates_a_campaign_idempotently(world, marketer_api, marketer_user):
    persona = PersonaFactory()
    body = {"name": "Webinar", "slug": "webinar-2026", "source": world["google"].pk, "medium": "email",
            "persona": persona.pk, "starts_on": "2026-06-10", "ends_on": "2026-06-20"}
    response = marketer_api.post(CAMPAIGNS, body, headers={"Idempotency-Key": "c1"})
    assert response.status_code == 201, response.content
    again = marketer_api.post(CAMPAIGNS, body, headers={"Idempotency-Key": "c1"})
    assert (again.status_code, again.json()) == (201, response.json())
    campaign = Campaign.objects.get(slug="webinar-2026")
    assert (campaign.persona, campaign.ends_on, response.json()["persona"]["id"]) == (persona, date(2026, 6, 20), persona.pk)
    event = DomainEvent.objects.get(type=EventType.CAMPAIGN_CREATED)
    assert event.actor_user_id == marketer_user.pk and "with API token" in actor_label(event)


def test_a_manager_changes_a_campaign(world, manager_api):
    response = manager_api.patch(f"{CAMPAIGNS}{world['spring'].pk}/", {"ends_on": "2026-09-30", "source": None})
    assert response.status_code == 200, response.content
    assert (response.json()["ends_on"], response.json()["source"]) == ("2026-09-30", None)
    assert Campaign.objects.get(pk=world["spring"].pk).ends_on == date(2026, 9, 30)
    assert manager_api.patch(f"{CAMPAIGNS}{world['spring'].pk}/", {}).json()["slug"] == "spring"


def test_a_rep_may_not_write_campaigns(world, rep_api):
    assert_problem(rep_api.post(CAMPAIGNS, {"name": "Mine", "slug": "mine"}), 403)
    assert_problem(rep_api.post(CAMPAIGNS, {"bogus": 1}), 403)  # the policy answers before the body is read
    assert_problem(rep_api.patch(f"{CAMPAIGNS}{world['spring'].pk}/", {"name": "Mine"}), 403)
    assert_problem(rep_api.patch(f"{CAMPAIGNS}{world['spring'].pk}/", {}), 403)
    assert not Campaign.objects.filter(name="Mine").exists()


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"name": "X", "slug": "SPRING"}, 422, "slug"),
    ({"name": "X", "slug": "has space"}, 422, "slug"),
    ({"name": "X", "slug": "x", "starts_on": "2026-06-02", "ends_on": "2026-06-01"}, 422, "ends_on"),
    ({"name": "  ", "slug": "x"}, 400, "name"),
    ({"name": "X"}, 400, "slug"),
    ({"name": 5, "slug": "x"}, 400, "name"),
    ({"name": "X", "slug": "x", "starts_on": 20260601}, 400, "starts_on"),
    ({"name": "X", "slug": "x", "starts_on": "2026-13-01"}, 400, "starts_on"),
    ({"name": "X", "slug": "x", "source": 999999}, 400, "source"),
    ({"name": "X", "slug": "x", "budget": 5}, 400, "budget"),
    ({"name": "X" * 201, "slug": "x"}, 400, "name"),
])
def test_a_bad_campaign_is_refused_naming_the_field(world, manager_api, body, status, field):
    assert_problem(manager_api.post(CAMPAIGNS, body), status, field=field)
    assert Campaign.objects.count() == 2


def test_a_campaign_update_that_breaks_a_rule_is_422_and_changes_nothing(world, manager_api):
    path = f"{CAMPAIGNS}{world['spring'].pk}/"
    assert_problem(manager_api.patch(path, {"slug": "Autumn"}), 422, field="slug")
    assert_problem(manager_api.patch(path, {"ends_on": "2026-01-01"}), 422, field="ends_on")
    assert_problem(manager_api.patch(f"{CAMPAIGNS}999999/", {"name": "x"}), 404)
    assert Campaign.objects.get(pk=world["spring"].pk).slug == "spring"


# --- Spend: writing ------------------------------------------------------------------------------------------


def test_a_marketer_records_changes_and_deletes_spend(world, marketer_api):
    body = {"campaign": world["autumn"].pk, "period_start": "2026-06-01", "period_end": "2026-06-30", "amount": 250.5,
            "currency": "usd"}
    response = marketer_api.post(SPEND, body, headers={"Idempotency-Key": "s1"})
    assert response.status_code == 201, response.content
    assert (response.json()["amount"], response.json()["currency"]) == ("250.50", "USD")
    assert marketer_api.post(SPEND, body, headers={"Idempotency-Key": "s1"}).status_code == 201
    spend = CampaignSpend.objects.get(pk=response.json()["id"])
    assert world["autumn"].spends.count() == 2
    changed = marketer_api.patch(f"{SPEND}{spend.pk}/", {"amount": "300"})
    assert (changed.status_code, changed.json()["amount"]) == (200, "300.00")
    deleted = marketer_api.client.delete(f"{SPEND}{spend.pk}/", headers=marketer_api.headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert not CampaignSpend.objects.filter(pk=spend.pk).exists()
    types = list(DomainEvent.objects.filter(subject_id=spend.pk, subject_type="campaignspend").values_list("type", flat=True))
    assert sorted(types) == sorted([EventType.CAMPAIGN_SPEND_RECORDED, EventType.CAMPAIGN_SPEND_UPDATED,
                                    EventType.CAMPAIGN_SPEND_DELETED])


def test_overlapping_spend_is_422_naming_the_period(world, manager_api):
    body = {"campaign": world["spring"].pk, "period_start": "2026-06-15", "period_end": "2026-07-15", "amount": "1"}
    problem = assert_problem(manager_api.post(SPEND, body), 422, field="period_start")
    assert "counted twice" in problem["errors"][0]["detail"]
    problem = assert_problem(manager_api.patch(f"{SPEND}{world['spring_may'].pk}/", {"period_end": "2026-06-01"}), 422,
                             field="period_start")
    assert CampaignSpend.objects.get(pk=world["spring_may"].pk).period_end == date(2026, 5, 31)
    assert world["spring"].spends.count() == 2


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"amount": "-5"}, 400, "amount"),
    ({"amount": "1.234"}, 400, "amount"),
    ({"amount": "abc"}, 400, "amount"),
    ({"amount": "1e20"}, 400, "amount"),
    ({"currency": "EURO"}, 400, "currency"),
    ({"currency": "E1R"}, 422, "currency"),
    ({"period_end": "2026-07-01", "period_start": "2026-07-31"}, 422, "period_end"),
    ({"period_start": None}, 400, "period_start"),
    ({"campaign": 999999}, 400, "campaign"),
    ({"campaign": True}, 400, "campaign"),
    ({"id": 5}, 400, "id"),
])
def test_bad_spend_is_refused_naming_the_field(world, manager_api, body, status, field):
    payload = {"campaign": world["autumn"].pk, "period_start": "2026-07-01", "period_end": "2026-07-31", "amount": "10", **body}
    assert_problem(manager_api.post(SPEND, payload), status, field=field)
    assert CampaignSpend.objects.count() == 3


def test_a_rep_may_not_write_spend(world, rep_api):
    body = {"campaign": world["autumn"].pk, "period_start": "2026-07-01", "period_end": "2026-07-31", "amount": "10"}
    assert_problem(rep_api.post(SPEND, body), 403)
    assert_problem(rep_api.patch(f"{SPEND}{world['spring_may'].pk}/", {"amount": "1"}), 403)
    assert_problem(rep_api.client.delete(f"{SPEND}{world['spring_may'].pk}/", headers=rep_api.headers), 403)
    assert CampaignSpend.objects.count() == 3
    assert CampaignSpend.objects.get(pk=world["spring_may"].pk).amount == Decimal("100")


def test_writing_needs_the_marketing_write_scope(world, marketer_user, frozen):
    api = Api(token_for(marketer_user, scopes=["marketing:read"]))
    assert assert_problem(api.post(CAMPAIGNS, {"name": "X", "slug": "x"}), 403)["missing_scope"] == "marketing:write"
    problem = assert_problem(api.client.delete(f"{SPEND}{world['spring_may'].pk}/", headers=api.headers), 403)
    assert problem["missing_scope"] == "marketing:write"
    assert_problem(Api(token_for(marketer_user, scopes=["leads:read"])).get(CAMPAIGNS), 403)


@pytest.mark.parametrize("size", [10, 100])
def test_listing_campaigns_and_spend_takes_the_same_queries_at_any_page_size(frozen, manager_user, django_assert_max_num_queries,
                                                                            size):
    source, persona = SourceFactory(), PersonaFactory()
    made = Campaign.objects.bulk_create(Campaign(name=f"C{i}", slug=f"c{i}", source=source, persona=persona) for i in range(size))
    CampaignSpend.objects.bulk_create(
        CampaignSpend(campaign=campaign, period_start=date(2026, 5, 1), period_end=date(2026, 5, 31), amount=1) for campaign in made
    )
    api = Api(token_for(manager_user))
    api.get(CAMPAIGNS, {"page_size": 1})
    for path in (CAMPAIGNS, SPEND):
        with django_assert_max_num_queries(6):
            assert len(ids(api.get(path, {"page_size": size}))) == size
