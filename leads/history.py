"""A pipeline's history brought in from elsewhere: one lead and one deal per opportunity, with their real dates.

Each opportunity (a row of a deal export: its id, owner, product, account,
stage, engage date, close date, value) becomes:
- its account's Company (by name, any case: `companies_for_names`);
- a lead created at the engage date, carrying the opportunity's id as its
  `external_ref` (unique: the same opportunity is never imported twice; such
  a lead needs no email or phone, as deal exports rarely carry a contact);
- its stage history with the real dates: — → New and New → the stage reached
  at the engage date (an open stage, or Opportunity for a closed deal), then
  → Customer (won) or → Lost at the close date;
- a Deal created at the engage date with its value, product, currency and
  status, `closed_at` the close date, and for a won deal the Customer (the
  account's, else the person's), who became one at the earliest won date.
So win rate, deal size, time to close, sales cycle and cohorts read right.

Events: each lead, stage change and deal gets its event at its real time,
the actor being the import job with `"history": true` in its reference.
History is not news: the outbound webhooks skip such events (outbound.fanout),
and no signal is sent (nothing to stop: the leads are new, in no sequence);
nothing enrols them or makes tasks for them.

A batch takes a fixed number of queries; the caller runs it in one transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from core.emails import normalize_email
from core.events import Actor, EventType, events_record_each

from .importing import companies_for_names, email_errors
from .models import Customer, Deal, Lead, StageChange
from .pipeline import FUNNEL, OPEN_STATUSES, LeadStatus
from .reach import refresh_reached
from .services import _clean_currency, _clean_money

WON, LOST = "won", "lost"
# What a stage of the file may stand for: an open stage of the pipeline, won or lost.
OUTCOMES = {**{status.value: f"Open: {status.label}" for status in FUNNEL if status in OPEN_STATUSES},
            WON: "Won (customer)", LOST: "Lost"}
REF_MAX = Lead._meta.get_field("external_ref").max_length


@dataclass
class HistoryRow:
    """One opportunity as read from a file, before it is checked (`history_row_clean`)."""

    external_ref: str
    outcome: str
    engaged_at: datetime | None
    closed_at: datetime | None = None
    value: object = None
    currency: str = ""
    product: str = ""
    company: str = ""
    owner: object = None
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    stage_label: str = ""

    @property
    def is_closed(self) -> bool:
        return self.outcome in (WON, LOST)


def history_row_clean(row: HistoryRow, *, now: datetime | None = None) -> HistoryRow:
    """Check one opportunity as its import would write it, without a query; the values are made ready in place.

    Refused (ValidationError keyed by field): no id, an outcome that is not one of OUTCOMES, no engage date,
    an engage or close date in the future, a closed deal without a close date, a close before the engage
    date, a won deal without a value, an amount that is not one, an invalid email. An open deal's close date
    is its expected close; its value may be blank (0).
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    row.external_ref = (row.external_ref or "").strip()
    if not row.external_ref:
        errors["external_ref"] = ["Give the opportunity's id: it is how a second import of the file knows the row."]
    elif len(row.external_ref) > REF_MAX:
        errors["external_ref"] = [f"An id of at most {REF_MAX} characters."]
    if row.outcome not in OUTCOMES:
        label = f"{row.stage_label!r}" if row.stage_label else "(blank)"
        errors["stage"] = [f"the stage {label} is not mapped to a pipeline stage, won or lost"]
    if row.engaged_at is None:
        errors["engaged_at"] = ["Give the date the deal was engaged (created)."]
    elif row.engaged_at > now:
        errors["engaged_at"] = ["That date is in the future: a history has happened."]
    if row.is_closed:
        if row.closed_at is None:
            errors["closed_at"] = [f"A {row.outcome} deal needs its close date."]
        elif row.closed_at > now:
            errors["closed_at"] = [f"A {row.outcome} deal cannot close in the future."]
        elif row.engaged_at is not None and row.closed_at < row.engaged_at:
            errors["closed_at"] = ["The deal closes before it was engaged."]
    if row.value in (None, ""):
        if row.outcome == WON:
            errors["value"] = ["A won deal needs its value."]
        row.value = Decimal("0")
    else:
        try:
            row.value = _clean_money(row.value, "value")
        except ValidationError as exc:
            errors.update(exc.message_dict)
    try:
        row.currency = _clean_currency(row.currency)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    row.email = normalize_email(row.email or "")
    if row.email:
        try:
            validate_email(row.email)
        except ValidationError:
            errors["email"] = [f"{row.email!r} is not an email address."]
    for name, limit in (("first_name", 100), ("last_name", 100), ("phone", 40), ("product", 200)):
        if len(getattr(row, name)) > limit:
            errors[name] = [f"At most {limit} characters."]
    if errors:
        raise ValidationError(errors)
    return row


def refs_taken(refs) -> dict[str, int]:
    """Of `refs` (opportunity ids), those a lead was already imported from, with its id: one query."""
    refs = sorted({ref for ref in refs if ref})
    if not refs:
        return {}
    return dict(Lead.objects.filter(external_ref__in=refs).values_list("external_ref", "pk"))


def _path(row: HistoryRow) -> list[tuple[str, datetime]]:
    """The stages the lead went through after New, with when it entered each."""
    if row.outcome == WON:
        return [(LeadStatus.OPPORTUNITY, row.engaged_at), (LeadStatus.CUSTOMER, row.closed_at)]
    if row.outcome == LOST:
        return [(LeadStatus.OPPORTUNITY, row.engaged_at), (LeadStatus.LOST, row.closed_at)]
    return [] if row.outcome == LeadStatus.NEW else [(row.outcome, row.engaged_at)]


def _customers(rows: list[HistoryRow], leads: list[Lead]) -> dict[int, Customer]:
    """The Customer of each won row's lead (by the lead's id): the company's (made, or moved earlier to the
    earliest won date), else the person's. Three queries at most."""
    won = [(row, lead) for row, lead in zip(rows, leads, strict=True) if row.outcome == WON]
    first_won: dict[int, tuple[datetime, Lead]] = {}
    for row, lead in won:
        if lead.company_id and (lead.company_id not in first_won or row.closed_at < first_won[lead.company_id][0]):
            first_won[lead.company_id] = (row.closed_at, lead)
    by_company = {c.company_id: c for c in Customer.objects.filter(company_id__in=list(first_won))}
    made, earlier = [], []
    for company_id, (at, lead) in first_won.items():
        customer = by_company.get(company_id)
        if customer is None:
            by_company[company_id] = customer = Customer(name=lead.company.name, company_id=company_id,
                                                         primary_lead=lead, became_customer_at=at)
            made.append(customer)
        elif at < customer.became_customer_at:
            customer.became_customer_at = at
            earlier.append(customer)
    by_lead = {}
    for row, lead in won:
        if lead.company_id:
            by_lead[lead.pk] = by_company[lead.company_id]
        else:
            by_lead[lead.pk] = customer = Customer(name=str(lead) or row.external_ref, primary_lead=lead,
                                                   became_customer_at=row.closed_at)
            made.append(customer)
    Customer.objects.bulk_create(made)
    if earlier:
        Customer.objects.bulk_update(earlier, ["became_customer_at"])
    return by_lead


def history_import_batch(*, rows: list[HistoryRow], made_by: Actor, by=None, reason: str = "Imported") -> list[Deal]:
    """Write each of `rows` (checked again here) as its lead, stage history, deal and customer: all or none.

    Refused (ValidationError, nothing written) when a row is invalid, two rows or a lead already imported
    share an opportunity id, or two rows or a live lead share an email. `made_by` is the import job; its
    reference gets `"history": true` on every event. Returns the deals.
    """
    with transaction.atomic():
        now, errors = timezone.now(), {}
        for index, row in enumerate(rows):
            try:
                history_row_clean(row, now=now)
            except ValidationError as exc:
                errors[f"row {index}"] = exc.messages
        refs = [row.external_ref for row in rows]
        if len(refs) != len(set(refs)):
            errors["external_ref"] = ["Two rows of the batch have the same opportunity id."]
        taken = refs_taken(refs)
        if taken:
            errors["external_ref"] = [f"Opportunity {ref} was already imported (lead #{pk})." for ref, pk in taken.items()]
        errors.update(email_errors(row.email for row in rows))
        if errors:
            raise ValidationError(errors)
        companies = companies_for_names(row.company for row in rows)
        leads = []
        for row in rows:
            path = _path(row)
            status, entered = path[-1] if path else (LeadStatus.NEW, row.engaged_at)
            lead = Lead(
                external_ref=row.external_ref, email=row.email, first_name=row.first_name, last_name=row.last_name,
                phone=row.phone, company=companies.get((row.company or "").strip()[:200].lower()), owner=row.owner,
                status=status, stage_entered_at=entered, created_at=row.engaged_at,
                lost_reason=f"Deal lost ({row.stage_label or 'imported'})" if row.outcome == LOST else "",
            )
            lead.search_text = lead.build_search_text()
            leads.append(lead)
        Lead.objects.bulk_create(leads)
        changes = []
        for row, lead in zip(rows, leads, strict=True):
            previous, since = "", row.engaged_at
            for status, at in [(LeadStatus.NEW, row.engaged_at), *_path(row)]:
                changes.append(StageChange(
                    lead=lead, from_status=previous, to_status=status, changed_at=at, changed_by=by,
                    actor="" if by is not None else "import", reason=reason,
                    time_in_from_stage=(at - since) if previous else None,
                ))
                previous, since = status, at
        StageChange.objects.bulk_create(changes)
        refresh_reached(lead.pk for lead in leads)
        customers = _customers(rows, leads)
        deals = [
            Deal(lead=lead, customer=customers.get(lead.pk), owner=row.owner, product=row.product, value=row.value,
                 currency=row.currency, created_at=row.engaged_at,
                 status={WON: Deal.Status.WON, LOST: Deal.Status.LOST}.get(row.outcome, Deal.Status.OPEN),
                 closed_at=row.closed_at if row.is_closed else None,
                 expected_close_on=timezone.localdate(row.closed_at) if row.closed_at and not row.is_closed else None,
                 lost_reason=f"Lost ({row.stage_label or 'imported'})" if row.outcome == LOST else "")
            for row, lead in zip(rows, leads, strict=True)
        ]
        Deal.objects.bulk_create(deals)
        _record_events(leads, changes, deals, made_by=made_by)
        return deals


def _record_events(leads, changes, deals, *, made_by: Actor) -> None:
    actor = Actor(made_by.kind, user=made_by.user, ref={**made_by.ref, "history": True})
    events_record_each(EventType.LEAD_CREATED, actor=actor, rows=(
        {"lead_id": lead.pk, "at": lead.created_at,
         "payload": {"source": None, "campaign": None, "owner": lead.owner_id, "external_ref": lead.external_ref}}
        for lead in leads
    ))
    events_record_each(EventType.STAGE_CHANGED, actor=actor, rows=(
        {"lead_id": change.lead_id, "at": change.changed_at, "subject_type": "stagechange", "subject_id": change.pk,
         "payload": {"from": change.from_status, "to": change.to_status}}
        for change in changes if change.from_status
    ))
    events_record_each(EventType.DEAL_CREATED, actor=actor, rows=(
        {"lead_id": deal.lead_id, "at": deal.created_at, "subject_type": "deal", "subject_id": deal.pk,
         "payload": {"value": str(deal.value), "currency": deal.currency}}
        for deal in deals
    ))
    events_record_each(EventType.DEAL_WON, actor=actor, rows=(
        {"lead_id": deal.lead_id, "at": deal.closed_at, "subject_type": "deal", "subject_id": deal.pk,
         "payload": {"value": str(deal.value), "currency": deal.currency, "customer": deal.customer_id}}
        for deal in deals if deal.status == Deal.Status.WON
    ))
    events_record_each(EventType.DEAL_LOST, actor=actor, rows=(
        {"lead_id": deal.lead_id, "at": deal.closed_at, "subject_type": "deal", "subject_id": deal.pk}
        for deal in deals if deal.status == Deal.Status.LOST
    ))
