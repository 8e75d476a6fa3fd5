"""The lead domain: who the leads are, where they came from, what happened with them.

Models stay thin: every write that has rules (a stage move, a conversion, an
activity that touches the lead) goes through `leads.services`.
"""

import functools
import zoneinfo
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.timezone import now

from core.attribution import UtmFields
from core.people import person_name

from .money import money_format
from .pipeline import LeadStatus


@functools.cache
def known_timezones() -> frozenset[str]:
    # Reading the zone database from disk takes ~10 ms: do it once.
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value):
    if value and value not in known_timezones():
        raise ValidationError(
            "%(value)s is not a known time zone. Use an IANA name such as Europe/Paris or America/New_York.",
            params={"value": value},
        )


def validate_linkedin_url(value):
    _validate_profile_url(value, "LinkedIn", ("linkedin.com",))


def validate_x_url(value):
    _validate_profile_url(value, "X", ("x.com", "twitter.com"))


def _validate_profile_url(value, network: str, hosts: tuple[str, ...]):
    """A social profile's address on its network, over http(s): a link people click from the lead page."""
    if not value:
        return
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not any(host == h or host.endswith("." + h) for h in hosts):
        raise ValidationError(
            "Give the %(network)s profile's address, e.g. https://%(example)s/…", code="profile_url",
            params={"network": network, "example": ("www." if hosts[0] == "linkedin.com" else "") + hosts[0]},
        )


def validate_currency(value):
    if not (len(value) == 3 and value.isalpha() and value.isupper()):
        raise ValidationError("Use a three-letter ISO 4217 currency code in capitals, such as EUR or USD.")


class Company(models.Model):
    """An account: the organisation a lead works for."""

    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=200, blank=True, help_text="Web domain, e.g. example.com")
    industry = models.CharField(max_length=100, blank=True)
    size = models.CharField(max_length=50, blank=True, help_text="Headcount band, e.g. 11-50")
    country = models.CharField(max_length=100, blank=True)
    linkedin_url = models.URLField("LinkedIn page", max_length=300, blank=True, validators=[validate_linkedin_url])
    x_url = models.URLField("X profile", max_length=300, blank=True, validators=[validate_x_url])
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        indexes = [models.Index(Lower("name"), name="company_name_lower")]

    def __str__(self):
        return self.name


class Source(models.Model):
    """Where traffic and leads come from; `slug` is the utm_source value."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True, help_text="The utm_source value, e.g. google")
    medium = models.CharField(max_length=50, blank=True, help_text="Default utm_medium, e.g. cpc, email, organic")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Persona(models.Model):
    """A described target audience, used to tell relevant leads from the rest."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    role = models.CharField(max_length=100, blank=True, help_text="Job role or function, e.g. Head of Sales")
    interests = models.TextField(blank=True)
    demographics = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Campaign(models.Model):
    """A marketing campaign; `slug` is the utm_campaign value. Spend is recorded per period."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, help_text="The utm_campaign value")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns")
    medium = models.CharField(max_length=50, blank=True)
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns")
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(starts_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
                violation_error_message="The campaign cannot end before it starts.",
            ),
            # utm_campaign values are matched in any case: two requests racing past the service's check cannot
            # make "Spring" and "spring".
            models.UniqueConstraint(Lower("slug"), name="campaign_slug_unique_any_case",
                                    violation_error_message="Another campaign already has this slug (in any case)."),
        ]

    def __str__(self):
        return self.name


class CampaignSpend(models.Model):
    """What a campaign cost over a period: the numerator of cost per lead."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="spends")
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="EUR", validators=[validate_currency])

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="spend_period_ends_after_start",
                violation_error_message="The period cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0),
                name="spend_amount_not_negative",
                violation_error_message="Spend cannot be negative.",
            ),
        ]

    def __str__(self):
        return f"{self.campaign}: {money_format(self.amount, self.currency)} ({self.period_start} – {self.period_end})"


LIVE = Q(archived_at__isnull=True)


class LeadQuerySet(models.QuerySet):
    def live(self):
        return self.filter(LIVE)


class Lead(models.Model):
    """A person who showed interest and can be contacted again."""

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    # Stored lower-cased (see core.emails.normalize_email); unique among live leads.
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    title = models.CharField("job title", max_length=150, blank=True)
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")
    linkedin_url = models.URLField("LinkedIn profile", max_length=300, blank=True, validators=[validate_linkedin_url])
    x_url = models.URLField("X profile", max_length=300, blank=True, validators=[validate_x_url])

    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.PROTECT, related_name="leads", db_index=False)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="leads", db_index=False)
    utm_medium = models.CharField(max_length=50, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads", db_index=False)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        db_index=False,
        help_text="The sales rep who works this lead. Empty: in the unassigned pool.",
    )
    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text="IANA time zone, e.g. Europe/Paris. Empty: the account's time zone.",
    )

    consent_given_at = models.DateTimeField(null=True, blank=True)
    consent_text = models.TextField(blank=True, help_text="The exact wording the lead agreed to.")
    consent_source = models.CharField(max_length=200, blank=True, help_text="Where consent was given: form, URL, event")

    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW, editable=False)
    stage_entered_at = models.DateTimeField(default=now, editable=False)
    lost_reason = models.CharField(max_length=300, blank=True, editable=False)
    # Computed by the scoring rules (the scoring app keeps its breakdown), never typed.
    score = models.IntegerField(default=0, editable=False, help_text="Fit and engagement score, from the scoring rules.")
    # When the lead first reached each qualified stage (entering it or a later one): a copy of its stage
    # history for the reports, kept by the services that write the history (leads.reach).
    reached_mql_at = models.DateTimeField(null=True, blank=True, editable=False)
    reached_sql_at = models.DateTimeField(null=True, blank=True, editable=False)
    reached_opportunity_at = models.DateTimeField(null=True, blank=True, editable=False)
    reached_customer_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    last_touch_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last call, meeting or email with the lead."
    )
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set when the person was erased (nurturing.privacy.person_erase): the row
    # stays, anonymised, so funnel and revenue figures still add up.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False,
        db_index=False,
    )
    # The id of the record this lead was imported from in another system (a historical import's opportunity
    # id): unique, so importing the same file again finds it. Such a lead stands for history; it may have
    # no email or phone (the check below), as deal exports rarely carry a contact.
    external_ref = models.CharField(max_length=100, blank=True, editable=False)
    # Lower-cased "first last email phone company" for fast substring search
    # (a trigram index on PostgreSQL); kept up to date by the services.
    search_text = models.TextField(blank=True, editable=False)
    # Labels marketers and reps put on leads, only through leads.tags (so not editable): each added by someone, at a time.
    tags = models.ManyToManyField("Tag", through="LeadTag", related_name="leads", blank=True, editable=False)

    objects = LeadQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_lead", "Can export leads' personal data")]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=Q(archived_at__isnull=True) & ~Q(email=""),
                name="lead_email_unique_among_live",
                violation_error_message="Another lead already has this email address.",
            ),
            models.UniqueConstraint(
                fields=["external_ref"], condition=~Q(external_ref=""), name="lead_external_ref_unique",
                violation_error_message="Another lead was already imported from this record.",
            ),
            models.CheckConstraint(
                # An erased person's row keeps neither; a lead imported from history may have neither.
                condition=~Q(email="") | ~Q(phone="") | Q(erased_at__isnull=False) | ~Q(external_ref=""),
                name="lead_has_email_or_phone",
                violation_error_message="Give an email address or a phone number, so the lead can be contacted.",
            ),
        ]
        # One index per admin filter and ordering, each ending in the default
        # ordering so a filtered, sorted page reads the index in order. Pages
        # show live leads, so the filter indexes hold only those: counting the
        # SQL stage at a million leads reads the index alone (~5 ms, not ~90).
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="lead_created"),
            models.Index(fields=["status", "-created_at", "-id"], name="lead_live_status", condition=LIVE),
            models.Index(fields=["owner", "-created_at", "-id"], name="lead_live_owner", condition=LIVE),
            models.Index(fields=["owner", "status", "-created_at", "-id"], name="lead_live_owner_status", condition=LIVE),
            models.Index(fields=["source", "-created_at", "-id"], name="lead_live_source", condition=LIVE),
            models.Index(fields=["campaign", "-created_at", "-id"], name="lead_live_campaign", condition=LIVE),
            models.Index(fields=["persona", "-created_at", "-id"], name="lead_live_persona", condition=LIVE),
            # The global search's lead count per company, within what a user may see (read from the index alone).
            models.Index(fields=["company", "owner"], name="lead_live_company_owner", condition=LIVE),
            models.Index(fields=["-last_touch_at", "-id"], name="lead_last_touch"),
            models.Index(fields=["-score", "-id"], name="lead_score"),
            # The reps' Leads list sorted by name (either way).
            models.Index(fields=["last_name", "first_name", "id"], name="lead_name"),
            # What a sync client asks for: leads changed since its last read (the API's updated_since).
            models.Index(fields=["updated_at", "id"], name="lead_updated"),
            # The open pipeline now by stage and owner (the reports' pipeline, stuck and cold leads): every live
            # lead is counted, so the index carries what they filter on and a count reads it alone.
            models.Index(fields=["status", "owner"], include=["id", "stage_entered_at", "last_touch_at", "created_at"],
                         condition=LIVE, name="lead_live_report"),
            # The pipeline board's columns: a stage's cards, longest in the stage first, keyset-paged.
            models.Index(fields=["status", "stage_entered_at", "id"], condition=LIVE, name="lead_live_board"),
        ]

    def __str__(self):
        return self.full_name or self.email or self.phone

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_open(self):
        from .pipeline import OPEN_STATUSES

        return self.status in OPEN_STATUSES

    def build_search_text(self):
        company = self.company.name if self.company_id else ""
        parts = (self.first_name, self.last_name, self.email, self.phone, company)
        return " ".join(p for p in parts if p).lower()


class StageChange(models.Model):
    """One move of a lead through the pipeline: the history that stage metrics are computed from."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes", db_index=False)
    from_status = models.CharField(max_length=20, choices=LeadStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=LeadStatus.choices)
    changed_at = models.DateTimeField(default=now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who or what moved it when no person did, as shown: "sequence Welcome step 2", "import".
    actor = models.CharField(max_length=200, blank=True)
    # The sequence and step that moved it, by id (reports group by these, never by the text above,
    # so renaming a sequence keeps its report). Ids, not foreign keys: the lead app stands below nurturing.
    source_sequence_id = models.BigIntegerField(null=True, blank=True)
    source_step_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    time_in_from_stage = models.DurationField(null=True, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-changed_at"], name="stagechange_lead"),
            models.Index(fields=["to_status", "changed_at"], name="stagechange_to_status"),
            # The reports: how far each lead got and when it first got there, read from this index alone.
            models.Index(fields=["lead", "to_status", "changed_at"], name="stagechange_lead_reached"),
            # The reports' time in stage: a range's stays that ended, per stage, with their length.
            models.Index(
                fields=["from_status", "changed_at"], include=["time_in_from_stage", "lead"], name="stagechange_stays",
                condition=models.Q(time_in_from_stage__isnull=False),
            ),
            models.Index(
                fields=["source_sequence_id", "source_step_id"], name="stagechange_source",
                condition=models.Q(source_sequence_id__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.get_from_status_display() or '—'} → {self.get_to_status_display()}"

    @property
    def changed_by_label(self):
        if self.changed_by_id:
            return person_name(self.changed_by)
        return self.actor or "system"


class Activity(models.Model):
    """Something that happened with a lead: a call, a note or a meeting."""

    class Kind(models.TextChoices):
        CALL = "call", "Call"
        NOTE = "note", "Note"
        MEETING = "meeting", "Meeting"
        SOCIAL = "social", "Social touch"

    class Channel(models.TextChoices):
        LINKEDIN = "linkedin", "LinkedIn"
        X = "x", "X"
        FACEBOOK = "facebook", "Facebook"
        INSTAGRAM = "instagram", "Instagram"
        OTHER = "other", "Other network"

    class SocialAction(models.TextChoices):
        MESSAGE_SENT = "message_sent", "Message sent"
        MESSAGE_RECEIVED = "message_received", "Message received"
        COMMENT = "comment", "Comment"
        CONNECTION_SENT = "connection_sent", "Connection request sent"
        CONNECTION_ACCEPTED = "connection_accepted", "Connection accepted"
        ENGAGED = "engaged", "Liked or shared a post"

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "Outbound"
        INBOUND = "inbound", "Inbound"

    class CallOutcome(models.TextChoices):
        CONNECTED = "connected", "Connected"
        LEFT_VOICEMAIL = "voicemail", "Left voicemail"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        WRONG_NUMBER = "wrong_number", "Wrong number"

    # Kinds that count as touching the lead (notes are internal).
    TOUCHES = frozenset({Kind.CALL, Kind.MEETING, Kind.SOCIAL})

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    occurred_at = models.DateTimeField(default=now)
    body = models.TextField(blank=True, help_text="Notes")
    direction = models.CharField(max_length=10, choices=Direction.choices, blank=True)
    outcome = models.CharField(max_length=20, choices=CallOutcome.choices, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    channel = models.CharField(max_length=12, choices=Channel.choices, blank=True, help_text="Social touches: where.")
    social_action = models.CharField(max_length=24, choices=SocialAction.choices, blank=True,
                                     help_text="Social touches: what happened.")
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="activity_lead"),
            # A rep's numbers: their calls over a period.
            models.Index(fields=["author", "kind", "occurred_at"], name="activity_author_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="call") | (~Q(direction="") & ~Q(outcome="")),
                name="call_has_direction_and_outcome",
                violation_error_message="A call needs a direction and an outcome.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="social") | (~Q(channel="") & ~Q(social_action="")),
                name="social_touch_has_channel_and_action",
                violation_error_message="A social touch needs its network and what happened.",
            )
        ]

    def __str__(self):
        if self.kind == self.Kind.CALL:
            return f"{self.get_direction_display()} call: {self.get_outcome_display()}"
        return self.get_kind_display()


class Objection(models.Model):
    """A reason the lead gave for not buying (yet), and how the rep answered it."""

    class Category(models.TextChoices):
        PRICE = "price", "Price"
        TIMING = "timing", "Timing"
        AUTHORITY = "authority", "Authority"
        NEED = "need", "Need"
        COMPETITOR = "competitor", "Competitor"
        TRUST = "trust", "Trust"
        OTHER = "other", "Other"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="objections", db_index=False)
    activity = models.ForeignKey(
        Activity,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="objections",
        help_text="The call or meeting where it was raised.",
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    stage = models.CharField(
        "stage when raised", max_length=20, choices=LeadStatus.choices, blank=True, default="", editable=False,
        help_text="The stage the lead's history says it was in when it raised this (blank: no history before it).",
    )
    lead_words = models.TextField("the lead's words")
    response = models.TextField("our answer", blank=True)
    is_resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="objection_lead"),
            models.Index(fields=["category", "is_resolved"], name="objection_category"),
        ]

    def __str__(self):
        return f"{self.get_category_display()} objection"


class Task(models.Model):
    """A follow-up someone has to do by a given time."""

    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crm_tasks", db_index=False)
    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    due_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["assignee", "completed_at", "due_at"], name="task_assignee_due"),
            models.Index(fields=["lead", "due_at"], name="task_lead"),
            # Open tasks coming due, of everyone (the notifications' check, every minute).
            models.Index(fields=["due_at"], condition=Q(completed_at__isnull=True), name="task_open_due"),
        ]

    def __str__(self):
        return self.title

    @property
    def is_done(self):
        return self.completed_at is not None

    @property
    def is_overdue(self):
        return not self.is_done and self.due_at < now()


class Customer(models.Model):
    """Someone who said yes: a company, or a person when there is no company."""

    name = models.CharField(max_length=200)
    company = models.OneToOneField(
        Company, null=True, blank=True, on_delete=models.PROTECT, related_name="customer"
    )
    # The lead who became the customer, for person customers and as the first contact.
    primary_lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    became_customer_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-became_customer_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["primary_lead"],
                condition=Q(company__isnull=True),
                name="one_person_customer_per_lead",
            )
        ]

    def __str__(self):
        return self.name


class DealStage(models.Model):
    """A step an open deal goes through (qualification, proposal, negotiation, ...), set by managers, with the
    chance a deal in it is won: the forecast weighs each open deal's value by it."""

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Stages run in this order (lowest first).")
    probability = models.PositiveSmallIntegerField(
        "win probability (%)", validators=[MaxValueValidator(100)],
        help_text="The chance, in percent, that a deal in this stage is won.")
    is_active = models.BooleanField("in use", default=True, help_text="Switched off: no deal moves into it.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.name} ({self.probability} %)"


class Deal(models.Model):
    """A concrete potential sale (an opportunity), open until won or lost; while open it goes through the deal
    stages (`DealStage`), each move kept (`DealStageChange`)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="deals", db_index=False)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="deals")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_deals"
    )
    product = models.CharField(max_length=200, blank=True)
    value = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, validators=[validate_currency])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=now)
    expected_close_on = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    lost_reason = models.CharField(max_length=300, blank=True)
    stage = models.ForeignKey(DealStage, null=True, blank=True, on_delete=models.PROTECT, related_name="deals",
                              editable=False, help_text="Changed through the deal stage service, with history.")
    stage_entered_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_step = models.CharField(max_length=300, blank=True, help_text="What happens next, e.g. send the proposal.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-closed_at"], name="deal_status_closed"),
            models.Index(fields=["lead", "status"], name="deal_lead_status"),
            # A lead's latest deal (its product, in the objections report) read from the index alone.
            models.Index(fields=["lead", "-created_at", "-id"], include=["product"], name="deal_lead_latest"),
            # The pipeline board's deal columns: a stage's open deals, longest in the stage first, keyset-paged.
            models.Index(fields=["stage", "stage_entered_at", "id"], condition=Q(status="open"), name="deal_open_board"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(value__gte=0),
                name="deal_value_not_negative",
                violation_error_message="A deal's value cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True) | (~Q(status="open") & Q(closed_at__isnull=False)),
                name="deal_closed_at_matches_status",
                violation_error_message="A won or lost deal needs a close date; an open one has none.",
            ),
        ]

    def __str__(self):
        what = self.product or "Deal"
        return f"{what}: {money_format(self.value, self.currency)} ({self.get_status_display()})"

    @property
    def time_to_close(self):
        if self.status == self.Status.WON and self.closed_at:
            return self.closed_at - self.created_at
        return None


class DealStageChange(models.Model):
    """One move of an open deal from a stage to another (from none: when it was opened)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(DealStage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_stage = models.ForeignKey(DealStage, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    time_in_from_stage = models.DurationField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["deal", "-changed_at"], name="dealstagechange_deal")]

    def __str__(self):
        return f"{self.from_stage or 'opened'} → {self.to_stage}"


class Resource(models.Model):
    """Something a lead can download, read or sign up for: a guide, a webinar, a case study, a demo."""

    class Kind(models.TextChoices):
        GUIDE = "guide", "Guide or e-book"
        WEBINAR = "webinar", "Webinar"
        TEMPLATE = "template", "Template"
        CASE_STUDY = "case_study", "Case study"
        TESTIMONIAL = "testimonial", "Testimonial or review"
        DEMO = "demo", "Demo request"
        TRIAL = "trial", "Trial"
        OTHER = "other", "Other"

    class Funnel(models.TextChoices):
        TOFU = "tofu", "Top of the funnel (awareness)"
        MOFU = "mofu", "Middle of the funnel (consideration)"
        BOFU = "bofu", "Bottom of the funnel (decision)"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GUIDE)
    url = models.URLField(blank=True, help_text="Where it lives, for links in emails.")
    funnel = models.CharField(max_length=4, choices=Funnel.choices, blank=True)
    topic = models.CharField(max_length=100, blank=True, help_text="What it is about, e.g. forecasting: sequences pick by it.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Touch(UtmFields):
    """Where a visit came from: the UTM parameters, click id, landing page and referrer of its landing page.

    Abstract: a lead's first and last touch (LeadTouch) and each form submission carry one.
    """

    click_id_type = models.CharField(max_length=20, blank=True)
    landing_page = models.CharField(max_length=1000, blank=True)
    referrer = models.CharField(max_length=1000, blank=True)
    touched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    TOUCH_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_id_type",
                    "landing_page", "referrer", "touched_at")


class LeadTouch(Touch):
    """A lead's first touch (the visit that first brought them) and last touch (the visit before the latest capture)."""

    class Kind(models.TextChoices):
        FIRST = "first", "First touch"
        LAST = "last", "Last touch"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="touches")
    kind = models.CharField(max_length=5, choices=Kind.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "kind"], name="leadtouch_one_of_each")]
        indexes = [models.Index(fields=["kind", "utm_source", "utm_medium", "utm_campaign"], name="leadtouch_source")]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.lead_id}: {self.utm_source or self.referrer or 'direct'}"


class FormSubmission(Touch):
    """A form the lead sent: a download, a sign-up, a demo request; with the visit it came from and the consent given."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="submissions", db_index=False)
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.PROTECT, related_name="submissions")
    form_name = models.CharField(max_length=200)
    form_slug = models.SlugField(max_length=100, blank=True)
    page_url = models.URLField(blank=True, max_length=1000)
    submitted_at = models.DateTimeField(default=now)
    data = models.JSONField(default=dict, blank=True, help_text="The fields as submitted.")
    visitor_id = models.CharField(max_length=40, blank=True)
    consent_text = models.TextField(blank=True, help_text="The wording the person agreed to, as shown.")
    consent_version = models.CharField(max_length=50, blank=True)
    consent_given = models.BooleanField(default=False)
    # The capture that made it (a queued capture written twice is one submission).
    capture_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-submitted_at"], name="submission_lead"),
            # The API's list, newest first by (time, id), whole or by form.
            models.Index(fields=["-submitted_at", "-id"], name="submission_submitted"),
            models.Index(fields=["form_slug", "-submitted_at", "-id"], name="submission_form"),
        ]

    def __str__(self):
        return f"{self.form_name} by {self.lead}"


class ConversionKind(models.Model):
    """A kind of conversion: micro (a guide downloaded, a newsletter or webinar signup, a demo or trial request) or
    macro (a paid signup; a won deal is the macro conversion every report knows). Marketers add kinds."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    is_macro = models.BooleanField(default=False, help_text="A customer's purchase, not a step towards it.")

    class Meta:
        ordering = ["is_macro", "name"]

    def __str__(self):
        return self.name


class Conversion(models.Model):
    """A conversion on a lead, or on an anonymous visitor who may become one (then `lead` is set when linked)."""

    kind = models.ForeignKey(ConversionKind, on_delete=models.PROTECT, related_name="conversions")
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="conversions")
    visitor_id = models.CharField(max_length=40, blank=True)
    occurred_at = models.DateTimeField(default=now)
    submission = models.ForeignKey(
        FormSubmission, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversions"
    )
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversions")
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="conversion_lead"),
            models.Index(fields=["-occurred_at", "-id"], name="conversion_occurred"),  # the API's list, newest first
            models.Index(fields=["kind", "occurred_at"], name="conversion_kind"),
            models.Index(fields=["visitor_id"], name="conversion_visitor", condition=Q(lead__isnull=True)),
        ]

    def __str__(self):
        return f"{self.kind} ({self.occurred_at:%Y-%m-%d})"


class LeadExport(models.Model):
    """One export of leads' personal data out of the CRM: who, when, what, how many rows, which leads."""

    class Kind(models.TextChoices):
        LEAD_LIST = "lead_list", "Lead list"
        DEAL_LIST = "deal_list", "Deal list"
        EVENT_LIST = "event_list", "Event log"
        PERSON = "person", "Everything about one person (JSON)"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LEAD_LIST)
    file_format = models.CharField("format", max_length=4, blank=True, help_text="csv or xlsx; blank for one person's data.")
    # PROTECT: the record of who took data out outlives nobody's account (deactivate users instead).
    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    exported_at = models.DateTimeField(default=now)
    row_count = models.PositiveIntegerField(help_text="Rows in the export when it started.")
    filters = models.TextField(blank=True, help_text="The list's filters and search, as in its address.")
    lead_ids = models.JSONField(
        default=list, blank=True,
        help_text="The leads of the rows ticked one by one; empty when every row matching the filters was exported.",
    )

    class Meta:
        ordering = ["-exported_at", "-id"]
        indexes = [models.Index(fields=["-exported_at", "-id"], name="leadexport_exported")]

    def __str__(self):
        return f"{self.row_count} row(s) of {self.get_kind_display()} by {self.exported_by} at {self.exported_at:%Y-%m-%d %H:%M}"


class LeadMerge(models.Model):
    """Two lead rows of one person made one: what moved from the merged lead to the kept one, so it can be undone.

    Written by `leads.services.lead_merge` and marked undone by
    `leads.services.lead_merge_undo`; read only everywhere else. It holds ids
    and field names, never a person's details: `filled` keeps what the kept
    lead had before (a blank, as a rule), not what it was given.
    """

    keep = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="merges_kept", help_text="The lead kept.")
    merged = models.ForeignKey(
        Lead, on_delete=models.PROTECT, related_name="merges_into_another",
        help_text="The lead merged into it: archived while the merge stands.",
    )
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Empty: the system (a dedupe job).",
    )
    merged_at = models.DateTimeField(default=now)
    moved = models.JSONField(
        default=dict, blank=True,
        help_text="The rows that moved to the kept lead, by table: {\"leads.activity\": [ids], ...}. A label with a "
                  "suffix lists rows changed in place: .assignee (open tasks given to the kept lead's owner), "
                  ".ended (the merged lead's enrollments ended because the kept lead was in the same sequence), "
                  ".open (moved deals that were open).",
    )
    filled = models.JSONField(
        default=dict, blank=True,
        help_text="The kept lead's blank fields given the merged lead's values: {field: the kept lead's value before}.",
    )
    events_moved = models.JSONField(default=list, blank=True, help_text="The ids of the merged lead's events, now the kept lead's.")
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )

    class Meta:
        ordering = ["-merged_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(keep=models.F("merged")), name="leadmerge_two_leads",
                violation_error_message="A lead cannot be merged into itself.",
            ),
            # A lead is merged into at most one other at a time (until that merge is undone).
            models.UniqueConstraint(
                fields=["merged"], condition=Q(undone_at__isnull=True), name="leadmerge_one_standing_per_merged_lead",
                violation_error_message="This lead is already merged into another.",
            ),
        ]

    def __str__(self):
        state = " (undone)" if self.undone_at else ""
        return f"Lead #{self.merged_id} merged into #{self.keep_id}{state}"

    @property
    def is_undone(self):
        return self.undone_at is not None


class Tag(models.Model):
    """A label put on leads ("webinar-2026", "VIP"), matched in any case and spacing: `key` is the name
    lower-cased with its spaces collapsed (leads.tags.tag_key), unique, so "VIP" and " vip " are one tag."""

    name = models.CharField(max_length=50, help_text="As first written, spaces collapsed.")
    key = models.CharField(max_length=50, unique=True, editable=False)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.name


class LeadTag(models.Model):
    """A tag on a lead: who put it there and when (the event log says so too: lead.tagged)."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="lead_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="lead_tags")
    added_at = models.DateTimeField(default=now)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")

    class Meta:
        ordering = ["tag__key"]
        constraints = [models.UniqueConstraint(fields=["lead", "tag"], name="leadtag_once_per_lead")]
        # The admin's and the audiences' filter by tag: the leads of a tag.
        indexes = [models.Index(fields=["tag", "lead"], name="leadtag_tag_lead")]

    def __str__(self):
        return f"{self.tag} on lead #{self.lead_id}"
