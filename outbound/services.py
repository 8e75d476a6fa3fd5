"""Writing outbound webhooks: endpoints, their secrets, pausing and resuming, resends and test events.

Every function takes the acting user (`by`) and asks the policy
(core.policy.check_may_manage_webhooks: managers only); `by=None` is the
system (the sender pausing a failing endpoint). The admin calls these, never
the models.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.batches import delete_in_batches
from core.events import Actor, EventType, event_record
from core.policy import check_may_manage_webhooks
from core.roles import Role

from .event_types import PUBLIC_TYPES, TEST_TYPE
from .fanout import message_id_new
from .models import Delivery, Endpoint
from .signing import secret_new
from .targets import target_for

log = logging.getLogger(__name__)
S = Delivery.Status


def endpoint_check(endpoint: Endpoint) -> None:
    """The rules an endpoint is held to, by field (ValidationError): a public http(s) URL, known event types."""
    errors = {}
    try:
        target_for(endpoint.url, field="url")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    types = endpoint.event_types
    if not isinstance(types, list) or not types:
        errors["event_types"] = ["Choose at least one event type."]
    else:
        unknown = [name for name in types if name not in PUBLIC_TYPES]
        if unknown:
            errors["event_types"] = [f"Unknown event type(s): {', '.join(map(str, unknown))}. "
                                     f"Choose from: {', '.join(PUBLIC_TYPES)}."]
    if errors:
        raise ValidationError(errors)


def endpoint_save(*, endpoint: Endpoint, by) -> Endpoint:
    """Save a new or changed endpoint (URL, description, event types), checked first; a new one gets a secret."""
    check_may_manage_webhooks(by)
    endpoint.url = endpoint.url.strip()
    if isinstance(endpoint.event_types, list):
        endpoint.event_types = list(dict.fromkeys(endpoint.event_types))
    endpoint_check(endpoint)
    endpoint.updated_at = timezone.now()
    if endpoint.pk is None:
        endpoint.secret, endpoint.created_by = secret_new(), by
        endpoint.save(force_insert=True)
    else:
        endpoint.save(update_fields=["url", "description", "event_types", "updated_at"])
    return endpoint


def endpoint_create(*, url: str, event_types: list[str], description: str = "", by) -> Endpoint:
    """A new, active endpoint with a fresh secret; it gets the events recorded from now on."""
    return endpoint_save(endpoint=Endpoint(url=url, event_types=event_types, description=description), by=by)


def endpoint_rotate_secret(*, endpoint: Endpoint, by, keep_old_for: timedelta | None = None) -> Endpoint:
    """A new secret; the one it replaces still signs (a second signature) for CRM_WEBHOOKS_SECRET_OVERLAP_HOURS."""
    check_may_manage_webhooks(by)
    keep_old_for = keep_old_for if keep_old_for is not None else timedelta(hours=settings.CRM_WEBHOOKS_SECRET_OVERLAP_HOURS)
    now = timezone.now()
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, now + keep_old_for
        endpoint.secret, endpoint.updated_at = secret_new(), now
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


def endpoint_pause(*, endpoint: Endpoint, by, reason: str = "") -> Endpoint:
    """Stop sending to the endpoint: its deliveries wait, and events meanwhile are not delivered to it."""
    check_may_manage_webhooks(by)
    return _pause(endpoint, reason=reason or "Paused by a manager.", actor=Actor.of(by))


def _pause(endpoint, *, reason, actor) -> Endpoint:
    now = timezone.now()
    with transaction.atomic():
        paused = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, paused_at=now, paused_reason=reason[:300], updated_at=now)
        if paused:
            event_record(EventType.WEBHOOK_ENDPOINT_PAUSED, actor=actor, subject=endpoint,
                         payload={"endpoint": endpoint.pk, "reason": reason[:300]})
    endpoint.is_active, endpoint.paused_at, endpoint.paused_reason = False, now, reason[:300]
    return endpoint


def endpoint_pause_failing(*, endpoint: Endpoint, since, last_error: str) -> None:
    """The system pauses an endpoint whose every try has failed since `since`, and emails the managers."""
    reason = (f"Paused automatically: every delivery has failed since {since:%Y-%m-%d %H:%M %Z}. "
              f"Last error: {last_error}")[:300]
    if not endpoint.is_active:
        return
    _pause(endpoint, reason=reason, actor=Actor.system("webhooks"))
    managers = get_user_model().objects.filter(is_active=True, groups__name=Role.MANAGER).exclude(email="")
    recipients = sorted(set(managers.values_list("email", flat=True)))
    if recipients:
        transaction.on_commit(lambda: send_mail(
            subject=f"Webhook endpoint paused: {endpoint}",
            message=(f"The webhook endpoint {endpoint.url} ({endpoint.description or 'no description'}) was paused.\n\n"
                     f"{reason}\n\nFix the receiver, then resume the endpoint in the admin "
                     f"(Outbound webhooks > Webhook endpoints). Deliveries that were still being retried go out "
                     f"then; those given up can be resent from the delivery log."),
            from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=recipients, fail_silently=True,
        ))
    log.warning("Webhook endpoint %s paused: %s", endpoint.pk, reason)


def endpoint_resume(*, endpoint: Endpoint, by) -> Endpoint:
    """Send again: its waiting deliveries go at once, with a fresh retry schedule."""
    check_may_manage_webhooks(by)
    now = timezone.now()
    with transaction.atomic():
        resumed = Endpoint.objects.filter(pk=endpoint.pk, is_active=False).update(
            is_active=True, paused_at=None, paused_reason="", failing_since=None, updated_at=now)
        if resumed:
            Delivery.objects.filter(endpoint=endpoint, next_attempt_at__isnull=False).update(
                next_attempt_at=now, round_attempts=0, updated_at=now)
            event_record(EventType.WEBHOOK_ENDPOINT_RESUMED, actor=Actor.of(by), subject=endpoint,
                         payload={"endpoint": endpoint.pk})
    endpoint.refresh_from_db()
    return endpoint


def delivery_resend(*, delivery: Delivery, by) -> Delivery:
    """Send a delivery again, with the same webhook-id (receivers dedupe on it), on a fresh retry schedule."""
    check_may_manage_webhooks(by)
    now = timezone.now()
    resent = Delivery.objects.filter(pk=delivery.pk).exclude(status=S.DELIVERING, claimed_until__gt=now).update(
        status=S.PENDING, next_attempt_at=now, round_attempts=0, claimed_until=None, claim_token=None, updated_at=now)
    if not resent:
        raise ValidationError("This delivery is being sent right now; look again in a moment.")
    delivery.refresh_from_db()
    return delivery


def endpoint_send_test(*, endpoint: Endpoint, by) -> Delivery:
    """A `webhook.test` message to the endpoint, sent like any delivery (and logged with them)."""
    check_may_manage_webhooks(by)
    now = timezone.now()
    return Delivery.objects.create(
        endpoint=endpoint, event_type=TEST_TYPE, message_id=message_id_new(), next_attempt_at=now,
        payload={"type": TEST_TYPE, "timestamp": now.isoformat(),
                 "data": {"endpoint_id": endpoint.pk, "message": "A test event sent from the CRM."}},
    )


def deliveries_prune(*, now=None, batch_size: int = 5000) -> int:
    """Delete the deliveries finished (succeeded or given up) more than CRM_WEBHOOKS_LOG_DAYS ago, with their
    tries, `batch_size` at a time; returns how many deliveries went. Deliveries still due are never touched."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CRM_WEBHOOKS_LOG_DAYS)
    finished = Delivery.objects.filter(
        status__in=[S.SUCCEEDED, S.GIVEN_UP], next_attempt_at__isnull=True, updated_at__lt=cutoff
    )
    return delete_in_batches(finished, batch_size=batch_size)  # their tries go with them (CASCADE)
