"""Leads' personal data out of the CRM: who may, what goes out (a list as CSV), and the record of each export."""

import csv
from collections.abc import Iterator

from django.core.exceptions import PermissionDenied

from core.events import Actor, EventType, events_record
from core.roles import user_can_export_personal_data

from .models import LeadExport


def _csv_safe(value) -> str:
    """Neutralise spreadsheet formulas (=, +, -, @) in user-entered text."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


CSV_COLUMNS = (
    ("id", lambda lead: lead.pk),
    ("first_name", lambda lead: lead.first_name),
    ("last_name", lambda lead: lead.last_name),
    ("email", lambda lead: lead.email),
    ("phone", lambda lead: lead.phone),
    ("title", lambda lead: lead.title),
    ("company", lambda lead: lead.company),
    ("status", lambda lead: lead.status),
    ("owner", lambda lead: lead.owner.get_username() if lead.owner_id else ""),
    ("source", lambda lead: lead.source.slug if lead.source_id else ""),
    ("campaign", lambda lead: lead.campaign.slug if lead.campaign_id else ""),
    ("persona", lambda lead: lead.persona),
    ("score", lambda lead: lead.score),
    ("created_at", lambda lead: lead.created_at.isoformat()),
    ("last_touch_at", lambda lead: lead.last_touch_at.isoformat() if lead.last_touch_at else ""),
)


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


def lead_export_csv(*, leads, by, filters: str = "", every_match: bool = False) -> tuple[LeadExport, Iterator[str]]:
    """Record an export of `leads` by `by`, and return the record and the CSV lines to send.

    Raises PermissionDenied, writing nothing, unless the permission policy lets
    `by` export personal data. The record (who, when, how many rows, the list's
    `filters`, and the ids unless `every_match` lead matching them was asked for)
    is written before any row is read, so an export cut short is on record too.
    """
    _check_may_export(by)
    leads = leads.select_related("company", "owner", "source", "campaign", "persona").order_by("pk")
    ids = [] if every_match else list(leads.values_list("pk", flat=True))
    export = LeadExport.objects.create(
        exported_by=by, row_count=leads.count() if every_match else len(ids), filters=filters, lead_ids=ids
    )
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow([name for name, _ in CSV_COLUMNS])
        for lead in leads.iterator(chunk_size=2000):
            yield writer.writerow([_csv_safe(get(lead)) for _, get in CSV_COLUMNS])

    return export, lines()
