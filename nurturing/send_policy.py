"""The send policy: what each claimed delivery of a batch does now.

`plan_sends` reads what it needs for the whole batch in a few queries (the
suppression list, today's sends per sequence and sender, the engagement the
steps' conditions look at) and sorts every row into one of:

- never goes (`skips`): the lead left, replied, is suppressed, the sequence
  or the step is off...; a live enrollment whose delivery can never go ends
  (`exits`);
- passed over (`skips` and `passed_over`): the step's condition is not met,
  so the lead goes on to the next step;
- waits (`waits`): the sequence is paused, the send window is closed in the
  lead's time zone, or the sender reached the sequence's daily cap;
- goes now: an email (`emails`) or a call task (`calls`), with its sender.

It writes nothing: nurturing.dispatch records the plan and sends.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from core.emails import normalize_email
from leads.models import FormSubmission

from .models import Delivery, EmailEvent, Enrollment, Step
from .schedule import lead_zone, next_send_time
from .services import delivery_stop_reason, delivery_wait_reason, suppressed_among

# A paused sequence's due deliveries are looked at again after this long.
PAUSED_RECHECK = timedelta(minutes=15)

LIVE = (Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED)


def sender_for(enrollment: Enrollment, lead):
    """Who an email goes out as: the sequence's sender, else the lead's owner."""
    return enrollment.sequence.sender or lead.owner


def suppressed_addresses(rows) -> set[str]:
    """The normalized addresses of the deliveries `rows` that are suppressed now (one query)."""
    return suppressed_among(normalize_email(d.enrollment.lead.email) for d in rows)


def _sent_today(rows, now: datetime) -> dict:
    """Emails sent since midnight per (sequence, sender) of the batch's pairs (one query)."""
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    pairs = {(d.enrollment.sequence_id, getattr(sender_for(d.enrollment, d.enrollment.lead), "pk", None)) for d in rows}
    counts = (
        Delivery.objects.filter(
            status=Delivery.Status.SENT,
            sent_at__gte=day_start,
            enrollment__sequence_id__in={p[0] for p in pairs},
            sender_id__in={p[1] for p in pairs if p[1] is not None},
        )
        .values_list("enrollment__sequence_id", "sender_id")
        .annotate(n=Count("id"))
    )
    return {(seq, sender): n for seq, sender, n in counts}


def _conditions(rows):
    """For the rows whose step has a condition: the engagement it needs to know about (two queries at most)."""
    conditional = [d for d in rows if d.step.condition != Step.Condition.ALWAYS]
    engaged, downloaded = set(), set()
    if conditional:
        engaged = set(
            EmailEvent.objects.filter(
                delivery__enrollment_id__in={d.enrollment_id for d in conditional},
                kind__in=[EmailEvent.Kind.REPLIED, EmailEvent.Kind.CLICKED], is_machine=False,
            ).values_list("delivery__enrollment_id", "kind")
        )
        resources = {d.step.condition_resource_id for d in conditional if d.step.condition_resource_id}
        if resources:
            downloaded = set(
                FormSubmission.objects.filter(
                    lead_id__in={d.enrollment.lead_id for d in conditional}, resource_id__in=resources
                ).values_list("lead_id", "resource_id")
            )
    return engaged, downloaded


def _unmet(d, engaged, downloaded) -> str | None:
    step, C = d.step, Step.Condition
    if step.condition == C.NO_REPLY and (d.enrollment_id, EmailEvent.Kind.REPLIED) in engaged:
        return "an earlier email got a reply"
    if step.condition == C.HUMAN_CLICK and (d.enrollment_id, EmailEvent.Kind.CLICKED) not in engaged:
        return "no earlier email got a click from a person"
    if step.condition == C.DOWNLOADED and (d.enrollment.lead_id, step.condition_resource_id) not in downloaded:
        return f"the lead has not downloaded {step.condition_resource or 'the resource'}"
    return None


@dataclass
class SendPlan:
    skips: list = field(default_factory=list)  # (delivery, reason)
    exits: list = field(default_factory=list)  # (enrollment, reason)
    waits: list = field(default_factory=list)  # (delivery, due again at, reason)
    passed_over: list = field(default_factory=list)  # deliveries whose lead goes on to the next step
    emails: list = field(default_factory=list)
    calls: list = field(default_factory=list)


def plan_sends(rows, now: datetime) -> SendPlan:
    """Sort a batch's deliveries into what goes now, what waits, and what never goes.

    A row that goes gets `sender_user`, the user it goes out as (None: the site's address).
    """
    plan = SendPlan()
    suppressed = suppressed_addresses(rows)
    sent_today = _sent_today(rows, now)
    engaged, downloaded = _conditions(rows)
    for d in rows:
        enrollment, step, lead = d.enrollment, d.step, d.enrollment.lead
        sequence = enrollment.sequence
        is_suppressed = normalize_email(lead.email) in suppressed
        stop = delivery_stop_reason(enrollment=enrollment, sequence=sequence, step=step, lead=lead, suppressed=is_suppressed)
        if stop:
            plan.skips.append((d, stop))
            if step.is_active and enrollment.status in LIVE:
                plan.exits.append((enrollment, stop))
            continue
        wait = delivery_wait_reason(enrollment=enrollment, sequence=sequence)
        if wait:
            plan.waits.append((d, now + PAUSED_RECHECK, f"Waiting: {wait}."))
            continue
        unmet = _unmet(d, engaged, downloaded)
        if unmet:
            # Logged and passed over: the lead goes on to the next step.
            plan.skips.append((d, f"condition not met ({unmet})"))
            plan.passed_over.append(d)
            continue
        zone = lead_zone(lead.timezone)
        window = dict(zone=zone, days=step.send_days, start=step.window_start, end=step.window_end)
        allowed = next_send_time(now, **window)
        if allowed != now:
            plan.waits.append((d, allowed, "Moved to the next send window (outside the step's days or hours in the lead's time zone)."))
            continue
        sender = sender_for(enrollment, lead)
        key = (sequence.pk, getattr(sender, "pk", None))
        if sender is not None and sent_today.get(key, 0) >= sequence.daily_cap_per_sender:
            tomorrow = timezone.localtime(now, zone).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            plan.waits.append((d, next_send_time(tomorrow, **window), f"Moved to the next day: the daily cap of {sequence.daily_cap_per_sender} for this sender was reached."))
            continue
        sent_today[key] = sent_today.get(key, 0) + 1
        d.sender_user = sender
        (plan.calls if step.kind == Step.Kind.CALL_TASK else plan.emails).append(d)
    return plan
