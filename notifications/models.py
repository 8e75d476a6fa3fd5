from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now


class Notification(models.Model):
    """One thing a user is told once. `source` names what it came from (an event, a task due at a time, a deal's
    stall since a time): unique per (recipient, kind, source), so a re-read event or a re-run check adds nothing."""

    class Kind(models.TextChoices):
        REPLY = "reply", "Reply received"
        ASSIGNED = "assigned", "Lead assigned"
        TASK_DUE = "task_due", "Task due"
        DEAL_STALLED = "deal_stalled", "Deal stalled"
        PRICING_CLICK = "pricing_click", "Pricing link clicked"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications",
                                  db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    url = models.CharField(max_length=500)
    source = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind", "source"], name="notification_once_per_source"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_inbox"),
            # The bell's count on every page: the unread rows of one user, from a small index.
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self):
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationSettings(models.Model):
    """A user's choices: the daily email digest (off until they switch it on), and the day it last went out."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings")
    email_digest = models.BooleanField("Daily email digest", default=False)
    digest_sent_on = models.DateField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self):
        return f"Notification settings of {self.user}"
