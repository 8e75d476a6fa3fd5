"""Tracking on the production stack: the page-view table partitioned by month on PostgreSQL, the
queue in Redis shared by every host, and a real Celery worker draining it."""

import json
import uuid
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests import waiting
from traffic import ingest, partitions
from traffic.models import PageView
from traffic.queue import hit_queue

pytestmark = pytest.mark.integration

# This run's Redis list: the worker process is told it too.
QUEUE_KEY = f"crm-test:hits:{uuid.uuid4().hex[:8]}"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def post(client, visitor, page="https://www.example.com/"):
    body = json.dumps({"v": visitor, "u": page, "l": 1})
    return client.post(reverse("traffic:hit"), body, content_type="text/plain", HTTP_USER_AGENT=CHROME,
                       HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="203.0.113.4")


def partition_of(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM traffic_pageview WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_page_views_land_in_their_months_partition_and_a_month_without_one_in_the_default(postgres_db, tracking):
    assert partitions.is_partitioned()
    created = partitions.partitions_ensure(today=date(2031, 1, 15))
    assert created == ["traffic_pageview_y2031m01", "traffic_pageview_y2031m02", "traffic_pageview_y2031m03"]
    assert partitions.partitions_ensure(today=date(2031, 1, 15)) == []  # already there

    client = Client()
    for moment in ("2031-02-10 12:00Z", "2033-05-01 08:00Z"):
        with time_machine.travel(moment, tick=False):
            assert post(client, uuid.uuid4().hex).status_code == 204
    ingest.hits_ingest()

    in_2031, in_2033 = PageView.objects.order_by("received_at")
    assert partition_of(in_2031.pk) == "traffic_pageview_y2031m02"
    assert partition_of(in_2033.pk) == "traffic_pageview_default"
    # That month's rows are in the default partition: its partition is not made (it would fail), nothing is lost.
    assert "traffic_pageview_y2033m05" not in partitions.partitions_ensure(today=date(2033, 5, 2))
    assert PageView.objects.count() == 2


@pytest.fixture
def worker_env(redis_broker_url):
    return {"CRM_TRACKING_QUEUE_URL": redis_broker_url, "CRM_TRACKING_QUEUE_KEY": QUEUE_KEY}


@pytest.fixture
def redis_queue(redis_broker_url, tracking):
    tracking.CRM_TRACKING_QUEUE_URL = redis_broker_url
    tracking.CRM_TRACKING_QUEUE_KEY = QUEUE_KEY
    queue = hit_queue()
    _empty(queue)
    yield queue
    _empty(queue)


def _empty(queue):
    queue.redis.delete(queue.KEY, queue.TAKEN, *queue.redis.zrange(queue.TAKEN, 0, -1))


def test_the_redis_queue_gives_a_failed_batch_back_and_lets_drains_run_side_by_side(postgres_db, redis_queue):
    client = Client()
    with time_machine.travel(datetime(2026, 6, 2, 10, 0, tzinfo=UTC), tick=False):
        for _ in range(5):
            assert post(client, uuid.uuid4().hex).status_code == 204
        assert redis_queue.size() == 5 and PageView.objects.count() == 0

        with pytest.raises(RuntimeError), redis_queue.drain(2) as first:
            with redis_queue.drain(2) as second:
                assert len(first) == len(second) == 2  # two drains at once take disjoint batches
                assert not {h["id"] for h in first} & {h["id"] for h in second}
                assert redis_queue.size() == 5  # taken, not gone
            raise RuntimeError("the first one failed")
        assert redis_queue.size() == 3  # the second finished; the first's batch is back, at the head
        with redis_queue.drain(2) as again:
            assert [h["id"] for h in again] == [h["id"] for h in first]

        assert ingest.hits_ingest() == 1
        assert redis_queue.size() == 0 and PageView.objects.count() == 1


def test_a_batch_whose_worker_died_is_put_back_after_the_stale_time(postgres_db, redis_queue, tracking):
    import time as clock

    client = Client()
    for _ in range(2):
        post(client, uuid.uuid4().hex)
    dead = redis_queue.drain(10)
    hits = dead.__enter__()  # the worker took them, then died: its block never ends
    assert len(hits) == 2 and redis_queue.redis.llen(redis_queue.KEY) == 0

    assert redis_queue.give_back_stale(now=clock.time()) == 0  # still running, as far as anyone knows
    assert redis_queue.give_back_stale(now=clock.time() + tracking.CRM_QUEUE_STALE_SECONDS + 1) == 2
    assert ingest.hits_ingest() == 2 and PageView.objects.count() == 2


def test_a_full_redis_queue_answers_503_and_keeps_its_size(postgres_db, redis_queue, tracking):
    tracking.CRM_TRACKING_QUEUE_MAX = 2
    client = Client()
    statuses = [post(client, uuid.uuid4().hex).status_code for _ in range(4)]
    assert statuses == [204, 204, 503, 503] and redis_queue.size() == 2


def test_a_real_worker_drains_what_the_endpoint_queued(celery_worker_process, redis_queue, tracking):
    from traffic.tasks import ingest_hits

    client = Client()
    visitors = [uuid.uuid4().hex for _ in range(25)]
    for visitor in visitors:
        assert post(client, visitor).status_code == 204

    ingest_hits.delay()
    assert waiting.wait_for(lambda: PageView.objects.count() == 25, timeout=30.0, interval=0.2), celery_worker_process.log()
    assert sorted(PageView.objects.values_list("visitor_id", flat=True)) == sorted(visitors)
    assert redis_queue.size() == 0
