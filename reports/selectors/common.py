"""What the reports share: which leads count, rates, and percentiles computed by the database."""

from dataclasses import dataclass
from math import ceil

from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, Exists, OuterRef, Q

from leads.models import Lead, LeadMerge


def counted_leads():
    """Every lead the reports count: live or archived (it happened), but not a duplicate merged into another lead
    (while the merge stands, its person is counted once, on the lead it was merged into)."""
    merged = LeadMerge.objects.filter(merged=OuterRef("pk"), undone_at__isnull=True)
    return Lead.objects.filter(~Exists(merged))


def counted_rows(part, lead: str = "lead") -> Q:
    """On rows that point at a lead through `lead` (a deal's or a stage change's "lead", a delivery's
    "enrollment__lead"): the lead is counted (as in `counted_leads`) and in the slice `part`.

    The same rows as `lead__in=counted_leads().filter(part.leads_q())`, asked as a condition on each row: the
    database reads the range's rows and checks their lead, instead of reading every lead first (with 1,000,000
    leads that read cost more than the rest of most reports)."""
    merged = LeadMerge.objects.filter(merged=OuterRef(lead), undone_at__isnull=True)
    return Q(~Exists(merged)) & part.leads_q(f"{lead}__")


def rate(part: int, whole: int) -> float | None:
    """part / whole as a fraction, or None when there is nothing to divide by (shown as "–", never as 0 %)."""
    return part / whole if whole else None


@dataclass(frozen=True)
class Spread:
    """How long something took, over `count` cases: median and 90th percentile (nearest rank), mean."""

    count: int
    median_days: float | None
    p90_days: float | None
    mean_days: float | None


def nearest_rank(count: int, share: float) -> int:
    """The 0-based position of the `share` percentile among `count` sorted values (nearest-rank method):
    the smallest value with at least `share` of the values at or below it."""
    return max(ceil(share * count), 1) - 1


class NearestRank(Aggregate):
    """PostgreSQL's percentile_disc: the first value whose position in the order is at or past `share` of the
    count, i.e. the value at `nearest_rank(count, share)`."""

    function = "PERCENTILE_DISC"
    template = "%(function)s(%(share)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression, *, share: float, **extra):
        super().__init__(expression, share=float(share), **extra)


def spread_of(rows, duration_field: str) -> Spread:
    """Median, p90 and mean of a duration annotated as `duration_field` on `rows`, answered by the database: on
    PostgreSQL one read (percentile_disc), elsewhere three small queries (an average; an ordered read of one row
    at an offset, twice)."""
    if connection.vendor == "postgresql":
        totals = rows.aggregate(count=Count("pk"), mean=Avg(duration_field),
                                median=NearestRank(duration_field, share=0.5), p90=NearestRank(duration_field, share=0.9))
        if not totals["count"]:
            return Spread(0, None, None, None)
        return Spread(totals["count"], _days(totals["median"]), _days(totals["p90"]), _days(totals["mean"]))
    totals = rows.aggregate(count=Count("pk"), mean=Avg(duration_field))
    count = totals["count"]
    if not count:
        return Spread(0, None, None, None)
    ordered = rows.order_by(duration_field, "pk").values_list(duration_field, flat=True)
    median, p90 = ordered[nearest_rank(count, 0.5)], ordered[nearest_rank(count, 0.9)]
    return Spread(count, _days(median), _days(p90), _days(totals["mean"]))


def _days(duration) -> float | None:
    return None if duration is None else duration.total_seconds() / 86400
