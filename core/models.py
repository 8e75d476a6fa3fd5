"""The domain event log: one append-only row per change, written in the change's own transaction.

It is the audit trail ("who changed what, when", shown on the lead and in the
admin) and the outbox later readers work from (outbound webhooks, scoring,
triggers, reports): a reader keeps a cursor (`EventCursor`, the id of the last
row it handled) and reads rows after it, in id order. Nothing reads the names
of things from it: subjects and actors are ids.

Rows are never updated or deleted by the app, except by pruning
(`manage.py events_prune`, see the README), by erasing a person, which
empties the payloads of their events, and by merging two leads, which gives
the merged lead's events to the lead kept (their `lead_id` changes, nothing
else; undoing the merge gives them back). Ids never change, so a reader's
cursor is not disturbed.

Also here: `RateCounter`, the database backend of the rate limits (core.ratelimit).
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class ActorKind(models.TextChoices):
    USER = "user", "User"
    SEQUENCE = "sequence", "Sequence"
    EMAIL_EVENT = "email_event", "Email event"
    FORM = "form", "Form"
    API_TOKEN = "api_token", "API token"
    IMPORT_JOB = "import_job", "Import job"
    SYSTEM = "system", "System"


class DomainEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=60)
    occurred_at = models.DateTimeField(default=now, help_text="When the change happened (a call logged late keeps its time).")
    recorded_at = models.DateTimeField(default=now, editable=False)
    # The subject: the lead it concerns (ids, not foreign keys: the log outlives what it tells of)...
    lead_id = models.BigIntegerField(null=True, blank=True)
    # ...and the row that changed, when it is not the lead itself (a deal, a task, an enrollment).
    subject_type = models.CharField(max_length=40, blank=True)
    subject_id = models.BigIntegerField(null=True, blank=True)
    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    # The source other than a user: {"sequence": 3, "step": 7}, {"email_event": 12}, {"name": "reaper"}...
    actor_ref = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["lead_id", "id"], name="core_event_lead_idx"),
            models.Index(fields=["type", "id"], name="core_event_type_idx"),
        ]
        # Reading the log goes by id (the primary key); a lead's history by (lead_id, id);
        # a reader of one kind by (type, id). Ids grow with time, so pruning old rows is
        # a delete by id range, with no index on the times.

    def __str__(self):
        return f"#{self.id} {self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class EventCursor(models.Model):
    """How far a reader of the event log has got: the id of the last event it handled."""

    name = models.CharField(max_length=100, unique=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=now)

    def __str__(self):
        return f"{self.name} at #{self.position}"


class RateCounter(models.Model):
    """Attempts counted for one key in one fixed window of a rate limit (core.ratelimit, database backend).

    `bucket` is "name:keyhash:window_start": the key only as its hash. The row
    is of no use once its window has ended (`expires_at`); `ratelimit_prune`
    deletes such rows, hourly from beat.
    """

    bucket = models.CharField(max_length=100, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="core_ratecounter_expires_idx")]

    def __str__(self):
        return f"{self.bucket}: {self.count}"
