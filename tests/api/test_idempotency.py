"""Idempotency-Key on creating POSTs: a retry replays the first answer and creates nothing more."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from api.models import IdempotencyKey
from api.services import idempotency_keys_prune
from leads.models import Lead
from tests.api.conftest import Api, assert_problem, token_for

LEADS = "/api/v1/leads/"
KEY = {"Idempotency-Key": "4f7a1c9e-0d3b-4c55-9f0e-2b6f3a1d8e77"}


def test_a_retry_with_the_same_key_replays_the_first_response(rep_api):
    first = rep_api.post(LEADS, {"email": "ada@example.org"}, headers=KEY)
    again = rep_api.post(LEADS, {"email": "ada@example.org"}, headers=KEY)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Lead.objects.count() == 1


def test_the_same_key_with_another_body_is_422(rep_api):
    rep_api.post(LEADS, {"email": "ada@example.org"}, headers=KEY)
    body = assert_problem(rep_api.post(LEADS, {"email": "grace@example.org"}, headers=KEY), 422)
    assert "Idempotency-Key" in body["detail"]
    assert list(Lead.objects.values_list("email", flat=True)) == ["ada@example.org"]


def test_without_a_key_each_post_creates(rep_api):
    rep_api.post(LEADS, {"email": "ada@example.org"})
    assert_problem(rep_api.post(LEADS, {"email": "ada@example.org"}), 422, field="email")


def test_keys_belong_to_one_token(frozen, rep_user, rep_api):
    rep_api.post(LEADS, {"email": "ada@example.org"}, headers=KEY)
    other = Api(token_for(rep_user, name="second"))
    assert_problem(other.post(LEADS, {"email": "ada@example.org"}, headers=KEY), 422, field="email")


def test_a_refused_request_does_not_use_up_its_key(rep_api):
    assert_problem(rep_api.post(LEADS, {"first_name": "No contact"}, headers=KEY), 422)
    assert not IdempotencyKey.objects.exists()
    fixed = rep_api.post(LEADS, {"first_name": "No contact", "email": "a@example.org"}, headers=KEY)
    assert fixed.status_code == 201


def test_a_key_is_forgotten_after_24_hours(frozen, rep_api):
    rep_api.post(LEADS, {"email": "ada@example.org"}, headers=KEY)
    frozen.shift(timedelta(hours=24, seconds=1))
    response = rep_api.post(LEADS, {"email": "grace@example.org"}, headers=KEY)
    assert response.status_code == 201
    assert idempotency_keys_prune() == 0  # the old row was replaced
    frozen.shift(timedelta(hours=25))
    assert idempotency_keys_prune() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_malformed_key_is_400_naming_the_header(rep_api, key):
    assert_problem(rep_api.post(LEADS, {"email": "a@example.org"}, headers={"Idempotency-Key": key}), 400,
                   field="Idempotency-Key")
    assert not Lead.objects.exists()


@pytest.mark.integration
def test_concurrent_requests_with_one_key_create_one_lead(postgres_db, frozen, rep_user):
    # On PostgreSQL, where the requests really run at once (SQLite runs one writer at a time).
    api = Api(token_for(rep_user))
    barrier, answers = threading.Barrier(4), []

    def send():
        try:
            barrier.wait()
            answers.append(api.post(LEADS, {"email": "ada@example.org"}, headers=KEY))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in answers] == [201] * 4
    assert len({r.json()["id"] for r in answers}) == 1
    assert Lead.objects.count() == 1
