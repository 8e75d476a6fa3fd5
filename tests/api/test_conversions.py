"""Conversions over the API: listed under the policy, recorded on a lead through the service, idempotently."""

from datetime import timedelta
from decimal import Decimal

import pytest

from core.events import EventType, actor_label
from core.models import DomainEvent
from leads.models import Conversion, ConversionKind, Resource
from leads.services import conversion_record
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import LeadFactory

CONVERSIONS = "/api/v1/conversions/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def world(frozen, rep_user, other_rep):
    """Conversions of leads of rep1, rep2, the pool, and an anonymous visitor's; a minute apart, oldest first."""
    made = {}
    for name, owner in (("mine", rep_user), ("theirs", other_rep), ("pool", None)):
        made[f"{name}_lead"] = lead = LeadFactory(first_name=name, owner=owner)
        made[name] = conversion_record(kind="guide-download", lead=lead)
        frozen.shift(timedelta(minutes=1))
    made["anonymous"] = conversion_record(kind="newsletter-signup", visitor_id="v" * 32)
    frozen.shift(timedelta(minutes=1))
    return made


def test_reps_list_the_conversions_of_their_leads_and_marketing_sees_the_anonymous_ones(world, rep_api, marketer_api):
    assert ids(rep_api.get(CONVERSIONS)) == [world["pool"].pk, world["mine"].pk]
    assert ids(marketer_api.get(CONVERSIONS)) == [world[n].pk for n in ("anonymous", "pool", "theirs", "mine")]
    assert_problem(rep_api.get(f"{CONVERSIONS}{world['anonymous'].pk}/"), 404)
    assert_problem(rep_api.get(f"{CONVERSIONS}{world['theirs'].pk}/"), 404)
    body = marketer_api.get(f"{CONVERSIONS}{world['anonymous'].pk}/").json()
    assert (body["lead_id"], body["kind"]["slug"], body["visitor_id"]) == (None, "newsletter-signup", "v" * 32)


def test_conversions_filter_by_kind_lead_and_time(world, manager_api):
    assert ids(manager_api.get(CONVERSIONS, {"kind": "newsletter-signup"})) == [world["anonymous"].pk]
    assert ids(manager_api.get(CONVERSIONS, {"lead": world["theirs_lead"].pk})) == [world["theirs"].pk]
    window = {"occurred_after": "2026-06-01T09:01:00Z", "occurred_before": "2026-06-01T09:03:00Z"}
    assert ids(manager_api.get(CONVERSIONS, window)) == [world["pool"].pk, world["theirs"].pk]
    assert ids(manager_api.get(CONVERSIONS, {"kind": "no-such-kind"})) == []


def test_conversions_page_with_a_cursor(world, manager_api):
    first = manager_api.get(CONVERSIONS, {"page_size": 3}).json()
    second = manager_api.get(CONVERSIONS, {"page_size": 3, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == [world[n].pk for n in ("anonymous", "pool", "theirs", "mine")]


def test_a_rep_records_a_conversion_on_their_lead_and_the_event_names_the_token(world, rep_api):
    guide = Resource.objects.create(name="Pricing guide", slug="pricing-guide")
    response = rep_api.post(CONVERSIONS, {"lead": world["mine_lead"].pk, "kind": "demo-request", "value": "150.5",
                                          "resource": guide.pk, "occurred_at": "2026-06-01T10:30:00+02:00"})
    assert response.status_code == 201, response.content
    body = response.json()
    stored = Conversion.objects.get(pk=body["id"])
    assert (stored.lead, stored.kind.slug, stored.value, stored.resource) == (world["mine_lead"], "demo-request", Decimal("150.50"), guide)
    assert body["occurred_at"] == "2026-06-01T08:30:00Z"  # answered in UTC
    assert (body["value"], body["kind"]["is_macro"]) == ("150.50", False)
    event = DomainEvent.objects.get(type=EventType.CONVERSION_RECORDED, subject_id=stored.pk)
    assert "with API token" in actor_label(event)


def test_recording_is_idempotent_with_a_key(world, manager_api):
    body = {"lead": world["theirs_lead"].pk, "kind": "trial-signup"}
    first = manager_api.post(CONVERSIONS, body, headers={"Idempotency-Key": "k1"})
    again = manager_api.post(CONVERSIONS, body, headers={"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert Conversion.objects.filter(kind__slug="trial-signup").count() == 1
    assert_problem(manager_api.post(CONVERSIONS, {**body, "kind": "demo-request"}, headers={"Idempotency-Key": "k1"}), 422)


def test_a_rep_may_not_record_on_a_pool_lead_nor_see_another_reps(world, rep_api):
    body = assert_problem(rep_api.post(CONVERSIONS, {"lead": world["pool_lead"].pk, "kind": "demo-request"}), 403)
    assert "owner" in body["detail"]
    assert_problem(rep_api.post(CONVERSIONS, {"lead": world["theirs_lead"].pk, "kind": "demo-request"}), 404, field="lead")
    assert not Conversion.objects.filter(kind__slug="demo-request").exists()


def test_a_marketer_records_on_any_lead(world, marketer_api):
    assert marketer_api.post(CONVERSIONS, {"lead": world["theirs_lead"].pk, "kind": "paid-signup"}).status_code == 201
    assert ConversionKind.objects.get(slug="paid-signup").conversions.count() == 1


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"kind": "no-such-kind"}, 422, "kind"),
    ({"kind": "demo-request", "occurred_at": "2026-06-02T09:00:00Z"}, 422, "occurred_at"),
    ({"kind": "demo-request", "occurred_at": "soon"}, 400, "occurred_at"),
    ({"kind": "demo-request", "value": "-1"}, 400, "value"),
    ({"kind": "demo-request", "value": "1e400"}, 400, "value"),
    ({"kind": 7}, 400, "kind"),
    ({"kind": "demo-request", "resource": 999999}, 400, "resource"),
    ({"kind": "demo-request", "visitor_id": "x"}, 400, "visitor_id"),
    ({"lead": "1", "kind": "demo-request"}, 400, "lead"),
])
def test_bad_input_is_refused_naming_the_field(world, manager_api, body, status, field):
    payload = {"lead": world["mine_lead"].pk, **body}
    assert_problem(manager_api.post(CONVERSIONS, payload), status, field=field)
    assert Conversion.objects.count() == 4


def test_recording_needs_the_marketing_write_scope(world, rep_user, frozen):
    api = Api(token_for(rep_user, scopes=["marketing:read"]))
    body = assert_problem(api.post(CONVERSIONS, {"lead": world["mine_lead"].pk, "kind": "demo-request"}), 403)
    assert body["missing_scope"] == "marketing:write"


@pytest.mark.parametrize("size", [10, 100])
def test_listing_conversions_takes_the_same_queries_at_any_page_size(frozen, manager_user, django_assert_max_num_queries, size):
    kind = ConversionKind.objects.get(slug="guide-download")
    resource = Resource.objects.create(name="Guide", slug="guide")
    lead = LeadFactory()
    Conversion.objects.bulk_create(Conversion(kind=kind, lead=lead, resource=resource) for _ in range(size))
    api = Api(token_for(manager_user))
    api.get(CONVERSIONS, {"page_size": 1})
    with django_assert_max_num_queries(6):
        assert len(ids(api.get(CONVERSIONS, {"page_size": size}))) == size
