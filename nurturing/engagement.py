"""What a lead does with an email steers what happens next.

`event_record` takes one event (from a provider's webhook, the unsubscribe
link, an inbound reply, or a rep logging a reply by hand), stores it once,
marks opens and clicks human or machine (nurturing.classify), and applies
the rules:

- a reply takes the lead out of that sequence (and, if the sequence says so,
  pauses it for the other leads of the same company);
- a hard bounce, a spam complaint or an unsubscribe suppresses the address and
  takes the lead out of every sequence;
- a soft bounce sends the email again later; repeated soft bounces suppress;
- a person's click on a step's chosen link can move the lead to a stage and
  give the owner a call task, through the stage service, with
  "sequence X step Y, event Z" as the reason.

Machine opens and clicks are stored and shown, and do nothing else. An event
for a message we do not know is stored and does nothing else.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.events import Actor, EventType
from core.events import event_record as event_log_record
from core.models import ActorKind
from leads import pipeline
from leads import services as lead_services
from leads.models import Lead

from . import services
from .address_hash import email_hashes
from .classify import classify
from .models import Delivery, EmailEvent, Enrollment, Suppression
from .services import LIVE_ENROLLMENT

K = EmailEvent.Kind


@dataclass
class IncomingEvent:
    provider: str
    kind: str
    occurred_at: datetime
    message_id: str = ""  # the provider's id for the message, or its Message-ID header
    event_id: str = ""
    recipient: str = ""
    url: str = ""
    user_agent: str = ""
    method: str = ""
    bounce: str = ""
    description: str = ""
    machine_hint: str = ""  # the provider says a machine did it (nurturing.providers.MACHINE_OPENS)
    delivery: Delivery | None = None  # when the caller knows it (a reply matched by its headers)
    lead: Lead | None = None
    recorded_by: object = None


def _dedupe_key(e: IncomingEvent) -> str:
    if e.event_id:
        basis = f"{e.provider}|id|{e.event_id}"
    else:
        basis = f"{e.provider}|{e.kind}|{e.message_id}|{e.recipient.lower()}|{e.occurred_at.isoformat()}|{e.url}"
    return hashlib.sha256(basis.encode()).hexdigest()


def deliveries_for_messages(message_ids: list[str]) -> list[Delivery | None]:
    """The delivery each provider message id or Message-ID header belongs to (None if unknown), in one query.

    Some providers replace our Message-ID with their id at their domain (Amazon
    SES sends <its id@email.amazonses.com>): a reply's In-Reply-To then holds
    that, so the part before "@" is matched against the provider's id too.
    """
    bare = [(m or "").strip().strip("<>") for m in message_ids]
    local = [b.partition("@")[0] if "@" in b else "" for b in bare]
    forms = {form for b in bare if b for form in (b, f"<{b}>")}
    if not forms:
        return [None] * len(message_ids)
    by_message_id, by_provider_id = {}, {}
    for delivery in Delivery.objects.filter(
        Q(provider_message_id__in=forms | {part for part in local if part}) | Q(message_id__in=forms)
    # Which rows are joined changes how many queries the rules make, never what they do.
    ).select_related("step", "enrollment__sequence", "enrollment__lead__owner"):  # pragma: no mutate
        if delivery.message_id:
            by_message_id.setdefault(delivery.message_id.strip("<>"), delivery)
        if delivery.provider_message_id:
            by_provider_id.setdefault(delivery.provider_message_id.strip("<>"), delivery)
    return [
        (by_provider_id.get(b) or by_message_id.get(b) or by_provider_id.get(part)) if b else None
        for b, part in zip(bare, local)
    ]


def delivery_for_message(message_id: str) -> Delivery | None:
    """The delivery a provider's message id or a Message-ID header belongs to."""
    return deliveries_for_messages([message_id])[0]


def event_record(incoming: IncomingEvent) -> EmailEvent | None:
    """Store an event once and apply its rules; returns None when it was already recorded."""
    with transaction.atomic():
        delivery = incoming.delivery or delivery_for_message(incoming.message_id)
        lead = incoming.lead or (delivery.enrollment.lead if delivery is not None else None)
        other_clicks = ()
        if incoming.kind == K.CLICKED and delivery is not None:
            other_clicks = tuple(
                EmailEvent.objects.filter(delivery=delivery, kind=K.CLICKED).exclude(url=incoming.url).values_list("occurred_at", flat=True)
            )
        if incoming.machine_hint:  # the provider saw the proxy or prefetch itself: it knows better than our guesses
            is_machine, machine_reason = True, incoming.machine_hint
        else:
            is_machine, machine_reason = classify(
                kind=incoming.kind, user_agent=incoming.user_agent, method=incoming.method, occurred_at=incoming.occurred_at,
                sent_at=delivery.sent_at if delivery is not None else None, other_click_times=other_clicks,
            )
        if delivery is None and lead is None and incoming.recipient and Suppression.objects.for_address(incoming.recipient).filter(
            email=""
        ).exists():
            # A late event about a person whose address we keep only as a hash (erased,
            # whatever the suppression's reason): logged, without their address or words.
            incoming.recipient, incoming.description, incoming.url, incoming.user_agent = "", "", "", ""
        event = EmailEvent(
            delivery=delivery, lead=lead, kind=incoming.kind, bounce=incoming.bounce, provider=incoming.provider[:40],
            event_id=incoming.event_id[:200], message_id=incoming.message_id[:300],
            recipient=services.normalize_email(incoming.recipient or (delivery.to_email if delivery is not None else ""))[:254],
            url=incoming.url, user_agent=incoming.user_agent[:500], occurred_at=incoming.occurred_at,
            is_machine=is_machine, machine_reason=machine_reason, description=incoming.description[:5000],
            recorded_by=incoming.recorded_by, dedupe_key=_dedupe_key(incoming),
        )
        try:
            with transaction.atomic():
                event.save()
        except IntegrityError:
            return None  # the provider sent it again: counted once
        if incoming.kind in _EVENT_TYPES:
            event_log_record(
                _EVENT_TYPES[incoming.kind],
                actor=Actor.of(incoming.recorded_by) if incoming.recorded_by is not None
                else Actor(ActorKind.EMAIL_EVENT, ref={"email_event": event.pk}),
                lead_id=getattr(lead, "pk", None), subject=event, at=event.occurred_at,
                payload={"delivery": getattr(delivery, "pk", None), "machine": is_machine, "bounce": event.bounce},
            )
        if lead is not None and not is_machine:
            actions = _apply(event, delivery, lead)
            if actions:
                event.actions = "; ".join(actions)
                EmailEvent.objects.filter(pk=event.pk).update(actions=event.actions)
        return event


# What each kind of email event is called in the event log (core.events); "other" is not logged.
_EVENT_TYPES = {
    K.DELIVERED: EventType.EMAIL_DELIVERED, K.OPENED: EventType.EMAIL_OPENED, K.CLICKED: EventType.EMAIL_CLICKED,
    K.BOUNCED: EventType.EMAIL_BOUNCED, K.COMPLAINED: EventType.EMAIL_COMPLAINED, K.REPLIED: EventType.EMAIL_REPLIED,
    K.UNSUBSCRIBED: EventType.EMAIL_UNSUBSCRIBED, K.REJECTED: EventType.EMAIL_REJECTED,
}


def _why(event: EmailEvent, delivery: Delivery) -> str:
    return (f"sequence {delivery.enrollment.sequence.name} step {delivery.step.position}, "
            f"event #{event.pk} ({event.get_kind_display().lower()})")


_SUPPRESSING = {
    K.COMPLAINED: (Suppression.Reason.COMPLAINED, "Marked the email as spam"),
    K.UNSUBSCRIBED: (Suppression.Reason.UNSUBSCRIBED, "Unsubscribed"),
}


def _apply(event: EmailEvent, delivery: Delivery | None, lead: Lead) -> list[str]:
    if event.kind in _SUPPRESSING:
        reason, label = _SUPPRESSING[event.kind]
        return _suppress_and_exit(event, lead, reason, label)
    if event.kind in (K.BOUNCED, K.REJECTED) and event.bounce == EmailEvent.Bounce.HARD:
        return _suppress_and_exit(event, lead, Suppression.Reason.BOUNCED, "Hard bounce")
    if event.kind == K.BOUNCED and event.bounce == EmailEvent.Bounce.SOFT:
        return _soft_bounce(event, delivery, lead)
    actions = []
    if delivery is not None and event.kind in (K.DELIVERED, K.OPENED, K.CLICKED, K.REPLIED):
        actions = _arrived_after_all(event, delivery)
    if event.kind == K.REPLIED:
        return actions + _replied(event, delivery, lead)
    if event.kind == K.CLICKED and delivery is not None:
        return actions + _clicked(event, delivery, lead)
    return actions


def _suppress_and_exit(event, lead, reason, label) -> list[str]:
    address = event.recipient  # the address the email went to (the lead may have changed theirs since)
    actions = []
    if address:
        detail = f" ({event.description[:100]})" if event.provider in ("link", "manual") and event.description else ""
        services.suppression_add(email=address, reason=reason, source=f"{event.provider} event #{event.pk}{detail}")
        actions.append(f"suppressed {address}")
    left = services.lead_exit_all(lead_id=lead.pk, reason=label, event=event)
    if left:
        actions.append(f"left {left} sequence{'s' if left > 1 else ''}")
    return actions


def _soft_bounce(event, delivery, lead) -> list[str]:
    address = event.recipient or lead.email
    since = event.occurred_at - timedelta(days=30)
    count = EmailEvent.objects.filter(
        recipient=address, kind=K.BOUNCED, bounce=EmailEvent.Bounce.SOFT, occurred_at__gte=since
    ).count()
    if count >= settings.CRM_SOFT_BOUNCES_TO_SUPPRESS:
        return _suppress_and_exit(event, lead, Suppression.Reason.SOFT_BOUNCES, f"{count} soft bounces in 30 days")
    if delivery is None or delivery.enrollment.status not in LIVE_ENROLLMENT:
        return []
    why_not = _no_resend_reason(event, delivery)
    if why_not:
        return [f"soft bounce {count} of {settings.CRM_SOFT_BOUNCES_TO_SUPPRESS}: not sent again ({why_not})"]
    retry_at = timezone.now() + timedelta(hours=settings.CRM_SOFT_BOUNCE_RETRY_HOURS)
    # The email did not arrive: it goes again (a new Message-ID); the next step waits for it.
    moved = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENT).update(
        status=Delivery.Status.SCHEDULED, due_at=retry_at, updated_at=timezone.now(),
        reason=f"Soft bounce ({(event.description or 'temporary failure')[:200]}): sent again from {timezone.localtime(retry_at):%Y-%m-%d %H:%M}.",
    )
    if not moved:
        return []
    for later in Delivery.objects.filter(enrollment=delivery.enrollment, status=Delivery.Status.SCHEDULED).exclude(pk=delivery.pk):
        earliest = services.delivery_due_at(step=later.step, lead=lead, after=retry_at)
        if later.due_at < earliest:
            Delivery.objects.filter(pk=later.pk).update(due_at=earliest, reason="Waits for the soft-bounced email before it.")
    return [f"soft bounce {count} of {settings.CRM_SOFT_BOUNCES_TO_SUPPRESS}: the email goes again later"]


# Signs that an email arrived after all: a soft-bounced one is then not sent again.
_ARRIVED = Q(kind=K.DELIVERED) | Q(kind__in=[K.OPENED, K.CLICKED, K.REPLIED], is_machine=False)
RESEND_WITHIN = timedelta(hours=48)


def _no_resend_reason(event, delivery) -> str:
    if delivery.sent_at is not None and event.occurred_at - delivery.sent_at > RESEND_WITHIN:
        return "the bounce came more than 48 hours after sending"
    if EmailEvent.objects.filter(_ARRIVED, delivery=delivery).exists():
        return "the provider or the lead showed it arrived"
    later = Delivery.objects.filter(enrollment_id=delivery.enrollment_id, step__position__gt=delivery.step.position).exclude(
        status__in=[Delivery.Status.SCHEDULED, Delivery.Status.SKIPPED]
    )
    if later.exists():
        return "a later step already went"
    return ""


def _arrived_after_all(event, delivery) -> list[str]:
    """A soft-bounced email waiting to go again, that arrived after all: it is not sent again."""
    reverted = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SCHEDULED, sent_at__isnull=False).update(
        status=Delivery.Status.SENT, updated_at=timezone.now(), reason="Delivered after all: not sent again."
    )
    return ["the email arrived after all: not sent again"] if reverted else []


def _replied(event, delivery, lead) -> list[str]:
    actions = []
    if delivery is not None:
        enrollment = delivery.enrollment
        if enrollment.status in LIVE_ENROLLMENT:
            services.enrollment_exit(enrollment=enrollment, reason="Replied", event=event)
            actions.append(f"left {enrollment.sequence.name}")
        sequence = enrollment.sequence
        if sequence.pause_company_on_reply and lead.company_id:
            paused = Enrollment.objects.filter(
                sequence=sequence, status=Enrollment.Status.ACTIVE, lead__company_id=lead.company_id
            ).exclude(lead=lead).update(status=Enrollment.Status.PAUSED)
            if paused:
                actions.append(f"paused {sequence.name} for {paused} other lead{'s' if paused > 1 else ''} of {lead.company}")
    else:
        left = services.lead_exit_all(lead_id=lead.pk, reason="Replied", event=event)
        if left:
            actions.append(f"left {left} sequence{'s' if left > 1 else ''}")
    return actions


def _clicked(event, delivery, lead) -> list[str]:
    step = delivery.step
    needle = step.click_link_contains.strip()
    if not needle or needle.lower() not in event.url.lower():
        return []
    earlier = EmailEvent.objects.filter(
        delivery=delivery, kind=K.CLICKED, is_machine=False, url__icontains=needle
    ).exclude(pk=event.pk)
    if earlier.exists():
        return []  # the actions ran on the first such click
    why = _why(event, delivery)
    actions = []
    target = step.click_stage_action
    # (refreshing every field instead reads the same three values)
    lead.refresh_from_db(fields=["status", "stage_entered_at", "owner"])  # pragma: no mutate
    if target:
        try:
            moved = lead_services.lead_stage_action(
                lead=lead, to_status=target, actor=why[:200], reason=f"{why}: clicked {event.url}",
                source=Actor.sequence(sequence_id=delivery.enrollment.sequence_id, step_id=delivery.step_id),
            )
        except ValidationError as exc:
            actions.append(f"stage not moved: {' '.join(exc.messages)}")
        else:
            if moved is not None:
                actions.append(f"moved to {pipeline.label(target)}")
    if step.click_creates_call_task and lead.owner_id:
        lead_services.task_create(
            assignee=lead.owner, lead=lead, title=f"Call {lead}: clicked {needle} ({delivery.enrollment.sequence.name})"[:200],
            due_at=timezone.now(), allow_past_due=True, notes=f"{why}: {event.url}",
        )
        actions.append(f"call task for {lead.owner.get_username()}")
    return actions


def reply_log(*, lead: Lead, by, at: datetime | None = None, note: str = "") -> EmailEvent | None:
    """A rep records that the lead replied (SMTP setups with no inbound webhook): the same rules as a received reply.

    A reply cannot be in the future (a minute's leeway for clocks).
    """
    occurred_at = at or timezone.now()
    if occurred_at > timezone.now() + timedelta(minutes=1):
        raise ValidationError({"occurred_at": ["A reply cannot be in the future."]})
    delivery = (
        Delivery.objects.filter(enrollment__lead=lead, status=Delivery.Status.SENT)
        # (the joins save queries and change nothing else)
        .select_related("step", "enrollment__sequence", "enrollment__lead__owner")  # pragma: no mutate
        .order_by("-sent_at", "-id")
        .first()
    )
    return event_record(IncomingEvent(
        provider="manual", kind=K.REPLIED, occurred_at=occurred_at, message_id=delivery.message_id if delivery else "",
        event_id=f"manual-{lead.pk}-{occurred_at.timestamp()}", recipient=lead.email, description=note,
        delivery=delivery, lead=lead, recorded_by=by,
    ))


def unsubscribe_by_link(*, lead_id: int, address_hash: str, source: str, delivery_id: int | None = None) -> Lead | None:
    """An unsubscribe from our link or mailto address: suppressed, out of every sequence, logged once as an event.

    The address the link was made for is suppressed, even if the lead has
    since changed its address or was erased. The same link used twice (a mail
    client retrying, the button pressed again) is one event.
    """
    with transaction.atomic():
        lead = Lead.objects.filter(pk=lead_id).first()
        matches = lead is not None and bool(lead.email) and address_hash in email_hashes(lead.email)
        if lead is not None:
            delivery = (
                Delivery.objects.filter(pk=delivery_id, enrollment__lead=lead)
                .select_related("step", "enrollment__sequence", "enrollment__lead__owner")  # pragma: no mutate (joins only)
                .first()
                if delivery_id else None  # pragma: no mutate (filtering on no id finds none either: this saves the query)
            )
            event_record(IncomingEvent(
                provider="link", kind=K.UNSUBSCRIBED, occurred_at=timezone.now(),
                event_id=f"unsubscribe-{address_hash[:32]}-{delivery_id or 0}", recipient=lead.email if matches else "",
                description=source, lead=lead, message_id=delivery.message_id if delivery else "",
                # The link's email has a Message-ID that would find it too: passing it saves the query.
                delivery=delivery,  # pragma: no mutate
            ))
            services.lead_exit_all(lead_id=lead.pk, reason="Unsubscribed")  # (already done by the event, unless a repeat)
        services.suppression_add(email=lead.email if matches else "", address_hash=address_hash,
                                 reason=Suppression.Reason.UNSUBSCRIBED, source=source)
        return lead
