"""Captures queued in the request and written by the worker: nothing written before, each written once, none lost."""

from datetime import timedelta

import pytest
from django.utils import timezone

from capture import services
from capture.models import Quarantine
from leads.models import FormSubmission, Lead
from tests.capture.test_capture import ANSWERS, post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(capture_settings, tmp_path):
    capture_settings.CRM_CAPTURE_QUEUE_URL = f"spool:{tmp_path / 'captures'}"
    return services.capture_queue()


def send(client, form, clock, **fields):
    token = services.fill_token(form)
    clock.shift(timedelta(seconds=8))
    return post_json(client, form, {"fields": {**ANSWERS, "consent": True, **fields}, "crm_token": token})


def test_a_queued_capture_is_answered_at_once_and_written_by_the_worker_at_the_time_it_came(
    client, demo_form, clock, queued
):
    response = send(client, demo_form, clock)
    came_at = timezone.now()

    assert response.status_code == 201 and response.json()["message"] == demo_form.thank_you_message
    assert not Lead.objects.exists() and queued.size() == 1

    clock.shift(timedelta(seconds=30))
    assert services.captures_ingest() == 1

    submission = FormSubmission.objects.get()
    assert submission.lead.email == "ada.lovelace@example.com" and submission.submitted_at == came_at
    assert queued.size() == 0


def test_a_capture_delivered_twice_is_written_once(client, demo_form, clock, queued):
    send(client, demo_form, clock)
    with queued.drain(10) as items:
        [item] = items
    queued.push(item)
    queued.push(item)

    services.captures_ingest()

    assert FormSubmission.objects.count() == 1 and Lead.objects.count() == 1


def test_a_queued_capture_the_lead_services_refuse_is_quarantined_with_the_reason(
    client, demo_form, clock, queued, monkeypatch
):
    from django.core.exceptions import ValidationError

    from leads import services as lead_services

    send(client, demo_form, clock)

    def refuse(**fields):
        raise ValidationError({"first_name": ["Names cannot hold this character."]})

    monkeypatch.setattr(lead_services, "lead_create", refuse)
    services.captures_ingest()

    held = Quarantine.objects.get()
    assert held.reason == "could not be captured: first_name: Names cannot hold this character."
    assert held.data["email"] == "ada.lovelace@example.com" and not Lead.objects.exists()
    assert queued.size() == 0


@pytest.mark.integration
def test_on_redis_every_host_queues_to_one_list_and_the_worker_writes_them(redis_broker_url, capture_settings, demo_form,
                                                                         client, clock, monkeypatch):
    capture_settings.CRM_CAPTURE_QUEUE_URL = redis_broker_url
    queue = services.capture_queue()
    # The process keeps one queue per setting: its keys are this test's only until the test ends.
    monkeypatch.setattr(queue, "KEY", "crm-test:capture:queue")
    monkeypatch.setattr(queue, "TAKEN", "crm-test:capture:queue:taken")
    queue.redis.delete(queue.KEY, queue.TAKEN)
    try:
        for i in range(3):
            assert send(client, demo_form, clock, email=f"p{i}@example.com").status_code == 201
        assert queue.size() == 3 and not Lead.objects.exists()
        assert services.captures_ingest() == 3
        assert sorted(Lead.objects.values_list("email", flat=True)) == [f"p{i}@example.com" for i in range(3)]
    finally:
        queue.redis.delete(queue.KEY, queue.TAKEN)


def test_a_fault_while_writing_one_capture_holds_it_back_and_the_rest_are_written(
    client, demo_form, clock, queued, monkeypatch
):
    from leads import services as lead_services

    send(client, demo_form, clock, email="first@example.com")
    send(client, demo_form, clock, email="second@example.com")
    real = lead_services.lead_touch_record

    def broken_once(**kwargs):
        if kwargs["lead"].email == "first@example.com":
            raise KeyError("utm_source")
        return real(**kwargs)

    monkeypatch.setattr(lead_services, "lead_touch_record", broken_once)
    # Both came without a landing page: give each a touch, so the broken recorder is reached.
    monkeypatch.setattr(services, "_touch_from_urls", lambda landing, referrer, at: {"utm_source": "x", "touched_at": at})

    assert services.captures_ingest() == 2

    assert list(Lead.objects.values_list("email", flat=True)) == ["second@example.com"]
    held = Quarantine.objects.get()
    assert held.reason == "could not be captured: 'utm_source'" and held.data["email"] == "first@example.com"


def test_when_the_database_fails_the_batch_goes_back_to_the_queue(client, demo_form, clock, queued, monkeypatch):
    from django.db import OperationalError

    send(client, demo_form, clock)

    def down(item):
        raise OperationalError("the database went away")

    monkeypatch.setattr(services, "capture_item", down)
    with pytest.raises(OperationalError):
        services.captures_ingest()
    assert queued.size() == 1 and not Quarantine.objects.exists()
