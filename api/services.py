"""Personal API tokens: made (shown once), used, revoked. Each change is in the event log."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.batches import delete_in_batches
from core.events import Actor, EventType, event_record
from core.policy import access_for, check_may_revoke_api_token

from .models import ApiToken, IdempotencyKey, Scope

TOKEN_START = "crm_"
# last_used_at is written at most this often per token: a busy client does not write on every call.
LAST_USED_EVERY = timedelta(minutes=1)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    raw: str  # shown to its owner once; never stored


def api_token_create(*, user, name: str, scopes, expires_at: datetime, by) -> NewToken:
    """Make a token for `user` (who must be `by`: tokens are personal) and return it with its secret, once.

    Guarantees: a name, known scopes (at least one), an expiry in the future and
    at most CRM_API_TOKEN_MAX_DAYS away; only the SHA-256 of the token is stored.
    """
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Name the token after what uses it, e.g. “Website sync”."]
    scopes = sorted(set(scopes or []))
    unknown = [scope for scope in scopes if scope not in Scope.values]
    if unknown:
        errors["scopes"] = [f"Unknown scope(s): {', '.join(unknown)}. Choose from {', '.join(Scope.values)}."]
    elif not scopes:
        errors["scopes"] = ["Choose at least one scope."]
    now = timezone.now()
    if expires_at is None or expires_at <= now:
        errors["expires_at"] = ["Choose an expiry in the future."]
    elif expires_at > now + timedelta(days=settings.CRM_API_TOKEN_MAX_DAYS, minutes=5):
        errors["expires_at"] = [f"A token lives at most {settings.CRM_API_TOKEN_MAX_DAYS} days."]
    if by is None or user.pk != by.pk:
        errors["user"] = ["A token is personal: only its owner can make it."]
    elif not access_for(user).has_workspace:
        errors["user"] = ["Your account has no role in the CRM yet: ask a manager to add you to one."]
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=prefix, token_hash=token_hash(raw), scopes=scopes,
            created_at=now, expires_at=expires_at,
        )
        event_record(EventType.API_TOKEN_CREATED, actor=Actor.of(by), subject=token,
                     payload={"scopes": scopes, "owner": user.pk})
    return NewToken(token=token, raw=raw)


def api_token_revoke(*, token: ApiToken, by) -> ApiToken:
    """Stop a token at once (its owner or a manager). Revoking a revoked token changes nothing."""
    check_may_revoke_api_token(by, token.user_id)
    with transaction.atomic():
        now = timezone.now()
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=by) == 1:
            token.revoked_at, token.revoked_by = now, by
            event_record(EventType.API_TOKEN_REVOKED, actor=Actor.of(by), subject=token, payload={"owner": token.user_id})
        else:
            token.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return token


def api_token_mark_used(*, token: ApiToken, at: datetime | None = None) -> None:
    """Record that the token was used now, writing at most once a minute per token."""
    at = at or timezone.now()
    if token.last_used_at is not None and token.last_used_at > at - LAST_USED_EVERY:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=at - LAST_USED_EVERY)
    ).update(last_used_at=at)
    token.last_used_at = at


def idempotency_keys_prune(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete the idempotency keys older than CRM_API_IDEMPOTENCY_HOURS; how many went."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.CRM_API_IDEMPOTENCY_HOURS)
    return delete_in_batches(IdempotencyKey.objects.filter(created_at__lt=cutoff), batch_size=batch_size)
