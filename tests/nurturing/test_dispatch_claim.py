"""The claim and the reaper: which rows a worker takes, what the claim writes (the claim queue's narrow rows,
never the deliveries), and what a lost worker leaves."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.db import connection

from nurturing import claim as claim_module
from nurturing import services
from nurturing.claim import QUEUE_HORIZON, deliveries_claim, deliveries_queue_sort, deliveries_reap
from nurturing.models import Delivery, DueDelivery, LaterDelivery
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=dt_timezone.utc)
HANDED_BACK = "Handed back: the worker that claimed it never started it."
LOST_WHILE_SENDING = "The worker was lost while sending: it may or may not have gone out, so it is not sent again."


def deliveries_due(*moments):
    """One scheduled delivery per moment, each due then (enrolled at that moment, no delay)."""
    sequence = sequence_with_steps()
    rows = []
    for moment in moments:
        with time_machine.travel(moment, tick=False):
            rows.append(services.enrollment_create(lead=LeadFactory(), sequence=sequence).deliveries.get())
    return rows


def claim_of(delivery):
    """The claim on a delivery in the claim queue: (token, claimed at); None when it is not queued."""
    return DueDelivery.objects.filter(delivery=delivery).values_list("claim_token", "claimed_at").first()


# --- Claim ---------------------------------------------------------------------------


def test_a_delivery_due_exactly_now_is_claimed_and_one_due_a_microsecond_later_is_not():
    due_now, due_later = deliveries_due(MONDAY_10_UTC, MONDAY_10_UTC + timedelta(microseconds=1))

    _, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    assert ids == [due_now.pk]
    assert claim_of(due_later) == (None, None)


def test_the_claim_takes_the_earliest_due_first_up_to_its_limit_and_returns_the_ids_in_order():
    # Created latest-due first, so the ids run against the due times.
    late, middle, early = deliveries_due(
        MONDAY_10_UTC - timedelta(minutes=1), MONDAY_10_UTC - timedelta(minutes=2), MONDAY_10_UTC - timedelta(minutes=3)
    )

    _, ids = deliveries_claim(limit=2, now=MONDAY_10_UTC)

    assert ids == sorted([early.pk, middle.pk])
    assert claim_of(late) == (None, None)
    _, rest = deliveries_claim(limit=2, now=MONDAY_10_UTC)
    assert rest == [late.pk]


def test_the_claim_queue_holds_the_token_and_the_claim_time_and_the_delivery_row_is_not_written():
    [delivery] = deliveries_due(MONDAY_10_UTC)
    before = Delivery.objects.filter(pk=delivery.pk).values().get()
    claimed_at = MONDAY_10_UTC + timedelta(minutes=5)

    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=1), tick=False):
        token, ids = deliveries_claim(limit=10, now=claimed_at)

    assert ids == [delivery.pk]
    assert claim_of(delivery) == (token, claimed_at)
    assert Delivery.objects.filter(pk=delivery.pk).values().get() == before  # status scheduled, no attempt yet


def test_without_a_time_given_the_claim_uses_the_clock():
    [delivery] = deliveries_due(MONDAY_10_UTC + timedelta(minutes=1))

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert deliveries_claim(limit=10)[1] == []
    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=1), tick=False):
        token, ids = deliveries_claim(limit=10)

    assert ids == [delivery.pk]
    assert claim_of(delivery) == (token, MONDAY_10_UTC + timedelta(minutes=1))


def test_each_claim_gets_its_own_token():
    deliveries_due(MONDAY_10_UTC, MONDAY_10_UTC)
    first, _ = deliveries_claim(limit=1, now=MONDAY_10_UTC)
    second, _ = deliveries_claim(limit=1, now=MONDAY_10_UTC)
    assert first != second
    assert sorted(DueDelivery.objects.values_list("claim_token", flat=True)) == sorted([first, second])


def test_a_delivery_handed_back_is_claimed_again_under_a_new_token():
    [delivery] = deliveries_due(MONDAY_10_UTC)
    first, _ = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    deliveries_reap(now=MONDAY_10_UTC + timedelta(minutes=11), stale_after=timedelta(minutes=10))

    second, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC + timedelta(minutes=12))

    assert ids == [delivery.pk] and second != first
    assert claim_of(delivery) == (second, MONDAY_10_UTC + timedelta(minutes=12))


def test_nothing_due_claims_nothing():
    deliveries_due(MONDAY_10_UTC)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC - timedelta(seconds=1))
    assert ids == []
    assert not DueDelivery.objects.filter(claim_token=token).exists()


def test_the_queue_follows_the_deliveries_whatever_writes_them():
    """The triggers: rescheduled, cancelled, sent and deleted deliveries, by the ORM's single and bulk writes."""
    first, second, third = deliveries_due(MONDAY_10_UTC, MONDAY_10_UTC, MONDAY_10_UTC)
    later = MONDAY_10_UTC + timedelta(days=1)
    token, _ = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    Delivery.objects.filter(pk=first.pk).update(due_at=later)  # moved: queued at its new time, the claim dropped
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.SKIPPED)  # cancelled: out of the queue
    Delivery.objects.filter(pk=third.pk).delete()

    assert list(DueDelivery.objects.values_list("delivery_id", "due_at", "claim_token")) == [(first.pk, later, None)]
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.SCHEDULED)  # scheduled again: queued again
    assert claim_of(second) == (None, None)
    assert deliveries_claim(limit=10, now=MONDAY_10_UTC)[1] == [second.pk]


# --- The queue's two ends --------------------------------------------------------------------


def ends():
    """Which delivery ids wait at each end of the claim queue: (near, far)."""
    return (sorted(DueDelivery.objects.values_list("delivery_id", flat=True)),
            sorted(LaterDelivery.objects.values_list("delivery_id", flat=True)))


def database_now():
    """The database's own clock (the tests move only the application's): the triggers place rows by it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS", UTC
        value = datetime.fromisoformat(value).replace(tzinfo=dt_timezone.utc)
    return value


def test_a_row_scheduled_past_the_horizon_by_the_databases_clock_is_queued_at_the_far_end_at_once():
    now = database_now()
    near, far = deliveries_due(now - timedelta(hours=1), now + timedelta(days=2))

    assert ends() == ([near.pk], [far.pk])
    Delivery.objects.filter(pk=far.pk).update(due_at=now)  # moved sooner: to the near end
    Delivery.objects.filter(pk=near.pk).update(due_at=now + timedelta(days=1))  # later: to the far end
    assert ends() == ([far.pk], [near.pk])


def test_the_tick_moves_rows_due_past_the_horizon_to_the_far_end_with_their_due_time():
    soon, edge, far = deliveries_due(MONDAY_10_UTC, MONDAY_10_UTC + QUEUE_HORIZON,
                                     MONDAY_10_UTC + QUEUE_HORIZON + timedelta(microseconds=1))
    assert ends() == ([soon.pk, edge.pk, far.pk], [])  # a newly scheduled row is queued at the near end

    assert deliveries_queue_sort(now=MONDAY_10_UTC) == (1, 0)

    assert ends() == ([soon.pk, edge.pk], [far.pk])
    assert LaterDelivery.objects.get().due_at == far.due_at
    assert deliveries_queue_sort(now=MONDAY_10_UTC) == (0, 0)  # nothing left to sort


def test_a_claim_brings_back_what_came_within_the_horizon_so_a_far_row_is_never_missed():
    [far] = deliveries_due(MONDAY_10_UTC + timedelta(days=3))
    deliveries_queue_sort(now=MONDAY_10_UTC)
    assert ends() == ([], [far.pk])
    assert deliveries_claim(limit=10, now=MONDAY_10_UTC + timedelta(days=3) - timedelta(microseconds=1))[1] == []
    assert ends() == ([far.pk], [])  # back at the near end (due within the horizon), not due yet

    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC + timedelta(days=3))

    assert ids == [far.pk]
    assert claim_of(far)[0] == token


def test_a_row_due_now_at_the_far_end_is_claimed_at_once():
    """A tick that did not run for days (beat down): the first claim finds the rows at the far end."""
    rows = deliveries_due(*(MONDAY_10_UTC + timedelta(days=n) for n in (2, 3, 4)))
    deliveries_queue_sort(now=MONDAY_10_UTC)
    assert ends() == ([], sorted(d.pk for d in rows))

    token, ids = deliveries_claim(limit=2, now=MONDAY_10_UTC + timedelta(days=10))

    assert ids == [rows[0].pk, rows[1].pk]  # the earliest due first, as ever
    assert ends() == (sorted(d.pk for d in rows), [])


def test_a_claimed_row_is_never_moved_away():
    [row] = deliveries_due(MONDAY_10_UTC)
    token, _ = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    assert deliveries_queue_sort(now=MONDAY_10_UTC - timedelta(days=1)) == (0, 0)  # (its due time is past the horizon then)
    assert claim_of(row)[0] == token


def test_the_far_end_follows_the_deliveries_whatever_writes_them():
    """The triggers: a far row rescheduled is queued again at the near end; cancelled or deleted, it is gone."""
    moved, cancelled, deleted, untouched = deliveries_due(*[MONDAY_10_UTC + timedelta(days=5)] * 4)
    deliveries_queue_sort(now=MONDAY_10_UTC)
    assert ends() == ([], sorted([moved.pk, cancelled.pk, deleted.pk, untouched.pk]))
    sooner = MONDAY_10_UTC + timedelta(days=1)

    Delivery.objects.filter(pk=moved.pk).update(due_at=sooner)
    Delivery.objects.filter(pk=cancelled.pk).update(status=Delivery.Status.SKIPPED)
    Delivery.objects.filter(pk=deleted.pk).delete()
    Delivery.objects.filter(pk=untouched.pk).update(reason="A note")  # not its status or due time: stays put

    assert ends() == ([moved.pk], [untouched.pk])
    assert DueDelivery.objects.get().due_at == sooner
    assert deliveries_queue_sort(now=MONDAY_10_UTC) == (1, 0)
    assert LaterDelivery.objects.get(delivery=moved).due_at == sooner


def test_the_tick_sorts_a_bulk_enrollment_in_batches_and_leaves_the_rest_for_the_next_tick(monkeypatch):
    rows = deliveries_due(*[MONDAY_10_UTC + timedelta(days=2)] * 5)
    monkeypatch.setattr(claim_module, "SORT_BATCH", 2)
    monkeypatch.setattr(claim_module, "SORT_BATCHES_PER_TICK", 2)

    assert deliveries_queue_sort(now=MONDAY_10_UTC) == (4, 0)
    assert len(ends()[0]) == 1
    assert deliveries_queue_sort(now=MONDAY_10_UTC) == (1, 0)
    assert ends() == ([], sorted(d.pk for d in rows))


# --- The reaper ----------------------------------------------------------------------------


CLAIMED = "claimed"


def held(status, *, claimed_at):
    """A delivery a worker holds since `claimed_at`: claimed (in the claim queue), or sending (on the row)."""
    [delivery] = deliveries_due(claimed_at)
    token, _ = deliveries_claim(limit=10, now=claimed_at)
    if status == Delivery.Status.SENDING:
        Delivery.objects.filter(pk=delivery.pk).update(status=status, claim_token=token, claimed_at=claimed_at)
    return delivery, token


def test_the_reaper_hands_back_a_claimed_row_with_no_token_no_claim_time_and_the_reason():
    delivery, _ = held(CLAIMED, claimed_at=MONDAY_10_UTC)
    now = MONDAY_10_UTC + timedelta(minutes=10, microseconds=1)

    assert deliveries_reap(now=now, stale_after=timedelta(minutes=10)) == (1, 0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.updated_at, delivery.reason) == (Delivery.Status.SCHEDULED, now, HANDED_BACK)
    assert claim_of(delivery) == (None, None)
    assert delivery.due_at == MONDAY_10_UTC  # as due as it was: the next claim takes it
    assert deliveries_claim(limit=10, now=now)[1] == [delivery.pk]


def test_the_reaper_marks_a_row_lost_while_sending_unknown_with_the_reason():
    delivery, token = held(Delivery.Status.SENDING, claimed_at=MONDAY_10_UTC)
    now = MONDAY_10_UTC + timedelta(minutes=10, microseconds=1)

    assert deliveries_reap(now=now, stale_after=timedelta(minutes=10)) == (0, 1)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.updated_at, delivery.reason, delivery.claim_token) == (
        Delivery.Status.UNKNOWN, now, LOST_WHILE_SENDING, token,
    )
    assert deliveries_claim(limit=10, now=now)[1] == []  # never sent again


@pytest.mark.parametrize("status", [CLAIMED, Delivery.Status.SENDING])
def test_a_row_held_exactly_the_stale_time_is_left_to_its_worker(status):
    delivery, token = held(status, claimed_at=MONDAY_10_UTC)

    assert deliveries_reap(now=MONDAY_10_UTC + timedelta(minutes=10), stale_after=timedelta(minutes=10)) == (0, 0)

    delivery.refresh_from_db()
    if status == CLAIMED:
        assert (delivery.status, claim_of(delivery)) == (Delivery.Status.SCHEDULED, (token, MONDAY_10_UTC))
    else:
        assert (delivery.status, delivery.claim_token, delivery.claimed_at) == (status, token, MONDAY_10_UTC)


def test_the_reaper_waits_the_configured_stale_time_by_default(settings):
    settings.CRM_NURTURE_STALE_AFTER_SECONDS = 300
    held(CLAIMED, claimed_at=MONDAY_10_UTC)
    held(Delivery.Status.SENDING, claimed_at=MONDAY_10_UTC)

    assert deliveries_reap(now=MONDAY_10_UTC + timedelta(seconds=300)) == (0, 0)
    assert deliveries_reap(now=MONDAY_10_UTC + timedelta(seconds=300, microseconds=1)) == (1, 1)


def test_without_a_time_given_the_reaper_uses_the_clock(settings):
    settings.CRM_NURTURE_STALE_AFTER_SECONDS = 300
    held(CLAIMED, claimed_at=MONDAY_10_UTC)

    with time_machine.travel(MONDAY_10_UTC + timedelta(seconds=300), tick=False):
        assert deliveries_reap() == (0, 0)
    with time_machine.travel(MONDAY_10_UTC + timedelta(seconds=301), tick=False):
        assert deliveries_reap() == (1, 0)
    assert Delivery.objects.get().updated_at == MONDAY_10_UTC + timedelta(seconds=301)


def test_the_reaper_leaves_rows_no_worker_holds_alone():
    sequence = sequence_with_steps()
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        for _ in range(4):
            services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    rows = list(Delivery.objects.order_by("pk"))
    for delivery, status in zip(rows, [Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED], strict=False):
        Delivery.objects.filter(pk=delivery.pk).update(status=status, claimed_at=MONDAY_10_UTC)
    before = list(Delivery.objects.order_by("pk").values_list("status", "reason", "claimed_at", "updated_at"))

    assert deliveries_reap(now=MONDAY_10_UTC + timedelta(days=1), stale_after=timedelta(minutes=10)) == (0, 0)

    assert list(Delivery.objects.order_by("pk").values_list("status", "reason", "claimed_at", "updated_at")) == before
