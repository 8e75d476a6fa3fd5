from celery import shared_task

from .followups import followups_run


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_followups():
    """What follows each capture: owner, speed-to-lead task, sequence, the resource's email (capture.followups)."""
    while followups_run() == 500:
        pass
