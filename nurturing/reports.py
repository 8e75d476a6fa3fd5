"""Engagement reports: what each step of a sequence got out of the people it reached.

Read only, and planned: `sequence_report` costs the same five queries for a
sequence of two steps and ten leads as for twenty steps and a million events
(every number is an aggregate grouped by step, never a query per step).

The units, chosen so a manager can check each number by hand:

- per step, the unit is the email (one delivery: one step for one lead in one
  enrollment). "Sent" is an email that left at least once (`sent_at` is set:
  one that soft-bounced and waits to go again still counts, once). "Opened",
  "clicked", "replied"... are emails with at least one such event, so each
  rate is emails with the event / emails sent and can never pass 100%. Raw
  open and click counts (a person opening the same email five times counts
  five) are shown beside them, because they are what a provider's dashboard
  shows;
- the total row adds the steps up (an email belongs to one step, so the
  sums are exact); call-task steps send no email and are left out of it;
- the whole-sequence line counts leads, not emails: leads emailed, and leads
  with a person's open, click or reply on any of its emails (the domain's
  engagement rate, without visits, which are not linked to emails);
- machine opens and clicks (privacy proxies, link scanners: see
  nurturing.classify) are counted in their own columns and in no other
  number;
- stage moves are the stage history rows the dispatcher (stage action on
  send) and the engagement rules (stage action on a click) wrote for the
  step, found by the sequence's and step's ids (`source_sequence_id`,
  `source_step_id`), never by name: a renamed sequence keeps its moves, and
  two sequences with the same name do not share them.
"""

from dataclasses import dataclass, field

from django.db.models import Count, Q

from leads.models import StageChange
from leads.pipeline import FUNNEL, LeadStatus

from .models import Delivery, EmailEvent, Sequence, Step

K = EmailEvent.Kind
HUMAN = Q(is_machine=False)

# Each metric counted on events: its name and the events it counts.
_EVENT_METRICS = {
    "delivered": Q(kind=K.DELIVERED),
    "opened": Q(kind=K.OPENED) & HUMAN,
    "clicked": Q(kind=K.CLICKED) & HUMAN,
    "replied": Q(kind=K.REPLIED) & HUMAN,
    "unsubscribed": Q(kind=K.UNSUBSCRIBED) & HUMAN,
    "bounced": Q(kind=K.BOUNCED),
    "bounced_hard": Q(kind=K.BOUNCED, bounce=EmailEvent.Bounce.HARD),
    "bounced_soft": Q(kind=K.BOUNCED, bounce=EmailEvent.Bounce.SOFT),
    "complained": Q(kind=K.COMPLAINED) & HUMAN,
}
# Counted as events, not as emails.
_RAW_METRICS = {
    "opens": Q(kind=K.OPENED) & HUMAN,
    "clicks": Q(kind=K.CLICKED) & HUMAN,
    "machine_opens": Q(kind=K.OPENED, is_machine=True),
    "machine_clicks": Q(kind=K.CLICKED, is_machine=True),
}
_COUNTS = ("sent", *_EVENT_METRICS, *_RAW_METRICS)


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _rate_of(metric: str) -> property:
    return property(lambda row: row.rate(metric), doc=f"{metric} / sent, in percent (None when nothing was sent).")


@dataclass
class StepRow:
    """One step's numbers (or the total of the email steps, with `step` None)."""

    step: Step | None
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    complained: int = 0
    opens: int = 0
    clicks: int = 0
    machine_opens: int = 0
    machine_clicks: int = 0
    stage_moves: dict[str, int] = field(default_factory=dict)
    moves: list[int] = field(default_factory=list)  # stage_moves in the order of the report's stage columns

    @property
    def is_email(self) -> bool:
        return self.step is None or self.step.kind == Step.Kind.EMAIL

    def rate(self, metric: str) -> float | None:
        """Emails with the event / emails sent, in percent (None when nothing was sent)."""
        return _percent(getattr(self, metric), self.sent)

    open_rate = _rate_of("opened")
    click_rate = _rate_of("clicked")
    reply_rate = _rate_of("replied")
    unsubscribe_rate = _rate_of("unsubscribed")
    bounce_rate = _rate_of("bounced")


@dataclass
class LeadSummary:
    """The whole sequence, counted in leads."""

    emailed: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    engaged: int = 0

    @property
    def engagement_rate(self):
        return _percent(self.engaged, self.emailed)


@dataclass
class SequenceReport:
    sequence: Sequence
    rows: list[StepRow]
    total: StepRow
    leads: LeadSummary
    stages: list[tuple[str, str]]  # the stages leads were moved to, funnel order: the stage columns


def sequence_report(*, sequence: Sequence) -> SequenceReport:
    """Every step's sends, engagement and stage moves, with totals: five queries whatever the size."""
    steps = list(
        Step.objects.filter(sequence=sequence)
        .annotate(n_sent=Count("deliveries", filter=Q(deliveries__sent_at__isnull=False)))
        .order_by("position")
    )
    rows = {step.pk: StepRow(step=step, sent=step.n_sent) for step in steps}

    aggregates = {name: Count("delivery", distinct=True, filter=q) for name, q in _EVENT_METRICS.items()}
    aggregates |= {name: Count("id", filter=q) for name, q in _RAW_METRICS.items()}
    by_step = (
        EmailEvent.objects.filter(delivery__step__sequence=sequence)
        .values("delivery__step_id")
        .annotate(**aggregates)
        .order_by()
    )
    for counts in by_step:
        row = rows.get(counts.pop("delivery__step_id"))
        if row is not None:
            for name, n in counts.items():
                setattr(row, name, n)

    by_position = {step.position: rows[step.pk] for step in steps}
    moved = set()
    if steps:
        position_of = {step.pk: step.position for step in steps}
        moves = (
            StageChange.objects.filter(source_sequence_id=sequence.pk, source_step_id__in=list(position_of))
            .values("source_step_id", "to_status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for move in moves:
            by_position[position_of[move["source_step_id"]]].stage_moves[move["to_status"]] = move["n"]
            moved.add(move["to_status"])

    total = StepRow(step=None)
    for row in rows.values():
        if not row.is_email:
            continue
        for name in _COUNTS:
            setattr(total, name, getattr(total, name) + getattr(row, name))
    for row in rows.values():
        for status, n in row.stage_moves.items():
            total.stage_moves[status] = total.stage_moves.get(status, 0) + n

    stages = _stage_columns(moved)
    for row in (*rows.values(), total):
        row.moves = [row.stage_moves.get(value, 0) for value, _ in stages]
    return SequenceReport(sequence=sequence, rows=list(rows.values()), total=total, leads=_lead_summary(sequence), stages=stages)


def _lead_summary(sequence: Sequence) -> LeadSummary:
    emailed = (
        Delivery.objects.filter(step__sequence=sequence, step__kind=Step.Kind.EMAIL, sent_at__isnull=False)
        .aggregate(n=Count("enrollment__lead", distinct=True))["n"]
    )
    engaged = Q(kind__in=[K.OPENED, K.CLICKED, K.REPLIED]) & HUMAN
    leads = EmailEvent.objects.filter(delivery__step__sequence=sequence).aggregate(
        opened=Count("lead", distinct=True, filter=_EVENT_METRICS["opened"]),
        clicked=Count("lead", distinct=True, filter=_EVENT_METRICS["clicked"]),
        replied=Count("lead", distinct=True, filter=_EVENT_METRICS["replied"]),
        engaged=Count("lead", distinct=True, filter=engaged),
    )
    return LeadSummary(emailed=emailed, **leads)


def _stage_columns(moved: set[str]) -> list[tuple[str, str]]:
    order = [*FUNNEL, LeadStatus.LOST, LeadStatus.DISQUALIFIED]
    return [(status.value, status.label) for status in order if status in moved]

