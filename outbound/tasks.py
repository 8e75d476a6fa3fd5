"""Celery tasks of outbound webhooks, on their own queue (CRM_WEBHOOKS_QUEUE, "webhooks"), so slow receivers
never hold up the nurture emails. Thin: they call outbound.fanout, outbound.claim and outbound.sending.

A sender claims its own batch when it starts, never ahead of time: a lease
then counts from the moment a worker actually holds the rows, and rows never
wait in the broker while their lease runs out. No task relies on the broker
to bring back lost work: the rows of a worker that died keep a lease that
runs out (CRM_WEBHOOKS_LEASE_SECONDS) and are claimed by the next sender.
So the tasks ack early (acks_late off): a redelivered message would only race that.
"""

import logging
import math
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .claim import deliveries_claim, due_count
from .fanout import deliveries_fan_out
from .sending import deliveries_send
from .services import deliveries_prune

log = logging.getLogger(__name__)
FAN_OUT_LIMIT = 1000
# A sender stops after this long, so one task never holds a worker for minutes; beat's next tick
# (every CRM_WEBHOOKS_TICK_SECONDS) starts senders again while deliveries are due. A tick that comes
# while all the worker's processes are busy queues senders that, once started, find less or nothing to do.
SENDER_SECONDS = 60


# A few thousand events a run at most, one transaction per thousand.
@shared_task(name="outbound.tasks.fan_out", ignore_result=True, soft_time_limit=120, time_limit=150)
def fan_out():
    """Beat's tick: make the deliveries of new events, then start senders if any are due."""
    made = False
    while (read := deliveries_fan_out(limit=FAN_OUT_LIMIT)):
        made = True
        if read < FAN_OUT_LIMIT:
            break
    if made:
        dispatch_due.delay()


# One bounded count.
@shared_task(name="outbound.tasks.dispatch_due", ignore_result=True, soft_time_limit=30, time_limit=45)
def dispatch_due():
    """Beat's tick: start up to CRM_WEBHOOKS_SENDERS senders, one per batch that is due."""
    size, senders = settings.CRM_WEBHOOKS_BATCH_SIZE, settings.CRM_WEBHOOKS_SENDERS
    due = due_count(at_most=size * senders)
    for _ in range(min(senders, math.ceil(due / size))):
        send_due.delay()


# Each try is bounded by the timeout and each batch stops before its lease runs out (outbound.sending);
# these limits only stop a worker stuck past all that, and the lease brings its rows back.
@shared_task(name="outbound.tasks.send_due", ignore_result=True, acks_late=False, soft_time_limit=600, time_limit=660)
def send_due():
    """Claim a batch of due deliveries and try each once, again until none is due or a minute has passed."""
    started = time.monotonic()
    try:
        while True:
            token, ids = deliveries_claim(limit=settings.CRM_WEBHOOKS_BATCH_SIZE)
            if not ids:
                return
            result = deliveries_send(ids=ids, token=str(token))
            log.info("Webhook batch of %d: %d succeeded, %d failed, %d given up, %d handed back, %d not held, "
                     "%d held back behind a receiver that is down", len(ids), result.succeeded, result.failed,
                     result.given_up, result.handed_back, result.not_held, result.held_back)
            if time.monotonic() - started > SENDER_SECONDS:
                return  # the next tick starts senders again while deliveries are due
    except SoftTimeLimitExceeded:
        log.warning("A webhook sender ran out of time: the lease brings back what it held")


@shared_task(name="outbound.tasks.prune", ignore_result=True, soft_time_limit=600, time_limit=660)
def prune():
    """Daily: forget the deliveries finished more than CRM_WEBHOOKS_LOG_DAYS ago, and their tries."""
    removed = deliveries_prune()
    if removed:
        log.info("Webhook delivery log: %d finished deliveries older than %d days deleted",
                 removed, settings.CRM_WEBHOOKS_LOG_DAYS)
