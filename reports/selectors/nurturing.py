"""Nurturing: what each sequence's emails got in the range, and what its leads went on to win.

Per sequence, over the emails it sent in the range (Delivery.sent_at; the units are those of the sequence report:
an email with at least one such event counts once): human opens, clicks and replies (machine opens and clicks by
privacy proxies and link scanners are left out), unsubscribes, bounces, and the stage advances its steps made in
the range. Revenue influenced: the value of the deals won in the range by leads that had been sent at least one
email of the sequence before the win, per currency. Per step, the sequence's own report has the detail.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum, Value

from leads.models import Deal, StageChange
from nurturing.models import Delivery, EmailEvent, Sequence

from ..ranges import DateRange, Slice
from .common import counted_rows, rate

K = EmailEvent.Kind
HUMAN = Q(events__is_machine=False)


@dataclass
class SequenceRow:
    sequence_id: int
    name: str
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    advances: int = 0
    influenced: dict[str, Decimal] = field(default_factory=dict)

    @property
    def open_rate(self) -> float | None:
        return rate(self.opened, self.sent)

    @property
    def click_rate(self) -> float | None:
        return rate(self.clicked, self.sent)

    @property
    def reply_rate(self) -> float | None:
        return rate(self.replied, self.sent)


# What each count of a sequence's row counts, as a kind of event on the email: machine events are left out but for
# bounces (a bounce is the receiving server's).
COUNTED_EVENTS = {"opened": (K.OPENED, True), "clicked": (K.CLICKED, True), "replied": (K.REPLIED, True),
                  "unsubscribed": (K.UNSUBSCRIBED, True), "bounced": (K.BOUNCED, False)}


def sequence_deliveries(date_range: DateRange, part: Slice, sequence_id: int, counted: str = "sent"):
    """The emails of the sequence sent in the range behind one count of its row: "sent", or those with a human
    "opened", "clicked", "replied", "unsubscribed" event, or "bounced"."""
    sent = Delivery.objects.filter(date_range.q("sent_at"), counted_rows(part, "enrollment__lead"),
                                   step__sequence_id=sequence_id)
    if counted == "sent":
        return sent
    kind, human_only = COUNTED_EVENTS[counted]
    events = EmailEvent.objects.filter(delivery=OuterRef("pk"), kind=kind)
    return sent.filter(Exists(events.filter(is_machine=False) if human_only else events))


def sequence_advances(date_range: DateRange, part: Slice, sequence_id: int):
    """The stage moves the sequence's steps made in the range."""
    return StageChange.objects.filter(date_range.q("changed_at"), counted_rows(part), source_sequence_id=sequence_id)


def influenced_deals(date_range: DateRange, part: Slice, sequence_id: int):
    """Deals won in the range whose lead had been sent an email of the sequence before the win."""
    emailed_before = Delivery.objects.filter(
        step__sequence_id=sequence_id, enrollment__lead=OuterRef("lead"), sent_at__isnull=False,
        sent_at__lt=OuterRef("closed_at"),
    )
    return Deal.objects.filter(date_range.q("closed_at"), counted_rows(part), status=Deal.Status.WON).filter(
        Exists(emailed_before))


def sequence_rows(date_range: DateRange, part: Slice) -> list[SequenceRow]:
    """Every sequence that sent in the range or whose leads won after its emails, by name."""
    sent = Delivery.objects.filter(date_range.q("sent_at"), counted_rows(part, "enrollment__lead"))
    rows: dict[int, SequenceRow] = {}
    names = dict(Sequence.objects.values_list("pk", "name"))

    def row(pk):
        return rows.setdefault(pk, SequenceRow(pk, names.get(pk, f"#{pk}")))

    counts = sent.order_by().values_list("step__sequence").annotate(
        sent=Count("pk", distinct=True),
        opened=Count("pk", distinct=True, filter=Q(events__kind=K.OPENED) & HUMAN),
        clicked=Count("pk", distinct=True, filter=Q(events__kind=K.CLICKED) & HUMAN),
        replied=Count("pk", distinct=True, filter=Q(events__kind=K.REPLIED) & HUMAN),
        unsubscribed=Count("pk", distinct=True, filter=Q(events__kind=K.UNSUBSCRIBED) & HUMAN),
        bounced=Count("pk", distinct=True, filter=Q(events__kind=K.BOUNCED)),
    )
    for sequence_id, *numbers in counts:
        target = row(sequence_id)
        (target.sent, target.opened, target.clicked, target.replied, target.unsubscribed, target.bounced) = numbers
    for sequence_id, n in (StageChange.objects.filter(date_range.q("changed_at"), counted_rows(part),
                                                      source_sequence_id__isnull=False)
                           .order_by().values_list("source_sequence_id").annotate(n=Count("pk"))):
        row(sequence_id).advances = n
    # Revenue influenced, summed by the database: per currency of the deals won in the range, one query that
    # gives each sequence the sum of the deals whose lead it emailed before the win.
    won = Deal.objects.filter(date_range.q("closed_at"), counted_rows(part), status=Deal.Status.WON)
    for currency in won.order_by().values_list("currency", flat=True).distinct():
        emailed_before = Delivery.objects.filter(
            step__sequence_id=OuterRef(OuterRef("pk")), enrollment__lead=OuterRef("lead"), sent_at__isnull=False,
            sent_at__lt=OuterRef("closed_at"),
        )
        total = (won.filter(Exists(emailed_before), currency=currency).order_by()
                 .annotate(one=Value(1)).values("one").annotate(total=Sum("value")).values("total"))
        for sequence_id, value in (Sequence.objects.annotate(influenced=Subquery(total))
                                   .filter(influenced__isnull=False).values_list("pk", "influenced")):
            row(sequence_id).influenced[currency] = value
    return sorted(rows.values(), key=lambda r: r.name.lower())
