"""Objections: what leads object to, where in the funnel, and what comes of it.

Of the objections logged in the range (of leads in the slice), by category: how many, at which stage the lead
was when it was raised (the stage its history says it was in at that moment, kept on the objection when it is
logged), by the lead's source and by the product of the lead's latest deal; how many were resolved and how long
that took (median, p90); and the win rate after each kind: of the objections of that kind, those whose lead won a deal after it / (those whose lead won or
lost a deal after it). A lead that later both won and lost a deal counts on both sides.
"""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery

from leads.models import Deal, Objection

from ..ranges import DateRange, Slice
from .common import Spread, counted_rows, rate, spread_aggregates, spread_from, spread_of


def objections_in(date_range: DateRange, part: Slice):
    return Objection.objects.filter(date_range.q("created_at"), counted_rows(part))


def _latest_product():
    return Subquery(Deal.objects.filter(lead=OuterRef("lead")).order_by("-created_at", "-pk").values("product")[:1])


@dataclass(frozen=True)
class CategoryRow:
    category: str
    label: str
    raised: int
    resolved: int
    won_after: int
    lost_after: int
    resolution: Spread

    @property
    def resolution_rate(self) -> float | None:
        return rate(self.resolved, self.raised)

    @property
    def win_rate_after(self) -> float | None:
        return rate(self.won_after, self.won_after + self.lost_after)


def by_category(date_range: DateRange, part: Slice) -> list[CategoryRow]:
    """Per category: raised, resolved (rate), resolution time, and the win rate of the deals that closed after it.
    One grouped query on PostgreSQL (the resolution times as filtered percentiles); elsewhere one more per
    category for its resolution time."""
    objections = objections_in(date_range, part).annotate(
        took=ExpressionWrapper(F("resolved_at") - F("created_at"), output_field=DurationField()))
    closed_after = Deal.objects.filter(lead=OuterRef("lead"), closed_at__gte=OuterRef("created_at"))
    resolved = Q(is_resolved=True, resolved_at__isnull=False)
    postgresql = connection.vendor == "postgresql"
    counts = {
        row["category"]: row for row in objections.order_by().values("category").annotate(
            raised=Count("pk"), resolved=Count("pk", filter=Q(is_resolved=True)),
            won_after=Count("pk", filter=Q(Exists(closed_after.filter(status=Deal.Status.WON)))),
            lost_after=Count("pk", filter=Q(Exists(closed_after.filter(status=Deal.Status.LOST)))),
            **(spread_aggregates("took", filter=resolved, prefix="resolution_") if postgresql else {}),
        )
    }
    rows = []
    for category, label in Objection.Category.choices:
        row = counts.get(category)
        if row is None:
            continue
        resolution = (spread_from(row, "resolution_") if postgresql
                      else spread_of(objections.filter(resolved, category=category), "took"))
        rows.append(CategoryRow(category, label, row["raised"], row["resolved"], row["won_after"], row["lost_after"],
                                resolution))
    return rows


def by_dimension(date_range: DateRange, part: Slice, dimension: str) -> list[tuple[str, str, int]]:
    """(category, value, count) of the objections in the range by "stage" (the lead's stage when raised),
    "source" (the lead's) or "product" (of the lead's latest deal)."""
    objections = objections_in(date_range, part)
    if dimension == "stage":
        objections = objections.annotate(value=F("stage"))
    elif dimension == "source":
        objections = objections.annotate(value=F("lead__source__name"))
    elif dimension == "product":
        objections = objections.annotate(value=_latest_product())
    else:
        raise ValueError(f"No objection breakdown by {dimension!r}: use stage, source or product.")
    return [
        (category, value or "", n)
        for category, value, n in objections.order_by().values_list("category", "value").annotate(n=Count("pk"))
        .order_by("category", "value")
    ]
