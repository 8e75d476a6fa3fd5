"""Writing notifications: from the event log (a reader with its own cursor), from the periodic check of tasks
coming due and deals gone quiet, and marking them read.

Every notification is written with its source (unique per recipient and kind), so reading an event again or
running a check twice notifies no one twice.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import DateTimeField, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from core.events import EventType, cursor_advance, cursor_position, events_after
from core.models import DomainEvent
from leads.models import Deal, Lead, Task
from nurturing.models import EmailEvent

from .models import Notification

log = logging.getLogger(__name__)
CURSOR = "notifications.events"
EVENT_TYPES = (EventType.EMAIL_REPLIED, EventType.EMAIL_CLICKED, EventType.LEAD_ASSIGNED)
# A task is "due" from this long before its time until this long after it (a check that missed a minute or two
# still tells; one overdue for days is on the Today page already).
DUE_AFTER = timedelta(hours=1)
Kind = Notification.Kind


def _lead_url(lead_id) -> str:
    return reverse("workspace:lead_detail", args=[lead_id]) if lead_id else reverse("workspace:today")


def _name(lead) -> str:
    return str(lead)[:120] or f"Lead #{lead.pk}"


def _is_pricing(url: str) -> bool:
    url = (url or "").lower()
    return any(word.lower() in url for word in settings.CRM_NOTIFY_CLICK_WORDS if word)


def _from_event(event, lead, email_events, users) -> Notification | None:
    payload = event.payload or {}
    source = f"event:{event.pk}"
    if event.type == EventType.LEAD_ASSIGNED:
        owner = users.get(payload.get("owner"))
        if owner is None or owner.pk == event.actor_user_id:  # unassigned, or they took it themselves
            return None
        return Notification(recipient=owner, kind=Kind.ASSIGNED, lead=lead, source=source, url=_lead_url(lead.pk),
                            title=f"{_name(lead)} was assigned to you")
    owner = users.get(lead.owner_id)
    if owner is None or payload.get("machine"):
        return None
    if event.type == EventType.EMAIL_REPLIED:
        return Notification(recipient=owner, kind=Kind.REPLY, lead=lead, source=source, url=_lead_url(lead.pk),
                            title=f"{_name(lead)} replied")
    email_event = email_events.get(event.subject_id)
    if event.type == EventType.EMAIL_CLICKED and email_event is not None and _is_pricing(email_event.url):
        return Notification(recipient=owner, kind=Kind.PRICING_CLICK, lead=lead, source=source, url=_lead_url(lead.pk),
                            title=f"{_name(lead)} opened a pricing link")
    return None


def notifications_from_events(*, limit: int = 500) -> int:
    """Notify of the events after this reader's cursor: a reply and a person's click on a pricing link to the
    lead's owner, an assignment to the new owner (not when they took it themselves). Returns how many events
    were read. A crash leaves the cursor where it was; an event notifies once however often it is read."""
    events = events_after(cursor_position(CURSOR), limit=limit, types=list(EVENT_TYPES))
    if not events:
        return 0
    leads = Lead.objects.in_bulk({event.lead_id for event in events if event.lead_id})
    email_events = EmailEvent.objects.only("url").in_bulk(
        {event.subject_id for event in events if event.type == EventType.EMAIL_CLICKED and event.subject_id})
    user_ids = {lead.owner_id for lead in leads.values() if lead.owner_id} | {
        (event.payload or {}).get("owner") for event in events if event.type == EventType.LEAD_ASSIGNED}
    users = get_user_model().objects.filter(is_active=True).in_bulk({pk for pk in user_ids if pk})
    notifications = []
    for event in events:
        lead = leads.get(event.lead_id)
        if lead is not None:
            notification = _from_event(event, lead, email_events, users)
            if notification is not None:
                notification.created_at = event.occurred_at
                notifications.append(notification)
    with transaction.atomic():
        Notification.objects.bulk_create(notifications, ignore_conflicts=True)
        cursor_advance(CURSOR, events[-1].pk)
    return len(events)


def _tasks_due(now: datetime) -> list[Notification]:
    soon = now + timedelta(minutes=settings.CRM_TASK_DUE_SOON_MINUTES)
    tasks = (Task.objects.filter(completed_at__isnull=True, due_at__lte=soon, due_at__gte=now - DUE_AFTER,
                                 assignee__is_active=True)
             .select_related("lead").order_by("pk"))
    return [
        Notification(
            recipient_id=task.assignee_id, kind=Kind.TASK_DUE, lead=task.lead, url=_lead_url(task.lead_id),
            # A snoozed task is due again at its new time: told again then.
            source=f"task:{task.pk}:{task.due_at.isoformat()}", created_at=now,
            title=(f"Task {'overdue' if task.due_at < now else 'due'}: {task.title}"
                   + (f" ({_name(task.lead)})" if task.lead else ""))[:200],
        )
        for task in tasks
    ]


def _deals_stalled(now: datetime) -> list[Notification]:
    quiet_since = now - timedelta(days=settings.CRM_DEAL_STALLED_DAYS)
    # A deal's last change: its latest event in the log (read through the lead's index), else its creation.
    last_event = (DomainEvent.objects.filter(lead_id=OuterRef("lead_id"), subject_type="deal", subject_id=OuterRef("pk"))
                  .order_by().values("lead_id").annotate(at=Max("occurred_at")).values("at"))
    deals = (Deal.objects.filter(status=Deal.Status.OPEN, created_at__lte=quiet_since,
                                 lead__owner__isnull=False, lead__owner__is_active=True)
             .annotate(changed_at=Greatest("created_at", Coalesce(Subquery(last_event, output_field=DateTimeField()),
                                                                  "created_at")))
             .filter(changed_at__lte=quiet_since).select_related("lead").order_by("pk"))
    return [
        Notification(
            recipient_id=deal.lead.owner_id, kind=Kind.DEAL_STALLED, lead=deal.lead, url=_lead_url(deal.lead_id),
            source=f"deal:{deal.pk}:{deal.changed_at.isoformat()}", created_at=now,  # a new change, a new stall
            title=f"Deal stalled: {deal.product or 'deal'} with {_name(deal.lead)}, no change in "
                  f"{(now - deal.changed_at).days} days"[:200],
        )
        for deal in deals
    ]


def notifications_check_due(*, now: datetime | None = None) -> int:
    """Tell assignees of their tasks coming due (within CRM_TASK_DUE_SOON_MINUTES, or overdue by less than an hour)
    and owners of their open deals with no change for CRM_DEAL_STALLED_DAYS days: once per task due time and once
    per stall, however often it runs. Returns how many notifications it wrote."""
    now = now or timezone.now()
    notifications = _tasks_due(now) + _deals_stalled(now)
    if not notifications:
        return 0
    told = Notification.objects.filter(source__in=[n.source for n in notifications])
    with transaction.atomic():
        before = told.count()
        Notification.objects.bulk_create(notifications, ignore_conflicts=True)
        return told.count() - before


def notification_get(*, pk: int, user) -> Notification:
    """One of the user's own notifications; anyone else's is not found."""
    notification = Notification.objects.filter(pk=pk, recipient=user).first()
    if notification is None:
        raise Http404("No such notification.")
    return notification


def notification_mark_read(*, notification: Notification, by) -> Notification:
    """Mark the user's own notification read (once: the first time it was read stays)."""
    if notification.recipient_id != by.pk:
        raise Http404("No such notification.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())
