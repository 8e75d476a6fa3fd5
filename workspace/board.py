"""The pipeline board: a column per lead stage up to SQL, then one per deal stage in use.

Reads only. The first screen costs a fixed number of queries whatever the number
of leads and of columns: a grouped count per kind of column, one query for the
first page of every column of a kind (each card's next open task comes in it as
two subqueries), and the deal stages. Cards are ordered longest in the stage
first, keyset-paged on (stage_entered_at, id), which the `lead_live_board` and
`deal_open_board` indexes hold in order.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils.dateparse import parse_datetime

from core.pagination import bounded_union
from core.policy import Access
from leads.models import Deal, DealStage, Lead, Task
from leads.money import money_format
from leads.pipeline import LeadStatus

LEAD_COLUMNS = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.NURTURING, LeadStatus.MQL, LeadStatus.SQL)
# Drop targets without cards: a lead ends there (with a reason) or, for Customer, by converting on its page.
END_TARGETS = (LeadStatus.CUSTOMER, LeadStatus.LOST, LeadStatus.DISQUALIFIED)
CARDS_PER_PAGE = 20


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

    @property
    def summary(self) -> str:
        """"12 leads", "3 deals · 12,000 EUR · 500 USD": the column's head, on the board and after a move."""
        noun = "deal" if self.kind == "deal" else "lead"
        parts = [f"{self.count:,} {noun}{'' if self.count == 1 else 's'}"]
        parts += [money_format(total, currency) for currency, total in self.totals]
        return " · ".join(parts)


def days_in_stage(entered_at, *, now: datetime) -> str:
    """“3 days in stage” since the card entered its column (“entered today” on the first day)."""
    if entered_at is None:
        return "in stage"
    days = max(0, (now - entered_at).days)
    if days == 0:
        return "entered today"
    return f"{days} day{'s' if days != 1 else ''} in stage"


def _next_task(field_name: str, lead_ref: str = "pk"):
    """The lead's next open task's `field_name` (its earliest due), as a subquery on the `task_lead` index."""
    return Subquery(
        Task.objects.filter(lead=OuterRef(lead_ref), completed_at__isnull=True)
        .order_by("due_at", "id").values(field_name)[:1]
    )


def board_leads(*, access: Access, filters: dict):
    """The live leads the user may see, narrowed by the board's filters (owner, source, campaign)."""
    return _narrowed(access.leads(Lead.objects.live()), access=access, filters=filters)


def _narrowed(leads, *, access: Access, filters: dict):
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
    return _pages(leads, "status", [status], cursor=cursor, limit=limit, related=_LEAD_RELATED)[status]


def deal_cards(*, deals, stage: DealStage, cursor=None, limit: int = CARDS_PER_PAGE):
    """One page of a deal column's cards (the lead, its company and owner with it) and the next page's cursor."""
    return _pages(deals, "stage_id", [stage.pk], cursor=cursor, limit=limit, related=_DEAL_RELATED)[stage.pk]


_LEAD_RELATED = ("owner", "company")
_DEAL_RELATED = ("lead", "lead__company", "lead__owner")
# What a card shows, and nothing else: a lead row has some twenty columns, most of them times to parse.
_PERSON = ("id", "username", "first_name", "last_name")
_LEAD_CARD = ("id", "first_name", "last_name", "email", "phone", "status", "stage_entered_at", "owner_id", "company_id",
              *(f"owner__{name}" for name in _PERSON), "company__id", "company__name")
_DEAL_CARD = ("id", "lead_id", "value", "currency", "product", "expected_close_on", "next_step", "stage_id",
              "stage_entered_at", "status", *(f"lead__{name}" for name in _LEAD_CARD))
_CARD_FIELDS = {"status": _LEAD_CARD, "stage_id": _DEAL_CARD}


def _pages(rows, column_field: str, keys: list, *, cursor=None, limit: int = CARDS_PER_PAGE, related=()) -> dict:
    """{key: (cards, next cursor)} for each column key, in one query whatever the number of columns.

    Each column's page is a bounded branch (its limit + 1 first ids on the board index, after `cursor`); the
    cards of every branch are then read by primary key together with their relations and next open task."""
    if not keys:
        return {}
    ordered = ("stage_entered_at", "pk")
    branches = [_after(rows.filter(**{column_field: key}), cursor).order_by(*ordered).values("pk")[: limit + 1]
                for key in keys]
    lead_ref = "lead_id" if column_field == "stage_id" else "pk"
    cards = (
        rows.model.objects.filter(pk__in=bounded_union(branches))
        .select_related(*related)
        .only(*_CARD_FIELDS[column_field])
        .annotate(next_task_title=_next_task("title", lead_ref), next_task_due=_next_task("due_at", lead_ref))
        .order_by(*ordered)
    )
    grouped = {key: [] for key in keys}
    for card in cards:
        grouped[getattr(card, column_field)].append(card)
    return {key: _page(found, limit) for key, found in grouped.items()}


def _page(rows: list, limit: int):
    if len(rows) > limit:
        return rows[:limit], _cursor(rows[limit - 1])
    return rows, ""


def deal_stages() -> list[DealStage]:
    """The board's deal columns, in order."""
    return list(DealStage.objects.filter(is_active=True).order_by("position", "pk"))


def lead_counts(*, access: Access, filters: dict) -> dict:
    """{status: live leads} of the lead columns, in one query: a grouped count per part of what the user sees
    (a rep's own leads, the pool), each from the owner index, added up."""
    parts = [
        _narrowed(part, access=access, filters=filters).filter(status__in=LEAD_COLUMNS).order_by()
        .values_list("status").annotate(n=Count("*"))
        for part in access.lead_parts(Lead.objects.live())
    ]
    counts = {}
    for status, n in parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]:
        counts[status] = counts.get(status, 0) + n
    return counts


def deal_counts_and_totals(deals, stages) -> tuple[dict, dict]:
    """({stage id: open deals}, {stage id: [(currency, value)]}) in one grouped query."""
    counts, totals = {}, {}
    for stage_id, currency, n, total in (
        deals.filter(stage__in=stages).order_by().values_list("stage_id", "currency")
        .annotate(n=Count("pk"), total=Sum("value")).order_by("stage_id", "currency")
    ):
        counts[stage_id] = counts.get(stage_id, 0) + n
        totals.setdefault(stage_id, []).append((currency, total))
    return counts, totals


def board(*, access: Access, filters: dict, stages: list[DealStage]) -> list[Column]:
    """Every column of the board with its count, totals and first page of cards, in four queries (lead counts,
    lead cards, deal counts and totals, deal cards) whatever the number of leads, deals and stages.

    Lead columns show a count only: summing their open deals' values would join every
    lead of the column to its deals (a lead usually has its first deal once it is an
    opportunity, which the deal columns show).
    """
    leads = board_leads(access=access, filters=filters)
    counts = lead_counts(access=access, filters=filters)
    pages = _pages(leads, "status", list(LEAD_COLUMNS), related=_LEAD_RELATED)
    columns = []
    for status in LEAD_COLUMNS:
        cards, cursor = pages[status]
        columns.append(Column(key=f"lead-{status}", title=LeadStatus(status).label, kind="lead",
                              count=counts.get(status, 0), cards=cards, next_cursor=cursor, stage=status))
    deals = board_deals(access=access, filters=filters)
    counts, totals = deal_counts_and_totals(deals, stages)
    pages = _pages(deals, "stage_id", [stage.pk for stage in stages], related=_DEAL_RELATED)
    for stage in stages:
        cards, cursor = pages[stage.pk]
        columns.append(Column(key=f"deal-{stage.pk}", title=stage.name, kind="deal", count=counts.get(stage.pk, 0),
                              totals=totals.get(stage.pk, []), cards=cards, next_cursor=cursor, stage=stage))
    return columns
