"""Every kind of bad input is problem details naming what was wrong: never a 500 and never HTML."""

import pytest

from leads.models import Lead
from tests.api.conftest import assert_problem
from tests.factories import LeadFactory

LEADS = "/api/v1/leads/"


def test_malformed_json_is_400(rep_api):
    response = rep_api.post(LEADS, '{"email": "a@example.org",', content_type="application/json")
    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]
    assert body["instance"] == LEADS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": 5}, "email"),
        ({"first_name": ["Ada"]}, "first_name"),
        ({"email": "not an address"}, "email"),
        ({"email": "a@example.org", "source": "google"}, "source"),
        ({"email": "a@example.org", "source": 10**30}, "source"),
        ({"email": "a@example.org", "first_name": "x" * 101}, "first_name"),
        ({"email": "a@example.org", "first_name": "nul\x00byte"}, "first_name"),
    ],
)
def test_a_wrong_type_or_value_is_400_naming_the_field(rep_api, body, field):
    assert_problem(rep_api.post(LEADS, body), 400, field=field)
    assert not Lead.objects.exists()


def test_a_score_in_a_body_is_400_saying_the_score_is_computed(rep_api):
    body = assert_problem(rep_api.post(LEADS, {"email": "a@example.org", "score": 90}), 400, field="score")
    assert "computed from the scoring rules" in str(body)
    assert not Lead.objects.exists()


def test_an_unknown_field_is_400_naming_it(rep_api):
    body = assert_problem(rep_api.post(LEADS, {"email": "a@example.org", "status": "customer", "emial": "x"}), 400)
    assert {row["field"] for row in body["errors"]} == {"status", "emial"}
    assert not Lead.objects.exists()


def test_a_body_that_is_not_an_object_is_400(rep_api):
    assert_problem(rep_api.post(LEADS, [1, 2]), 400)


def test_an_unknown_query_parameter_is_400_naming_it(rep_api):
    assert_problem(rep_api.get(LEADS, {"stauts": "new"}), 400, field="stauts")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"owner": "abc"}, "owner"),
        ({"owner": str(2**70)}, "owner"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "9999-12-31T23:59:59-23:59"}, "created_after"),
        ({"page_size": "0"}, "page_size"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_a_bad_query_value_is_400_naming_it(rep_api, params, field):
    assert_problem(rep_api.get(LEADS, params), 400, field=field)


def test_form_data_is_415(rep_api):
    response = rep_api.post(LEADS, "email=a%40example.org", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415)


def test_an_unsupported_method_is_405_with_allow(rep_api):
    response = rep_api.client.delete(LEADS, headers=rep_api.headers)
    assert_problem(response, 405)
    assert "POST" in response["Allow"]


def test_an_unknown_path_is_404_problem_details(rep_api):
    assert_problem(rep_api.get("/api/v1/nothing-here/"), 404)


@pytest.mark.parametrize("pk", ["0", "9223372036854775808", "99999999999999999999999"])
def test_an_id_out_of_range_is_404(rep_api, pk):
    assert_problem(rep_api.get(f"{LEADS}{pk}/"), 404)


def test_an_unexpected_error_is_500_without_internals(rep_api, monkeypatch, caplog):
    from api import selectors

    def broken(**kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(selectors, "api_lead_list", broken)
    body = assert_problem(rep_api.get(LEADS), 500)
    assert "hunter2" not in str(body) and "RuntimeError" not in str(body)
    assert "secret internals" in caplog.text


def test_a_rule_refusal_is_422_naming_its_field(rep_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    assert_problem(rep_api.patch(f"{LEADS}{lead.pk}/", {"timezone": "Mars/Olympus"}), 422, field="timezone")


def test_an_error_outside_the_api_views_is_still_problem_details_under_the_api(rf):
    from api.problems import server_error

    response = server_error(rf.get("/api/v1/leads/"))
    assert (response.status_code, response["Content-Type"]) == (500, "application/problem+json")
    assert response.content.startswith(b"{")
    page = server_error(rf.get("/leads/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_a_host_header_django_refuses_is_a_400_problem_under_the_api_and_the_sites_page_elsewhere(rep_api):
    response = rep_api.get("/api/v1/deals/", headers={"host": "bad;host"})
    assert_problem(response, 400)
    page = rep_api.get("/leads/", headers={"host": "bad;host"})
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
