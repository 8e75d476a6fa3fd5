from celery import shared_task

from .services import worker_heartbeat_record


@shared_task(ignore_result=True)
def worker_heartbeat(name=None):
    """Beat's tick: a worker records that it is alive (shown on /healthz)."""
    worker_heartbeat_record(name=name)
