import pytest
from django.urls import reverse

from crm.tasks import worker_heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_says_when_no_worker_has_ticked(client):
    body = client.get(reverse("healthz")).json()
    assert body["database"] == "ok"
    assert body["workers"] == "no recent heartbeat"


def test_the_beat_tick_records_a_heartbeat_that_healthz_reports(client):
    worker_heartbeat.delay(name="test-worker")
    body = client.get(reverse("healthz")).json()
    assert body["workers"] == "ok"
    assert body["last_worker_heartbeat"] is not None
