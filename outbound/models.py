"""Outbound webhooks: the endpoints managers subscribe, one delivery per (endpoint, event), one attempt row per try.

Models stay thin: the rules are in outbound.services (endpoints, resends),
outbound.fanout (deliveries made from the event log), outbound.claim (leases)
and outbound.sending (a try and its outcome).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now


class Endpoint(models.Model):
    url = models.URLField(max_length=2000, help_text="Where events are POSTed: a public http(s) address.")
    description = models.CharField(max_length=200, blank=True)
    # Public names (outbound.event_types.PUBLIC_TYPES), e.g. ["lead.created", "stage.changed"].
    event_types = models.JSONField(default=list, blank=True)
    secret = models.CharField(max_length=100, help_text="whsec_ + base64 of 32 random bytes.")
    # After a rotation the previous secret still signs (a second signature) until it expires.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=300, blank=True)
    # The first failed try since the last success: an endpoint failing for CRM_WEBHOOKS_PAUSE_AFTER_HOURS is paused.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["id"]
        verbose_name = "webhook endpoint"

    def __str__(self):
        return self.description or self.url

    def signing_secrets(self, at) -> list[str]:
        """The secrets a message sent at `at` is signed with: the current one, and the previous one until it expires."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and at < self.previous_secret_expires_at:
            secrets.append(self.previous_secret)
        return secrets


class Delivery(models.Model):
    """One event for one endpoint. `message_id` is the `webhook-id` header: the same on every try and resend."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERING = "delivering", "Delivering"
        SUCCEEDED = "succeeded", "Succeeded"
        RETRYING = "retrying", "Failed, will retry"
        GIVEN_UP = "given_up", "Given up"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The event log's row (an id, not a foreign key: the log is pruned); none for a test event.
    event_id = models.BigIntegerField(null=True, blank=True)
    event_type = models.CharField(max_length=60, help_text="The public name.")
    message_id = models.CharField(max_length=40, unique=True)
    payload = models.JSONField(help_text="type, timestamp and data: the body sent, on every try.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Tries, resends included.")
    # Tries since the delivery was made or last resent: where it is in the retry schedule.
    round_attempts = models.PositiveIntegerField(default=0)
    # When it is due; kept while a worker holds it, so a lease that runs out makes it due again. Null when finished.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], condition=Q(event_id__isnull=False),
                                    name="outbound_delivery_once_per_event"),
        ]
        indexes = [
            # The claim: due rows only (finished ones have no next_attempt_at), oldest first.
            models.Index(fields=["next_attempt_at"], condition=Q(next_attempt_at__isnull=False),
                         name="outbound_delivery_due_idx"),
            # An endpoint's delivery log, newest first.
            models.Index(fields=["endpoint", "-id"], name="outbound_delivery_log_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} to {self.endpoint_id} ({self.message_id})"


class Attempt(models.Model):
    """One try of a delivery: what was sent, what came back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField(default=now)
    request_url = models.CharField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["delivery", "-id"], name="outbound_attempt_delivery_idx")]

    def __str__(self):
        return f"{self.delivery_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {self.response_status or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300
