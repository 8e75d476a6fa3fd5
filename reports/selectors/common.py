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


class NearestRanks(Aggregate):
    """PostgreSQL's percentile_disc over an array of shares, in one sort: for each share the first value whose
    position in the order is at or past that share of the count, i.e. the value at `nearest_rank(count, share)`."""

    function = "PERCENTILE_DISC"
    template = "%(function)s(%(shares)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, shares: tuple[float, ...], **extra):
        from django.contrib.postgres.fields import ArrayField

        shares_sql = "ARRAY[%s]::float8[]" % ", ".join(repr(float(share)) for share in shares)
        super().__init__(expression, shares=shares_sql, output_field=ArrayField(DurationField()), **extra)


def spread_of(rows, duration_field: str) -> Spread:
    """Median, p90 and mean of a duration annotated as `duration_field` on `rows`, answered by the database: on
    PostgreSQL one read and one sort (percentile_disc of both shares), elsewhere three small queries (an average;
    an ordered read of one row at an offset, twice)."""
    if connection.vendor == "postgresql":
        return spread_from(rows.aggregate(**spread_aggregates(duration_field)))
    totals = rows.aggregate(count=Count("*"), mean=Avg(duration_field))
    count = totals["count"]
    if not count:
        return Spread(0, None, None, None)
    ordered = rows.order_by(duration_field, "pk").values_list(duration_field, flat=True)
    median, p90 = ordered[nearest_rank(count, 0.5)], ordered[nearest_rank(count, 0.9)]
    return Spread(count, _days(median), _days(p90), _days(totals["mean"]))


def spreads_by(rows, duration_field: str, by: str, groups, *, one_read: bool) -> dict:
    """`spread_of` for each value of `by` in `groups` (a Spread of 0 where none), in one query on PostgreSQL.
    `one_read`: one grouped read of the rows, which pays when finding the rows costs more than sorting them (a
    join to the leads of a slice); otherwise a read per group, each a range of an index, in one UNION ALL (the
    grouped read would first sort every row by its group)."""
    if connection.vendor != "postgresql":
        return {group: spread_of(rows.filter(**{by: group}), duration_field) for group in groups}
    aggregates = spread_aggregates(duration_field)
    if one_read:
        found = rows.filter(**{f"{by}__in": list(groups)}).order_by().values(by).annotate(**aggregates)
    else:
        each = [rows.filter(**{by: group}).order_by().values(by).annotate(**aggregates) for group in groups]
        found = each[0].union(*each[1:], all=True)
    spreads = {row[by]: spread_from(row) for row in found}
    return {group: spreads.get(group, Spread(0, None, None, None)) for group in groups}


def spread_aggregates(duration, *, filter: Q | None = None, prefix: str = "") -> dict:
    """PostgreSQL only: the aggregates behind a Spread of `duration` (over the rows matching `filter`), to read
    beside other figures of the same rows in one query; `spread_from` makes the Spread of the row."""
    return {f"{prefix}count": Count("*") if filter is None else Count("pk", filter=filter),
            f"{prefix}mean": Avg(duration, filter=filter),
            f"{prefix}ranks": NearestRanks(duration, shares=(0.5, 0.9), filter=filter)}


def spread_from(row: dict, prefix: str = "") -> Spread:
    if not row[f"{prefix}count"]:
        return Spread(0, None, None, None)
    median, p90 = row[f"{prefix}ranks"]
    return Spread(row[f"{prefix}count"], _days(median), _days(p90), _days(row[f"{prefix}mean"]))


def _days(duration) -> float | None:
    return None if duration is None else duration.total_seconds() / 86400
