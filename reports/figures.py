"""The figures a manager can open: each names the rows behind it (the drill-down sums to the figure) and how
they are listed on the page and in the CSV."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core.people import person_name
from core.tabular import DATETIME, INTEGER, NUMBER, Column
from leads.models import Objection
from leads.pipeline import FUNNEL, LeadStatus
from nurturing.models import Sequence

from .selectors import attention, cohorts, funnel, nurturing, objections, pipeline, reps, sales

LEAD_COLUMNS = (
    Column("Lead", lambda lead: lead.pk, INTEGER),
    Column("Created", lambda lead: lead.created_at, DATETIME),
    Column("Stage now", lambda lead: lead.get_status_display()),
    Column("Source", lambda lead: lead.source.name if lead.source_id else ""),
    Column("Campaign", lambda lead: lead.campaign.name if lead.campaign_id else ""),
    Column("Owner", lambda lead: person_name(lead.owner)),
)
ENTRY_COLUMNS = (
    Column("Lead", lambda change: change.lead_id, INTEGER),
    Column("Entered", lambda change: change.changed_at, DATETIME),
    Column("From", lambda change: change.get_from_status_display() if change.from_status else ""),
    Column("To", lambda change: change.get_to_status_display()),
    Column("Lead created", lambda change: change.lead.created_at, DATETIME),
)
ACTIVITY_COLUMNS = (
    Column("Lead", lambda activity: activity.lead_id, INTEGER),
    Column("When", lambda activity: activity.occurred_at, DATETIME),
    Column("Kind", lambda activity: activity.get_kind_display()),
    Column("Outcome", lambda activity: activity.get_outcome_display() if activity.outcome else ""),
    Column("By", lambda activity: person_name(activity.author)),
)
DELIVERY_COLUMNS = (
    Column("Lead", lambda delivery: delivery.enrollment.lead_id, INTEGER),
    Column("Sent", lambda delivery: delivery.sent_at, DATETIME),
    Column("Step", lambda delivery: delivery.step.position, INTEGER),
    Column("Status", lambda delivery: delivery.get_status_display()),
)
OBJECTION_COLUMNS = (
    Column("Lead", lambda objection: objection.lead_id, INTEGER),
    Column("Raised", lambda objection: objection.created_at, DATETIME),
    Column("Category", lambda objection: objection.get_category_display()),
    Column("Resolved", lambda objection: objection.resolved_at if objection.is_resolved else None, DATETIME),
    Column("By", lambda objection: person_name(objection.raised_by)),
)
STAY_COLUMNS = (
    Column("Lead", lambda change: change.lead_id, INTEGER),
    Column("Stage", lambda change: change.get_from_status_display()),
    Column("Days in it", lambda change: round(change.time_in_from_stage.total_seconds() / 86400, 4), NUMBER),
    Column("Left", lambda change: change.changed_at, DATETIME),
    Column("To", lambda change: change.get_to_status_display()),
)
DEAL_COLUMNS = (
    Column("Deal", lambda deal: deal.pk, INTEGER),
    Column("Lead", lambda deal: deal.lead_id, INTEGER),
    Column("Status", lambda deal: deal.get_status_display()),
    Column("Value", lambda deal: deal.value, NUMBER),
    Column("Currency", lambda deal: deal.currency),
    Column("Created", lambda deal: deal.created_at, DATETIME),
    Column("Closed", lambda deal: deal.closed_at, DATETIME),
    Column("Lead created", lambda deal: deal.lead.created_at, DATETIME),
    Column("Owner", lambda deal: person_name(deal.owner)),
)


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    report: str  # the report it belongs to (core.policy.may_view_reports)
    rows: Callable[..., object]  # (range, slice, **what `params` read)
    columns: tuple[Column, ...]
    # For a figure of one row or cell (a sequence, a cohort month): reads its own parameters from the address,
    # -> (keyword arguments for `rows`, a caption naming the row); ValueError with what to fix if they are wrong.
    params: Callable[[dict], tuple[dict, str]] | None = None


def _sequence_param(get) -> tuple[dict, str]:
    try:
        pk = int(get.get("sequence", ""))
    except ValueError:
        raise ValueError("Name the sequence by its number (sequence=12).") from None
    name = Sequence.objects.filter(pk=pk).values_list("name", flat=True).first()
    if name is None:
        raise ValueError(f"There is no sequence #{pk}.")
    return {"sequence_id": pk}, f"Sequence: {name}"


def _cohort_params(get) -> tuple[dict, str]:
    try:
        month = datetime.strptime(get.get("month", ""), "%Y-%m").date()
    except ValueError:
        raise ValueError("Name the month the leads were created in as YYYY-MM (month=2026-03).") from None
    target = get.get("cohort_target") or "customer"
    if target not in cohorts.TARGETS:
        raise ValueError(f"cohort_target is one of {', '.join(cohorts.TARGETS)}.")
    after = get.get("after")
    if after in (None, ""):
        return {"month": month, "after": None, "target": target}, f"Created in {month:%B %Y}"
    if not after.isdigit():
        raise ValueError("after is a number of months after the month created (after=0 for the same month).")
    return ({"month": month, "after": int(after), "target": target},
            f"Created in {month:%B %Y}, {target.upper()} reached by the end of month +{int(after)}")


def _leads(query):
    return query.select_related("source", "campaign", "owner").order_by("created_at", "pk")


def _entries(query):
    return query.select_related("lead").order_by("changed_at", "pk")


def _deals(query):
    return query.select_related("owner", "lead").order_by("closed_at", "pk")


def _funnel_figures():
    for key, label in (("leads", "Leads"), *((k, s.label) for k, s in funnel.STEPS)):
        yield Figure(f"cohort-{key}", f"Cohort funnel: {label}", "funnel",
                     lambda r, p, key=key: _leads(funnel.cohort_reached(r, p, key)), LEAD_COLUMNS)
        if key == "leads":
            yield Figure("period-leads", "Period funnel: Leads", "funnel",
                         lambda r, p: _leads(funnel.cohort_leads(r, p)), LEAD_COLUMNS)
        else:
            yield Figure(f"period-{key}", f"Period funnel: entries into {label}", "funnel",
                         lambda r, p, key=key: _entries(funnel.period_entries(r, p, key)), ENTRY_COLUMNS)


FIGURES = {
    figure.key: figure
    for figure in (
        *_funnel_figures(),
        Figure("deals-won", "Deals won", "sales", lambda r, p: _deals(sales.closed_deals(r, p, "won")), DEAL_COLUMNS),
        Figure("deals-lost", "Deals lost", "sales", lambda r, p: _deals(sales.closed_deals(r, p, "lost")), DEAL_COLUMNS),
        Figure("deals-open", "Open deals now", "sales",
               lambda r, p: pipeline.open_deals(p).select_related("owner", "lead").order_by("expected_close_on", "pk"),
               DEAL_COLUMNS),
        *(Figure(f"open-{status}", f"Open leads now: {LeadStatus(status).label}", "sales",
                 lambda r, p, status=status: _leads(pipeline.open_leads(p).filter(status=status)), LEAD_COLUMNS)
          for status in pipeline.OPEN_FUNNEL),
        *(Figure(f"objections-{category}", f"Objections: {label}", "objections",
                 lambda r, p, category=category: objections.objections_in(r, p).filter(category=category)
                 .select_related("raised_by").order_by("created_at", "pk"), OBJECTION_COLUMNS)
          for category, label in Objection.Category.choices),
        *(Figure(f"stays-{status}", f"Stays ended in {LeadStatus(status).label}, shortest first", "sales",
                 # In the order the median and p90 are counted in: row n of the list is the value at rank n.
                 lambda r, p, status=status: sales.stays_ended(r, p, status)
                 .order_by("time_in_from_stage", "pk"), STAY_COLUMNS)
          for status in FUNNEL[:-1]),
        *(Figure(f"stuck-{status}", f"Stuck leads: {LeadStatus(status).label}", "attention",
                 lambda r, p, status=status: _leads(attention.stuck_leads(r, p, status)), LEAD_COLUMNS)
          for status in pipeline.OPEN_FUNNEL),
        Figure("rep-calls", "Calls logged", "reps",
               lambda r, p: reps.calls(r, p).select_related("author").order_by("occurred_at", "pk"), ACTIVITY_COLUMNS),
        Figure("rep-connects", "Calls that connected", "reps",
               lambda r, p: reps.calls(r, p, connected=True).select_related("author").order_by("occurred_at", "pk"),
               ACTIVITY_COLUMNS),
        Figure("rep-meetings", "Meetings logged", "reps",
               lambda r, p: reps.meetings(r, p).select_related("author").order_by("occurred_at", "pk"),
               ACTIVITY_COLUMNS),
        Figure("rep-objections", "Objections logged", "reps",
               lambda r, p: reps.objections_logged(r, p).select_related("raised_by").order_by("created_at", "pk"),
               OBJECTION_COLUMNS),
        Figure("rep-conversions", "Conversions", "reps", lambda r, p: _entries(reps.conversions(r, p)), ENTRY_COLUMNS),
        Figure("rep-deals-won", "Deals won by their owner", "reps", lambda r, p: _deals(reps.deals_won(r, p)),
               DEAL_COLUMNS),
        *(Figure(f"sequence-{counted}", title, "nurturing",
                 lambda r, p, sequence_id, counted=counted: nurturing.sequence_deliveries(r, p, sequence_id, counted)
                 .select_related("enrollment", "step").order_by("sent_at", "pk"), DELIVERY_COLUMNS, _sequence_param)
          for counted, title in (("sent", "Emails sent"), ("opened", "Emails opened by a person"),
                                 ("clicked", "Emails clicked by a person"), ("replied", "Emails replied to"),
                                 ("unsubscribed", "Emails unsubscribed from"), ("bounced", "Emails bounced"))),
        Figure("sequence-advances", "Stage moves made by the sequence", "nurturing",
               lambda r, p, sequence_id: _entries(nurturing.sequence_advances(r, p, sequence_id)), ENTRY_COLUMNS,
               _sequence_param),
        Figure("sequence-influenced", "Deals won after the sequence's emails", "nurturing",
               lambda r, p, sequence_id: _deals(nurturing.influenced_deals(r, p, sequence_id)), DEAL_COLUMNS,
               _sequence_param),
        Figure("cohort-cell", "Cohort leads", "cohorts",
               lambda r, p, month, after, target: _leads(cohorts.cohort_cell_leads(r, p, month, after, target)),
               LEAD_COLUMNS, _cohort_params),
        Figure("cold", "Cold leads", "attention", lambda r, p: _leads(attention.cold_leads(p)), LEAD_COLUMNS),
        Figure("cold-unassigned", "Cold leads nobody owns", "attention",
               lambda r, p: _leads(attention.cold_leads(p, unassigned=True)), LEAD_COLUMNS),
    )
}
