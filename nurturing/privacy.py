"""A person's data: export everything stored about them, or erase them.

A person is an email address (or, without one, a single lead row): the same
person may have several lead rows, live and archived, and both services work
on all of them. They live in nurturing/ because a person's data spans both
apps (leads/ knows nothing of sequences and suppressions).

`person_export` is a read: a JSON-ready dict, for a subject access request.
`person_erase` is the right to erasure; its docstring says what is deleted,
what is kept, and why.
"""

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.duration import duration_iso_string

from core.events import Actor, EventType, events_record
from core.models import DomainEvent
from leads.exports import person_export_record
from leads.models import (
    Activity,
    Customer,
    Deal,
    FormSubmission,
    Lead,
    LeadTag,
    LeadTouch,
    Objection,
    StageChange,
    Task,
)
from leads.signals import person_erasing, person_exporting

from . import services
from .address_hash import email_hash
from .models import Delivery, EmailEvent, Enrollment, Suppression

ERASED_NAME = "Erased"


# --- Whose rows ----------------------------------------------------------------------


def person_leads(*, lead: Lead) -> list[Lead]:
    """The lead and every other lead row, live or archived, with the same address (oldest first).

    Lead addresses are stored normalised (trimmed, lower-cased: see
    leads.services.normalize_email), so an exact match on the normalised
    address finds them, and can use an index. A lead without an address is a
    person of its own.
    """
    address = services.normalize_email(lead.email)
    rows = Lead.objects.filter(Q(pk=lead.pk) | Q(email=address)) if address else Lead.objects.filter(pk=lead.pk)
    return list(rows.select_related("company", "owner", "source", "campaign", "persona", "erased_by").order_by("pk"))


@dataclasses.dataclass(frozen=True)
class _PersonRecords:
    """Every row that holds the person's data, as querysets over their lead ids and address."""

    lead_ids: tuple[int, ...]
    address: str  # normalised; "" when the person has no address

    def stage_changes(self):
        return StageChange.objects.filter(lead_id__in=self.lead_ids)

    def activities(self):
        return Activity.objects.filter(lead_id__in=self.lead_ids)

    def objections(self):
        return Objection.objects.filter(lead_id__in=self.lead_ids)

    def tasks(self):
        return Task.objects.filter(lead_id__in=self.lead_ids)

    def deals(self):
        return Deal.objects.filter(lead_id__in=self.lead_ids)

    def person_customers(self):
        # A company customer is the company's record; a person customer is named after the person.
        return Customer.objects.filter(company__isnull=True, primary_lead_id__in=self.lead_ids)

    def submissions(self):
        return FormSubmission.objects.filter(lead_id__in=self.lead_ids)

    def enrollments(self):
        return Enrollment.objects.filter(lead_id__in=self.lead_ids)

    def deliveries(self):
        return Delivery.objects.filter(enrollment__lead_id__in=self.lead_ids)

    def email_events(self):
        # Events for a message we did not recognise carry only the address (stored
        # normalised): an exact match, which the recipient index serves. Events
        # tied to the person's leads or deliveries match by those, whatever case
        # their recipient was written in.
        match = Q(lead_id__in=self.lead_ids) | Q(delivery__enrollment__lead_id__in=self.lead_ids)
        if self.address:
            match |= Q(recipient=self.address)
        return EmailEvent.objects.filter(match)

    def suppression(self) -> Suppression | None:
        if not self.address:
            return None
        return Suppression.objects.for_address(self.address).first()


def _records(leads: list[Lead], address: str) -> _PersonRecords:
    return _PersonRecords(lead_ids=tuple(lead.pk for lead in leads), address=address)


# --- Export ----------------------------------------------------------------------------


def _plain(value):
    """A value JSON can hold: datetimes and dates in ISO 8601, durations as ISO 8601 durations, Decimals as strings."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso_string(value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def _lead_fields(lead: Lead) -> dict:
    return {
        "id": lead.pk,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "phone": lead.phone,
        "title": lead.title,
        "linkedin_url": lead.linkedin_url,
        "x_url": lead.x_url,
        "company": lead.company.name if lead.company_id else None,
        "owner": _username(lead.owner),
        "source": lead.source.name if lead.source_id else None,
        "campaign": lead.campaign.name if lead.campaign_id else None,
        "persona": lead.persona.name if lead.persona_id else None,
        "utm_medium": lead.utm_medium,
        "utm_content": lead.utm_content,
        "utm_term": lead.utm_term,
        "timezone": lead.timezone,
        "status": lead.status,
        "status_label": lead.get_status_display(),
        "stage_entered_at": lead.stage_entered_at,
        "lost_reason": lead.lost_reason,
        "score": lead.score,
        "consent": {
            "given_at": lead.consent_given_at,
            "how": lead.consent_source,
            "wording": lead.consent_text,
        },
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "last_touch_at": lead.last_touch_at,
        "archived_at": lead.archived_at,
        "erased_at": lead.erased_at,
        "erased_by": _username(lead.erased_by),
    }


def _by_lead(rows, lead_of=lambda row: row.lead_id) -> dict[int, list]:
    grouped: dict[int, list] = {}
    for row in rows:
        grouped.setdefault(lead_of(row), []).append(row)
    return grouped


def _event(e: EmailEvent) -> dict:
    return {
        "id": e.pk,
        "kind": e.kind,
        "bounce": e.bounce,
        "occurred_at": e.occurred_at,
        "received_at": e.received_at,
        "recipient": e.recipient,
        "url": e.url,
        "user_agent": e.user_agent,
        "by": "machine" if e.is_machine else "person",
        "machine_reason": e.machine_reason,
        "provider": e.provider,
        "description": e.description,
        "actions": e.actions,
        "delivery_id": e.delivery_id,
    }


@transaction.atomic
def person_export_by(*, lead: Lead, by) -> dict:
    """person_export for the user `by`: refused (PermissionDenied) unless the permission policy
    lets them export personal data, and recorded as an export (leads.LeadExport) before anything is read."""
    person_export_record(lead_ids=[row.pk for row in person_leads(lead=lead)], by=by)
    return person_export(lead=lead)


def person_export(*, lead: Lead) -> dict:
    """Everything stored about the person `lead` is, as a dict `json.dumps` takes as is.

    Covers every lead row with the same address (keyed by lead id, as a
    string), each with its stage changes, calls, notes and meetings,
    objections, tasks, deals, tags, form submissions, sequence enrollments,
    deliveries and email events; events that carry only the address are under
    `other_email_events`; `suppression` says whether the address may still be
    emailed. Datetimes are ISO 8601, durations ISO 8601 durations, money a
    string. Reads only.
    """
    leads = person_leads(lead=lead)
    address = services.normalize_email(lead.email)
    records = _records(leads, address)

    changes = _by_lead(records.stage_changes().select_related("changed_by").order_by("changed_at", "id"))
    activities = _by_lead(records.activities().select_related("author").order_by("occurred_at", "id"))
    objections = _by_lead(records.objections().select_related("raised_by").order_by("created_at", "id"))
    tasks = _by_lead(records.tasks().select_related("assignee", "created_by").order_by("due_at", "id"))
    deals = _by_lead(records.deals().select_related("owner", "customer").order_by("created_at", "id"))
    customers = _by_lead(records.person_customers().order_by("became_customer_at", "id"), lambda c: c.primary_lead_id)
    submissions = _by_lead(records.submissions().select_related("resource").order_by("submitted_at", "id"))
    tags = _by_lead(LeadTag.objects.filter(lead_id__in=records.lead_ids).select_related("tag", "added_by")
                    .order_by("added_at", "id"))
    enrollments = _by_lead(records.enrollments().select_related("sequence", "enrolled_by").order_by("enrolled_at", "id"))
    deliveries = _by_lead(
        records.deliveries().select_related("enrollment__sequence", "step").order_by("due_at", "id"),
        lambda d: d.enrollment.lead_id,
    )
    events = _by_lead(
        records.email_events().annotate(delivery_lead_id=F("delivery__enrollment__lead_id")).order_by("occurred_at", "id"),
        lambda e: e.lead_id or e.delivery_lead_id,
    )

    def one(row: Lead) -> dict:
        pk = row.pk
        return {
            **_lead_fields(row),
            "stage_changes": [
                {
                    "from_status": c.from_status, "to_status": c.to_status, "changed_at": c.changed_at,
                    "changed_by": _username(c.changed_by), "actor": c.actor, "reason": c.reason,
                    "time_in_from_stage": c.time_in_from_stage,
                }
                for c in changes.get(pk, [])
            ],
            "activities": [
                {
                    "id": a.pk, "kind": a.kind, "occurred_at": a.occurred_at, "author": _username(a.author), "body": a.body,
                    "direction": a.direction, "outcome": a.outcome, "duration_seconds": a.duration_seconds,
                    "channel": a.channel, "social_action": a.social_action,
                }
                for a in activities.get(pk, [])
            ],
            "objections": [
                {
                    "category": o.category, "lead_words": o.lead_words, "response": o.response, "is_resolved": o.is_resolved,
                    "resolved_at": o.resolved_at, "raised_by": _username(o.raised_by), "created_at": o.created_at,
                    "activity_id": o.activity_id,
                }
                for o in objections.get(pk, [])
            ],
            "tasks": [
                {
                    "title": t.title, "notes": t.notes, "due_at": t.due_at, "completed_at": t.completed_at,
                    "assignee": _username(t.assignee), "created_by": _username(t.created_by), "created_at": t.created_at,
                }
                for t in tasks.get(pk, [])
            ],
            "deals": [
                {
                    "product": d.product, "value": d.value, "currency": d.currency, "status": d.status,
                    "created_at": d.created_at, "expected_close_on": d.expected_close_on, "closed_at": d.closed_at,
                    "lost_reason": d.lost_reason, "owner": _username(d.owner),
                    "customer": d.customer.name if d.customer_id else None,
                }
                for d in deals.get(pk, [])
            ],
            "customer_records": [
                {"name": c.name, "became_customer_at": c.became_customer_at} for c in customers.get(pk, [])
            ],
            "tags": [
                {"name": t.tag.name, "added_at": t.added_at, "added_by": _username(t.added_by)} for t in tags.get(pk, [])
            ],
            "form_submissions": [
                {
                    "form_name": s.form_name, "resource": s.resource.name if s.resource_id else None,
                    "page_url": s.page_url, "submitted_at": s.submitted_at, "data": s.data,
                }
                for s in submissions.get(pk, [])
            ],
            "enrollments": [
                {
                    "id": e.pk, "sequence": e.sequence.name, "status": e.status, "exit_reason": e.exit_reason,
                    "enrolled_at": e.enrolled_at, "finished_at": e.finished_at, "enrolled_by": _username(e.enrolled_by),
                }
                for e in enrollments.get(pk, [])
            ],
            "deliveries": [
                {
                    "id": d.pk, "enrollment_id": d.enrollment_id, "sequence": d.enrollment.sequence.name,
                    "step": d.step.position, "status": d.status, "due_at": d.due_at, "sent_at": d.sent_at,
                    "to_email": d.to_email, "subject": d.subject, "body_text": d.body_text, "body_html": d.body_html,
                    "reason": d.reason,
                }
                for d in deliveries.get(pk, [])
            ],
            "email_events": [_event(e) for e in events.get(pk, [])],
        }

    suppression = records.suppression()
    # The apps standing on the leads add what they hold of the person (leads.signals.person_exporting).
    more: dict = {}
    person_exporting.send(sender=Lead, lead_ids=[row.pk for row in leads], address=address, export=more)
    return _plain(
        {
            **more,
            "exported_at": timezone.now(),
            "requested_for_lead": lead.pk,
            "email": address,
            "suppression": (
                {
                    "is_suppressed": True, "reason": suppression.reason, "reason_label": suppression.get_reason_display(),
                    "since": suppression.created_at, "source": suppression.source,
                }
                if suppression is not None
                else {"is_suppressed": False}
            ),
            "leads": {str(row.pk): one(row) for row in leads},
            "other_email_events": [_event(e) for e in events.get(None, [])],
        }
    )


# --- Erasure -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ErasureResult:
    lead_ids: tuple[int, ...]
    # How many rows of each kind were deleted, by plural label.
    deleted: dict[str, int]
    # True when the address stays on the suppression list, as its hash only.
    address_suppressed: bool


def person_erase_preview(*, lead: Lead) -> dict:
    """What `person_erase` would do now: the lead rows, what it deletes and what it keeps (with why), in counts."""
    leads = person_leads(lead=lead)
    records = _records(leads, services.normalize_email(lead.email))
    return {
        "leads": leads,
        "address": records.address,
        "deleted": [
            (records.activities().count(), "calls, notes and meetings"),
            (records.objections().count(), "objections"),
            (records.tasks().count(), "tasks"),
            (records.submissions().count(), "form submissions"),
            (records.enrollments().count(), "sequence enrollments"),
            (records.deliveries().count(), "deliveries (emails and call steps, sent or pending)"),
            (records.email_events().count(), "email events (opens, clicks, replies, bounces)"),
        ],
        "kept": [
            (records.stage_changes().count(), "stage changes, with their reasons blanked",
             "the funnel's conversion rates and times in stage are computed from them"),
            (records.deals().count(), "deals, with their lost reasons blanked",
             "revenue reporting needs their value, currency, status, dates and owner"),
            (records.person_customers().count(), "customer records of the person, renamed “Erased”",
             "their deals point at them"),
        ],
        "suppression": records.suppression(),
    }


def _scrub_admin_log(ids_by_model: dict[type, list[int]]) -> None:
    """The admin's history shows each object's name as it was; the person's rows lose theirs."""
    for model, ids in ids_by_model.items():
        if ids:
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(model), object_id__in=[str(pk) for pk in ids]
            ).update(object_repr=ERASED_NAME)


@transaction.atomic
def person_erase(*, lead: Lead, by) -> ErasureResult:
    """Erase the person `lead` is, on every lead row with the same address, in one transaction.

    Guarantees, all or nothing:

    - The address stays suppressed, forever, by its hash only: a suppression
      (reason "Person erased" unless one existed already, which keeps its
      reason) with the address column blank. `services.email_is_suppressed`
      stays True, so a new lead or an import with the address gets no email.
    - The person leaves every sequence: each enrollment is deleted with its
      deliveries, sent (subjects, bodies, addresses) and pending alike, and
      the email events (opens, clicks, replies, bounces; also those that carry
      only the address). A worker that claimed one of those deliveries finds
      it gone; the suppression stops anything else.
    - Deleted: calls, notes, meetings and social touches, objections, tasks, form submissions.
    - Kept without personal text: stage changes (reason blanked; the funnel's
      conversion rates and times in stage are computed from them), deals
      (lost reason blanked; revenue reporting needs value, currency, status,
      dates and owner; the product is ours, not theirs), a person customer's
      record (named "Erased"; its deals point at it). The company is kept: it
      is an organisation's record, shared with its other leads.
    - Each lead row stays, anonymised, so counts per stage, source, campaign,
      persona and owner still add up: names become "Erased"; address, phone,
      job title, social profile links, time zone, UTM fields, lost reason and all of consent (when,
      how, wording) are blanked. Consent is not kept as evidence: once the
      person is gone there is nothing left to justify, and the erasure itself
      is recorded (`erased_at`, `erased_by`). The row is archived (if it was
      not) and its search text rebuilt from what remains.
    - The admin's history shows "Erased" for the person's rows.

    Refused, with nothing changed, while an email to the person is being
    handed to the mail provider (try again a few minutes later). Running it
    again on an erased person changes nothing more.
    """
    # Locks in one order everywhere: the leads (by id, in one statement), then their deliveries.
    address = services.normalize_email(Lead.objects.filter(pk=lead.pk).values_list("email", flat=True).first() or "")
    match = (Q(pk=lead.pk) | Q(email=address)) if address else Q(pk=lead.pk)  # stored normalised: see person_leads
    leads = list(Lead.objects.select_for_update().filter(match).order_by("pk"))
    locked = next((row for row in leads if row.pk == lead.pk), None)
    if locked is None:
        raise ValidationError("This lead no longer exists: there is nothing to erase.")
    if services.normalize_email(locked.email) != address:
        raise ValidationError("This lead's email address was changed just now: open the lead again and erase it from there.")
    ids = tuple(row.pk for row in leads)
    records = _records(leads, address)

    # Locked, a delivery is skipped by the claim, and a worker that claimed it
    # earlier waits to start it, then finds it gone. One already being sent
    # cannot be stopped: erasure waits for it instead.
    in_flight = list(records.deliveries().select_for_update(of=("self",)).values_list("status", flat=True))
    if Delivery.Status.SENDING in in_flight:
        raise ValidationError(
            "An email to this person is being sent at this moment. Try again in a few minutes: nothing was erased."
        )

    suppression_ids = []
    if address:
        suppression = services.suppression_add(email=address, reason=Suppression.Reason.ERASED, source="erasure", by=by)
        # The last moment its hash can be made under the current key: without the address it cannot be rehashed.
        Suppression.objects.filter(pk=suppression.pk).update(email="", email_hash=email_hash(address))
        suppression_ids = [suppression.pk]

    task_ids = list(records.tasks().values_list("pk", flat=True))
    submission_ids = list(records.submissions().values_list("pk", flat=True))
    enrollment_ids = list(records.enrollments().values_list("pk", flat=True))
    delivery_ids = list(records.deliveries().values_list("pk", flat=True))
    customer_ids = list(records.person_customers().values_list("pk", flat=True))

    deleted = {
        "email events": _delete(records.email_events()),
        "deliveries": _delete(records.deliveries()),
        "sequence enrollments": _delete(records.enrollments()),
        "objections": _delete(records.objections()),
        "calls, notes and meetings": _delete(records.activities()),
        "tasks": _delete(records.tasks()),
        "form submissions": _delete(records.submissions()),
        # The visits' landing pages and referrers may carry the person's details in their addresses.
        "first and last touches": _delete(LeadTouch.objects.filter(lead_id__in=ids)),
        # A tag may say something about the person ("difficult", "VIP"): it goes with them.
        "tags": _delete(LeadTag.objects.filter(lead_id__in=ids)),
    }
    # The apps standing on the leads erase what they hold of the person (leads.signals.person_erasing).
    person_erasing.send(sender=Lead, lead_ids=ids, address=address, by=by, deleted=deleted)
    records.stage_changes().exclude(reason="").update(reason="")
    records.deals().exclude(lost_reason="").update(lost_reason="")
    records.person_customers().update(name=ERASED_NAME)

    now = timezone.now()
    for row in leads:
        row.first_name, row.last_name = ERASED_NAME, ""
        row.email = row.phone = row.title = row.timezone = ""
        row.linkedin_url = row.x_url = ""
        row.utm_medium = row.utm_content = row.utm_term = ""
        row.consent_given_at, row.consent_text, row.consent_source = None, "", ""
        row.lost_reason = ""
        row.archived_at = row.archived_at or now
        if row.erased_at is None:
            row.erased_at, row.erased_by = now, by
        row.search_text = row.build_search_text()
        row.save(
            update_fields=[
                "first_name", "last_name", "email", "phone", "title", "timezone", "linkedin_url", "x_url", "utm_medium",
                "utm_content", "utm_term", "consent_given_at", "consent_text", "consent_source", "lost_reason", "archived_at", "erased_at",
                "erased_by", "search_text", "updated_at",
            ]
        )
        if row.pk == lead.pk:
            for field in Lead._meta.concrete_fields:
                setattr(lead, field.attname, getattr(row, field.attname))

    _scrub_admin_log(
        {
            Lead: list(ids), Task: task_ids, FormSubmission: submission_ids, Enrollment: enrollment_ids,
            Delivery: delivery_ids, Customer: customer_ids, Suppression: suppression_ids,
        }
    )
    # The event log keeps what happened and when, not what was said: payloads may quote a reason or a provider's words.
    DomainEvent.objects.filter(lead_id__in=ids).exclude(payload={}).update(payload={})
    events_record(EventType.PERSON_ERASED, actor=Actor.of(by), lead_ids=sorted(ids), at=now)
    return ErasureResult(lead_ids=ids, deleted=deleted, address_suppressed=bool(suppression_ids))


def _delete(queryset) -> int:
    """Delete the rows of one model (not what cascades from them) and say how many."""
    _, per_model = queryset.delete()
    return per_model.get(queryset.model._meta.label, 0)
