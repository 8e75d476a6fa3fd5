"""Outbound webhooks with a real worker on PostgreSQL and Redis, killed mid-run: no delivery is lost."""

import collections
import json

import pytest

from core.events import Actor, EventType, events_record_each
from outbound import services
from outbound.models import Delivery
from outbound.tasks import dispatch_due, fan_out
from tests.outbound.receiver import Receiver
from tests.parallel import claimed_in_parallel
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
EVENTS = 1000
LEASE_SECONDS = 15


@pytest.fixture
def worker_env():
    return {
        "CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "CRM_EVENT_SETTLE_SECONDS": "0",
        "CRM_WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS), "CRM_WEBHOOKS_TIMEOUT_SECONDS": "2",
        "CRM_WEBHOOKS_BATCH_SIZE": "25",
    }


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_run_loses_no_delivery_and_the_receiver_can_dedupe(
        celery_worker_process, receiver, settings):
    settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    worker = celery_worker_process
    endpoint = services.endpoint_create(url=receiver.url, event_types=["lead.created"], by=None)
    events_record_each(EventType.LEAD_CREATED, actor=Actor.system("import"),
                       rows=({"lead_id": n, "payload": {"n": n}} for n in range(1, EVENTS + 1)))

    fan_out.apply_async(queue=worker.queue)
    assert wait_for(lambda: len(receiver.requests) > EVENTS // 3, timeout=120, interval=0.05), worker.log()
    worker.kill()
    worker.restart()

    def all_delivered():
        dispatch_due.apply_async(queue=worker.queue)  # beat's tick; the dead worker's leases run out meanwhile
        return Delivery.objects.filter(status="succeeded").count() == EVENTS

    assert wait_for(all_delivered, timeout=LEASE_SECONDS + 120, interval=1), worker.log()[-3000:]
    received = collections.Counter(receiver.ids())
    expected = set(Delivery.objects.filter(endpoint=endpoint).values_list("message_id", flat=True))
    assert len(expected) == EVENTS
    assert set(received) == expected  # every event delivered at least once, each under one webhook-id
    lead_ids = {json.loads(body)["data"]["lead_id"] for _, _, body in receiver.requests}
    assert lead_ids == set(range(1, EVENTS + 1))
    # What was in flight when the worker died may come twice, never more than the batches it held.
    assert sum(received.values()) - EVENTS <= 2 * 25


def test_four_senders_at_once_claim_disjoint_deliveries_on_postgresql(postgres_db, settings, receiver):
    from outbound.claim import deliveries_claim
    from outbound.fanout import deliveries_fan_out

    settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    services.endpoint_create(url=receiver.url, event_types=["lead.created"], by=None)
    events_record_each(EventType.LEAD_CREATED, actor=Actor.system("import"),
                       rows=({"lead_id": n} for n in range(1, 401)))
    deliveries_fan_out()

    ids = claimed_in_parallel(lambda: deliveries_claim(limit=25)[1])

    assert len(ids) == 400 and len(set(ids)) == 400
