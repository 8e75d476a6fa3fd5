"""Broker faults with real processes: PostgreSQL, Celery workers and beat, an SMTP server and a webhook receiver on
loopback, and the tracking and capture endpoints under load.

- The broker's Redis killed and started again empty (a flush), and at the same moment the Redis holding the
  tracking and capture queues killed and started again from its append-only file: the tasks lost with the broker
  leave their claims stale, the reaper hands them back and they are sent once; every page view and capture
  acknowledged is stored once, and what came while Redis was down was refused, never acknowledged and lost.
- RabbitMQ as the broker, the worker SIGKILLed twice mid-run: its unacknowledged batches are redelivered, and the
  claim token keeps a redelivered batch from sending what it already sent.

Counted as in test_worker_faults (tests.faults.harness.check_and_record), and written to fault_record.
"""

import collections
import re
import time
import uuid

import pytest
import redis
from kombu import Connection

from nurturing.models import DueDelivery
from tests.conftest import WorkerProcess, need_service, start_worker, stop_worker, wait_until_ready
from tests.factories import sequence_with_steps
from tests.faults.harness import (
    BEAT_ENV,
    STALE_SECONDS,
    WEBHOOK_ENV,
    Load,
    PrivateRedis,
    bulk_enroll,
    capture_form,
    check_and_record,
    drain,
    everything_done,
    load_settings,
    start_beat,
    stop_process,
    webhook_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
# Batches of 50: a dispatch tick puts a dozen of them in the broker at once, so a broker lost loses some.
ENGINE_ENV = {"CRM_NURTURE_BATCH_SIZE": "50", "CRM_NURTURE_STALE_AFTER_SECONDS": str(STALE_SECONDS),
              "CRM_QUEUE_STALE_SECONDS": str(STALE_SECONDS)}



@pytest.fixture
def smtp_sink(slow_smtp_sink):
    """The engine's sink here is the slow one (tests/faults/conftest.py)."""
    return slow_smtp_sink


@pytest.fixture
def celery_on(postgres_db, smtp_sink, tmp_path):
    """Start a worker and a beat on a queue of their own, with the broker and queues the test gives
    (`env`); both are stopped at the end (and a RabbitMQ queue deleted). Returns the worker."""
    started, queues_to_delete = [], []

    def start(env):
        queue = f"crm-test-{uuid.uuid4().hex[:8]}"
        env = {"EMAIL_URL": smtp_sink.url, "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
               **WEBHOOK_ENV, **ENGINE_ENV, **env}
        log_path = tmp_path / "worker.log"
        worker = WorkerProcess(start_worker(queue, env, log_path), queue, log_path, env)
        started.append(worker)
        wait_until_ready(worker.proc, log_path)
        started.append(start_beat(queue, {**BEAT_ENV, "CELERY_BROKER_URL": env["CELERY_BROKER_URL"]}, tmp_path))
        return worker

    yield start
    for started_one in reversed(started):
        if isinstance(started_one, WorkerProcess):
            stop_worker(started_one.proc)
            if started_one.env_extra["CELERY_BROKER_URL"].startswith("amqp"):
                queues_to_delete.append(started_one.queue)
        else:
            stop_process(started_one)
    # RabbitMQ keeps a queue until it is deleted: once beat is stopped (its next tick would declare it again).
    for queue in queues_to_delete:
        with Connection(AMQP_URL) as connection:
            connection.default_channel.queue_delete(queue)


@pytest.fixture
def private_redis(tmp_path):
    """Never the machine's Redis: a broker that keeps nothing, and one for the queues that keeps every write.
    Asked for before the worker, so they outlive it (a worker stopping with its broker gone waits for it)."""
    broker = PrivateRedis(tmp_path / "redis-broker", appendonly=False)
    queues = PrivateRedis(tmp_path / "redis-queues", appendonly=True)
    yield broker, queues
    broker.close()
    queues.close()


def test_redis_restarted_with_the_broker_flushed_sends_each_email_once_and_loses_nothing_acknowledged(
        private_redis, celery_on, settings, smtp_sink, receiver):
    broker, queues = private_redis
    env = load_settings(settings, queue_url=queues.url(), key=f"crm-fault-{uuid.uuid4().hex[:8]}:hits")
    worker = celery_on({"CELERY_BROKER_URL": broker.url(), **env})
    bulk_enroll(sequence_with_steps({}), 600)
    webhook_events(receiver, 100)
    with Load(capture_form(), per_second=40, capture_every=10) as load:
        drain(lambda: smtp_sink.count() > 100, smtp_sink=smtp_sink, timeout=40, interval=0.05)
        refused_before = sum(load.refused.values())
        tasks_lost = redis.Redis.from_url(broker.url()).llen(worker.queue)  # waiting in the broker: flushed
        broker.kill()
        queues.kill()
        killed_at = time.monotonic()
        time.sleep(2)  # the endpoints under load meanwhile: nothing may be acknowledged that is not kept
        broker.start()
        queues.start()
        fault_end = time.monotonic()
        refused_in_outage = sum(load.refused.values()) - refused_before
        # What came back: the broker empty (its tasks gone, their claims left to go stale), the queues whole.
        queued_kept = queued(queues.url(), env["CRM_TRACKING_QUEUE_KEY"])
        claims_orphaned = DueDelivery.objects.filter(claim_token__isnull=False).count()  # lost or in the worker
        time.sleep(2)
    flowing = drain(everything_done(load), smtp_sink=smtp_sink)
    recovery = time.monotonic() - fault_end

    # The endpoints were asked while Redis was down, and said so: 503 with Retry-After (tests/traffic), not 500.
    assert refused_in_outage > 0 and all(kind.endswith(" 503") for kind in load.refused), load.refused
    assert tasks_lost > 0  # the flush took send batches whose rows were claimed: the reaper handed them back
    check_and_record("redis_restart_flush", smtp_sink=smtp_sink, receiver=receiver, load=load, recovery_s=recovery,
                     outage_s=round(fault_end - killed_at, 2), refused_in_outage=refused_in_outage,
                     tasks_flushed=tasks_lost, queued_kept_by_aof=queued_kept,
                     claims_orphaned_by_flush=claims_orphaned, sends_flowing_after_s=flowing)


def queued(url, hits_key) -> int:
    """Hits and captures waiting in the queues' Redis, or taken by a drain that has not finished."""
    from capture.services import capture_queue
    from traffic.queue import RedisQueue

    return RedisQueue(url, hits_key).size() + capture_queue().size()


def redelivered(log: str) -> int:
    """Send batches the worker received more than once (RabbitMQ gave back what a killed worker held)."""
    received = collections.Counter(re.findall(r"Task nurturing\.tasks\.send_batch\[([0-9a-f-]+)\] received", log))
    return sum(1 for n in received.values() if n > 1)


def amqp_answers() -> bool:
    try:
        with Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def test_rabbitmq_as_the_broker_with_the_worker_killed_twice_sends_each_email_once(
        celery_on, settings, smtp_sink, receiver, tmp_path):
    if not amqp_answers():
        need_service(f"needs RabbitMQ at {AMQP_URL}")
    from celery import Celery

    # The queues in spools of this test (never the broker, which is RabbitMQ here).
    env = load_settings(settings, queue_url=f"spool:{tmp_path / 'tracking'}", key="crm:tracking:hits",
                        capture_url=f"spool:{tmp_path / 'capture'}")
    # Batches of 200 (four chunks of 50 moved to `sending` one at a time): a redelivered batch has the rest of
    # its claimed rows to send, and sends only those.
    worker = celery_on({"CELERY_BROKER_URL": AMQP_URL, "CRM_NURTURE_BATCH_SIZE": "200", **env})
    # This process publishes to RabbitMQ too: an app of its own, so the suite's app keeps its broker.
    amqp = Celery("crm-test-amqp", broker=AMQP_URL, set_as_current=False)
    try:
        bulk_enroll(sequence_with_steps({}), 600)
        webhook_events(receiver, 100)
        with Load(capture_form(), per_second=40, capture_every=10) as load:
            for _ in range(2):
                before = smtp_sink.count()
                amqp.send_task("nurturing.tasks.dispatch_due", queue=worker.queue)
                drain(lambda: smtp_sink.count() > before + 100, smtp_sink=smtp_sink, timeout=40, interval=0.05)
                worker.kill()
                worker.restart()
            fault_end = time.monotonic()
            amqp.send_task("nurturing.tasks.dispatch_due", queue=worker.queue)
            time.sleep(1)
        flowing = drain(everything_done(load), smtp_sink=smtp_sink)
        recovery = time.monotonic() - fault_end
    finally:
        amqp.close()

    batches_redelivered = redelivered(worker.log())
    assert batches_redelivered > 0, worker.log()[-3000:]  # a killed worker's batches came back, and sent nothing twice
    check_and_record("rabbitmq_broker", smtp_sink=smtp_sink, receiver=receiver, load=load, recovery_s=recovery,
                     kills=2, batches_redelivered=batches_redelivered, sends_flowing_after_s=flowing)
