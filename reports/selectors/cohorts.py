"""Cohorts: leads grouped by the month they were created, and the share of each month's leads that had reached
MQL, SQL or customer by the end of each month after (month 0 is the month they were created). Months are
calendar months where the team works (TIME_ZONE).

Reaching a stage is as in the cohort funnel: entering it or a stage after it. A cell is cumulative: the leads
that had reached the stage by the end of that month after, over the month's leads.
"""

from dataclasses import dataclass
from datetime import date, datetime, time

from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from leads.reach import REACHED_FIELD

from ..ranges import DateRange, Slice
from .common import counted_leads, rate
from .funnel import STEPS

TARGETS = {key: status for key, status in STEPS}


@dataclass(frozen=True)
class CohortRow:
    month: date
    leads: int
    reached: list[int]  # cumulative, by month after (0 = the month created), up to the current month

    @property
    def shares(self) -> list[float | None]:
        return [rate(n, self.leads) for n in self.reached]

    @property
    def cells(self) -> list[tuple[int, int, float | None]]:
        """(months after, leads that had reached the target by then, their share) for each month after."""
        return [(after, n, rate(n, self.leads)) for after, n in enumerate(self.reached)]


def _months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def cohort_table(date_range: DateRange, part: Slice, target: str = "customer") -> list[CohortRow]:
    """Leads created in the range by month created; for each month after, how many had reached `target` (mql,
    sql, opportunity or customer) by then, counting from the first time the lead reached it."""
    zone = timezone.get_current_timezone()
    leads = counted_leads().filter(date_range.q("created_at"), part.leads_q())
    grouped = (
        leads.annotate(cohort=TruncMonth("created_at", tzinfo=zone),
                       reached=TruncMonth(REACHED_FIELD[TARGETS[target]], tzinfo=zone))
        .order_by().values_list("cohort", "reached").annotate(n=Count("pk"))
    )
    current = timezone.localdate().replace(day=1)
    table: dict[date, dict[int | None, int]] = {}
    for cohort, reached, n in grouped:
        month = _as_date(cohort)
        after = None if reached is None else _months_between(month, _as_date(reached))
        cell = table.setdefault(month, {})
        cell[after] = cell.get(after, 0) + n
    rows = []
    for month in sorted(table):
        counts = table[month]
        span = _months_between(month, current) + 1
        cumulative, running = [], 0
        for after in range(max(span, 1)):
            running += counts.get(after, 0)
            cumulative.append(running)
        rows.append(CohortRow(month, sum(counts.values()), cumulative))
    return rows


def cohort_cell_leads(date_range: DateRange, part: Slice, month: date, after: int | None, target: str):
    """The leads behind a cell: created in the range in `month` (the team's calendar month), and with `after` a
    number, those that had reached `target` by the end of that month after (None: all the month's leads)."""
    zone = timezone.get_current_timezone()

    def start_of(first: date):
        return datetime.combine(first, time(), tzinfo=zone)

    def plus(first: date, months: int) -> date:
        index = first.year * 12 + first.month - 1 + months
        return date(index // 12, index % 12 + 1, 1)

    leads = counted_leads().filter(date_range.q("created_at"), part.leads_q(),
                                   created_at__gte=start_of(month), created_at__lt=start_of(plus(month, 1)))
    if after is None:
        return leads
    return leads.filter(**{f"{REACHED_FIELD[TARGETS[target]]}__lt": start_of(plus(month, after + 1))})


def _as_date(value) -> date:
    return value.date() if hasattr(value, "date") else value
