"""Demo booking: reps' availability, public booking pages and the meetings booked on them."""

from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from leads.models import Lead
from leads.pipeline import LeadStatus


class Calendar(models.Model):
    """A rep's availability for booked meetings: working hours per weekday in their time zone (WorkingHours),
    days off (DayOff), and the rules every slot offered keeps."""

    rep = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="booking_calendar")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="The working hours are in this time zone.")
    meeting_minutes = models.JSONField(default=list, blank=True,
                                       help_text="The meeting lengths this rep takes, in minutes, e.g. [30, 45].")
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0, help_text="Kept free before each meeting.")
    buffer_after_minutes = models.PositiveSmallIntegerField(default=10, help_text="Kept free after each meeting.")
    notice_minutes = models.PositiveIntegerField(default=240, help_text="No booking closer to now than this.")
    horizon_days = models.PositiveSmallIntegerField(default=30, help_text="No booking further ahead than this.")
    daily_max = models.PositiveSmallIntegerField(default=6, help_text="At most this many booked meetings a day.")
    meeting_url = models.URLField(blank=True,
                                  help_text="Where the meeting is held (a video call link); sent with each booking.")
    is_available = models.BooleanField(default=True, help_text="Off: no page offers this rep's slots.")
    feed_token_hash = models.CharField(max_length=64, blank=True, db_index=True,
                                       help_text="SHA-256 of the private calendar feed's token ('' : no feed).")
    last_booked_at = models.DateTimeField(null=True, blank=True, help_text="Round robin: who was booked longest ago.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.rep}'s calendar"


class WorkingHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    starts = models.TimeField(default=time(9))
    ends = models.TimeField(default=time(17))

    class Meta:
        verbose_name_plural = "working hours"
        ordering = ["calendar", "weekday", "starts"]
        constraints = [
            models.CheckConstraint(condition=Q(ends__gt=models.F("starts")), name="workinghours_ends_after_start",
                                   violation_error_message="Working hours end after they start."),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.starts:%H:%M}–{self.ends:%H:%M}"


class DayOff(models.Model):
    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="days_off")
    date = models.DateField()
    note = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name_plural = "days off"
        ordering = ["calendar", "date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="dayoff_once_a_day")]

    def __str__(self):
        return f"{self.date:%Y-%m-%d}"


RESERVED_SLUG = "for"  # /book/for/<token>/ is a lead's own booking link


class BookingPage(models.Model):
    """A public page that books meetings: with one rep, or round robin among a team (with the lead's owner when
    the owner is on it). Its capture form says what the booking asks (name, email, a question or two, consent)."""

    slug = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=120, default="Book a demo")
    intro = models.TextField(blank=True, help_text="Shown above the slots.")
    form = models.ForeignKey("capture.CaptureForm", on_delete=models.PROTECT, related_name="booking_pages",
                             help_text="What a booking asks; the booking goes through it like any capture.")
    reps = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="booking_pages",
                                  help_text="One rep: their page. Several: booked round robin.")
    duration_minutes = models.PositiveSmallIntegerField(default=30)
    move_to_status = models.CharField(
        max_length=20, blank=True,
        choices=[(s, s.label) for s in (LeadStatus.CONTACTED, LeadStatus.MQL, LeadStatus.SQL)],
        help_text="A booking moves the lead to this stage (when the pipeline allows it from where the lead is).",
    )
    reminder_minutes = models.PositiveIntegerField(default=60, help_text="The reminder goes out this long before.")
    no_show_sequence = models.ForeignKey(
        "nurturing.Sequence", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="A no-show is enrolled in this sequence.",
    )
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False,
                                     help_text="The team's page: where {{ links.book_demo }} points for a lead "
                                               "whose owner has no page of their own.")
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                               name="bookingpage_one_default",
                                               violation_error_message="Another page is already the team's page.")]

    def __str__(self):
        return self.title

    def clean(self):
        if self.slug == RESERVED_SLUG:
            raise ValidationError({"slug": [f"“{RESERVED_SLUG}” is used by the booking links in emails: choose "
                                            "another address."]})


class Meeting(models.Model):
    """A meeting booked on a page: the rep's time from `starts_at` to `ends_at` is taken while it is booked."""

    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        HELD = "held", "Held"
        NO_SHOW = "no_show", "No-show"

    page = models.ForeignKey(BookingPage, on_delete=models.PROTECT, related_name="meetings")
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="booked_meetings")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="booked_meetings")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    time_zone = models.CharField(max_length=64, help_text="The booker's time zone: their emails speak it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    meeting_url = models.URLField(blank=True)
    answers = models.JSONField(default=dict, blank=True)
    activity = models.ForeignKey("leads.Activity", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", help_text="The Meeting on the lead's timeline.")
    sequence = models.PositiveIntegerField(default=0, help_text="The invitation's revision (reschedules, cancel).")
    booked_at = models.DateTimeField(default=now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    # The emails of each change go out once per revision: `emails_sent_for` is the revision whose emails were
    # taken for sending; a change whose emails did not go (the broker was down) is swept up by the beat's tick.
    last_change = models.CharField(max_length=12, default="booked", help_text="What the latest revision was.")
    changed_at = models.DateTimeField(default=now)
    emails_sent_for = models.PositiveIntegerField(null=True, blank=True)
    marked_at = models.DateTimeField(null=True, blank=True)
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            # A rep's taken time over a range (the slots), and their day on Today.
            models.Index(fields=["rep", "starts_at"], condition=Q(status="booked"), name="meeting_rep_booked"),
            models.Index(fields=["lead", "-starts_at"], name="meeting_lead"),
            # The reminder tick: booked meetings by start, not yet reminded.
            models.Index(fields=["starts_at"], condition=Q(status="booked", reminder_sent_at__isnull=True),
                         name="meeting_to_remind"),
            # The sweep of changes whose emails have not gone out.
            models.Index(fields=["changed_at"], condition=Q(emails_sent_for__isnull=True), name="meeting_emails_unsent"),
        ]
        constraints = [
            # The last guard against a double booking (the booking service locks the rep's calendar first).
            models.UniqueConstraint(fields=["rep", "starts_at"], condition=Q(status="booked"),
                                    name="meeting_one_per_rep_slot",
                                    violation_error_message="This time was just taken."),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="meeting_ends_after_start"),
        ]

    def __str__(self):
        return f"{self.lead} with {self.rep} at {self.starts_at:%Y-%m-%d %H:%M} UTC"
