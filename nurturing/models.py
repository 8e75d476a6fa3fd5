"""Sequences of follow-ups, the leads enrolled in them, and every delivery.

Scheduled work lives here, in the database: a Delivery row with a `due_at`
is a promise to send one step to one lead. Beat only ticks; the dispatcher
claims due rows and workers send them (see nurturing.dispatch).

Editing a sequence that has leads in it, exactly:
- a step's subject, bodies and send window apply to every delivery not yet
  sent (emails are rendered when they are sent), so a typo fixed today is
  fixed for tomorrow's sends;
- a step's delay applies to deliveries scheduled after the edit; those
  already scheduled keep their time;
- a step is never deleted once it has deliveries (the database refuses);
  it is switched off instead (`is_active=False`): a due delivery of a
  switched-off step is skipped with that reason and the lead goes on to the
  next active step;
- a step added after a lead's current one is picked up by that lead; a step
  added before it is not (the lead has passed that point).
"""

from datetime import time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from core.emails import normalize_email
from leads.models import Lead, Objection, Persona
from leads.pipeline import LeadStatus

from .address_hash import email_hash, email_hashes

WEEKDAYS = "0123456"  # Monday = 0, as datetime.weekday()


def validate_weekdays(value):
    if not value or any(c not in WEEKDAYS for c in value) or len(set(value)) != len(value):
        raise ValidationError("List the days to send on as digits, Monday = 0 … Sunday = 6, e.g. 01234 for weekdays.")


class Sequence(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=200)
    goal = models.TextField(blank=True, help_text="What the sequence should achieve, e.g. turn guide downloaders into demo requests.")
    target_persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="sequences")
    goal_stage = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in (LeadStatus.NURTURING, LeadStatus.MQL, LeadStatus.SQL, LeadStatus.OPPORTUNITY)],
        default=LeadStatus.SQL,
        help_text="The sequence stops for a lead who reaches this stage (or goes past it).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who the emails come from. Empty: each lead's owner (their rep), with replies going to that rep. "
                  "You can choose yourself; choosing someone else needs the permission to send as others (managers have it).",
    )
    daily_cap_per_sender = models.PositiveIntegerField(
        default=200,
        validators=[MinValueValidator(1)],
        help_text="At most this many emails of this sequence per sender per day; the rest wait for the next day.",
    )
    pause_company_on_reply = models.BooleanField(
        default=False,
        help_text="When a lead replies, also pause this sequence for the other leads of the same company.",
    )

    class InOtherSequence(models.TextChoices):
        ALLOW = "allow", "Enroll it too (it gets both sequences' emails)"
        SKIP = "skip", "Skip it"
        REPLACE = "replace", "End its other sequences and enroll it here"

    in_other_sequence = models.CharField(
        "a lead already in another sequence", max_length=10, choices=InOtherSequence.choices,
        default=InOtherSequence.ALLOW,
        help_text="What enrolling does with a lead that is active or paused in another sequence.",
    )
    requires_consent = models.BooleanField(
        "only leads with recorded consent", default=False,
        help_text="Enroll only leads whose consent to be emailed is recorded (when, how and the wording they agreed to).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("send_as_others", "Can make another user the sender of a sequence")]

    def __str__(self):
        return self.name


class Step(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        CALL_TASK = "call_task", "Call task for the owner"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(help_text="Steps run in this order.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EMAIL)
    delay = models.DurationField(
        default=timedelta(days=2),
        help_text="Wait after the previous step (after enrolling, for the first step). Format: 'days hh:mm:ss', e.g. '3 00:00:00'.",
    )
    send_days = models.CharField(max_length=7, default="01234", validators=[validate_weekdays], help_text="Monday = 0 … Sunday = 6.")
    window_start = models.TimeField(default=time(9, 0), help_text="Earliest send time, in the lead's time zone.")
    window_end = models.TimeField(default=time(17, 0), help_text="Latest send time, in the lead's time zone.")
    subject_template = models.CharField(max_length=300, blank=True)
    text_template = models.TextField(blank=True, help_text="Plain-text body (Django template language).")
    html_template = models.TextField(blank=True, help_text="Optional HTML body.")
    stage_action = models.CharField(
        max_length=20,
        choices=LeadStatus.choices,
        blank=True,
        help_text="When this step is sent, move the lead to this stage (if the pipeline allows it).",
    )
    is_active = models.BooleanField(default=True, help_text="Switched off: due deliveries are skipped, leads go on to the next step.")

    class Condition(models.TextChoices):
        ALWAYS = "always", "Always"
        NO_REPLY = "no_reply", "Only if no earlier email of this sequence got a reply"
        HUMAN_CLICK = "human_click", "Only if an earlier email of this sequence got a click (by a person)"
        DOWNLOADED = "downloaded", "Only if the lead downloaded the resource below"

    condition = models.CharField(
        max_length=20, choices=Condition.choices, default=Condition.ALWAYS,
        help_text="Checked when the step is due; when it is not met the step is skipped (and logged), the lead goes on.",
    )
    condition_resource = models.ForeignKey(
        "leads.Resource", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For “downloaded”: the guide, webinar or other resource.",
    )
    click_link_contains = models.CharField(
        max_length=200, blank=True,
        help_text="A person's click on a link of this email containing this text (e.g. /pricing) triggers the actions below.",
    )
    click_stage_action = models.CharField(
        max_length=20, choices=LeadStatus.choices, blank=True,
        help_text="On such a click, move the lead to this stage (if the pipeline allows it).",
    )
    click_creates_call_task = models.BooleanField(default=False, help_text="On such a click, create a call task for the owner rep.")
    winner = models.ForeignKey(
        "StepVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The variant of the A/B test a marketer picked: every lead that reaches the step from then on gets it.",
    )

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "position"], name="step_position_unique"),
            models.CheckConstraint(condition=Q(window_start__lt=models.F("window_end")), name="step_window_starts_before_end",
                                   violation_error_message="The send window must start before it ends."),
        ]

    def __str__(self):
        return f"{self.sequence} — step {self.position}"


class StepVariant(models.Model):
    """One version of a step's email in an A/B test; leads reaching the step are split between the active variants.

    A step without variants is no test: it sends its own templates, as always. The first variant added to a step
    makes the test: the step's own email becomes variant A, the control (a row whose templates stay blank, so
    editing the step edits A), and the new one is B (then C, D…). A variant's blank subject is the step's; its
    bodies replace the step's together, or, both blank, are the step's (nurturing.rendering.step_content).
    Each lead's variant is drawn at random once, weighted, and recorded (`VariantAssignment`); once a marketer
    picks the winner (`Step.winner`), every lead that reaches the step after that gets the winner.
    """

    CONTROL = "A"

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=10, editable=False, help_text="A is the step's own email, the control.")
    subject_template = models.CharField(max_length=300, blank=True, help_text="Blank: the step's subject.")
    text_template = models.TextField(
        blank=True, help_text="Plain-text body. With both bodies blank the step's go; with either given, the step's "
                              "bodies are left out (no HTML here: the email has none).")
    html_template = models.TextField(blank=True, help_text="Optional HTML body, sent with this variant's plain text.")
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="Its share of the leads, against the other active variants' weights: 1 and 1 split half and half, "
                  "4 and 1 split 80/20.",
    )
    is_active = models.BooleanField("on", default=True, help_text="Switched off: no new lead gets it.")
    created_at = models.DateTimeField(default=now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["step", "label"]
        constraints = [models.UniqueConstraint(fields=["step", "label"], name="stepvariant_label_unique")]

    def __str__(self):
        return f"{self.step} — variant {self.label}"

    @property
    def is_control(self) -> bool:
        return self.label == self.CONTROL


class VariantAssignment(models.Model):
    """Which variant of a step's test a lead in one enrollment gets: made once, when its email is first rendered,
    and reused (a retry renders the same variant)."""

    enrollment = models.ForeignKey("Enrollment", on_delete=models.CASCADE, related_name="variant_assignments",
                                   db_index=False)  # the unique (enrollment, step) index serves it
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="variant_assignments")
    variant = models.ForeignKey(StepVariant, on_delete=models.PROTECT, related_name="assignments")
    is_random = models.BooleanField(
        default=True, help_text="Drawn at random during the test; not: given the winner once it was picked (these "
                                "do not count in the test's results).",
    )
    assigned_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrollment", "step"], name="one_variant_per_enrollment_step")]

    def __str__(self):
        return f"{self.enrollment} — {self.variant}"


class SequenceVersion(models.Model):
    """The steps of a live sequence as they were from one change to the next: a change to an active or paused
    sequence's steps makes a new version; each email sent records the version it came from."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField(help_text="Each step's settings and templates, in order.")
    created_at = models.DateTimeField(default=now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["sequence", "-number"]
        constraints = [models.UniqueConstraint(fields=["sequence", "number"], name="sequenceversion_number_unique")]

    def __str__(self):
        return f"{self.sequence} — version {self.number}"


class Enrollment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Exited"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="enrollments")
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="enrollments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    exit_reason = models.CharField(max_length=300, blank=True)
    enrolled_at = models.DateTimeField(default=now)
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_event = models.ForeignKey(
        "EmailEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The reply, bounce, complaint or unsubscribe that ended it.",
    )

    class Meta:
        ordering = ["-enrolled_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "sequence"],
                condition=Q(status__in=["active", "paused"]),
                name="one_live_enrollment_per_lead_and_sequence",
                violation_error_message="This lead is already in this sequence.",
            )
        ]
        indexes = [
            models.Index(fields=["lead", "status"], name="enrollment_lead_status"),
            models.Index(fields=["-enrolled_at", "-id"], name="enrollment_enrolled"),  # the API's list, newest first
        ]

    def __str__(self):
        return f"{self.lead} in {self.sequence}"


class Delivery(models.Model):
    """One step for one enrolled lead: the log of why a lead did or did not get an email."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"  # a worker's claim on it is kept in its DueDelivery row
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown (worker lost while sending)"

    # Every index here costs each claim and each send a write per row (a status
    # change is never a heap-only update), so the foreign keys take no index of
    # their own: lookups by enrollment use the unique (enrollment, step) index,
    # by step the (step, status) index, and by sender the index of sent rows;
    # deleting a user (they are deactivated, as a rule) scans the table.
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="deliveries", db_index=False)
    version = models.ForeignKey(
        SequenceVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries", db_index=False,
        help_text="The version of the sequence the email was sent from (none: sent before versions were kept).",
    )
    variant = models.ForeignKey(
        StepVariant, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries", db_index=False,
        help_text="The variant of the step's A/B test the email was rendered from (none: the step had no test).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    due_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was skipped, failed, or moved to a later time.")
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    to_email = models.EmailField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    provider_message_id = models.CharField(
        max_length=300, blank=True, help_text="The id the email provider gave the message (its events carry it)."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-due_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["enrollment", "step"], name="one_delivery_per_enrollment_step")]
        indexes = [
            # The dispatcher's claim: the earliest due scheduled rows, read from a small partial index.
            models.Index(fields=["due_at"], name="delivery_due", condition=Q(status="scheduled")),
            # The reaper: rows a worker is sending (claims are in DueDelivery).
            models.Index(fields=["claimed_at"], name="delivery_held", condition=Q(status="sending")),
            # The metrics' failures of the last minutes and outcomes lost: rare states, small indexes.
            models.Index(fields=["updated_at"], name="delivery_failed", condition=Q(status="failed")),
            models.Index(fields=["updated_at"], name="delivery_unknown", condition=Q(status="unknown")),
            models.Index(fields=["step", "status"], name="delivery_step_status"),
            models.Index(fields=["message_id"], name="delivery_message_id", condition=~Q(message_id="")),
            models.Index(fields=["provider_message_id"], name="delivery_provider_message_id", condition=~Q(provider_message_id="")),
            models.Index(fields=["sender", "sent_at"], name="delivery_sender_sent", condition=Q(status="sent")),
        ]

    def __str__(self):
        return f"{self.step} to {self.to_email or self.enrollment.lead} ({self.get_status_display()})"


class DueDelivery(models.Model):
    """The claim queue: one narrow row per scheduled delivery, its id and due time, and the claim on it.

    Kept by triggers on nurturing_delivery (migration 0023), so no code path can schedule a delivery the queue
    does not know: a delivery written, or updated, as scheduled is (re)queued with its due time and no claim; one
    that leaves `scheduled` or is deleted leaves the queue. A worker's claim marks these rows, not the wide
    deliveries and their many indexes (nurturing.claim); the claimed row goes when its delivery moves to sending.
    """

    delivery = models.OneToOneField(Delivery, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="queued")
    due_at = models.DateTimeField()
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The claim: the earliest due of the rows nobody holds.
            models.Index(fields=["due_at"], name="duedelivery_free", condition=Q(claim_token__isnull=True)),
            # The reaper: claims older than the stale time.
            models.Index(fields=["claimed_at"], name="duedelivery_claimed", condition=Q(claim_token__isnull=False)),
        ]

    def __str__(self):
        return f"Delivery {self.delivery_id} due {self.due_at:%Y-%m-%d %H:%M}"


class LaterDelivery(models.Model):
    """The far end of the claim queue: scheduled deliveries not due for a while (past the claim's horizon).

    A claim reads only DueDelivery, so it touches the rows due now and soon, packed together, however many
    deliveries are scheduled for the weeks ahead. nurturing.claim moves rows between the two: the tick moves
    the far ones here (`deliveries_queue_sort`), and every claim first brings back those now within its
    horizon. The triggers (migration 0024) take a delivery out of here when it is rescheduled (it is queued
    again as due), leaves `scheduled` or is deleted.
    """

    delivery = models.OneToOneField(Delivery, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="queued_later")
    due_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="laterdelivery_due")]

    def __str__(self):
        return f"Delivery {self.delivery_id} due {self.due_at:%Y-%m-%d %H:%M}"


class SuppressionQuerySet(models.QuerySet):
    def for_address(self, email: str):
        """The suppressions of an address, under the current hash key or an old one."""
        return self.filter(email_hash__in=email_hashes(email))


class Suppression(models.Model):
    """An address no email may go to, by any path, from the moment it is written.

    It is matched on the address's keyed hash (nurturing.address_hash), so
    erasing a person can blank the address and keep them suppressed, and the
    hash alone does not tell who they were.
    """

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Hard bounce"
        SOFT_BOUNCES = "soft_bounces", "Repeated soft bounces"
        COMPLAINED = "complained", "Spam complaint"
        ERASED = "erased", "Person erased"
        MANUAL = "manual", "Added by hand"

    email = models.EmailField(blank=True, help_text="Stored lower-cased; blank once the person is erased.")
    email_hash = models.CharField(max_length=80, unique=True, editable=False)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.MANUAL)
    source = models.CharField(max_length=200, blank=True, help_text="Where it came from: a webhook, a form, a person.")
    created_at = models.DateTimeField(default=now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.email or 'erased address ' + self.email_hash.rpartition(':')[2][:12]} ({self.get_reason_display()})"

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        if self.email:
            self.email_hash = email_hash(self.email)
        super().save(*args, **kwargs)



class EmailEvent(models.Model):
    """What happened to a sent email, from the provider's webhooks, the lead's mail client, or a rep.

    Opens and clicks are marked human or machine (privacy proxies, link
    scanners): both are kept and shown; only human ones count for conditions,
    stage actions and reports. A provider sending the same event twice is
    recorded once (`dedupe_key`).
    """

    class Kind(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained (spam)"
        REPLIED = "replied", "Replied"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        REJECTED = "rejected", "Rejected by the provider"
        OTHER = "other", "Other"

    class Bounce(models.TextChoices):
        HARD = "hard", "Hard"
        SOFT = "soft", "Soft"

    # The foreign keys' lookups use the (delivery, kind) and (lead, occurred_at) indexes below.
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_index=False)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="email_events", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    bounce = models.CharField(max_length=4, choices=Bounce.choices, blank=True)
    provider = models.CharField(max_length=40, help_text="The email provider, or “link” / “manual”.")
    event_id = models.CharField(max_length=200, blank=True, help_text="The provider's id for the event.")
    message_id = models.CharField(max_length=300, blank=True)
    recipient = models.EmailField(blank=True)
    url = models.TextField(blank=True, help_text="The link clicked.")
    user_agent = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=now, editable=False)
    is_machine = models.BooleanField(default=False, help_text="An open or click by a proxy or scanner, not a person.")
    machine_reason = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True, help_text="The provider's explanation, or the reply's first lines.")
    actions = models.TextField(blank=True, help_text="What the event did: exits, suppression, stage moves.")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dedupe_key = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # A constraint rather than unique=True: no second (LIKE) index on PostgreSQL.
        constraints = [models.UniqueConstraint(fields=["dedupe_key"], name="emailevent_once")]
        indexes = [
            models.Index(fields=["delivery", "kind"], name="emailevent_delivery_kind"),
            models.Index(fields=["lead", "-occurred_at"], name="emailevent_lead"),
            models.Index(fields=["recipient", "kind", "occurred_at"], name="emailevent_recipient_kind"),
        ]

    def __str__(self):
        who = "machine" if self.is_machine else "person"
        return f"{self.get_kind_display()} ({who}) {self.recipient or self.message_id}"


class WebhookNonce(models.Model):
    """A signed webhook's one-time token, kept a while so a replayed request is refused."""

    provider = models.CharField(max_length=40)
    token = models.CharField(max_length=200)
    seen_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "token"], name="webhook_nonce_once")]
        indexes = [models.Index(fields=["seen_at"], name="webhook_nonce_seen")]


class Trigger(models.Model):
    """Enroll leads in a sequence when something happens to them, read from the event log: a form submitted, a
    resource downloaded, a stage reached, an objection of a kind logged (price objection -> the ROI case study),
    a score rising across a threshold (scoring records the crossing of every active trigger's threshold), a tag
    added."""

    class Kind(models.TextChoices):
        FORM_SUBMITTED = "form_submitted", "A form is submitted"
        RESOURCE = "resource", "A resource is downloaded or signed up for"
        STAGE_REACHED = "stage_reached", "The lead reaches a stage"
        OBJECTION = "objection", "An objection is logged"
        SCORE_CROSSED = "score_crossed", "The score rises to a threshold"
        TAG_ADDED = "tag_added", "A tag is added"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    form_slug = models.SlugField("form", max_length=100, blank=True, help_text="The form's slug (empty: any form).")
    resource = models.ForeignKey("leads.Resource", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=20, choices=LeadStatus.choices, blank=True)
    objection_category = models.CharField(max_length=20, choices=Objection.Category.choices, blank=True)
    score = models.PositiveIntegerField(
        "score threshold", null=True, blank=True,
        help_text="Fires when a lead's score rises from below this to it or above (not when it was there already).")
    tag = models.ForeignKey("leads.Tag", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    is_active = models.BooleanField("on", default=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["sequence", "pk"]

    def __str__(self):
        return f"{self.get_kind_display()}{self.detail} → {self.sequence}"

    @property
    def detail(self) -> str:
        if self.kind == self.Kind.FORM_SUBMITTED:
            return f" ({self.form_slug})" if self.form_slug else " (any form)"
        if self.kind == self.Kind.RESOURCE:
            return f" ({self.resource})" if self.resource_id else ""
        if self.kind == self.Kind.STAGE_REACHED:
            return f" ({self.get_stage_display()})" if self.stage else ""
        if self.kind == self.Kind.SCORE_CROSSED:
            return f" ({self.score})" if self.score else ""
        if self.kind == self.Kind.TAG_ADDED:
            return f" ({self.tag})" if self.tag_id else ""
        return f" ({self.get_objection_category_display()})" if self.objection_category else ""

    def clean(self):
        needs = {self.Kind.RESOURCE: ("resource", self.resource_id, "Choose the resource."),
                 self.Kind.STAGE_REACHED: ("stage", self.stage, "Choose the stage."),
                 self.Kind.OBJECTION: ("objection_category", self.objection_category, "Choose the kind of objection."),
                 self.Kind.SCORE_CROSSED: ("score", self.score, "Give the score threshold, a whole number above 0, e.g. 30."),
                 self.Kind.TAG_ADDED: ("tag", self.tag_id, "Choose the tag.")}
        if self.kind in needs:
            field, value, message = needs[self.kind]
            if not value:
                raise ValidationError({field: [message]})


class TriggerFired(models.Model):
    """A trigger acted on an event (once each, however often the event log is read)."""

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="fired")
    event_id = models.BigIntegerField()
    lead_id = models.BigIntegerField()
    outcome = models.CharField(max_length=300, help_text="Enrolled, or why not.")
    fired_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trigger", "event_id"], name="trigger_fires_once_per_event")]


class Audience(models.Model):
    """A saved group of leads, by rules that all hold (a rule left empty holds for every lead): where they came
    from, who they are, where they are in the pipeline, what they did and how recently. Live leads only; the
    members are worked out each time (`nurturing.audiences.audience_leads`)."""

    name = models.CharField(max_length=200)
    source = models.ForeignKey("leads.Source", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    utm_medium = models.CharField("medium", max_length=50, blank=True)
    campaign = models.ForeignKey("leads.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    stage = models.CharField(max_length=20, choices=LeadStatus.choices, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    country = models.CharField(max_length=100, blank=True, help_text="The lead's company's country, as written there.")
    resource = models.ForeignKey("leads.Resource", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 help_text="Downloaded or signed up for this.")
    form_slug = models.SlugField("submitted the form", max_length=100, blank=True)
    engaged_within_days = models.PositiveIntegerField(
        "opened, clicked or replied within (days)", null=True, blank=True,
        help_text="A person's open, click or reply of one of our emails (never a machine's) in the last N days.")
    clicked_link_contains = models.CharField(
        "clicked a link containing", max_length=200, blank=True,
        help_text="A person (never a link scanner) clicked a link of one of our emails whose address contains "
                  "this, e.g. /pricing.")
    class Meetings(models.TextChoices):
        BOOKED = "booked", "Booked or had a meeting"
        NONE = "none", "Never booked or had a meeting"

    meetings = models.CharField(
        "meetings", max_length=10, choices=Meetings.choices, blank=True,
        help_text="E.g. leads who clicked pricing but did not book: a meeting booked on a booking page or logged "
                  "by a rep counts.")
    inactive_for_days = models.PositiveIntegerField(
        "no touch for (days)", null=True, blank=True,
        help_text="Nobody called, met or emailed the lead for N days (never touched: since it was created).")
    score_min = models.IntegerField("score at least", null=True, blank=True)
    score_max = models.IntegerField("score at most", null=True, blank=True)
    tag = models.ForeignKey("leads.Tag", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                            help_text="Has this tag.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if self.score_min is not None and self.score_max is not None and self.score_min > self.score_max:
            raise ValidationError({"score_max": [
                f"The highest score ({self.score_max}) is below the lowest ({self.score_min}): swap them, or leave "
                "one empty."]})


class AudienceFeed(models.Model):
    """A private address an ad platform fetches an audience's customer-match file from, current at each fetch
    (`nurturing.retargeting`). Only the token's hash is kept: the address is shown once, when it is made;
    revoking it stops every fetch at once."""

    class Platform(models.TextChoices):
        GOOGLE = "google", "Google Ads Customer Match"
        META = "meta", "Meta custom audience"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="feeds")
    platform = models.CharField(max_length=10, choices=Platform.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_platform_display()} feed of {self.audience}"


class AudienceEnrollment(models.Model):
    """Enrolling an audience's leads in a sequence, in the background and in batches, with its progress: each lead
    goes through `enrollment_create` (every rule of the sequence), those it refuses counted by reason."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="enrollments")
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    total = models.PositiveIntegerField(default=0, help_text="The audience's leads when it started.")
    done = models.PositiveIntegerField(default=0)
    enrolled = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=dict, help_text="Why -> how many leads.")
    last_lead_id = models.BigIntegerField(default=0, help_text="Leads up to this id are done.")
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    started_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.audience} into {self.sequence} ({self.get_status_display().lower()})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())


class ContentBlock(models.Model):
    """Social proof from the content library, put into a step by `{% content "case_study" %}`: the best match
    for each lead by its open objection, persona and topic (nurturing.content). Bodies are plain text, escaped
    in the HTML part."""

    class Kind(models.TextChoices):
        TESTIMONIAL = "testimonial", "Testimonial"
        CASE_STUDY = "case_study", "Case study"
        REVIEW = "review", "Review"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="Plain text; a blank line starts a new paragraph. HTML is shown as typed.")
    attribution_name = models.CharField("who said it", max_length=200, blank=True)
    attribution_role = models.CharField("their role", max_length=200, blank=True)
    attribution_company = models.CharField("their company", max_length=200, blank=True)
    link_url = models.URLField("link", max_length=1000, blank=True, help_text="Read the whole story (http or https).")
    rating = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Reviews: 1 to 5 stars.")
    topics = models.CharField(
        max_length=500, blank=True,
        help_text="Resource topics it speaks to, separated by commas (empty: any topic), e.g. forecasting, pipeline.")
    personas = models.ManyToManyField(Persona, blank=True, related_name="+",
                                      help_text="Who it speaks to (none: anyone).")
    objection_category = models.CharField(
        "answers the objection", max_length=20, choices=Objection.Category.choices, blank=True,
        help_text='Chosen first by {% content "…" for "objection" %} for a lead whose latest open objection is this.')
    is_active = models.BooleanField("in use", default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["kind", "-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.title}"

    @property
    def topic_list(self) -> list[str]:
        return [topic.strip() for topic in self.topics.split(",") if topic.strip()]
