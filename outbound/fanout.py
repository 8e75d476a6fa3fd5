"""From the event log to deliveries: a reader with its own cursor.

Each run reads the settled events after the cursor (core.events.events_after),
makes one Delivery per (active endpoint subscribed to the type, event), and
moves the cursor past them, all in one transaction: a crash leaves neither
deliveries nor a moved cursor, and the unique (endpoint, event) constraint
keeps a second reader from making a delivery twice. The cursor moves over
every event, subscribed or not, so an endpoint subscribed later gets events
from then on, never the history.

Nor does any endpoint get a pipeline history brought in by an import (events
whose actor reference says `"history": true`, see leads.history): they tell of
the past, and a file of 10,000 old deals would otherwise send 50,000 requests.
A receiver that wants that history reads the event log through the API.
"""

import uuid

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from core.events import actor_label, events_after
from core.models import DomainEvent, EventCursor

from .event_types import PUBLIC_NAME
from .models import Delivery, Endpoint

CURSOR = "outbound.webhooks"


def message_id_new() -> str:
    return f"msg_{uuid.uuid4().hex}"


def event_payload(event: DomainEvent) -> dict:
    """What a receiver gets for an event: ids, stages, amounts and who did it; never secrets or internal objects."""
    return {
        "type": PUBLIC_NAME[event.type],
        "timestamp": event.occurred_at.isoformat(),
        "data": {
            "event_id": event.pk,
            "lead_id": event.lead_id,
            "subject": {"type": event.subject_type, "id": event.subject_id} if event.subject_type else None,
            "payload": event.payload,
            "actor": {"kind": event.actor_kind, "label": actor_label(event)},
            "recorded_at": event.recorded_at.isoformat(),
        },
    }


def deliveries_fan_out(*, limit: int = 1000) -> int:
    """Make the deliveries of the next `limit` settled events; returns how many events were read."""
    with transaction.atomic():
        # Locked: two fan-outs at once take turns (SQLite's IMMEDIATE transactions do the same).
        cursor, _ = EventCursor.objects.select_for_update().get_or_create(name=CURSOR)
        events = events_after(cursor.position, limit=limit)
        if not events:
            return 0
        prefetch_related_objects(events, "actor_user")  # for the actor's label, in one query
        endpoints = list(Endpoint.objects.filter(is_active=True).only("id", "event_types"))
        now = timezone.now()
        rows = []
        for event in events:
            public = PUBLIC_NAME.get(event.type)
            if public is None or event.actor_ref.get("history"):
                continue
            subscribers = [endpoint.pk for endpoint in endpoints if public in endpoint.event_types]
            if not subscribers:
                continue
            payload = event_payload(event)
            rows += [
                Delivery(endpoint_id=endpoint_id, event_id=event.pk, event_type=public, message_id=message_id_new(),
                         payload=payload, next_attempt_at=now, created_at=now, updated_at=now)
                for endpoint_id in subscribers
            ]
        Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        cursor.position, cursor.updated_at = events[-1].pk, now
        cursor.save(update_fields=["position", "updated_at"])
    return len(events)
