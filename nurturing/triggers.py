"""Triggers: leads enrolled in a sequence when something happens to them (a form, a resource, a stage, an
objection, a score threshold crossed, a tag added), read from the event log by a reader with its own cursor
(never called by what happened).

Per event, each active trigger that matches enrolls the lead once (TriggerFired holds the outcome: enrolled, or
why not, e.g. "the lead is already in this sequence"). Enrolling goes through `enrollment_create`, with every
rule of the sequence (goal stage, suppression, consent, another sequence). A crash leaves the cursor where it
was; a trigger acts on an event once however often it is read.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.events import EventType, cursor_advance, cursor_position, events_after
from leads.models import Lead

from .models import Sequence, Trigger, TriggerFired
from .services import enrollment_create

log = logging.getLogger(__name__)
CURSOR = "nurturing.triggers"
EVENT_TYPES = (EventType.FORM_SUBMITTED, EventType.STAGE_CHANGED, EventType.OBJECTION_LOGGED,
               EventType.SCORE_CROSSED, EventType.LEAD_TAGGED)


def _matches(trigger: Trigger, event) -> bool:
    payload = event.payload or {}
    if event.type == EventType.FORM_SUBMITTED:
        if trigger.kind == Trigger.Kind.FORM_SUBMITTED:
            return not trigger.form_slug or payload.get("form") == trigger.form_slug
        return trigger.kind == Trigger.Kind.RESOURCE and payload.get("resource") == trigger.resource_id
    if event.type == EventType.STAGE_CHANGED:
        return trigger.kind == Trigger.Kind.STAGE_REACHED and payload.get("to") == trigger.stage
    if event.type == EventType.OBJECTION_LOGGED:
        return trigger.kind == Trigger.Kind.OBJECTION and payload.get("category") == trigger.objection_category
    if event.type == EventType.SCORE_CROSSED:
        return trigger.kind == Trigger.Kind.SCORE_CROSSED and payload.get("threshold") == trigger.score
    if event.type == EventType.LEAD_TAGGED:
        return trigger.kind == Trigger.Kind.TAG_ADDED and payload.get("tag") == trigger.tag_id
    return False


def _fire(trigger: Trigger, event, lead: Lead) -> None:
    try:
        with transaction.atomic():
            fired = TriggerFired.objects.create(trigger=trigger, event_id=event.pk, lead_id=lead.pk, outcome="enrolled")
            try:
                with transaction.atomic():
                    enrollment_create(lead=lead, sequence=trigger.sequence)
            except ValidationError as exc:
                fired.outcome = " ".join(exc.messages)[:300]
                fired.save(update_fields=["outcome"])
                log.info("Trigger %s, lead %s: not enrolled: %s", trigger.pk, lead.pk, fired.outcome)
    except IntegrityError:
        pass  # acted on this event already


def triggers_run(*, limit: int = 500) -> int:
    """Read the events after this reader's cursor and fire the triggers they match; returns how many were read."""
    events = events_after(cursor_position(CURSOR), limit=limit, types=list(EVENT_TYPES))
    if not events:
        return 0
    triggers = list(Trigger.objects.filter(is_active=True, sequence__status=Sequence.Status.ACTIVE)
                    .select_related("sequence"))
    leads = Lead.objects.in_bulk({event.lead_id for event in events if event.lead_id} if triggers else set())
    for event in events:
        lead = leads.get(event.lead_id)
        if lead is not None:
            for trigger in triggers:
                if _matches(trigger, event):
                    _fire(trigger, event, lead)
        cursor_advance(CURSOR, event.pk)
    return len(events)
