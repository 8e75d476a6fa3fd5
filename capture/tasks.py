from celery import shared_task

from .followups import followups_run
from .services import captures_ingest


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_followups():
    """What follows each capture: owner, speed-to-lead task, sequence, the resource's email (capture.followups)."""
    while followups_run() == 500:
        pass


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def ingest_captures():
    """Write the queued form submissions (capture.services.captures_ingest), until the queue is empty."""
    while captures_ingest() == 500:
        pass
