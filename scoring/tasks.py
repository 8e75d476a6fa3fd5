"""Scoring's Celery tasks: thin, by ids, safe to run twice."""

import logging

from celery import shared_task
from django.conf import settings

from core.batches import work_for

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def score_events():
    """Rescore the leads that what happened to them concerns (scoring.reader)."""
    from .reader import scoring_events_run

    while scoring_events_run() == 500:
        pass


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=600, time_limit=660)
def rescore(job_id: int):
    """Rescore a job's leads for about a minute (CRM_SCORING_TASK_SECONDS), then hand the rest to a new task."""
    from .services import rescore_fail, rescore_step

    try:
        if work_for(settings.CRM_SCORING_TASK_SECONDS, lambda: rescore_step(job_id=job_id)):
            rescore.delay(job_id)
    except Exception as exc:
        log.exception("Rescoring job %s failed", job_id)
        rescore_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise


@shared_task(ignore_result=True, soft_time_limit=3000, time_limit=3300)
def decay_scores():
    """The nightly pass: engagement points lose value with time even when nothing happens."""
    from .services import decay_refresh

    log.info("Scores decayed: %s leads rescored", decay_refresh())
