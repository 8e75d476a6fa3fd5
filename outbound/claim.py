"""Claiming due deliveries with a lease; a lease that runs out makes its rows due again.

A delivery is due when `next_attempt_at` has come and nobody holds it
(`claimed_until` empty or past). Claiming sets status `delivering`, a new
claim token and `claimed_until` = now + CRM_WEBHOOKS_LEASE_SECONDS, and
leaves `next_attempt_at` as it was: if the worker dies, nothing needs to
hand the rows back; once the lease has run out they are claimed again and
sent again with the same webhook-id (at least once: receivers dedupe on it).

PostgreSQL picks the rows with FOR UPDATE SKIP LOCKED, so two dispatchers
never take the same row; SQLite has one writer at a time. Deliveries of a
paused endpoint wait, and go when it is resumed.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from .models import Delivery

_PICK = """
SELECT d.id FROM outbound_delivery d
  JOIN outbound_endpoint e ON e.id = d.endpoint_id
 WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= %s
   AND (d.claimed_until IS NULL OR d.claimed_until <= %s)
   AND e.is_active
 ORDER BY d.next_attempt_at
 LIMIT %s
"""

_CLAIM_SQL = f"""
UPDATE outbound_delivery
   SET status = 'delivering', claim_token = %s, claimed_until = %s, updated_at = %s
 WHERE id IN ({_PICK})
RETURNING id
"""

_CLAIM_SQL_POSTGRESQL = f"""
WITH picked AS ({_PICK} FOR UPDATE OF d SKIP LOCKED)
UPDATE outbound_delivery
   SET status = 'delivering', claim_token = %s, claimed_until = %s, updated_at = %s
 WHERE id IN (SELECT id FROM picked)
RETURNING id
"""


def deliveries_claim(*, limit: int, now: datetime | None = None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to `limit` due deliveries; returns the claim token and the ids, oldest due first."""
    now = now or timezone.now()
    token = uuid.uuid4()
    token_param = Delivery._meta.get_field("claim_token").get_db_prep_value(token, db_connection)
    adapt = db_connection.ops.adapt_datetimefield_value
    at, until = adapt(now), adapt(now + timedelta(seconds=settings.CRM_WEBHOOKS_LEASE_SECONDS))
    with transaction.atomic(), db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            cursor.execute(_CLAIM_SQL_POSTGRESQL, [at, at, limit, token_param, until, at])
        else:
            cursor.execute(_CLAIM_SQL, [token_param, until, at, at, at, limit])
        ids = sorted(row[0] for row in cursor.fetchall())
    return token, ids


def due_count(*, at_most: int, now: datetime | None = None) -> int:
    """How many deliveries are due (not held, endpoint active), counted up to `at_most`."""
    now = now or timezone.now()
    with db_connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({_PICK}) due", [db_connection.ops.adapt_datetimefield_value(now)] * 2 + [at_most])
        return cursor.fetchone()[0]
