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


class AssignmentRule(models.Model):
    """Who gets a captured lead, by where it came from: the first rule that matches wins, before the form's own rule.

    Empty conditions match anything; a rule with no form applies to every form.
    """

    form = models.ForeignKey(CaptureForm, null=True, blank=True, on_delete=models.CASCADE, related_name="rules",
                             help_text="Empty: every form.")
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried in this order, lowest first.")
    utm_source = models.CharField(max_length=200, blank=True, help_text="The visit's utm_source, e.g. google.")
    utm_campaign = models.CharField(max_length=200, blank=True)
    persona = models.ForeignKey("leads.Persona", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    country = models.CharField(max_length=100, blank=True, help_text="The lead's company's country, as written there.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        conditions = [f"{k} = {v}" for k, v in (("source", self.utm_source), ("campaign", self.utm_campaign),
                                                 ("persona", self.persona), ("country", self.country)) if v]
        return f"{' and '.join(conditions) or 'any lead'} → {self.owner}"

    def matches(self, *, utm_source: str, utm_campaign: str, persona_id, country: str) -> bool:
        return (
            (not self.utm_source or self.utm_source.lower() == (utm_source or "").lower())
            and (not self.utm_campaign or self.utm_campaign.lower() == (utm_campaign or "").lower())
            and (self.persona_id is None or self.persona_id == persona_id)
            and (not self.country or self.country.strip().lower() == (country or "").strip().lower())
        )
