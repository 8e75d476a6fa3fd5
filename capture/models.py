"""Capture: the forms through which traffic becomes leads, and what is held back as suspected spam."""

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class CaptureForm(models.Model):
    """A form a marketer defines: its fields, consent, what it delivers, and what follows a submission."""

    class OwnerRule(models.TextChoices):
        POOL = "pool", "Leave new leads in the unassigned pool"
        FIXED = "fixed", "Give them to one rep"
        ROUND_ROBIN = "round_robin", "Round robin among the active sales reps"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, help_text="In the form's address: /f/<slug>/")
    is_active = models.BooleanField(default=True)
    # [{"name": "email", "label": "Work email", "type": "email", "required": true, "maps_to": "email"}, ...]
    # maps_to: a lead field (first_name, last_name, email, phone, title, company) or "" for a custom answer.
    fields = models.JSONField(default=list)
    conversion_kind = models.ForeignKey(
        "leads.ConversionKind", on_delete=models.PROTECT, related_name="+",
        help_text="What a submission counts as: a guide download, a demo request...",
    )
    resource = models.ForeignKey(
        "leads.Resource", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="What the form delivers: its link is emailed after the submission.",
    )
    consent_text = models.TextField(blank=True, help_text="The wording of the consent box. Empty: no consent asked.")
    consent_version = models.CharField(max_length=50, blank=True, help_text="Change it whenever the wording changes.")
    consent_required = models.BooleanField(default=False, help_text="The form is refused without the box ticked.")
    thank_you_message = models.TextField(default="Thank you! We will be in touch.")
    thank_you_url = models.URLField(blank=True, help_text="Send people here after submitting, instead of the message.")
    owner_rule = models.CharField(max_length=20, choices=OwnerRule.choices, default=OwnerRule.POOL)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="With the rule 'Give them to one rep'.",
    )
    sequence = models.ForeignKey(
        "nurturing.Sequence", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Enroll new submitters in this sequence.",
    )
    allowed_sites = models.CharField(
        max_length=500, blank=True,
        help_text="Host names allowed to post this form, comma-separated (a leading dot takes subdomains). "
                  "Empty: only its hosted page.",
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def sites(self) -> list[str]:
        return [site.strip().lower() for site in self.allowed_sites.split(",") if site.strip()]


class Quarantine(models.Model):
    """A submission held back as suspected spam: never a lead until a marketer releases it, never silently dropped."""

    form = models.ForeignKey(CaptureForm, on_delete=models.CASCADE, related_name="quarantined")
    received_at = models.DateTimeField(default=now)
    reason = models.CharField(max_length=200)
    data = models.JSONField(default=dict)
    context = models.JSONField(default=dict, help_text="Page, referrer, visitor id, landing page.")
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    released_lead_id = models.BigIntegerField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "quarantine"
        indexes = [models.Index(fields=["released_at", "discarded_at", "-received_at"], name="quarantine_open")]

    def __str__(self):
        return f"{self.form}: {self.reason}"


class FollowupDone(models.Model):
    """What follows a capture, done once per event: a worker that dies mid-way does not do it twice."""

    event_id = models.BigIntegerField()
    action = models.CharField(max_length=30)
    done_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event_id", "action"], name="followup_once")]


class RoundRobin(models.Model):
    """Whose turn it is for a form's round robin."""

    form = models.OneToOneField(CaptureForm, on_delete=models.CASCADE, primary_key=True)
    last_owner_id = models.BigIntegerField(null=True, blank=True)
