"""Each token has its own budget of requests a minute; past it, 429 with Retry-After."""

from datetime import timedelta

from tests.api.conftest import Api, assert_problem, token_for

LEADS = "/api/v1/leads/"


def test_a_token_past_its_limit_gets_429_with_retry_after(frozen, rep_user, settings):
    settings.CRM_API_RATE_LIMIT_PER_MINUTE = 3
    frozen.move_to("2026-06-01T09:00:15Z")
    api = Api(token_for(rep_user))
    assert [api.get(LEADS).status_code for _ in range(3)] == [200, 200, 200]
    response = api.get(LEADS)
    assert_problem(response, 429)
    assert response["Retry-After"] == "45"
    frozen.shift(timedelta(seconds=45))
    assert api.get(LEADS).status_code == 200


def test_each_token_counts_on_its_own(frozen, rep_user, other_rep, settings):
    settings.CRM_API_RATE_LIMIT_PER_MINUTE = 1
    first, second = Api(token_for(rep_user)), Api(token_for(other_rep))
    assert first.get(LEADS).status_code == 200
    assert first.get(LEADS).status_code == 429
    assert second.get(LEADS).status_code == 200
