"""Claiming due deliveries for a worker task, and handing back what a lost worker held.

A delivery moves scheduled -> claimed -> sending -> sent (or skipped/failed),
each move a conditional UPDATE that only the holder of the claim can make.
This module makes the first move and undoes it for the lost; nurturing.dispatch
makes the others.

- `deliveries_claim` takes due rows for one worker task (PostgreSQL: FOR
  UPDATE SKIP LOCKED, so two dispatchers never take the same row; SQLite:
  one writer at a time). A claimed row has not been attempted: if its task
  is lost (broker restart, worker killed before it started), the reaper hands
  it back and it is sent later.
- `deliveries_reap` hands back rows claimed by a worker that never started
  them, and marks `unknown` the rows left in `sending` by a worker that was
  lost mid-send: those are never sent again.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from .models import Delivery

S = Delivery.Status

_CLAIM_SQL = """
UPDATE nurturing_delivery
   SET status = 'claimed', claim_token = %s, claimed_at = %s, attempts = attempts + 1, updated_at = %s
 WHERE id IN (
       SELECT id FROM nurturing_delivery
        WHERE status = 'scheduled' AND due_at <= %s
        ORDER BY due_at
        LIMIT %s)
RETURNING id
"""

# PostgreSQL: the rows are picked and locked (SKIP LOCKED: two dispatchers never take
# the same row) and updated by their physical address, with no second index lookup.
_CLAIM_SQL_POSTGRESQL = """
WITH picked AS (
     SELECT ctid FROM nurturing_delivery
      WHERE status = 'scheduled' AND due_at <= %s
      ORDER BY due_at
      LIMIT %s
        FOR UPDATE SKIP LOCKED)
UPDATE nurturing_delivery
   SET status = 'claimed', claim_token = %s, claimed_at = %s, attempts = attempts + 1, updated_at = %s
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked))
RETURNING id
"""


def deliveries_claim(*, limit: int, now: datetime | None = None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to `limit` due deliveries for one worker task; returns the claim token and the ids."""
    now = now or timezone.now()
    token = uuid.uuid4()
    # Parameters in the form the ORM stores them (SQLite keeps UUIDs as hex, datetimes as naive UTC text).
    token_param = Delivery._meta.get_field("claim_token").get_db_prep_value(token, db_connection)
    at = db_connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            # A claim lost in a database crash leaves its rows scheduled: the worker
            # finds them not claimed and sends nothing, and they are claimed again.
            # So the claim need not wait for its commit to reach the disk.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(_CLAIM_SQL_POSTGRESQL, [at, limit, token_param, at, at])
        else:
            cursor.execute(_CLAIM_SQL, [token_param, at, at, at, limit])
        ids = sorted(row[0] for row in cursor.fetchall())
    return token, ids


def deliveries_reap(*, now: datetime | None = None, stale_after: timedelta | None = None) -> tuple[int, int]:
    """Deal with rows a lost worker held: hand back the never-started, mark the in-flight unknown."""
    now = now or timezone.now()
    if stale_after is None:
        stale_after = timedelta(seconds=settings.CRM_NURTURE_STALE_AFTER_SECONDS)
    cutoff = now - stale_after
    handed_back = Delivery.objects.filter(status=S.CLAIMED, claimed_at__lt=cutoff).update(
        status=S.SCHEDULED, claim_token=None, claimed_at=None, updated_at=now,
        reason="Handed back: the worker that claimed it never started it.",
    )
    unknown = Delivery.objects.filter(status=S.SENDING, claimed_at__lt=cutoff).update(
        status=S.UNKNOWN, updated_at=now,
        reason="The worker was lost while sending: it may or may not have gone out, so it is not sent again.",
    )
    return handed_back, unknown
