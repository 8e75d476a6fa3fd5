"""One dispatcher step as the tasks take it, and the data it works on, for the dispatcher's tests."""

from datetime import datetime
from datetime import timezone as dt_timezone

import time_machine

from nurturing import services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import deliveries_send
from nurturing.models import Delivery, DueDelivery
from tests.factories import LeadFactory

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=dt_timezone.utc)


def enroll(sequence, **lead):
    """A new lead (with these fields) enrolled in `sequence` on Monday 10:00 UTC."""
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        return services.enrollment_create(lead=LeadFactory(**lead), sequence=sequence)


def row(enrollment, position=1):
    """The enrollment's delivery of the step at `position`."""
    return enrollment.deliveries.get(step__position=position)


CLAIMED = "claimed"


def take(pks, token):
    """Another worker's claim on these (claimed) deliveries: their claim queue rows get its token."""
    DueDelivery.objects.filter(delivery_id__in=[pks] if isinstance(pks, int) else pks).update(claim_token=token)


def held_by(pk):
    """(state, token): "claimed" and the queue's token while only claimed, else the row's status and token."""
    delivery = Delivery.objects.get(pk=pk)
    claim = DueDelivery.objects.filter(delivery_id=pk, claim_token__isnull=False).values_list("claim_token", flat=True).first()
    if delivery.status == Delivery.Status.SCHEDULED and claim is not None:
        return CLAIMED, claim
    return delivery.status, delivery.claim_token


def run_once(now=None, limit=100, connection=None):
    """Claim what is due and send it as one batch; None when nothing was due."""
    token, ids = deliveries_claim(limit=limit, now=now)
    return deliveries_send(ids=ids, token=token, now=now, connection=connection) if ids else None


class Connection:
    """An email connection that keeps what it was given, runs `on_open` when the batch opens it,
    and raises `error` (after calling `before_error`) for message number `error_at`."""

    def __init__(self, on_open=None, error_at=None, error=None, before_error=None):
        self.on_open, self.error_at, self.error, self.before_error = on_open, error_at, error, before_error
        self.sent, self.opened, self.closed = [], 0, 0

    def open(self):
        self.opened += 1
        if self.on_open:
            self.on_open()
        return True

    def close(self):
        self.closed += 1

    def send_messages(self, messages):
        if self.error_at is not None and len(self.sent) == self.error_at:
            self.error_at = None
            if self.before_error:
                self.before_error()
            raise self.error
        self.sent.extend(messages)
        return len(messages)
