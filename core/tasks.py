"""Celery tasks of the core app."""

import logging

from celery import shared_task

from .ratelimit import ratelimit_prune

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=360)
def prune_rate_counters():
    """Beat, hourly: delete the database's rate-limit counters whose window has ended (safe to run twice)."""
    removed = ratelimit_prune()
    if removed:
        log.info("Rate limits: %d expired counter(s) deleted", removed)
