"""How far each lead got in the funnel, kept on the lead for the reports.

A lead *reached* a qualified stage (MQL, SQL, opportunity, customer) when its
stage history first entered that stage or one after it in the funnel: a lead
made SQL on day one reached MQL at that moment too; one recycled from SQL to
nurturing still reached SQL; one lost at MQL reached MQL. `Lead.reached_mql_at`
and the three after it hold the first such moment, or nothing.

They are a copy of what the stage history says, kept by whoever writes the
history, in the same transaction: the stage service sets them as a lead moves
(moves are in time order, so the first entry is the earliest); a historical
import, a merge and its undo, which add or move history rows in bulk, call
`refresh_reached` for the leads they touched. `refresh_reached` recomputes
from the history, so it is also how a test proves the copy right.
"""

from django.db import connection
from django.db.models import F, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from core.batches import batched

from .models import Lead, StageChange
from .pipeline import LeadStatus

# The qualified stages in funnel order, each with the lead field holding when it was first reached.
REACHED = (
    (LeadStatus.MQL, "reached_mql_at"),
    (LeadStatus.SQL, "reached_sql_at"),
    (LeadStatus.OPPORTUNITY, "reached_opportunity_at"),
    (LeadStatus.CUSTOMER, "reached_customer_at"),
)
REACHED_FIELD = dict(REACHED)


def at_or_after(status: str) -> list[str]:
    """`status` and the qualified stages after it: entering any of them reaches `status`."""
    statuses = [s for s, _ in REACHED]
    return statuses[statuses.index(status):]


def has_reached(status: str, prefix: str = "") -> Q:
    """Leads (reached through `prefix`) that have reached `status` (MQL, SQL, opportunity or customer)."""
    return Q(**{f"{prefix}{REACHED_FIELD[status]}__isnull": False})


def reached_on_move(to_status: str, at) -> dict:
    """The fields a move into `to_status` at `at` sets on the lead (as update() expressions): every stage it
    reaches that the lead had not reached before."""
    if to_status not in REACHED_FIELD:
        return {}
    return {field: Coalesce(F(field), Value(at)) for status, field in REACHED if to_status in at_or_after(status)}


def _first_entry(status: str, change_model):
    return Subquery(
        change_model.objects.filter(lead=OuterRef("pk"), to_status__in=at_or_after(status))
        .order_by().values("lead").annotate(at=Min("changed_at")).values("at")
    )


def refresh_reached(lead_ids, *, lead_model=Lead, change_model=StageChange) -> None:
    """Recompute the reached fields of these leads from their stage history. (The models: a data migration's.)"""
    for chunk in batched(sorted(set(lead_ids)), 1000):
        lead_model.objects.filter(pk__in=chunk).update(
            **{field: _first_entry(status, change_model) for status, field in REACHED}
        )


def refresh_all_reached(*, lead_model=Lead, change_model=StageChange) -> None:
    """Recompute every lead's reached fields (a data migration, a bulk load): on PostgreSQL one pass over the
    qualified stage changes, elsewhere lead by lead in chunks."""
    if connection.vendor != "postgresql":
        refresh_reached(lead_model.objects.values_list("pk", flat=True), lead_model=lead_model,
                        change_model=change_model)
        return
    firsts = ", ".join(
        f"MIN(changed_at) FILTER (WHERE to_status IN ({', '.join(repr(str(s)) for s in at_or_after(status))})) AS {field}"
        for status, field in REACHED
    )
    assignments = ", ".join(f"{field} = firsts.{field}" for _, field in REACHED)
    qualified = ", ".join(repr(str(s)) for s, _ in REACHED)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {lead_model._meta.db_table} AS lead SET {assignments} "
            f"FROM (SELECT lead_id, {firsts} FROM {change_model._meta.db_table} "
            f"WHERE to_status IN ({qualified}) GROUP BY lead_id) AS firsts WHERE firsts.lead_id = lead.id"
        )
