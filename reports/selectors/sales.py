"""Sales: win rate, deal size, time to close, sales cycle length and time in each stage, for a range and a slice.

Deals count by when they closed: a deal won or lost in the range. The slice
is the deal's lead's (source, medium, campaign, persona, first landing page),
and the owner is the deal's owner (who sold it). Money is never added across
currencies: each figure in money is per currency.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

from leads.models import Deal, StageChange
from leads.pipeline import FUNNEL, LeadStatus

from ..ranges import DateRange, Slice
from .common import Spread, counted_rows, rate, spread_aggregates, spread_from, spread_of, spreads_by


def closed_deals(date_range: DateRange, part: Slice, status: str | None = None):
    """Deals won or lost (or only `status`) in the range, whose lead is counted and in the slice."""
    deals = Deal.objects.filter(date_range.q("closed_at"), status__in=[status] if status else ["won", "lost"])
    deals = deals.filter(counted_rows(part.without_owner()))
    if part.owner is not None:
        deals = deals.filter(owner_id=part.owner)
    return deals


@dataclass(frozen=True)
class WinRate:
    won: int
    lost: int

    @property
    def rate(self) -> float | None:
        return rate(self.won, self.won + self.lost)


def win_rate(date_range: DateRange, part: Slice) -> WinRate:
    """Win rate: deals won / (deals won + deals lost), of the deals closed in the range. Open deals are left out."""
    counts = dict(closed_deals(date_range, part).order_by().values_list("status").annotate(n=Count("pk")))
    return WinRate(won=counts.get("won", 0), lost=counts.get("lost", 0))


@dataclass(frozen=True)
class DealSize:
    currency: str
    won: int
    total: Decimal
    average: Decimal


def deal_size(date_range: DateRange, part: Slice) -> list[DealSize]:
    """Average deal size: the sum of the values of the deals won in the range / their number, per currency."""
    rows = (
        closed_deals(date_range, part, "won").order_by("currency").values("currency")
        .annotate(won=Count("pk"), total=Sum("value"))
    )
    return [
        DealSize(row["currency"], row["won"], row["total"], (row["total"] / row["won"]).quantize(Decimal("0.01")))
        for row in rows
    ]


def _won_with(duration) -> object:
    return ExpressionWrapper(duration, output_field=DurationField())


def time_to_close(date_range: DateRange, part: Slice) -> Spread:
    """Time to close: from a deal's creation (the opportunity) to its win, over the deals won in the range."""
    deals = closed_deals(date_range, part, "won").annotate(took=_won_with(F("closed_at") - F("created_at")))
    return spread_of(deals, "took")


def sales_cycle(date_range: DateRange, part: Slice) -> Spread:
    """Sales cycle length: from the lead's creation (its first touch with us) to the win, over the deals won in
    the range. Open and lost deals are left out."""
    deals = closed_deals(date_range, part, "won").annotate(took=_won_with(F("closed_at") - F("lead__created_at")))
    return spread_of(deals, "took")


@dataclass(frozen=True)
class ClosedSummary:
    win_rate: WinRate
    time_to_close: Spread
    sales_cycle: Spread


def closed_summary(date_range: DateRange, part: Slice) -> ClosedSummary:
    """`win_rate`, `time_to_close` and `sales_cycle` together: on PostgreSQL one read of the closed deals (the
    durations as percentiles of the won ones), elsewhere each on its own."""
    if connection.vendor != "postgresql":
        return ClosedSummary(win_rate(date_range, part), time_to_close(date_range, part), sales_cycle(date_range, part))
    won = Q(status=Deal.Status.WON)
    row = closed_deals(date_range, part).annotate(
        close=_won_with(F("closed_at") - F("created_at")), cycle=_won_with(F("closed_at") - F("lead__created_at")),
    ).aggregate(won=Count("pk", filter=won), lost=Count("pk", filter=Q(status=Deal.Status.LOST)),
                **spread_aggregates("close", filter=won, prefix="close_"),
                **spread_aggregates("cycle", filter=won, prefix="cycle_"))
    return ClosedSummary(WinRate(row["won"], row["lost"]), spread_from(row, "close_"), spread_from(row, "cycle_"))


@dataclass(frozen=True)
class StageTime:
    status: str
    label: str
    spread: Spread


def stays_ended(date_range: DateRange, part: Slice, status: str | None = None):
    """The stays in a stage (or in `status`) that ended in the range: the stage changes out of it, each with the
    time the lead had spent in it, of counted leads in the slice."""
    stays = StageChange.objects.filter(date_range.q("changed_at"), counted_rows(part), time_in_from_stage__isnull=False)
    return stays.filter(from_status=status) if status else stays


def time_in_stage(date_range: DateRange, part: Slice) -> list[StageTime]:
    """Time in stage: from entering a stage to leaving it, from the stage history, over the stays that ended in
    the range (a lead still in a stage is not counted until it leaves). Median and 90th percentile, per stage."""
    stays = stays_ended(date_range, part)
    # Sliced, the stays are found through their leads: once for every stage. Whole, each stage is a range of the
    # stays index (stagechange_stays), read apart in one UNION ALL.
    spreads = spreads_by(stays, "time_in_from_stage", "from_status", FUNNEL[:-1], one_read=part != Slice())
    return [StageTime(status, LeadStatus(status).label, spreads[status]) for status in FUNNEL[:-1]]
