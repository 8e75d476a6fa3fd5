"""/metrics for Prometheus: the engine's backlog, rates and failures, the queues, the workers."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from crm.tasks import worker_heartbeat
from nurturing.claim import deliveries_queue_sort
from nurturing.models import Delivery, LaterDelivery
from nurturing.services import enrollment_create
from nurturing.tasks import dispatch_due
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db
TOKEN = "scrape-secret"


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def metrics_on(settings, tmp_path):
    settings.CRM_METRICS_TOKEN = TOKEN
    settings.CRM_TRACKING_QUEUE_URL = f"spool:{tmp_path / 'tracking'}"
    settings.CRM_CAPTURE_QUEUE_URL = f"spool:{tmp_path / 'capture'}"
    settings.CELERY_BROKER_URL = "memory://"
    return settings


def scrape(client) -> dict:
    response = client.get(reverse("metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode()) for sample in family.samples}


def test_metrics_need_the_token(client, settings):
    settings.CRM_METRICS_TOKEN = ""
    assert client.get(reverse("metrics")).status_code == 404
    settings.CRM_METRICS_TOKEN = TOKEN
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN + "x"}):
        response = client.get(reverse("metrics"), headers=header)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_the_backlog_and_its_age_then_the_send_rate_once_sent(client, metrics_on, clock):
    sequence = sequence_with_steps({}, {"delay": timedelta(days=3)})
    for _ in range(3):
        enrollment_create(lead=LeadFactory(), sequence=sequence)
    clock.shift(timedelta(minutes=10))
    numbers = scrape(client)
    assert numbers[("crm_emails_due", ())] == 3
    assert numbers[("crm_emails_due_oldest_age_seconds", ())] == 600
    assert numbers[("crm_emails_sent_5m", ())] == 0 and numbers[("crm_emails_unknown", ())] == 0
    assert numbers[("crm_broker_up", ())] == 1
    assert numbers[("crm_ingest_queue_depth", (("queue", "tracking"),))] == 0

    dispatch_due()
    numbers = scrape(client)
    assert numbers[("crm_emails_due", ())] == 0 and numbers[("crm_emails_due_oldest_age_seconds", ())] == 0
    assert numbers[("crm_emails_sent_5m", ())] == 3 and numbers[("crm_emails_send_rate", ())] == pytest.approx(0.01)
    clock.shift(timedelta(minutes=6))
    assert scrape(client)[("crm_emails_sent_5m", ())] == 0  # out of the window


def test_rows_come_due_at_the_far_end_of_the_queue_when_no_dispatcher_runs(client, metrics_on, clock):
    sequence = sequence_with_steps({"delay": timedelta(days=2)})
    for _ in range(2):
        enrollment_create(lead=LeadFactory(), sequence=sequence)
    enrollment_create(lead=LeadFactory(), sequence=sequence_with_steps())  # due now
    deliveries_queue_sort()  # the last tick before beat stopped: the two far rows go to the far end
    assert LaterDelivery.objects.count() == 2
    clock.shift(timedelta(days=2, minutes=5))

    numbers = scrape(client)

    assert numbers[("crm_emails_due", ())] == 3
    assert numbers[("crm_emails_due_oldest_age_seconds", ())] == (2 * 24 * 60 + 5) * 60  # the row due since the start


def test_failures_and_lost_outcomes_are_counted(client, metrics_on, clock):
    sequence = sequence_with_steps({})
    for _ in range(3):
        enrollment_create(lead=LeadFactory(), sequence=sequence)
    first, second, third = Delivery.objects.order_by("pk")
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.FAILED, updated_at=timezone.now())
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.UNKNOWN, updated_at=timezone.now())
    Delivery.objects.filter(pk=third.pk).update(status=Delivery.Status.SENDING, claimed_at=timezone.now())
    clock.shift(timedelta(minutes=2))
    numbers = scrape(client)
    assert numbers[("crm_emails_failed_5m", ())] == 1 and numbers[("crm_emails_failure_ratio_5m", ())] == 1.0
    assert numbers[("crm_emails_unknown", ())] == 1
    assert numbers[("crm_emails_in_flight", ())] == 1
    assert numbers[("crm_emails_in_flight_oldest_age_seconds", ())] == 120


def test_the_workers_heartbeat_age(client, metrics_on, clock):
    assert scrape(client)[("crm_worker_heartbeat_age_seconds", ())] == float("inf")
    worker_heartbeat.delay(name="w1")
    clock.shift(timedelta(seconds=45))
    assert scrape(client)[("crm_worker_heartbeat_age_seconds", ())] == 45


@pytest.mark.integration
def test_the_celery_queue_depth_is_read_from_redis(client, settings, redis_broker_url):
    import uuid

    from crm.celery import app

    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.CRM_METRICS_TOKEN, settings.CRM_SCORING_QUEUE = TOKEN, queue
    try:
        for _ in range(3):
            app.send_task("crm.tasks.worker_heartbeat", kwargs={"name": "nobody"}, queue=queue)
        numbers = scrape(client)
        assert numbers[("crm_broker_up", ())] == 1
        assert numbers[("crm_celery_queue_depth", (("queue", queue),))] == 3
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
