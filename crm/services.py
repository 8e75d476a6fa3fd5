import socket

from django.utils import timezone

from .models import WorkerHeartbeat


def worker_heartbeat_record(*, name: str | None = None) -> WorkerHeartbeat:
    """Record that a worker on this host is alive now. Safe to run twice."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        name=name or socket.gethostname(),
        defaults={"last_seen_at": timezone.now()},
    )
    return heartbeat
