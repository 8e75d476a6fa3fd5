"""Lead scoring: rules with points, the settings they run under, each lead's score with its breakdown, and
rescoring jobs.

A lead's score is computed from these rules, never typed: `Lead.score` holds the total for the lists' filters
and sorting, `LeadScore` the lines that explain it.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from leads.models import Lead, Persona, Resource, Source


class ScoringRule(models.Model):
    """Points for something a lead is (fit) or did (engagement)."""

    class Kind(models.TextChoices):
        # Fit: who the lead is.
        PERSONA = "persona", "Persona is"
        TITLE = "title", "Job title contains"
        COMPANY_SIZE = "company_size", "Company size is"
        COUNTRY = "country", "Company country is"
        SOURCE = "source", "Source is"
        # Engagement: what the lead did (a person, never a machine: proxy opens and scanner clicks never count).
        EMAIL_OPEN = "email_open", "Opened one of our emails"
        EMAIL_CLICK = "email_click", "Clicked a link in one of our emails"
        EMAIL_REPLY = "email_reply", "Replied to one of our emails"
        PAGE_VIEW = "page_view", "Viewed a page"
        DOWNLOAD = "download", "Downloaded a resource"
        FORM = "form", "Submitted a form"

    FIT_KINDS = frozenset({Kind.PERSONA, Kind.TITLE, Kind.COMPANY_SIZE, Kind.COUNTRY, Kind.SOURCE})

    kind = models.CharField(max_length=20, choices=Kind.choices)
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    resource = models.ForeignKey(
        Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="For a download: this resource (empty: any).",
    )
    value = models.CharField(
        max_length=200, blank=True,
        help_text="Title words, a company size band (11-50), a country, a page path (/pricing), a form's slug, "
                  "or words in a clicked link (empty: any link, any form).",
    )
    points = models.SmallIntegerField(validators=[MinValueValidator(-100), MaxValueValidator(100)])
    max_times = models.PositiveSmallIntegerField(
        "counted at most", default=1, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many of the lead's actions earn the points (the latest ones); fit rules count once.",
    )
    is_active = models.BooleanField("on", default=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["kind", "id"]

    def __str__(self):
        return f"{self.points:+d} {self.label}"

    @property
    def is_fit(self) -> bool:
        return self.kind in self.FIT_KINDS

    @property
    def label(self) -> str:
        """What the rule rewards, as the breakdown writes it: "persona Founder", "page /pricing"."""
        K = self.Kind
        target = {
            K.PERSONA: lambda: f"persona {self.persona}" if self.persona_id else "persona",
            K.SOURCE: lambda: f"source {self.source}" if self.source_id else "source",
            K.TITLE: lambda: f"title “{self.value}”",
            K.COMPANY_SIZE: lambda: f"company size {self.value}",
            K.COUNTRY: lambda: f"country {self.value}",
            K.EMAIL_OPEN: lambda: "email opened",
            K.EMAIL_CLICK: lambda: f"email link “{self.value}” clicked" if self.value else "email link clicked",
            K.EMAIL_REPLY: lambda: "email replied",
            K.PAGE_VIEW: lambda: f"page {self.value}",
            K.DOWNLOAD: lambda: f"download {self.resource}" if self.resource_id else "download",
            K.FORM: lambda: f"form {self.value}" if self.value else "form submitted",
        }
        return target[self.kind]()


class ScoringSettings(models.Model):
    """The one row of settings scoring runs under (`ScoringSettings.current()`)."""

    half_life_days = models.PositiveSmallIntegerField(
        "engagement half-life (days)", default=30, validators=[MaxValueValidator(3650)],
        help_text="An action's points halve after this many days. 0: engagement never decays.",
    )
    mql_threshold = models.PositiveSmallIntegerField(
        "MQL at", default=50, validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="A lead whose score rises to this moves to MQL (from New, Contacted or Nurturing).",
    )
    sql_threshold = models.PositiveSmallIntegerField(
        "SQL at", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Optional: a lead whose score rises to this moves to SQL. Empty: reps decide SQL.",
    )
    creates_task = models.BooleanField(
        "task for the owner", default=True,
        help_text="When scoring moves a lead, its owner gets a task to follow up.",
    )
    updated_at = models.DateTimeField(default=now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name = verbose_name_plural = "scoring"

    def __str__(self):
        return "Scoring settings"

    @classmethod
    def current(cls) -> "ScoringSettings":
        return cls.objects.order_by("pk").first() or cls()


class LeadScore(models.Model):
    """A lead's score as last computed, with the lines that make it up."""

    lead = models.OneToOneField(Lead, primary_key=True, on_delete=models.CASCADE, related_name="score_detail")
    total = models.IntegerField(default=0)
    fit = models.IntegerField(default=0)
    engagement = models.IntegerField(default=0, help_text="After decay.")
    # [{"label": "persona Founder", "points": 20, "times": 1}, ..., {"label": "decay", "points": -10}]
    lines = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The nightly decay pass reads only leads with engagement points left.
            models.Index(fields=["lead"], name="leadscore_decaying", condition=~models.Q(engagement=0)),
        ]

    def __str__(self):
        return f"{self.total} for lead {self.lead_id}"


class RescoreJob(models.Model):
    """Rescoring every lead after a change to the rules, in the background, with its progress."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        SUPERSEDED = "superseded", "Superseded by a later change"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    reason = models.CharField(max_length=200, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Leads to rescore (when the job started).")
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0, help_text="Leads whose score changed.")
    moved = models.PositiveIntegerField(default=0, help_text="Leads moved to MQL or SQL by crossing a threshold.")
    last_lead_id = models.BigIntegerField(default=0, help_text="Leads up to this id are rescored.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"Rescoring #{self.pk} ({self.get_status_display().lower()})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))
