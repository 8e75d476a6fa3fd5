"""Leads' personal data out of the CRM: who may, what goes out (a list as CSV or XLSX), and the record of each export.

Each list (leads, deals, the event log) is described once, as columns a person
reads: the stage "MQL" (not "mql"), an owner's full name, times in the team's
time zone, money as a number beside its currency. `list_export` records the
export, then hands back the rows to stream (CSV) or the file to send (XLSX);
core.tabular writes them, formula-safe.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import QueryDict

from core.events import Actor, EventType, actor_label, event_record, events_record, payload_label
from core.people import person_name
from core.roles import user_can_export_personal_data
from core.tabular import (
    DATE,
    DATETIME,
    INTEGER,
    NUMBER,
    XLSX_MAX_ROWS,
    Column,
    attachment_response,
    csv_lines,
    export_filename,
    xlsx_file,
)

from . import pipeline
from .models import LeadExport

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Query parameters that page or flag a list rather than filter it: left out of file names.
_NOT_FILTERS = {"p", "page", "e", "o", "sort", "_changelist_filters"}
# Rows read from the database at a time while writing: memory stays flat with the list's length.
CHUNK_ROWS = 2000


def _event_type_label(type: str) -> str:
    return EventType(type).label if type in EventType.values else type


@dataclass(frozen=True)
class ListSpec:
    """A list that can be exported: its name (file names, the record), its columns, what to load with each row."""

    name: str
    kind: str
    columns: tuple[Column, ...]
    related: tuple[str, ...]
    lead_id: str  # the row's field holding its lead's id


LEADS = ListSpec(
    name="leads",
    kind=LeadExport.Kind.LEAD_LIST,
    related=("company", "owner", "source", "campaign", "persona"),
    lead_id="pk",
    columns=(
        Column("ID", attrgetter("pk"), INTEGER),
        Column("First name", attrgetter("first_name")),
        Column("Last name", attrgetter("last_name")),
        Column("Email", attrgetter("email")),
        Column("Phone", attrgetter("phone")),
        Column("Job title", attrgetter("title")),
        Column("Company", lambda lead: lead.company.name if lead.company_id else ""),
        Column("Stage", lambda lead: pipeline.label(lead.status)),
        Column("Lost reason", attrgetter("lost_reason")),
        Column("Owner", lambda lead: person_name(lead.owner)),
        Column("Source", lambda lead: lead.source.name if lead.source_id else ""),
        Column("Campaign", lambda lead: lead.campaign.name if lead.campaign_id else ""),
        Column("Persona", lambda lead: lead.persona.name if lead.persona_id else ""),
        Column("Score", attrgetter("score"), INTEGER),
        Column("Created", attrgetter("created_at"), DATETIME),
        Column("In stage since", attrgetter("stage_entered_at"), DATETIME),
        Column("Last touch", attrgetter("last_touch_at"), DATETIME),
    ),
)

DEALS = ListSpec(
    name="deals",
    kind=LeadExport.Kind.DEAL_LIST,
    related=("lead", "owner", "customer"),
    lead_id="lead_id",
    columns=(
        Column("ID", attrgetter("pk"), INTEGER),
        Column("Product", attrgetter("product")),
        Column("Lead", lambda deal: deal.lead.full_name),
        Column("Lead email", lambda deal: deal.lead.email),
        Column("Lead ID", attrgetter("lead_id"), INTEGER),
        Column("Customer", lambda deal: deal.customer.name if deal.customer_id else ""),
        Column("Owner", lambda deal: person_name(deal.owner)),
        Column("Value", attrgetter("value"), NUMBER),
        Column("Currency", attrgetter("currency")),
        Column("Status", lambda deal: deal.get_status_display()),
        Column("Created", attrgetter("created_at"), DATETIME),
        Column("Expected close", attrgetter("expected_close_on"), DATE),
        Column("Closed", attrgetter("closed_at"), DATETIME),
        Column("Lost reason", attrgetter("lost_reason")),
    ),
)

EVENTS = ListSpec(
    name="events",
    kind=LeadExport.Kind.EVENT_LIST,
    related=("actor_user",),
    lead_id="lead_id",
    columns=(
        Column("ID", attrgetter("pk"), INTEGER),
        Column("Occurred", attrgetter("occurred_at"), DATETIME),
        Column("Event", lambda event: _event_type_label(event.type)),
        Column("Lead ID", attrgetter("lead_id"), INTEGER),
        Column("Subject", lambda event: f"{event.subject_type} #{event.subject_id}" if event.subject_type else ""),
        Column("By", actor_label),
        Column("Details", payload_label),
    ),
)


@dataclass
class Export:
    """An export on record, ready to send: CSV `lines` to stream, or an XLSX `file` (a temporary file)."""

    record: LeadExport
    filename: str
    content_type: str
    lines: Iterator[str] | None = None
    file: object = None

    def as_response(self):
        """The download: the CSV streamed as it is written, the XLSX sent from its temporary file."""
        return attachment_response(filename=self.filename, content_type=self.content_type, lines=self.lines, file=self.file)


def _check_may_export(by) -> None:
    if not user_can_export_personal_data(by):
        raise PermissionDenied("Exporting leads' personal data needs the export permission, which managers have.")


def person_export_record(*, lead_ids: list[int], by) -> LeadExport:
    """Record that `by` takes everything stored about one person (its lead rows `lead_ids`) out of the CRM.

    Raises PermissionDenied, writing nothing, unless the permission policy lets
    `by` export personal data. Call it in the transaction that reads the data.
    """
    _check_may_export(by)
    export = LeadExport.objects.create(
        kind=LeadExport.Kind.PERSON, exported_by=by, row_count=len(lead_ids), lead_ids=sorted(lead_ids)
    )
    events_record(EventType.PERSON_EXPORTED, actor=Actor.of(by), lead_ids=sorted(lead_ids), payload={"export": export.pk})
    return export


def _filter_summary(filters: str) -> dict[str, str]:
    query = QueryDict(filters)
    return {key: value for key, value in query.items() if key not in _NOT_FILTERS}


def list_export(*, spec: ListSpec, rows, by, file_format: str, filters: str = "", ticked: bool = False) -> Export:
    """Record an export of the list `rows` (a queryset of `spec`'s rows, filtered as the user sees it) by `by`.

    Raises PermissionDenied unless the permission policy lets `by` export
    personal data, and ValidationError for an unknown format or a list longer
    than CRM_EXPORT_MAX_ROWS (or than a sheet holds), writing nothing. The
    record (LeadExport: who, when, which list, how many rows, the list's
    `filters` as a query string, and the leads' ids when the rows were `ticked`
    one by one) and a `list.exported` event naming it are written before any row is read,
    so an export cut short is on record too. The rows are then read in chunks.
    """
    _check_may_export(by)
    if file_format not in FORMATS:
        raise ValidationError({"format": f"Export as csv or xlsx, not {file_format[:20]!r}."})
    rows = rows.select_related(*spec.related)
    if not rows.ordered:
        rows = rows.order_by("pk")
    count = rows.count()
    cap = settings.CRM_EXPORT_MAX_ROWS if file_format == "csv" else min(settings.CRM_EXPORT_MAX_ROWS, XLSX_MAX_ROWS)
    if count > cap:
        raise ValidationError(
            f"This list has {count:,} rows and an export holds at most {cap:,}"
            f"{' in a spreadsheet: export it as CSV, or' if cap < settings.CRM_EXPORT_MAX_ROWS else ':'} narrow the filters "
            "(a stage, an owner, a date range) and export again."
        )
    lead_ids = []
    if ticked:
        lead_ids = sorted({pk for pk in rows.order_by().values_list(spec.lead_id, flat=True) if pk is not None})
    with transaction.atomic():
        record = LeadExport.objects.create(
            kind=spec.kind, file_format=file_format, exported_by=by, row_count=count, filters=filters, lead_ids=lead_ids
        )
        event_record(
            EventType.LIST_EXPORTED, actor=Actor.of(by), subject=record,
            # The filters (a search may name a person) stay on the record, which the event points to.
            payload={"list": spec.name, "format": file_format, "rows": count},
        )
    filename = export_filename(spec.name, filters=_filter_summary(filters), extension=file_format)
    stream = rows.iterator(chunk_size=CHUNK_ROWS)
    if file_format == "csv":
        return Export(record, filename, FORMATS["csv"], lines=csv_lines(spec.columns, stream))
    return Export(record, filename, FORMATS["xlsx"], file=xlsx_file(spec.columns, stream, title=spec.name.title()))
