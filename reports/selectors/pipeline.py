"""The open pipeline now: leads and open deal value by stage, the weighted forecast by expected close month,
and pipeline velocity. Unlike the other reports these are a picture of today, not of a range (velocity reads
its win rate, deal size and cycle from the range).

An open deal's win probability is its deal stage's (leads.DealStage: qualification 10 %, proposal 40 %, ...,
set by managers). A deal with no stage (none was in use when it opened) falls back to its lead's stage, by the
setting CRM_STAGE_WIN_PROBABILITY (e.g. SQL 20 %, opportunity 40 %).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from leads.models import Deal, Lead
from leads.pipeline import OPEN_STATUSES, LeadStatus

from ..ranges import DateRange, Slice
from .sales import deal_size, sales_cycle, win_rate

OPEN_FUNNEL = [status for status in LeadStatus.values if status in OPEN_STATUSES]


def stage_probability(status: str) -> Decimal:
    return Decimal(str(settings.CRM_STAGE_WIN_PROBABILITY.get(status, 0)))


# A lead merged into another is archived while the merge stands (leads.merging), so a live lead is always a
# counted one (common.counted_leads) and the open pipeline needs no look at the merges.


def open_leads(part: Slice):
    """Live leads in an open stage now, in the slice."""
    return Lead.objects.filter(part.leads_q(), status__in=OPEN_STATUSES, archived_at__isnull=True)


def open_deals(part: Slice):
    """Open deals whose lead is live, open and in the slice (the owner is the deal's)."""
    deals = Deal.objects.filter(part.without_owner().leads_q("lead__"), status=Deal.Status.OPEN,
                                lead__status__in=OPEN_STATUSES, lead__archived_at__isnull=True)
    return deals.filter(owner_id=part.owner) if part.owner is not None else deals


@dataclass(frozen=True)
class OpenTotal:
    status: str  # the deal's lead's stage now
    currency: str
    month: date | None  # the expected close month (None: no expected close date)
    deals: int
    value: Decimal
    deal_probability: int | None = None  # the deal stage's win probability in percent (None: no deal stage)

    @property
    def probability(self) -> Decimal:
        if self.deal_probability is not None:
            return Decimal(self.deal_probability) / 100
        return stage_probability(self.status)


def open_deal_totals(part: Slice) -> list[OpenTotal]:
    """Open deals (as `open_deals`) counted and summed by their lead's stage, currency and expected close month:
    one read that the pipeline by stage, the forecast and velocity each add up their own way."""
    return [
        OpenTotal(status, currency, month.date() if hasattr(month, "date") else month, deals, value, probability)
        for status, currency, month, probability, deals, value in (
            open_deals(part).annotate(month=TruncMonth("expected_close_on")).order_by()
            .values_list("lead__status", "currency", "month", "stage__probability")
            .annotate(deals=Count("pk"), value=Sum("value"))
        )
    ]


@dataclass(frozen=True)
class StageRow:
    status: str
    label: str
    leads: int
    probability: Decimal
    value: dict[str, Decimal]  # open deal value per currency


def pipeline_by_stage(part: Slice, *, totals: list[OpenTotal] | None = None) -> list[StageRow]:
    """Pipeline by stage: open (live) leads in each open stage now, and the value of their open deals per currency.
    `totals`: `open_deal_totals(part)`, where already read."""
    leads = dict(open_leads(part).order_by().values_list("status").annotate(n=Count("pk")))
    values: dict[str, dict[str, Decimal]] = {}
    for total in open_deal_totals(part) if totals is None else totals:
        by_currency = values.setdefault(total.status, {})
        by_currency[total.currency] = by_currency.get(total.currency, Decimal(0)) + total.value
    return [
        StageRow(status, LeadStatus(status).label, leads.get(status, 0), stage_probability(status),
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


def weighted_forecast(part: Slice, *, totals: list[OpenTotal] | None = None) -> list[ForecastRow]:
    """Weighted forecast: over open deals, value x the win probability of the deal's stage (or, for a deal with no
    stage, of its lead's stage), summed by the month the deal is expected to close, per currency. Deals without an expected close date are shown apart.
    `totals`: `open_deal_totals(part)` if already read."""
    rows = {}
    for total in open_deal_totals(part) if totals is None else totals:
        key = (total.month, total.currency)
        was = rows.get(key, (0, Decimal(0), Decimal(0)))
        rows[key] = (was[0] + total.deals, was[1] + total.value,
                     was[2] + total.value * total.probability)
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


def pipeline_velocity(date_range: DateRange, part: Slice, *, totals: list[OpenTotal] | None = None) -> list[Velocity]:
    """Pipeline velocity per currency: open deals now x the win rate x the average deal size (of the deals closed
    in the range) / the mean sales cycle length in days (of the deals won in the range). `totals`:
    `open_deal_totals(part)`, where already read."""
    rate = win_rate(date_range, part).rate
    cycle = sales_cycle(date_range, part).mean_days
    sizes = deal_size(date_range, part)
    open_counts: dict[str, int] = {}
    for total in open_deal_totals(part) if totals is None else totals:
        open_counts[total.currency] = open_counts.get(total.currency, 0) + total.deals
    return [
        Velocity(size.currency, open_counts.get(size.currency, 0), rate, size.average, cycle)
        for size in sizes
    ]
