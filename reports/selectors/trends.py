"""Trends: per week of the range (weeks start on Monday, on the team's clock), the leads created and the deals won.

The weeks at either end may be cut by the range: their counts are for the days in the range only.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count
from django.db.models.functions import TruncWeek
from django.utils import timezone

from ..ranges import DateRange, Slice
from .common import counted_leads
from .sales import closed_deals


@dataclass(frozen=True)
class Week:
    start: date
    leads: int
    won: int


def _as_date(value) -> date:
    return value.date() if hasattr(value, "date") else value


def weekly(date_range: DateRange, part: Slice) -> list[Week]:
    """Leads created and deals won (closed in the range, leads in the slice; owner: the deal's) per week."""
    zone = timezone.get_current_timezone()
    leads = counted_leads().filter(part.leads_q())
    created = dict(
        (_as_date(week), n) for week, n in
        leads.filter(date_range.q("created_at")).annotate(week=TruncWeek("created_at", tzinfo=zone)).order_by()
        .values_list("week").annotate(n=Count("pk"))
    )
    won = closed_deals(date_range, part, "won")
    closed = dict(
        (_as_date(week), n) for week, n in
        won.annotate(week=TruncWeek("closed_at", tzinfo=zone)).order_by().values_list("week").annotate(n=Count("pk"))
    )
    first = date_range.start - timedelta(days=date_range.start.weekday())
    weeks = []
    while first <= date_range.end:
        weeks.append(Week(first, created.get(first, 0), closed.get(first, 0)))
        first += timedelta(days=7)
    return weeks
