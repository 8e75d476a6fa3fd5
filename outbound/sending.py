"""Sending claimed deliveries and recording each try: success, a retry on the schedule, or giving up.

For each delivery it holds (same claim token, lease not run out) a batch:
checks the URL again (outbound.targets: resolve, refuse non-public
addresses), signs the body (outbound.signing), POSTs it (outbound.transport)
and records, in one transaction, an Attempt row and the delivery's new state:

- 2xx: succeeded;
- anything else (another status, a redirect, a timeout, a refused address):
  due again after the next wait of CRM_WEBHOOKS_RETRY_SCHEDULE (5 s, 5 min,
  30 min, 2 h, 5 h, 10 h, 10 h: about a day), and given up after the last.

The outcome is written only if the row is still this batch's (claim token):
a batch slower than its lease finds its rows taken by another and leaves
them alone. A batch stops starting tries when its lease would run out
during the next one, and hands the rest back at once.

An endpoint that looks down (no answer, a 5xx or a 429) is not tried again
by the same batch: its other deliveries in the batch wait, untried and not
counted as tries, until the failed one's next try. So a dead receiver with a
backlog of thousands costs one timeout per retry, not one per delivery, and
the receivers behind it in the batch are not held up. (A 4xx other than 429
is about that one delivery: the rest are still tried.)

An endpoint whose every try has failed for CRM_WEBHOOKS_PAUSE_AFTER_HOURS
(since its last success) is paused (outbound.services.endpoint_pause_failing).
"""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from .models import Attempt, Delivery, Endpoint
from .signing import signed_headers
from .targets import TargetRefused, target_for
from .transport import Response, Sender

log = logging.getLogger(__name__)
S = Delivery.Status


@dataclass
class BatchResult:
    succeeded: int = 0
    failed: int = 0
    given_up: int = 0
    handed_back: int = 0
    not_held: int = 0
    held_back: int = 0


def body_of(delivery: Delivery) -> str:
    """The JSON body: the same bytes on every try (keys sorted; PostgreSQL's jsonb keeps no order)."""
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def retry_delay(round_attempts: int) -> timedelta | None:
    """The wait after the `round_attempts`-th failed try of a round, or None when the schedule is over."""
    schedule = settings.CRM_WEBHOOKS_RETRY_SCHEDULE
    if round_attempts > len(schedule):
        return None
    return timedelta(seconds=schedule[round_attempts - 1])


def _release(ids, token) -> int:
    """Hand back rows this batch holds but will not try: due again at once for the next claim."""
    return Delivery.objects.filter(id__in=ids, claim_token=token).update(
        claimed_until=None, claim_token=None, updated_at=timezone.now(),
        status=Case(When(round_attempts=0, then=Value(S.PENDING)), default=Value(S.RETRYING)),
    )


def _hold_back(ids, token, until) -> int:
    """Rows this batch holds but will not try because their endpoint just failed: due with the failed one's retry."""
    return Delivery.objects.filter(id__in=ids, claim_token=token).update(
        claimed_until=None, claim_token=None, next_attempt_at=until, updated_at=timezone.now(),
        status=Case(When(round_attempts=0, then=Value(S.PENDING)), default=Value(S.RETRYING)),
    )


def _looks_down(response: Response) -> bool:
    return response.status is None or response.status >= 500 or response.status == 429


def deliveries_send(*, ids: list[int], token: str, sender: Sender | None = None) -> BatchResult:
    """Try each delivery of a claimed batch once; returns what happened."""
    result = BatchResult()
    deliveries = list(
        Delivery.objects.filter(id__in=ids, claim_token=token).select_related("endpoint").order_by("next_attempt_at", "id")
    )
    result.not_held = len(ids) - len(deliveries)
    endpoints = {}
    for delivery in deliveries:  # one object per endpoint: a pause made by this batch is seen by its next rows
        delivery.endpoint = endpoints.setdefault(delivery.endpoint_id, delivery.endpoint)
    own_sender = sender is None
    sender = sender or Sender(timeout=settings.CRM_WEBHOOKS_TIMEOUT_SECONDS,
                              excerpt_bytes=settings.CRM_WEBHOOKS_RESPONSE_EXCERPT_BYTES)
    down_until = {}  # endpoint id -> when its failed delivery is tried again
    try:
        for index, delivery in enumerate(deliveries):
            # Start a try only if it can finish within the lease (a try takes at most about two timeouts).
            if timezone.now() + timedelta(seconds=2 * settings.CRM_WEBHOOKS_TIMEOUT_SECONDS) > delivery.claimed_until:
                result.handed_back += _release([d.pk for d in deliveries[index:]], token)
                break
            if not delivery.endpoint.is_active:  # paused meanwhile: it waits for the resume
                result.handed_back += _release([delivery.pk], token)
                continue
            if delivery.endpoint_id in down_until:
                result.held_back += _hold_back([delivery.pk], token, down_until[delivery.endpoint_id])
                continue
            outcome, response = delivery_try(delivery, token=token, sender=sender)
            if outcome is not None:
                setattr(result, outcome, getattr(result, outcome) + 1)
            else:
                result.not_held += 1
            if not response.ok and _looks_down(response):
                down_until[delivery.endpoint_id] = delivery.next_attempt_at if outcome == "failed" else (
                    timezone.now() + timedelta(seconds=settings.CRM_WEBHOOKS_RETRY_SCHEDULE[0]))
    finally:
        if own_sender:
            sender.close()
    return result


def delivery_try(delivery: Delivery, *, token, sender: Sender) -> tuple[str | None, Response]:
    """One try of a delivery this batch holds: send, record. Returns the outcome ("succeeded", "failed",
    "given_up", or None if the row was taken meanwhile) and the receiver's response."""
    endpoint = delivery.endpoint
    started_at = timezone.now()
    timestamp = int(started_at.timestamp())
    body = body_of(delivery)
    headers = signed_headers(endpoint.signing_secrets(started_at), message_id=delivery.message_id,
                             timestamp=timestamp, body=body)
    try:
        target = target_for(endpoint.url)
    except TargetRefused as exc:
        response = Response(None, "", 0, " ".join(exc.messages)[:300])
    else:
        response = sender.post(target, headers=headers, body=body)
    outcome = _record(delivery, token=token, started_at=started_at, headers=headers, body=body, response=response)
    return outcome, response


def _record(delivery, *, token, started_at, headers, body, response: Response) -> str | None:
    from . import services  # pausing writes an event and emails the managers

    now = timezone.now()
    round_attempts = delivery.round_attempts + 1
    if response.ok:
        outcome, changes = "succeeded", {"status": S.SUCCEEDED, "next_attempt_at": None, "succeeded_at": now}
    else:
        delay = retry_delay(round_attempts)
        if delay is None:
            outcome, changes = "given_up", {"status": S.GIVEN_UP, "next_attempt_at": None}
        else:
            outcome, changes = "failed", {"status": S.RETRYING, "next_attempt_at": now + delay}
            delivery.next_attempt_at = changes["next_attempt_at"]
    with transaction.atomic():
        held = Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
            **changes, attempts=F("attempts") + 1, round_attempts=round_attempts, claimed_until=None,
            claim_token=None, last_status_code=response.status, last_error=response.error, updated_at=now,
        )
        # The try is logged even when another sender has taken the row since (it happened), unless the
        # delivery is gone (its endpoint was deleted meanwhile).
        if held or Delivery.objects.filter(pk=delivery.pk).exists():
            Attempt.objects.create(
                delivery=delivery, started_at=started_at, request_url=delivery.endpoint.url, request_headers=headers,
                request_body=body, response_status=response.status,
                response_excerpt=response.excerpt[: settings.CRM_WEBHOOKS_RESPONSE_EXCERPT_BYTES],
                duration_ms=response.duration_ms, error=response.error,
            )
        if not held:
            return None
        endpoint = delivery.endpoint
        if response.ok:
            if endpoint.failing_since is not None:
                Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
                endpoint.failing_since = None
        else:
            if endpoint.failing_since is None:
                Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=started_at)
                endpoint.refresh_from_db(fields=["failing_since"])
            if endpoint.failing_since <= now - timedelta(hours=settings.CRM_WEBHOOKS_PAUSE_AFTER_HOURS):
                services.endpoint_pause_failing(endpoint=endpoint, since=endpoint.failing_since, last_error=response.error)
    return outcome

