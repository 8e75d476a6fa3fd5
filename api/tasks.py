"""Celery tasks of the API."""

import logging

from celery import shared_task

from .services import idempotency_keys_prune

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=360)
def prune_idempotency_keys():
    """Beat, hourly: forget the idempotency keys past CRM_API_IDEMPOTENCY_HOURS (safe to run twice)."""
    removed = idempotency_keys_prune()
    if removed:
        log.info("API: %d expired idempotency key(s) deleted", removed)
