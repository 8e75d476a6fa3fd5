"""The open pipeline now: leads and open deal value by stage, the weighted forecast by expected close month,
and pipeline velocity. Unlike the other reports these are a picture of today, not of a range (velocity reads
its win rate, deal size and cycle from the range).

The win probability of a stage is a setting, CRM_STAGE_WIN_PROBABILITY (e.g. SQL 20 %, opportunity 40 %):
the chance a deal whose lead is in that stage is won, as the team estimates it.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from leads.models import Deal
from leads.pipeline import OPEN_STATUSES, LeadStatus

from ..ranges import DateRange, Slice
from .common import counted_leads, counted_rows
from .sales import deal_size, sales_cycle, win_rate

OPEN_FUNNEL = [status for status in LeadStatus.values if status in OPEN_STATUSES]


def stage_probability(status: str) -> Decimal:
    return Decimal(str(settings.CRM_STAGE_WIN_PROBABILITY.get(status, 0)))


def open_leads(part: Slice):
    """Live leads in an open stage now, in the slice."""
    return counted_leads().filter(part.leads_q(), status__in=OPEN_STATUSES, archived_at__isnull=True)


def open_deals(part: Slice):
    """Open deals whose lead is live, open and in the slice (the owner is the deal's)."""
    deals = Deal.objects.filter(counted_rows(Slice(**{**part.__dict__, "owner": None})), status=Deal.Status.OPEN,
                                lead__status__in=OPEN_STATUSES, lead__archived_at__isnull=True)
    return deals.filter(owner_id=part.owner) if part.owner is not None else deals


@dataclass(frozen=True)
class StageRow:
    status: str
    label: str
    leads: int
    probability: Decimal
    value: dict[str, Decimal]  # open deal value per currency


def pipeline_by_stage(part: Slice) -> list[StageRow]:
    """Pipeline by stage: open (live) leads in each open stage now, and the value of their open deals per currency."""
    counts = dict(open_leads(part).order_by().values_list("status").annotate(n=Count("pk")))
    values: dict[str, dict[str, Decimal]] = {}
    for status, currency, total in (
        open_deals(part).order_by().values_list("lead__status", "currency").annotate(total=Sum("value"))
    ):
        values.setdefault(status, {})[currency] = total
    return [
        StageRow(status, LeadStatus(status).label, counts.get(status, 0), stage_probability(status),
                 dict(sorted(values.get(status, {}).items())))
        for status in OPEN_FUNNEL
    ]


@dataclass(frozen=True)
class ForecastRow:
    month: date | None  # None: open deals with no expected close date
    currency: str
    deals: int
    value: Decimal
    weighted: Decimal


def weighted_forecast(part: Slice) -> list[ForecastRow]:
    """Weighted forecast: over open deals, value x the win probability of the deal's lead's stage, summed by the
    month the deal is expected to close, per currency. Deals without an expected close date are shown apart."""
    rows = {}
    for month, currency, status, deals, value in (
        open_deals(part).annotate(month=TruncMonth("expected_close_on")).order_by()
        .values_list("month", "currency", "lead__status").annotate(deals=Count("pk"), value=Sum("value"))
    ):
        key = (month, currency)
        was = rows.get(key, (0, Decimal(0), Decimal(0)))
        rows[key] = (was[0] + deals, was[1] + value, was[2] + value * stage_probability(status))
    return [
        ForecastRow(month, currency, deals, value, weighted.quantize(Decimal("0.01")))
        for (month, currency), (deals, value, weighted) in sorted(
            rows.items(), key=lambda item: (item[0][0] is None, item[0][0] or date.min, item[0][1]))
    ]


@dataclass(frozen=True)
class Velocity:
    currency: str
    open_deals: int
    win_rate: float | None
    average_deal: Decimal
    cycle_days: float | None

    @property
    def per_day(self) -> Decimal | None:
        """(open deals x win rate x average deal size) / sales cycle length in days: value expected per day."""
        if self.win_rate is None or not self.cycle_days:
            return None
        return (self.open_deals * Decimal(str(self.win_rate)) * self.average_deal / Decimal(str(self.cycle_days))
                ).quantize(Decimal("0.01"))


def pipeline_velocity(date_range: DateRange, part: Slice) -> list[Velocity]:
    """Pipeline velocity per currency: open deals now x the win rate x the average deal size (of the deals closed
    in the range) / the mean sales cycle length in days (of the deals won in the range)."""
    rate = win_rate(date_range, part).rate
    cycle = sales_cycle(date_range, part).mean_days
    open_counts = dict(open_deals(part).order_by().values_list("currency").annotate(n=Count("pk")))
    return [
        Velocity(size.currency, open_counts.get(size.currency, 0), rate, size.average, cycle)
        for size in deal_size(date_range, part)
    ]
