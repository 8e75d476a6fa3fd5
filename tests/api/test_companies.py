"""Companies over the API: the team's accounts, created and changed by reps and managers through the service."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import Scope
from leads.models import Company, Lead
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import CompanyFactory, LeadFactory

COMPANIES = "/api/v1/companies/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_every_role_lists_the_companies_newest_first_and_searches_name_and_domain(frozen, rep_api, marketer_api):
    old = CompanyFactory(name="Analytical Engines", domain="analytical.example")
    frozen.shift(timedelta(minutes=1))
    new = CompanyFactory(name="Difference Ltd", domain="babbage.example")
    assert ids(rep_api.get(COMPANIES)) == [new.pk, old.pk]
    assert ids(marketer_api.get(COMPANIES, {"q": "analytical"})) == [old.pk]
    assert ids(rep_api.get(COMPANIES, {"q": "BABBAGE.example"})) == [new.pk]
    assert ids(rep_api.get(COMPANIES, {"q": "ltd engines"})) == []


def test_a_company_shows_its_details(frozen, rep_api):
    company = CompanyFactory(name="Analytical", domain="analytical.example", industry="Looms", country="UK")
    body = rep_api.get(f"{COMPANIES}{company.pk}/").json()
    assert body == {"id": company.pk, "name": "Analytical", "domain": "analytical.example", "industry": "Looms",
                    "size": "", "country": "UK", "created_at": "2026-06-01T09:00:00Z"}


@pytest.mark.parametrize("pk", [999_999, 2**63])
def test_an_unknown_company_is_404(frozen, rep_api, pk):
    assert_problem(rep_api.get(f"{COMPANIES}{pk}/"), 404)


def test_a_rep_creates_a_company_with_a_bare_domain(frozen, rep_api):
    response = rep_api.post(COMPANIES, {"name": "Analytical", "domain": "https://www.Analytical.example/about"})
    assert response.status_code == 201, response.content
    company = Company.objects.get()
    assert (response.json()["id"], company.domain) == (company.pk, "analytical.example")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "analytical"}, "name"),
    ({"name": "Other", "domain": "analytical.example"}, "domain"),
])
def test_a_duplicate_name_or_domain_is_422_naming_it(frozen, rep_api, body, field):
    CompanyFactory(name="Analytical", domain="analytical.example")
    assert_problem(rep_api.post(COMPANIES, body), 422, field=field)
    assert Company.objects.count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": 12}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Analytical", "sector": "Looms"}, "sector"),
    ({"name": "Analytical", "industry": ["Looms"]}, "industry"),
])
def test_bad_bodies_are_400_naming_the_field(frozen, rep_api, body, field):
    assert_problem(rep_api.post(COMPANIES, body), 400, field=field)
    assert not Company.objects.exists()


def test_a_name_with_markup_is_kept_as_text(frozen, rep_api):
    name = "<script>alert(1)</script>"
    assert rep_api.post(COMPANIES, {"name": name}).json()["name"] == name


def test_a_marketer_reads_companies_but_may_not_create_or_change_them(frozen, marketer_api):
    company = CompanyFactory(name="Analytical")
    assert_problem(marketer_api.post(COMPANIES, {"name": "Other"}), 403)
    assert_problem(marketer_api.patch(f"{COMPANIES}{company.pk}/", {"name": "Renamed"}), 403)
    assert list(Company.objects.values_list("name", flat=True)) == ["Analytical"]


def test_a_rename_follows_to_the_leads_search(frozen, rep_api, manager_api, rep_user):
    lead = LeadFactory(owner=rep_user, company=CompanyFactory(name="Analytical"))
    response = manager_api.patch(f"{COMPANIES}{lead.company_id}/", {"name": "Babbage & Co", "size": "11-50"})
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["size"]) == ("Babbage & Co", "11-50")
    assert "babbage & co" in Lead.objects.get(pk=lead.pk).search_text
    assert_problem(rep_api.patch(f"{COMPANIES}{lead.company_id}/", {"name": None}), 400, field="name")


def test_the_scopes_are_companies_read_and_write(frozen, rep_user):
    company = CompanyFactory()
    reader = Api(token_for(rep_user, scopes=[Scope.COMPANIES_READ]))
    assert reader.get(f"{COMPANIES}{company.pk}/").status_code == 200
    body = assert_problem(reader.post(COMPANIES, {"name": "New"}), 403)
    assert body["missing_scope"] == "companies:write"
    writer = Api(token_for(rep_user, scopes=[Scope.LEADS_READ]))
    assert assert_problem(writer.get(COMPANIES), 403)["missing_scope"] == "companies:read"


def test_a_retried_create_with_the_same_key_makes_one_company(frozen, rep_api):
    headers = {"Idempotency-Key": "company-1"}
    first = rep_api.post(COMPANIES, {"name": "Analytical"}, headers=headers)
    again = rep_api.post(COMPANIES, {"name": "Analytical"}, headers=headers)
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert Company.objects.count() == 1


def test_pages_follow_the_cursor(frozen, rep_api):
    made = []
    for n in range(5):
        made.append(CompanyFactory(name=f"Company {n}").pk)
        frozen.shift(timedelta(seconds=1))
    first = rep_api.get(COMPANIES, {"page_size": 3}).json()
    second = rep_api.get(COMPANIES, {"page_size": 3, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == made[::-1]
    assert second["next_cursor"] is None
    assert_problem(rep_api.get(COMPANIES, {"cursor": "garbage"}), 400, field="cursor")


def test_the_list_makes_the_same_queries_for_10_and_100_rows(frozen, rep_api, django_assert_max_num_queries):
    for n in range(100):
        CompanyFactory(name=f"Company {n}")
    rep_api.get(COMPANIES)
    with CaptureQueriesContext(connection) as small:
        assert len(ids(rep_api.get(COMPANIES, {"page_size": 10}))) == 10
    with django_assert_max_num_queries(len(small)):
        assert len(ids(rep_api.get(COMPANIES, {"page_size": 100}))) == 100
