"""Worker faults with real processes: PostgreSQL, Redis, Celery workers and beats, an SMTP server and a webhook
receiver on loopback, and the tracking and capture endpoints under load.

Each test injects its fault mid-run, then counts what arrived: no email twice (by X-CRM-Delivery), every delivery
sent or `unknown` with its reason (an unknown one never sent twice), every webhook received (a repeat carries the
same webhook-id), every acknowledged page view and capture stored once. The figures go to fault_record.
"""

import re
import signal
import time
import uuid

import pytest

from nurturing.models import Delivery
from nurturing.tasks import reap_stale
from tests.conftest import WorkerProcess, start_worker, stop_worker, wait_until_ready
from tests.factories import sequence_with_steps
from tests.faults.harness import (
    BEAT_ENV,
    STALE_SECONDS,
    WEBHOOK_ENV,
    Load,
    bulk_enroll,
    capture_form,
    check_and_record,
    drain,
    everything_done,
    load_settings,
    signal_group,
    start_beat,
    stop_process,
    webhook_events,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def smtp_sink(slow_smtp_sink):
    """The engine's sink here is the slow one (tests/faults/conftest.py)."""
    return slow_smtp_sink


@pytest.fixture
def queues(settings, redis_broker_url):
    """The endpoints' hit and capture queues on the broker's Redis (the default there), under keys of this test."""
    import redis

    key = f"crm-fault-{uuid.uuid4().hex[:8]}:hits"
    env = load_settings(settings, queue_url=redis_broker_url, key=key)
    keys = [key, f"{key}:taken", "crm:capture:queue", "crm:capture:queue:taken"]
    client = redis.Redis.from_url(redis_broker_url)
    client.delete(*keys)
    yield env
    for name in [*keys, *client.keys(f"{key}:taken:*"), *client.keys("crm:capture:queue:taken:*")]:
        client.delete(name)


@pytest.fixture
def worker_env(smtp_sink, queues):
    return {"EMAIL_URL": smtp_sink.url, "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            **WEBHOOK_ENV, **queues, "CRM_NURTURE_STALE_AFTER_SECONDS": str(STALE_SECONDS),
            "CRM_QUEUE_STALE_SECONDS": str(STALE_SECONDS)}


@pytest.fixture
def beats(celery_worker_process, redis_broker_url, tmp_path):
    started = []

    def start(name="beat"):
        started.append(start_beat(celery_worker_process.queue, {**BEAT_ENV, "CELERY_BROKER_URL": redis_broker_url},
                                  tmp_path, name))
        return started[-1]

    yield start
    for proc in started:
        stop_process(proc)


def test_a_worker_killed_again_and_again_mid_run_sends_each_email_once_and_loses_nothing_acknowledged(
        celery_worker_process, beats, smtp_sink, receiver):
    worker = celery_worker_process
    bulk_enroll(sequence_with_steps({}), 900)
    webhook_events(receiver, 150)
    form = capture_form()
    beats()

    with Load(form, per_second=40, capture_every=20) as load:
        for _ in range(3):
            before = smtp_sink.count()
            drain(lambda: smtp_sink.count() > before + 120, smtp_sink=smtp_sink, timeout=40, interval=0.05)
            worker.kill()
            worker.restart()
        fault_end = time.monotonic()
        time.sleep(1)
    flowing = drain(everything_done(load), smtp_sink=smtp_sink)
    recovery = time.monotonic() - fault_end

    check_and_record("worker_sigkill_repeated", smtp_sink=smtp_sink, receiver=receiver, load=load, recovery_s=recovery,
                     kills=3, sends_flowing_after_s=flowing)


def test_two_beats_at_once_send_nothing_twice(celery_worker_process, beats, smtp_sink, receiver, tmp_path):
    first = celery_worker_process
    second = WorkerProcess(start_worker(first.queue, first.env_extra, tmp_path / "worker2.log"), first.queue,
                           tmp_path / "worker2.log", first.env_extra)
    try:
        wait_until_ready(second.proc, second.log_path)
        bulk_enroll(sequence_with_steps({}), 600)
        webhook_events(receiver, 100)
        started = time.monotonic()
        with Load(capture_form(), per_second=40, capture_every=20, limit=200) as load:
            beats("beat-1")
            beats("beat-2")
            drain(everything_done(load), smtp_sink=smtp_sink, reap=False)
        drained = time.monotonic() - started
        dispatch_ticks = sum(log.read_text().count("nurturing.tasks.dispatch_due")
                             for log in (tmp_path / "beat-1.log", tmp_path / "beat-2.log"))
    finally:
        stop_worker(second.proc)

    assert dispatch_ticks >= 2  # both beats ticked
    entry = check_and_record("two_beats", smtp_sink=smtp_sink, receiver=receiver, load=load, recovery_s=None,
                             drained_s=round(drained, 2), beats=2, workers=2, dispatch_ticks=dispatch_ticks)
    assert entry["unknown"] == 0  # no worker was lost: nothing may be in doubt


def held_no_longer(log: str) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) no longer held by this batch", log))


def test_a_worker_paused_past_the_stale_time_leaves_its_email_in_flight_unknown_and_sends_nothing_it_lost(
        celery_worker_process, beats, smtp_sink, receiver, tmp_path):
    paused = celery_worker_process
    bulk_enroll(sequence_with_steps({}), 500)
    webhook_events(receiver, 60)
    with Load(capture_form(), per_second=40, capture_every=20) as load:
        beats()
        assert wait_for(lambda: smtp_sink.count() > 30 and Delivery.objects.filter(status="sending").exists(),
                        timeout=40, interval=0.02), paused.log()[-3000:]
        signal_group(paused.proc, signal.SIGSTOP)
        stopped_at = time.monotonic()
        in_flight = set(Delivery.objects.filter(status="sending").values_list("id", flat=True))
        waiting = set(Delivery.objects.filter(status="scheduled").values_list("id", flat=True))  # claimed or not
        sent_before = smtp_sink.count()
        try:
            # Another worker; the reaper runs on it once the paused one's rows are past the stale time.
            other = WorkerProcess(start_worker(paused.queue, paused.env_extra, tmp_path / "other.log"), paused.queue,
                                  tmp_path / "other.log", paused.env_extra)
            wait_until_ready(other.proc, other.log_path)
            time.sleep(max(0.0, stopped_at + STALE_SECONDS + 0.5 - time.monotonic()))
            reap_stale.apply_async(queue=paused.queue)
            assert wait_for(lambda: not Delivery.objects.filter(pk__in=in_flight, status="sending").exists(), timeout=20)
            # What the paused worker had claimed and not started is handed back and sent by the other one.
            assert wait_for(lambda: smtp_sink.count() > sent_before + 50, timeout=30), other.log()[-3000:]
        finally:
            signal_group(paused.proc, signal.SIGCONT)
        resumed_at = time.monotonic()
        paused_s = resumed_at - stopped_at
        time.sleep(1)
    try:
        drain(everything_done(load), smtp_sink=smtp_sink)
        recovery = time.monotonic() - resumed_at
        assert wait_for(lambda: "no longer held by this batch" in paused.log(), timeout=20), paused.log()[-3000:]
    finally:
        stop_worker(other.proc)

    statuses = dict(Delivery.objects.values_list("id", "status"))
    received = [message["X-CRM-Delivery"] for _, _, message in smtp_sink.messages]
    # In flight at the pause: unknown once reaped, never sent by another worker. The resumed worker still holds
    # those messages and finishes handing them over (once), but records nothing over the reaper's verdict: they
    # stay unknown, and their reason says the worker came back and handed them over.
    assert all(statuses[pk] == "unknown" for pk in in_flight), {pk: statuses[pk] for pk in in_flight}
    assert all(received.count(str(pk)) <= 1 for pk in in_flight)
    explained = Delivery.objects.filter(pk__in=in_flight, reason__contains="the worker came back and").count()
    assert all(statuses[pk] == "sent" for pk in waiting)
    assert all(received.count(str(pk)) == 1 for pk in waiting)
    refused = held_no_longer(paused.log())
    assert refused > 0  # the resumed worker found rows it no longer held, and sent none of them
    check_and_record("worker_sigstop_past_stale", smtp_sink=smtp_sink, receiver=receiver, load=load,
                     recovery_s=recovery, paused_s=round(paused_s, 2), stale_after_s=STALE_SECONDS,
                     in_flight_at_pause=len(in_flight), waiting_at_pause=len(waiting),
                     not_sent_by_resumed_worker=refused, unknown_handed_over_by_resumed_worker=explained)
