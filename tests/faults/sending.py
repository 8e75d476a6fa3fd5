"""What the sending fault tests share: due emails seeded in bulk, the wait until the backlog is drained, and the
count of what the mail server got against what the database recorded."""

import time
from dataclasses import dataclass, field

from tests.integration.test_nurturing_worker import bulk_enroll
from tests.waiting import wait_for

OPEN = ["scheduled", "sending"]  # still to be decided (a claimed delivery is scheduled, its claim in the queue)


def due_emails(count):
    """`count` leads in a one-step sequence, each with its email due now; returns the sequence."""
    from tests.factories import sequence_with_steps

    sequence = sequence_with_steps({})
    bulk_enroll(sequence, count)
    return sequence


def drained(timeout) -> float | None:
    """Wait until no delivery is left to decide; the monotonic time it happened, or None."""
    from nurturing.models import Delivery

    done = wait_for(lambda: not Delivery.objects.filter(status__in=OPEN).exists(), timeout=timeout, interval=0.1)
    return time.monotonic() if done else None


@dataclass
class Outcome:
    statuses: dict  # delivery id (text) -> status
    reasons: dict  # delivery id (text) -> reason
    received: dict  # delivery id (text) -> times the mail server accepted it
    duplicates: int = 0
    lost: int = 0
    unknown: list = field(default_factory=list)
    explained: str = ""

    def ids(self, status):
        return {pk for pk, s in self.statuses.items() if s == status}


def outcome(received) -> Outcome:
    """Compare what the server accepted (delivery id -> times) with the rows: duplicates, lost and unknown.

    Lost: a row recorded sent that the server never accepted, one still undecided, or one the server accepted
    that is recorded neither sent nor unknown. Unknown rows may or may not have been accepted: each must say why.
    """
    from nurturing.models import Delivery

    rows = list(Delivery.objects.values_list("id", "status", "reason"))
    result = Outcome({str(pk): s for pk, s, _ in rows}, {str(pk): r for pk, _, r in rows}, dict(received))
    result.duplicates = sum(n - 1 for n in received.values() if n > 1)
    sent, unknown = result.ids("sent"), result.ids("unknown")
    undecided = {pk for pk, s in result.statuses.items() if s in OPEN}
    result.lost = len(sent - set(received)) + len(undecided) + len(set(received) - sent - unknown)
    result.unknown = sorted(unknown)
    result.explained = "; ".join(sorted({result.reasons[pk] for pk in unknown}))
    return result
