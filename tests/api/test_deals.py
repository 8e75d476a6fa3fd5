"""Deals and customers over the API: opened, changed and lost through the services, read on the leads one sees."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import Scope
from leads import services
from leads.models import Deal, DealStage, DealStageChange, Lead
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import CompanyFactory, LeadFactory, lead_at

DEALS = "/api/v1/deals/"
CUSTOMERS = "/api/v1/customers/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def deal(lead, value="100", by=None, **kwargs):
    return services.deal_open(lead=lead, value=Decimal(value), by=by, **kwargs)


@pytest.fixture
def leads(frozen, rep_user, other_rep):
    return {"mine": LeadFactory(owner=rep_user), "theirs": LeadFactory(owner=other_rep),
            "pool": LeadFactory(owner=None)}


# --- Deals: reading --------------------------------------------------------------------------------


def test_a_rep_lists_the_deals_on_the_leads_they_see_newest_first(leads, frozen, rep_api, manager_api):
    old = deal(leads["mine"])
    frozen.shift(timedelta(minutes=1))
    on_pool = deal(leads["pool"])
    frozen.shift(timedelta(minutes=1))
    theirs = deal(leads["theirs"])
    assert ids(rep_api.get(DEALS)) == [on_pool.pk, old.pk]
    assert ids(manager_api.get(DEALS)) == [theirs.pk, on_pool.pk, old.pk]
    assert_problem(rep_api.get(f"{DEALS}{theirs.pk}/"), 404)
    assert_problem(rep_api.get(DEALS, {"lead": leads["theirs"].pk}), 404)


def test_filters_by_status_owner_lead_and_close_time(leads, frozen, manager_api, rep_user, other_rep):
    mine, theirs = deal(leads["mine"], by=rep_user), deal(leads["theirs"], by=other_rep)
    frozen.shift(timedelta(hours=1))
    services.deal_mark_lost(deal=theirs, reason="Budget", by=other_rep)
    assert ids(manager_api.get(DEALS, {"status": "open"})) == [mine.pk]
    assert ids(manager_api.get(DEALS, {"status": "lost"})) == [theirs.pk]
    assert ids(manager_api.get(DEALS, {"owner": rep_user.pk})) == [mine.pk]
    assert ids(manager_api.get(DEALS, {"lead": leads["theirs"].pk})) == [theirs.pk]
    assert ids(manager_api.get(DEALS, {"closed_after": "2026-06-01T09:30:00Z"})) == [theirs.pk]
    assert ids(manager_api.get(DEALS, {"closed_before": "2026-06-01T09:30:00Z"})) == []
    assert_problem(manager_api.get(DEALS, {"status": "pending"}), 400, field="status")
    assert_problem(manager_api.get(DEALS, {"closed_after": "soon"}), 400, field="closed_after")


def test_a_deal_shows_its_details(leads, rep_api, rep_user):
    made = deal(leads["mine"], value="1200.50", currency="USD", product="Pro plan", by=rep_user)
    body = rep_api.get(f"{DEALS}{made.pk}/").json()
    assert body == {
        "id": made.pk, "lead": {"id": leads["mine"].pk, "name": str(leads["mine"])}, "customer": None,
        "owner": {"id": rep_user.pk, "username": "rep1", "name": rep_user.get_full_name()}, "product": "Pro plan",
        "value": "1200.50", "currency": "USD", "status": "open", "created_at": "2026-06-01T09:00:00Z",
        "expected_close_on": None, "stage": {"id": made.stage_id, "name": "Qualification", "probability": 10},
        "stage_entered_at": "2026-06-01T09:00:00Z", "next_step": "", "closed_at": None, "lost_reason": "",
    }


# --- Deals: changes --------------------------------------------------------------------------------


def test_the_owner_opens_a_deal_and_the_lead_becomes_an_opportunity(leads, rep_api):
    response = rep_api.post(DEALS, {"lead": leads["mine"].pk, "value": "5000", "currency": "EUR",
                                    "expected_close_on": "2026-07-01"})
    assert response.status_code == 201, response.content
    assert (response.json()["value"], response.json()["expected_close_on"]) == ("5000.00", "2026-07-01")
    assert Lead.objects.get(pk=leads["mine"].pk).status == "opportunity"


def test_opening_a_deal_on_a_lead_one_may_not_work_is_refused(leads, rep_api, marketer_api):
    assert_problem(rep_api.post(DEALS, {"lead": leads["theirs"].pk, "value": "1"}), 404)
    assert_problem(rep_api.post(DEALS, {"lead": leads["pool"].pk, "value": "1"}), 403)
    assert_problem(marketer_api.post(DEALS, {"lead": leads["mine"].pk, "value": "1"}), 403)
    assert not Deal.objects.exists()


def test_a_lost_lead_gets_no_deal_until_reopened(frozen, rep_api, rep_user):
    lost = lead_at("lost", owner=rep_user, by=rep_user)
    assert_problem(rep_api.post(DEALS, {"lead": lost.pk, "value": "1"}), 422, field="lead")


@pytest.mark.parametrize(("body", "field"), [
    ({}, "value"),
    ({"value": "-1"}, "value"),
    ({"value": "1.234"}, "value"),
    ({"value": "1e20"}, "value"),
    ({"value": "NaN"}, "value"),
    ({"value": True}, "value"),
    ({"value": "1", "currency": "EURO"}, "currency"),
    ({"value": "1", "expected_close_on": "someday"}, "expected_close_on"),
    ({"value": "1", "stage": "won"}, "stage"),
])
def test_bad_deals_are_400_naming_the_field(leads, rep_api, body, field):
    assert_problem(rep_api.post(DEALS, {"lead": leads["mine"].pk, **body}), 400, field=field)
    assert not Deal.objects.exists()


@pytest.mark.parametrize("typed", ["1e3", "1E+3", "NaN", "Infinity", "-Infinity", "1,000", True])
def test_an_amount_not_written_in_digits_is_a_400_saying_how_to_write_it(leads, rep_api, rep_user, typed):
    made = deal(leads["mine"], by=rep_user)
    lead = LeadFactory(owner=rep_user)
    for response, field in (
        (rep_api.post(DEALS, {"lead": leads["mine"].pk, "value": typed}), "value"),
        (rep_api.patch(f"{DEALS}{made.pk}/", {"value": typed}), "value"),
        (rep_api.post(f"/api/v1/leads/{lead.pk}/convert/", {"deal_value": typed}), "deal_value"),
    ):
        body = assert_problem(response, 400, field=field)
        assert {"field": field, "detail": "Write the amount in digits, e.g. 1000 or 1000.50."} in body["errors"]
    made.refresh_from_db()
    assert Deal.objects.count() == 1 and made.value == Decimal("100.00")
    assert Lead.objects.get(pk=lead.pk).status == "new"


def test_an_amount_as_a_json_number_or_digits_is_taken(leads, rep_api):
    for value, stored in ((1000, "1000.00"), (1000.5, "1000.50"), ("12500.50", "12500.50"), (" 7 ", "7.00")):
        response = rep_api.post(DEALS, {"lead": leads["mine"].pk, "value": value})
        assert response.status_code == 201, response.content
        assert response.json()["value"] == stored


def test_a_currency_that_is_not_letters_is_422(leads, rep_api):
    assert_problem(rep_api.post(DEALS, {"lead": leads["mine"].pk, "value": "1", "currency": "E1R"}), 422,
                   field="currency")


def test_the_owner_changes_an_open_deal_and_only_the_close_date_of_a_closed_one(leads, rep_api, rep_user):
    made = deal(leads["mine"], by=rep_user)
    changed = rep_api.patch(f"{DEALS}{made.pk}/", {"value": "250", "product": "Pro"})
    assert (changed.json()["value"], changed.json()["product"]) == ("250.00", "Pro")
    lost = rep_api.post(f"{DEALS}{made.pk}/lose/", {"reason": "Went quiet"})
    assert (lost.json()["status"], lost.json()["lost_reason"], lost.json()["closed_at"]) == (
        "lost", "Went quiet", "2026-06-01T09:00:00Z")
    assert Lead.objects.get(pk=leads["mine"].pk).status == "lost"
    assert_problem(rep_api.patch(f"{DEALS}{made.pk}/", {"value": "1"}), 422)
    assert rep_api.patch(f"{DEALS}{made.pk}/", {"expected_close_on": "2026-08-01"}).status_code == 200
    assert_problem(rep_api.post(f"{DEALS}{made.pk}/lose/", {"reason": "Again"}), 422, field="status")


def test_a_deal_opens_with_its_next_step_and_moves_through_the_deal_stages_with_its_history(
        leads, frozen, rep_api, rep_user):
    opened = rep_api.post(DEALS, {"lead": leads["mine"].pk, "value": "900", "next_step": "Send the proposal"})
    assert opened.status_code == 201, opened.content
    assert (opened.json()["next_step"], opened.json()["stage"]["name"]) == ("Send the proposal", "Qualification")
    made = Deal.objects.get(pk=opened.json()["id"])
    proposal = DealStage.objects.get(name="Proposal")
    frozen.shift(timedelta(days=3))

    moved = rep_api.patch(f"{DEALS}{made.pk}/", {"stage": proposal.pk, "next_step": "Call on Friday"})

    assert moved.status_code == 200, moved.content
    assert (moved.json()["stage"], moved.json()["stage_entered_at"], moved.json()["next_step"]) == (
        {"id": proposal.pk, "name": "Proposal", "probability": proposal.probability}, "2026-06-04T09:00:00Z",
        "Call on Friday")
    change = DealStageChange.objects.get(deal=made, from_stage__isnull=False)
    assert (change.from_stage.name, change.to_stage.name, change.time_in_from_stage) == (
        "Qualification", "Proposal", timedelta(days=3))
    assert rep_api.post(DEALS, {"lead": leads["mine"].pk, "value": "1", "stage": proposal.pk}).status_code == 400


def test_a_refused_stage_move_changes_none_of_the_terms_sent_with_it(leads, rep_api, rep_user):
    made = deal(leads["mine"], by=rep_user)
    unused = DealStage.objects.create(name="Parked", position=99, probability=5, is_active=False)

    assert_problem(rep_api.patch(f"{DEALS}{made.pk}/", {"stage": unused.pk, "value": "5"}), 422, field="stage")
    assert_problem(rep_api.patch(f"{DEALS}{made.pk}/", {"stage": 999999}), 400, field="stage")
    assert Deal.objects.get(pk=made.pk).value == Decimal("100")
    assert not DealStageChange.objects.filter(from_stage__isnull=False).exists()


def test_losing_a_deal_needs_a_reason(leads, rep_api, rep_user):
    made = deal(leads["mine"], by=rep_user)
    assert_problem(rep_api.post(f"{DEALS}{made.pk}/lose/", {}), 400, field="reason")
    assert_problem(rep_api.post(f"{DEALS}{made.pk}/lose/", {"reason": "   "}), 400, field="reason")
    assert Deal.objects.get().status == "open"


def test_another_reps_deal_is_404_and_a_pool_leads_deal_is_403_to_change(leads, rep_api, other_rep, manager_user):
    theirs, on_pool = deal(leads["theirs"], by=other_rep), deal(leads["pool"], by=manager_user)
    assert_problem(rep_api.patch(f"{DEALS}{theirs.pk}/", {"value": "1"}), 404)
    assert_problem(rep_api.post(f"{DEALS}{theirs.pk}/lose/", {"reason": "x"}), 404)
    assert_problem(rep_api.patch(f"{DEALS}{on_pool.pk}/", {"value": "1"}), 403)
    assert_problem(rep_api.post(f"{DEALS}{on_pool.pk}/lose/", {"reason": "x"}), 403)
    assert set(Deal.objects.values_list("value", "status")) == {(Decimal("100"), "open")}


def test_the_scopes_are_deals_read_and_write(leads, rep_user):
    made = deal(leads["mine"], by=rep_user)
    reader = Api(token_for(rep_user, scopes=[Scope.DEALS_READ]))
    assert reader.get(f"{DEALS}{made.pk}/").status_code == 200
    assert assert_problem(reader.patch(f"{DEALS}{made.pk}/", {"value": "1"}), 403)["missing_scope"] == "deals:write"
    assert assert_problem(Api(token_for(rep_user, scopes=[Scope.LEADS_READ])).get(DEALS), 403)["missing_scope"] == \
        "deals:read"


def test_a_retried_open_with_the_same_key_opens_one_deal(leads, rep_api):
    body, headers = {"lead": leads["mine"].pk, "value": "10"}, {"Idempotency-Key": "deal-1"}
    first = rep_api.post(DEALS, body, headers=headers)
    assert rep_api.post(DEALS, body, headers=headers).json() == first.json()
    assert Deal.objects.count() == 1


def test_deal_pages_follow_the_cursor_with_constant_queries(leads, frozen, manager_api, rep_user,
                                                            django_assert_max_num_queries):
    made = []
    for _ in range(100):
        made.append(deal(leads["mine"], by=rep_user).pk)
        frozen.shift(timedelta(seconds=1))
    first = manager_api.get(DEALS, {"page_size": 60}).json()
    second = manager_api.get(DEALS, {"page_size": 60, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == made[::-1]
    with CaptureQueriesContext(connection) as small:
        assert len(ids(manager_api.get(DEALS, {"page_size": 10}))) == 10
    with django_assert_max_num_queries(len(small)):
        assert len(ids(manager_api.get(DEALS, {"page_size": 100}))) == 100


# --- Customers -------------------------------------------------------------------------------------


@pytest.fixture
def customers(leads, frozen, rep_user, other_rep):
    """rep1's company customer (won 1,000 EUR and 500 USD, and an open upsell); rep2's person customer."""
    company = CompanyFactory(name="Analytical")
    lead = LeadFactory(owner=rep_user, company=company)
    services.lead_convert_to_customer(lead=lead, deal_value="1000", currency="EUR", by=rep_user)
    colleague = LeadFactory(owner=rep_user, company=company)
    services.lead_convert_to_customer(lead=colleague, deal_value="500", currency="USD", by=rep_user)
    frozen.shift(timedelta(minutes=1))
    services.lead_convert_to_customer(lead=leads["theirs"], deal_value="70", by=other_rep)
    mine = Deal.objects.filter(lead=lead).get().customer
    theirs = Deal.objects.get(lead=leads["theirs"]).customer
    return {"mine": mine, "theirs": theirs, "lead": lead}


def test_a_customer_shows_its_deals_totals_by_currency(customers, rep_api):
    body = rep_api.get(f"{CUSTOMERS}{customers['mine'].pk}/").json()
    assert (body["name"], body["company"]["name"], body["primary_lead"]["id"]) == (
        "Analytical", "Analytical", customers["lead"].pk)
    assert body["became_customer_at"] == "2026-06-01T09:00:00Z"
    assert body["totals"] == [
        {"currency": "EUR", "won_deals": 1, "won_value": "1000.00", "open_deals": 0, "open_value": "0.00"},
        {"currency": "USD", "won_deals": 1, "won_value": "500.00", "open_deals": 0, "open_value": "0.00"},
    ]


def test_a_rep_lists_the_customers_of_their_leads_and_a_manager_all(customers, rep_api, manager_api, marketer_api):
    assert ids(rep_api.get(CUSTOMERS)) == [customers["mine"].pk]
    assert ids(manager_api.get(CUSTOMERS)) == [customers["theirs"].pk, customers["mine"].pk]
    assert ids(marketer_api.get(CUSTOMERS, {"q": "analyt"})) == [customers["mine"].pk]
    assert_problem(rep_api.get(f"{CUSTOMERS}{customers['theirs'].pk}/"), 404)


def test_a_customer_is_read_with_the_companies_scope(customers, rep_user):
    assert Api(token_for(rep_user, scopes=[Scope.COMPANIES_READ])).get(CUSTOMERS).status_code == 200
    refused = Api(token_for(rep_user, scopes=[Scope.DEALS_READ])).get(CUSTOMERS)
    assert assert_problem(refused, 403)["missing_scope"] == "companies:read"


def test_the_customer_list_makes_the_same_queries_for_10_and_100_rows(frozen, manager_api, rep_user,
                                                                      django_assert_max_num_queries):
    for n in range(100):
        lead = LeadFactory(owner=rep_user, company=CompanyFactory(name=f"Company {n}"))
        services.lead_convert_to_customer(lead=lead, deal_value=n, by=rep_user, at=timezone.now())
        frozen.shift(timedelta(seconds=1))
    manager_api.get(CUSTOMERS)
    with CaptureQueriesContext(connection) as small:
        assert len(ids(manager_api.get(CUSTOMERS, {"page_size": 10}))) == 10
    with django_assert_max_num_queries(len(small)):
        body = manager_api.get(CUSTOMERS, {"page_size": 100}).json()
    assert len(body["results"]) == 100 and body["results"][0]["totals"][0]["won_value"] == "99.00"


def test_a_rep_sees_a_shared_customer_without_another_reps_first_contact_or_deals(frozen, rep_api, rep_user, other_rep):
    company = CompanyFactory(name="Analytical")
    first = LeadFactory(owner=other_rep, company=company)
    services.lead_convert_to_customer(lead=first, deal_value="900", by=other_rep)
    mine = LeadFactory(owner=rep_user, company=company)
    services.lead_convert_to_customer(lead=mine, deal_value="100", by=rep_user)
    [body] = rep_api.get(CUSTOMERS).json()["results"]
    assert body["primary_lead"] is None
    assert [(t["won_deals"], t["won_value"]) for t in body["totals"]] == [(1, "100.00")]
