"""The figures a manager can open: each names the rows behind it (the drill-down sums to the figure) and how
they are listed on the page and in the CSV."""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.utils import timezone

from leads.exports import _csv_safe
from leads.models import Objection
from leads.pipeline import LeadStatus

from .ranges import DateRange, Slice
from .selectors import attention, funnel, objections, pipeline, sales


@dataclass(frozen=True)
class Column:
    label: str
    value: Callable


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _owner(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


LEAD_COLUMNS = (
    Column("Lead", lambda lead: lead.pk),
    Column("Created", lambda lead: _when(lead.created_at)),
    Column("Stage now", lambda lead: lead.get_status_display()),
    Column("Source", lambda lead: lead.source.name if lead.source_id else ""),
    Column("Campaign", lambda lead: lead.campaign.name if lead.campaign_id else ""),
    Column("Owner", lambda lead: _owner(lead.owner)),
)
ENTRY_COLUMNS = (
    Column("Lead", lambda change: change.lead_id),
    Column("Entered", lambda change: _when(change.changed_at)),
    Column("From", lambda change: change.get_from_status_display() if change.from_status else ""),
    Column("To", lambda change: change.get_to_status_display()),
    Column("Lead created", lambda change: _when(change.lead.created_at)),
)
OBJECTION_COLUMNS = (
    Column("Lead", lambda objection: objection.lead_id),
    Column("Raised", lambda objection: _when(objection.created_at)),
    Column("Category", lambda objection: objection.get_category_display()),
    Column("Resolved", lambda objection: _when(objection.resolved_at) if objection.is_resolved else "no"),
    Column("By", lambda objection: _owner(objection.raised_by)),
)
DEAL_COLUMNS = (
    Column("Deal", lambda deal: deal.pk),
    Column("Lead", lambda deal: deal.lead_id),
    Column("Status", lambda deal: deal.get_status_display()),
    Column("Value", lambda deal: deal.value),
    Column("Currency", lambda deal: deal.currency),
    Column("Created", lambda deal: _when(deal.created_at)),
    Column("Closed", lambda deal: _when(deal.closed_at)),
    Column("Owner", lambda deal: _owner(deal.owner)),
)


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    report: str  # the report it belongs to (core.policy.may_view_reports)
    rows: Callable[[DateRange, Slice], object]
    columns: tuple[Column, ...]


def _leads(query):
    return query.select_related("source", "campaign", "owner").order_by("created_at", "pk")


def _entries(query):
    return query.select_related("lead").order_by("changed_at", "pk")


def _deals(query):
    return query.select_related("owner").order_by("closed_at", "pk")


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
               lambda r, p: pipeline.open_deals(p).select_related("owner").order_by("expected_close_on", "pk"),
               DEAL_COLUMNS),
        *(Figure(f"open-{status}", f"Open leads now: {LeadStatus(status).label}", "sales",
                 lambda r, p, status=status: _leads(pipeline.open_leads(p).filter(status=status)), LEAD_COLUMNS)
          for status in pipeline.OPEN_FUNNEL),
        *(Figure(f"objections-{category}", f"Objections: {label}", "objections",
                 lambda r, p, category=category: objections.objections_in(r, p).filter(category=category)
                 .select_related("raised_by").order_by("created_at", "pk"), OBJECTION_COLUMNS)
          for category, label in Objection.Category.choices),
        *(Figure(f"stuck-{status}", f"Stuck leads: {LeadStatus(status).label}", "sales",
                 lambda r, p, status=status: _leads(attention.stuck_leads(r, p, status)), LEAD_COLUMNS)
          for status in pipeline.OPEN_FUNNEL),
    )
}


class _Echo:
    def write(self, value):
        return value


def csv_lines(figure: Figure, rows) -> Iterator[str]:
    """The figure's rows as CSV lines (a header first); text that a spreadsheet would run as a formula is quoted."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([column.label for column in figure.columns])
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([_csv_safe(column.value(row)) for column in figure.columns])
