"""What every report is asked for: a date range in the team's time zone and a slice of the funnel.

A range is two calendar days, both included, read in TIME_ZONE: 1-31 March
is from midnight at the start of 1 March to midnight at the end of 31 March
where the team works, whatever the server's clock or a daylight-saving jump
in between. A slice narrows the leads counted to one source, medium,
campaign, persona, owner or first landing page (any together).
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone

# A range longer than this is refused (a typo like 2062 would scan everything for nothing).
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError("The range ends before it starts: put the earlier day first.")
        if (self.end - self.start).days + 1 > MAX_DAYS:
            raise ValueError(f"A range covers at most {MAX_DAYS} days: choose a shorter one.")

    @property
    def since(self) -> datetime:
        """The first moment of the range: midnight starting `start` in the team's time zone."""
        return _midnight(self.start)

    @property
    def until(self) -> datetime:
        """The first moment after the range (excluded): midnight ending `end` in the team's time zone."""
        return _midnight(self.end + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def q(self, field: str) -> Q:
        """`field` (a date and time) within the range."""
        return Q(**{f"{field}__gte": self.since, f"{field}__lt": self.until})

    def __str__(self):
        return f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def last_days(days: int, *, today: date | None = None) -> DateRange:
    """The `days` days up to and including today (in the team's time zone)."""
    today = today or timezone.localdate()
    return DateRange(today - timedelta(days=days - 1), today)


@dataclass(frozen=True)
class Slice:
    """Which leads a figure counts; every part left as None counts them all. Ids for rows, text for UTM values."""

    source: int | None = None
    medium: str | None = None
    campaign: int | None = None
    persona: int | None = None
    owner: int | None = None
    landing_page: str | None = None

    def leads_q(self, prefix: str = "") -> Q:
        """The condition on leads (reached through `prefix`, e.g. "lead__" from a deal)."""
        q = Q()
        for name, value in (("source_id", self.source), ("utm_medium", self.medium), ("campaign_id", self.campaign),
                            ("persona_id", self.persona), ("owner_id", self.owner)):
            if value is not None:
                q &= Q(**{f"{prefix}{name}": value})
        if self.landing_page is not None:
            # The landing page of the lead's first recorded visit.
            q &= Q(**{f"{prefix}touches__kind": "first", f"{prefix}touches__landing_page": self.landing_page})
        return q

    def without_owner(self) -> "Slice":
        """The slice on a deal's lead, whose owner is not the deal's: deals are sliced by their own owner."""
        return replace(self, owner=None)

    @property
    def lead_only(self) -> bool:
        """Parts that traffic (anonymous visits) cannot be sliced by: persona and owner belong to leads."""
        return self.persona is not None or self.owner is not None
