"""Claiming due deliveries for a worker task, and handing back what a lost worker held.

A delivery moves scheduled -> sending -> sent (or skipped/failed/unknown),
each move a conditional UPDATE that only the holder of the claim can make.
The claim itself is kept in the narrow claim queue (DueDelivery: the id, the
due time, the claim), which database triggers keep in step with the scheduled
deliveries: claiming 1,000 rows rewrites 1,000 small rows and two small
indexes, never the wide deliveries and theirs. This module makes the claim and
undoes it for the lost; nurturing.dispatch makes the other moves.

- The queue has a near end (DueDelivery: what is due now or within
  QUEUE_HORIZON) and a far end (LaterDelivery: the rest). The triggers queue
  every newly scheduled delivery at the near end; the tick
  (`deliveries_queue_sort`) moves the far ones away, and each claim first
  brings back those that came within the horizon. So a claim reads and writes
  only rows due about now, packed together: it costs the same with 10,000 or
  10,000,000 deliveries scheduled for the weeks ahead.
- `deliveries_claim` takes due queue rows for one worker task (PostgreSQL: FOR
  UPDATE SKIP LOCKED, so two dispatchers never take the same row; SQLite:
  one writer at a time). A claimed delivery has not been attempted: if its
  task is lost (broker restart, worker killed before it started), the reaper
  hands it back and it is sent later.
- `deliveries_reap` hands back claims a worker never started, and marks
  `unknown` the rows left in `sending` by a worker that was lost mid-send:
  those are never sent again.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from .models import Delivery, DueDelivery, LaterDelivery

S = Delivery.Status

# The reason a claimed email carries when its worker could not send it and holds it until the claim expires
# (the mail server refused the connection). The reaper hands such rows back without writing over it.
NOT_SENT_YET = "Not sent yet: "

# How far ahead the near end of the queue reaches. Past it, rows wait in LaterDelivery; a claim brings
# back what came within it before it claims, so a row is never missed for being at the far end.
QUEUE_HORIZON = timedelta(minutes=30)
# At most this many rows move to the far end per statement, and per tick this many statements: a bulk
# enrollment of millions is sorted over a few ticks, never in one long transaction.
SORT_BATCH = 5000
SORT_BATCHES_PER_TICK = 20

_NEAR, _FAR = DueDelivery._meta.db_table, LaterDelivery._meta.db_table

# The far rows that came within the horizon, back to the near end (one statement on PostgreSQL).
_BRING_BACK_POSTGRESQL = f"""
WITH moved AS (DELETE FROM {_FAR} WHERE due_at <= %s RETURNING delivery_id, due_at)
INSERT INTO {_NEAR} (delivery_id, due_at) SELECT delivery_id, due_at FROM moved
ON CONFLICT (delivery_id) DO NOTHING
"""
# Rows nobody holds that are due past the horizon, to the far end (SKIP LOCKED: a row being rescheduled
# or claimed meanwhile stays where it is, for the next tick).
_MOVE_AWAY_POSTGRESQL = f"""
WITH picked AS (
     SELECT ctid FROM {_NEAR} WHERE claim_token IS NULL AND due_at > %s LIMIT %s FOR UPDATE SKIP LOCKED),
moved AS (DELETE FROM {_NEAR} WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked)) RETURNING delivery_id, due_at)
INSERT INTO {_FAR} (delivery_id, due_at) SELECT delivery_id, due_at FROM moved
ON CONFLICT (delivery_id) DO UPDATE SET due_at = EXCLUDED.due_at
"""
# SQLite (one writer at a time): the same moves in two statements each.
_BRING_BACK_SQLITE = [
    f"INSERT OR IGNORE INTO {_NEAR} (delivery_id, due_at) SELECT delivery_id, due_at FROM {_FAR} WHERE due_at <= %s",
    f"DELETE FROM {_FAR} WHERE due_at <= %s",
]
_AWAY_SQLITE = f"SELECT delivery_id FROM {_NEAR} WHERE claim_token IS NULL AND due_at > %s ORDER BY delivery_id LIMIT %s"
_MOVE_AWAY_SQLITE = [
    f"INSERT OR REPLACE INTO {_FAR} (delivery_id, due_at) SELECT delivery_id, due_at FROM {_NEAR} "
    f"WHERE delivery_id IN ({_AWAY_SQLITE})",
    f"DELETE FROM {_NEAR} WHERE delivery_id IN ({_AWAY_SQLITE})",
]


def _bring_back(cursor, horizon_end) -> int:
    if db_connection.vendor == "postgresql":
        cursor.execute(_BRING_BACK_POSTGRESQL, [horizon_end])
        return cursor.rowcount
    cursor.execute(_BRING_BACK_SQLITE[0], [horizon_end])
    moved = cursor.rowcount
    cursor.execute(_BRING_BACK_SQLITE[1], [horizon_end])
    return moved


def deliveries_queue_sort(*, now: datetime | None = None) -> tuple[int, int]:
    """The tick's tidy-up of the claim queue: rows due past the horizon go to its far end, rows that came within
    it come back. Returns (moved away, brought back). Safe to run at any time, by several dispatchers at once."""
    now = now or timezone.now()
    horizon_end = db_connection.ops.adapt_datetimefield_value(now + QUEUE_HORIZON)
    away = 0
    for _ in range(SORT_BATCHES_PER_TICK):
        with transaction.atomic(), db_connection.cursor() as cursor:
            if db_connection.vendor == "postgresql":
                cursor.execute("SET LOCAL synchronous_commit TO OFF")  # lost in a crash: the rows stay near, as before
                cursor.execute(_MOVE_AWAY_POSTGRESQL, [horizon_end, SORT_BATCH])
                moved = cursor.rowcount
            else:
                cursor.execute(_MOVE_AWAY_SQLITE[0], [horizon_end, SORT_BATCH])
                moved = cursor.rowcount
                cursor.execute(_MOVE_AWAY_SQLITE[1], [horizon_end, SORT_BATCH])
        away += moved
        if moved < SORT_BATCH:
            break
    with transaction.atomic(), db_connection.cursor() as cursor:
        back = _bring_back(cursor, horizon_end)
    return away, back


_CLAIM_SQL = """
UPDATE nurturing_duedelivery
   SET claim_token = %s, claimed_at = %s
 WHERE delivery_id IN (
       SELECT delivery_id FROM nurturing_duedelivery
        WHERE claim_token IS NULL AND due_at <= %s
        ORDER BY due_at
        LIMIT %s)
RETURNING delivery_id
"""

# PostgreSQL: the rows are picked and locked (SKIP LOCKED: two dispatchers never take
# the same row) and updated by their physical address, with no second index lookup.
_CLAIM_SQL_POSTGRESQL = """
WITH picked AS (
     SELECT ctid FROM nurturing_duedelivery
      WHERE claim_token IS NULL AND due_at <= %s
      ORDER BY due_at
      LIMIT %s
        FOR UPDATE SKIP LOCKED)
UPDATE nurturing_duedelivery
   SET claim_token = %s, claimed_at = %s
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked))
RETURNING delivery_id
"""


def deliveries_claim(*, limit: int, now: datetime | None = None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to `limit` due deliveries for one worker task; returns the claim token and the ids."""
    now = now or timezone.now()
    token = uuid.uuid4()
    # Parameters in the form the ORM stores them (SQLite keeps UUIDs as hex, datetimes as naive UTC text).
    token_param = DueDelivery._meta.get_field("claim_token").get_db_prep_value(token, db_connection)
    at = db_connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            # A claim lost in a database crash leaves its rows scheduled: the worker
            # finds them not claimed and sends nothing, and they are claimed again.
            # So the claim need not wait for its commit to reach the disk.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # What came within the horizon first (nothing, as a rule: an index probe), so no due row is missed.
        _bring_back(cursor, db_connection.ops.adapt_datetimefield_value(now + QUEUE_HORIZON))
        if db_connection.vendor == "postgresql":
            cursor.execute(_CLAIM_SQL_POSTGRESQL, [at, limit, token_param, at])
        else:
            cursor.execute(_CLAIM_SQL, [token_param, at, at, limit])
        ids = sorted(row[0] for row in cursor.fetchall())
    return token, ids


def claims_renew(ids, *, token, now: datetime) -> None:
    """Claim again, under `token`, the rows of `ids` that are scheduled: at the near end, whatever their due time
    (a batch's transient failure handed its started rows back for its own retry). Call it in a transaction."""
    due = list(Delivery.objects.filter(pk__in=ids, status=S.SCHEDULED).values_list("pk", "due_at"))
    LaterDelivery.objects.filter(delivery_id__in=[pk for pk, _ in due]).delete()
    DueDelivery.objects.bulk_create(
        [DueDelivery(delivery_id=pk, due_at=due_at, claim_token=token, claimed_at=now) for pk, due_at in due],
        update_conflicts=True, unique_fields=["delivery"], update_fields=["due_at", "claim_token", "claimed_at"],
    )


def deliveries_reap(*, now: datetime | None = None, stale_after: timedelta | None = None) -> tuple[int, int]:
    """Deal with rows a lost worker held: hand back the never-started, mark the in-flight unknown."""
    now = now or timezone.now()
    if stale_after is None:
        stale_after = timedelta(seconds=settings.CRM_NURTURE_STALE_AFTER_SECONDS)
    cutoff = now - stale_after
    with transaction.atomic():
        stale = list(DueDelivery.objects.filter(claim_token__isnull=False, claimed_at__lt=cutoff)
                     .select_for_update(skip_locked=True).values_list("delivery_id", flat=True))
        handed_back = DueDelivery.objects.filter(delivery_id__in=stale).update(claim_token=None, claimed_at=None)
        if stale:
            Delivery.objects.filter(pk__in=stale, status=S.SCHEDULED).exclude(reason__startswith=NOT_SENT_YET).update(
                reason="Handed back: the worker that claimed it never started it.", updated_at=now)
    unknown = Delivery.objects.filter(status=S.SENDING, claimed_at__lt=cutoff).update(
        status=S.UNKNOWN, updated_at=now,
        reason="The worker was lost while sending: it may or may not have gone out, so it is not sent again.",
    )
    return handed_back, unknown
