"""The pipeline board: a column per lead stage up to SQL, then one per deal stage in use.

Reads only. The first screen costs a fixed number of queries whatever the number
of leads: one count per kind of column (grouped), one page of cards per column
(each card's next open task comes in the same query as two subqueries), and the
deal stages. Cards are ordered longest in the stage first, keyset-paged on
(stage_entered_at, id), which the `lead_live_board` and `deal_open_board`
indexes hold in order.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils.dateparse import parse_datetime

from core.policy import Access
from leads.models import Deal, DealStage, Lead, Task
from leads.pipeline import LeadStatus

LEAD_COLUMNS = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.NURTURING, LeadStatus.MQL, LeadStatus.SQL)
# Drop targets without cards: a lead ends there (with a reason) or, for Customer, by converting on its page.
END_TARGETS = (LeadStatus.CUSTOMER, LeadStatus.LOST, LeadStatus.DISQUALIFIED)
CARDS_PER_PAGE = 25


@dataclass
class Column:
    key: str  # "lead-new", "deal-3"
    title: str
    kind: str  # "lead" or "deal"
    count: int = 0
    totals: list = field(default_factory=list)  # [(currency, sum)] for deal columns
    cards: list = field(default_factory=list)
    next_cursor: str = ""
    stage: object = None  # the LeadStatus value or the DealStage


def _next_task(field_name: str, lead_ref: str = "pk"):
    """The lead's next open task's `field_name` (its earliest due), as a subquery on the `task_lead` index."""
    return Subquery(
        Task.objects.filter(lead=OuterRef(lead_ref), completed_at__isnull=True)
        .order_by("due_at", "id").values(field_name)[:1]
    )


def board_leads(*, access: Access, filters: dict):
    """The live leads the user may see, narrowed by the board's filters (owner, source, campaign)."""
    leads = access.leads(Lead.objects.live())
    if filters.get("owner") is not None and access.sees_all:
        leads = leads.filter(owner=filters["owner"])
    for name in ("source", "campaign"):
        if filters.get(name) is not None:
            leads = leads.filter(**{name: filters[name]})
    return leads


def board_deals(*, access: Access, filters: dict):
    """Open deals whose lead is on the board (visible, filtered)."""
    deals = Deal.objects.filter(status=Deal.Status.OPEN, lead__archived_at__isnull=True)
    if not access.sees_all:
        deals = deals.filter(Q(lead__owner=access.user) | Q(lead__owner__isnull=True)) if access.is_rep else deals.none()
    if filters.get("owner") is not None and access.sees_all:
        deals = deals.filter(lead__owner=filters["owner"])
    for name in ("source", "campaign"):
        if filters.get(name) is not None:
            deals = deals.filter(**{f"lead__{name}": filters[name]})
    return deals


def parse_cursor(cursor: str) -> tuple[datetime, int] | None:
    """"<iso time>_<id>" as written by `_cursor`; None for anything else."""
    when, _, pk = (cursor or "").rpartition("_")
    moment = parse_datetime(when) if when else None
    if moment is None or not pk.isdigit():
        return None
    return moment, int(pk)


def _cursor(row) -> str:
    return f"{row.stage_entered_at.isoformat()}_{row.pk}"


def _after(rows, cursor):
    if cursor is None:
        return rows
    when, pk = cursor
    return rows.filter(Q(stage_entered_at__gt=when) | Q(stage_entered_at=when, pk__gt=pk))


def lead_cards(*, leads, status: str, cursor=None, limit: int = CARDS_PER_PAGE):
    """One page of a lead column's cards and the cursor of the next page ("" at the end)."""
    rows = (
        _after(leads.filter(status=status), cursor)
        .select_related("owner", "company")
        .annotate(next_task_title=_next_task("title"), next_task_due=_next_task("due_at"))
        .order_by("stage_entered_at", "pk")[: limit + 1]
    )
    return _page(list(rows), limit)


def deal_cards(*, deals, stage: DealStage, cursor=None, limit: int = CARDS_PER_PAGE):
    """One page of a deal column's cards (the lead, its company and owner with it) and the next page's cursor."""
    rows = (
        _after(deals.filter(stage=stage), cursor)
        .select_related("lead", "lead__company", "lead__owner")
        .annotate(next_task_title=_next_task("title", "lead_id"), next_task_due=_next_task("due_at", "lead_id"))
        .order_by("stage_entered_at", "pk")[: limit + 1]
    )
    return _page(list(rows), limit)


def _page(rows: list, limit: int):
    if len(rows) > limit:
        return rows[:limit], _cursor(rows[limit - 1])
    return rows, ""


def board(*, access: Access, filters: dict) -> list[Column]:
    """Every column of the board with its count, totals and first page of cards.

    Lead columns show a count only: summing their open deals' values would join every
    lead of the column to its deals (a lead usually has its first deal once it is an
    opportunity, which the deal columns show).
    """
    leads = board_leads(access=access, filters=filters)
    counts = dict(
        leads.filter(status__in=LEAD_COLUMNS).order_by().values_list("status").annotate(n=Count("pk"))
    )
    columns = []
    for status in LEAD_COLUMNS:
        cards, cursor = lead_cards(leads=leads, status=status)
        columns.append(Column(key=f"lead-{status}", title=LeadStatus(status).label, kind="lead",
                              count=counts.get(status, 0), cards=cards, next_cursor=cursor, stage=status))
    deals = board_deals(access=access, filters=filters)
    stages = list(DealStage.objects.filter(is_active=True).order_by("position", "pk"))
    counts, totals = {}, {}
    for stage_id, currency, n, total in (
        deals.filter(stage__in=stages).order_by().values_list("stage_id", "currency")
        .annotate(n=Count("pk"), total=Sum("value")).order_by("stage_id", "currency")
    ):
        counts[stage_id] = counts.get(stage_id, 0) + n
        totals.setdefault(stage_id, []).append((currency, total))
    for stage in stages:
        cards, cursor = deal_cards(deals=deals, stage=stage)
        columns.append(Column(key=f"deal-{stage.pk}", title=stage.name, kind="deal", count=counts.get(stage.pk, 0),
                              totals=totals.get(stage.pk, []), cards=cards, next_cursor=cursor, stage=stage))
    return columns

