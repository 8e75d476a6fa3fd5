"""The API's tests: a client that sends a personal token, and a clock frozen for everything they create."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from api.models import Scope
from api.services import api_token_create

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ALL_SCOPES = tuple(Scope.values)


def token_for(user, *, scopes=ALL_SCOPES, days=30, name="test") -> str:
    return api_token_create(
        user=user, name=name, scopes=list(scopes), expires_at=timezone.now() + timedelta(days=days), by=user
    ).raw


class Api:
    """Django's test client with a token in Authorization and JSON bodies."""

    def __init__(self, raw: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw}"} if raw else {}

    def _headers(self, headers):
        return {**self.headers, **(headers or {})}

    def get(self, path, params=None, headers=None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(self, path, body=None, headers=None, content_type="application/json"):
        return self.client.post(path, body if body is not None else {}, content_type=content_type,
                                headers=self._headers(headers))

    def patch(self, path, body=None, headers=None, content_type="application/json"):
        return self.client.patch(path, body if body is not None else {}, content_type=content_type,
                                 headers=self._headers(headers))


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rep_api(frozen, rep_user):
    return Api(token_for(rep_user))


@pytest.fixture
def other_rep_api(frozen, other_rep):
    return Api(token_for(other_rep))


@pytest.fixture
def manager_api(frozen, manager_user):
    return Api(token_for(manager_user))


@pytest.fixture
def marketer_api(frozen, marketer_user):
    return Api(token_for(marketer_user))


def assert_problem(response, status: int, *, field: str | None = None) -> dict:
    """The response is problem details with this status (and, if given, an error naming `field`)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)
    if field is not None:
        assert field in [row["field"] for row in body.get("errors", [])], body
    return body


@pytest.fixture(autouse=True)
def rate_counts_in_the_database(settings):
    """The tests' clock is frozen on one window: counting in the database (rolled back per test) keeps each
    test's count its own, where Redis would carry counts from one test, or run, to the next."""
    settings.CRM_RATE_LIMIT_URL = ""
