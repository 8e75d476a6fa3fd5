"""Celery tasks of the traffic app: drain the hit queue, roll up the days, keep partitions and salts."""

import logging

from celery import shared_task
from django.utils import timezone

from .ingest import hits_ingest, salts_prune, traffic_rollup
from .partitions import partitions_ensure

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def ingest_hits():
    """Write what the endpoint queued, batch after batch, until the queue is empty or 40 s have passed."""
    started = timezone.now()
    total = 0
    while (timezone.now() - started).total_seconds() < 40:
        drained = hits_ingest()
        total += drained
        if not drained:
            break
    if total:
        log.info("Tracking: %d hits written", total)


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=360)
def rollup_traffic():
    """Rebuild today's and yesterday's traffic per day (yesterday: for late hits)."""
    today = timezone.localdate()
    for day in (today - timezone.timedelta(days=1), today):
        traffic_rollup(day)


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def housekeeping():
    """Make next months' partitions (PostgreSQL) and delete the address salts past their two days."""
    partitions_ensure()
    salts_prune()
