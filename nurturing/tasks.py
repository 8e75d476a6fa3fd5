"""Celery tasks: thin wrappers that take ids, call nurturing.claim and nurturing.dispatch, and are safe to run twice.

Each has a soft time limit (the task stops where it is and records it) and a
hard one (the worker process is killed), set for the work it does. A send
batch's hard limit stays well under CRM_NURTURE_STALE_AFTER_SECONDS (600 s
by default), so the reaper never marks unknown the rows of a batch still
running (see nurturing.checks).
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from core.batches import work_for

from .claim import deliveries_claim, deliveries_queue_sort, deliveries_reap
from .dispatch import TransientSendError, deliveries_send
from .services import webhook_nonces_prune

log = logging.getLogger(__name__)


# Claims only: a few queries per batch handed out.
@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def dispatch_due():
    """Beat's tick: claim due deliveries in batches and hand each batch to a worker.

    Hands out at most CRM_NURTURE_MAX_BATCHES_PER_TICK batches, then re-queues
    itself if more are due, so one tick never holds a worker for long. Two
    dispatchers at once (two beats, a re-queue meeting a tick) claim disjoint rows.
    """
    deliveries_queue_sort()  # far rows away from the claims, and back as they come due
    size = settings.CRM_NURTURE_BATCH_SIZE
    for _ in range(settings.CRM_NURTURE_MAX_BATCHES_PER_TICK):
        token, ids = deliveries_claim(limit=size)
        if not ids:
            return
        send_batch.delay(ids, str(token))
        if len(ids) < size:
            return
    dispatch_due.delay()


# A batch (CRM_NURTURE_BATCH_SIZE, 200) takes seconds to a minute or two with a
# slow provider; each email's rendering is bounded (CRM_NURTURE_RENDER_MAX_SECONDS).
SEND_BATCH_SOFT_TIME_LIMIT = 300
SEND_BATCH_TIME_LIMIT = 360


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    soft_time_limit=SEND_BATCH_SOFT_TIME_LIMIT,
    time_limit=SEND_BATCH_TIME_LIMIT,
)
def send_batch(self, ids, token):
    """Send one claimed batch over one connection.

    acks_late + reject_on_worker_lost: a worker killed mid-batch gives the
    message back, and the redelivered task sends only what is still claimed
    (what was in flight is marked unknown by the reaper, never resent).
    Transient provider errors retry with exponential backoff. At the soft
    time limit the batch stops: the email being handed over is unknown, the
    rest are scheduled again for the next tick; nothing is sent twice.
    """
    try:
        result = deliveries_send(ids=ids, token=token)
    except SoftTimeLimitExceeded:
        log.warning("Batch of %d ran out of time: the emails not tried yet go back to be claimed again", len(ids))
        return
    except TransientSendError as exc:
        # Exponential back-off, and never sooner than the provider asked (its Retry-After).
        countdown = max(min(600, settings.CRM_NURTURE_RETRY_SECONDS * 2**self.request.retries), exc.retry_after or 0)
        log.warning("Transient send error, retrying %d deliveries in %ss: %s", len(ids), countdown, exc)
        raise self.retry(exc=exc, countdown=countdown) from exc
    log.info(
        "Batch of %d: %d sent, %d skipped, %d failed, %d rescheduled, %d no longer held by this batch",
        len(ids), result.sent, result.skipped, result.failed, result.rescheduled, result.taken_by_others,
    )


# Two UPDATEs and a DELETE over small indexes.
@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def reap_stale():
    """Hand back deliveries claimed by a lost task; mark the ones lost mid-send unknown; forget old webhook tokens."""
    webhook_nonces_prune()
    handed_back, unknown = deliveries_reap()
    if handed_back or unknown:
        log.warning("Reaper: %d handed back, %d marked unknown", handed_back, unknown)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_triggers():
    """Enroll the leads that what happened to them puts in a sequence (nurturing.triggers)."""
    from .triggers import triggers_run

    while triggers_run() == 500:
        pass


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=300, time_limit=330)
def enroll_audience(job_id: int):
    """Enroll an audience's leads for about half a minute, then hand the rest of the job to a new task."""
    from .audience_enrollment import audience_enroll_fail, audience_enroll_step

    try:
        if work_for(30, lambda: audience_enroll_step(job_id=job_id)):
            enroll_audience.delay(job_id)
    except Exception as exc:
        audience_enroll_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
