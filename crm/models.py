from django.db import models


class WorkerHeartbeat(models.Model):
    """When a Celery worker last ran the beat's tick: proof that beat and workers are alive."""

    name = models.CharField(max_length=200, unique=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"{self.name} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
