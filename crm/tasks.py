from celery import shared_task

from .services import worker_heartbeat_record


# One upsert: a worker that cannot do that in half a minute is not well.
@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def worker_heartbeat(name=None):
    """Beat's tick: a worker records that it is alive (shown on /healthz)."""
    worker_heartbeat_record(name=name)
