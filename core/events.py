"""Writing and reading the domain event log (core.models.DomainEvent).

Every service that changes state calls `event_record` (or `events_record` for
many leads at once) inside its own transaction: the event exists exactly when
the change does. The actor is a user or a structured source (`Actor`).

Readers (outbound webhooks, scoring, triggers, reports) keep a cursor and call
`events_after`: rows come in id order. An id is taken when a row is written,
not when its transaction commits, so a row may appear behind one already read;
`events_after` holds back rows younger than CRM_EVENT_SETTLE_SECONDS so that a
reader polling the log does not step over a transaction still committing.
"""

from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from .inserts import rows_insert
from .models import ActorKind, DomainEvent, EventCursor


class EventType(models.TextChoices):
    LEAD_CREATED = "lead.created", "Lead created"
    LEAD_UPDATED = "lead.updated", "Lead updated"
    LEAD_ASSIGNED = "lead.assigned", "Lead assigned"
    LEAD_CLAIMED = "lead.claimed", "Lead claimed"
    LEAD_ARCHIVED = "lead.archived", "Lead archived"
    LEAD_MERGED = "lead.merged", "Lead merged"
    LEAD_UNMERGED = "lead.unmerged", "Merge undone"
    STAGE_CHANGED = "lead.stage_changed", "Stage changed"
    LEAD_TAGGED = "lead.tagged", "Tag added"
    LEAD_UNTAGGED = "lead.untagged", "Tag removed"
    TAG_CREATED = "tag.created", "Tag created"
    ACTIVITY_LOGGED = "activity.logged", "Activity logged"
    OBJECTION_LOGGED = "objection.logged", "Objection logged"
    OBJECTION_RESOLVED = "objection.resolved", "Objection resolved"
    TASK_CREATED = "task.created", "Task created"
    TASK_SNOOZED = "task.snoozed", "Task snoozed"
    TASK_DONE = "task.done", "Task done"
    TASK_REOPENED = "task.reopened", "Task reopened"
    TASK_SNOOZE_UNDONE = "task.snooze_undone", "Snooze undone"
    TASK_UPDATED = "task.updated", "Task updated"
    SCORE_CROSSED = "lead.score_crossed", "Score crossed a threshold"
    SCORING_CHANGED = "scoring.changed", "Scoring rules changed"
    DEAL_CREATED = "deal.created", "Deal created"
    DEAL_WON = "deal.won", "Deal won"
    DEAL_LOST = "deal.lost", "Deal lost"
    DEAL_UPDATED = "deal.updated", "Deal updated"
    DEAL_STAGE_CHANGED = "deal.stage_changed", "Deal stage changed"
    COMPANY_CREATED = "company.created", "Company created"
    COMPANY_UPDATED = "company.updated", "Company updated"
    FORM_SUBMITTED = "form.submitted", "Form submitted"
    CONVERSION_RECORDED = "conversion.recorded", "Conversion recorded"
    CAMPAIGN_CREATED = "campaign.created", "Campaign created"
    CAMPAIGN_UPDATED = "campaign.updated", "Campaign updated"
    CAMPAIGN_DELETED = "campaign.deleted", "Campaign deleted"
    CAMPAIGN_SPEND_RECORDED = "campaign_spend.recorded", "Campaign spend recorded"
    CAMPAIGN_SPEND_UPDATED = "campaign_spend.updated", "Campaign spend updated"
    CAMPAIGN_SPEND_DELETED = "campaign_spend.deleted", "Campaign spend deleted"
    ENROLLMENT_STARTED = "enrollment.started", "Enrollment started"
    ENROLLMENT_EXITED = "enrollment.exited", "Enrollment exited"
    ENROLLMENT_PAUSED = "enrollment.paused", "Enrollment paused"
    ENROLLMENT_RESUMED = "enrollment.resumed", "Enrollment resumed"
    VARIANT_WINNER_PICKED = "variant.winner_picked", "A/B test winner picked"
    EMAIL_SENT = "email.sent", "Email sent"
    EMAIL_DELIVERED = "email.delivered", "Email delivered"
    EMAIL_OPENED = "email.opened", "Email opened"
    EMAIL_CLICKED = "email.clicked", "Email clicked"
    EMAIL_REPLIED = "email.replied", "Email replied"
    EMAIL_BOUNCED = "email.bounced", "Email bounced"
    EMAIL_COMPLAINED = "email.complained", "Spam complaint"
    EMAIL_UNSUBSCRIBED = "email.unsubscribed", "Unsubscribed"
    EMAIL_REJECTED = "email.rejected", "Email rejected by the provider"
    SUPPRESSION_ADDED = "suppression.added", "Suppression added"
    SUPPRESSION_UPDATED = "suppression.updated", "Suppression updated"
    PERSON_EXPORTED = "person.exported", "Person exported"
    LIST_EXPORTED = "list.exported", "List exported"
    AUDIENCE_EXPORTED = "audience.exported", "Audience exported for an ad platform"
    AUDIENCE_FEED_CREATED = "audience_feed.created", "Audience feed created"
    AUDIENCE_FEED_REVOKED = "audience_feed.revoked", "Audience feed revoked"
    PERSON_ERASED = "person.erased", "Person erased"
    MEETING_BOOKED = "meeting.booked", "Meeting booked"
    MEETING_RESCHEDULED = "meeting.rescheduled", "Meeting rescheduled"
    MEETING_CANCELLED = "meeting.cancelled", "Meeting cancelled"
    MEETING_HELD = "meeting.held", "Meeting held"
    MEETING_NO_SHOW = "meeting.no_show", "Meeting no-show"
    MEETING_FEED_CREATED = "meeting_feed.created", "Meeting calendar feed created"
    MEETING_FEED_REVOKED = "meeting_feed.revoked", "Meeting calendar feed revoked"
    WEBHOOK_ENDPOINT_PAUSED = "webhook_endpoint.paused", "Webhook endpoint paused"
    WEBHOOK_ENDPOINT_RESUMED = "webhook_endpoint.resumed", "Webhook endpoint resumed"
    API_TOKEN_CREATED = "api_token.created", "API token created"
    API_TOKEN_REVOKED = "api_token.revoked", "API token revoked"


# What a user acts through when it is not a page, by ids: {"api_token": 12} while an API request runs.
_acting_through: ContextVar[dict | None] = ContextVar("crm_acting_through", default=None)


def acting_through_start(**ref) -> Token:
    """From now on (until `acting_through_end` with the returned token), events a user's actions record also
    name what the user acted through: the audit trail tells a change made with an API token from one made on a
    page."""
    return _acting_through.set(ref)


def acting_through_end(token: Token) -> None:
    _acting_through.reset(token)


# Built once: `EventType.values` makes a new list on each call, and a bulk import checks 100,000 rows.
_EVENT_TYPES = frozenset(EventType.values)


@dataclass(frozen=True)
class Actor:
    """Who or what made a change: a user, or a source named by ids (never by a name that can change)."""

    kind: str
    user: object = None
    ref: dict = field(default_factory=dict)

    @classmethod
    def of(cls, by=None, *, label: str = "") -> "Actor":
        """The acting user (and what they acted through: see `acting_through`); without one, the system
        (with what it called itself, if anything)."""
        if by is not None:
            return cls(ActorKind.USER, user=by, ref=dict(_acting_through.get() or {}))
        return cls(ActorKind.SYSTEM, ref={"label": label} if label else {})

    @classmethod
    def sequence(cls, *, sequence_id: int, step_id: int | None = None) -> "Actor":
        return cls(ActorKind.SEQUENCE, ref={"sequence": sequence_id, "step": step_id})

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(ActorKind.SYSTEM, ref={"name": name})


def _row(type: str, actor: Actor, *, lead_id, subject=None, subject_type="", subject_id=None, payload, at) -> DomainEvent:
    if type not in _EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}: add it to core.events.EventType")
    now = timezone.now()
    return DomainEvent(
        type=type, occurred_at=at or now, recorded_at=now, lead_id=lead_id,
        subject_type=subject._meta.model_name if subject is not None else subject_type,
        subject_id=subject.pk if subject is not None else subject_id,
        actor_kind=actor.kind, actor_user=actor.user, actor_ref=actor.ref, payload=payload or {},
    )


def event_record(
    type: str, *, actor: Actor, lead_id: int | None = None, subject=None, payload: dict | None = None,
    at: datetime | None = None,
) -> DomainEvent:
    """Append one event; call it inside the transaction that makes the change."""
    event = _row(type, actor, lead_id=lead_id, subject=subject, payload=payload, at=at)
    event.save(force_insert=True)
    return event


def events_record(
    type: str, *, actor: Actor, lead_ids: Iterable[int], payload: dict | None = None, at: datetime | None = None,
    batch_size: int = 1000,
) -> int:
    """Append the same event for many leads (a bulk assignment, an archive), in batches; returns how many."""
    return events_record_each(
        type, actor=actor, rows=({"lead_id": lead_id, "payload": payload} for lead_id in lead_ids), at=at,
        batch_size=batch_size,
    )


_ROW_KEYS = frozenset({"lead_id", "subject_type", "subject_id", "payload", "actor", "at"})


def events_record_each(
    type: str, *, actor: Actor | None = None, rows: Iterable[dict], at: datetime | None = None, batch_size: int = 1000
) -> int:
    """Append one event per row, in batches; a row gives `lead_id`, and may give `subject_type`, `subject_id`,
    `payload`, and its own `actor` and `at` (many enrollments ended at once, a batch of emails sent by
    several sequences). Returns how many."""
    if type not in _EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}: add it to core.events.EventType")
    now = timezone.now()

    def values():
        for row in rows:
            if not row.keys() <= _ROW_KEYS:
                raise ValueError(f"An event row takes {', '.join(sorted(_ROW_KEYS))}; not {', '.join(sorted(row.keys() - _ROW_KEYS))}")
            fields = {"payload": None, "actor": actor, "at": at, "subject_type": "", "subject_id": None, **row}
            who = fields["actor"]
            if who is None:
                raise ValueError("An event needs an actor: pass actor=, or give each row one")
            yield {
                "type": type, "occurred_at": fields["at"] or now, "recorded_at": now, "lead_id": fields["lead_id"],
                "subject_type": fields["subject_type"], "subject_id": fields["subject_id"], "actor_kind": who.kind,
                "actor_user_id": who.user.pk if who.user is not None else None, "actor_ref": who.ref,
                "payload": fields["payload"] or {},
            }

    # Rows as they are (no model instances): the engine writes one per email sent.
    return rows_insert(DomainEvent, values(), batch_size=batch_size)


def actor_label(event: DomainEvent) -> str:
    """Who made the change, for people: the user ("Tom Becker (rep1)": two people may share a name), or the source
    with its ids ("Sequence (sequence 4, step 9)")."""
    if event.actor_user_id is not None:
        user = event.actor_user
        if user is None:  # the account was deleted since: the log keeps its id
            return f"user #{event.actor_user_id}"
        name = user.get_full_name()
        who = f"{name} ({user.get_username()})" if name else user.get_username()
        via = event.actor_ref.get("api_token")
        return f"{who} with API token #{via}" if via else who
    detail = ", ".join(f"{key} {value}" for key, value in sorted(event.actor_ref.items()) if value is not None)
    return f"{event.get_actor_kind_display()} ({detail})" if detail else event.get_actor_kind_display()


def payload_label(event: DomainEvent) -> str:
    """The payload as "key: value" pairs in key order, for people (PostgreSQL's jsonb keeps no order of its own)."""
    return ", ".join(
        f"{key}: {value}" for key, value in sorted(event.payload.items()) if value not in (None, "", [], {})
    )


def events_after(
    position: int, *, limit: int = 500, types: Iterable[str] | None = None, rows=None
) -> list[DomainEvent]:
    """The events after `position` (an event id), oldest first, held back while younger than the settle time.

    `rows` narrows the log first (a queryset of DomainEvent: one lead's, or those a user may read).
    """
    settled = timezone.now() - timedelta(seconds=settings.CRM_EVENT_SETTLE_SECONDS)
    rows = (DomainEvent.objects.all() if rows is None else rows).filter(id__gt=position, recorded_at__lte=settled)
    if types is not None:
        rows = rows.filter(type__in=list(types))
    return list(rows.order_by("id")[:limit])


def cursor_position(name: str) -> int:
    return EventCursor.objects.filter(name=name).values_list("position", flat=True).first() or 0


def cursor_advance(name: str, position: int) -> None:
    """Move a reader's cursor forward to `position` (never back)."""
    with transaction.atomic():
        cursor, _ = EventCursor.objects.select_for_update().get_or_create(name=name)
        if position > cursor.position:
            cursor.position, cursor.updated_at = position, timezone.now()
            cursor.save(update_fields=["position", "updated_at"])
