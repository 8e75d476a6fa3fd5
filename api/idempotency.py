"""`Idempotency-Key` on the creating POSTs: a retry with the same key gets the first answer, without a second create.

- Same key, same request (method, path, body) from the same token: the
  first response (status and body) again, with `Idempotent-Replayed: true`.
- Same key, another request: 422 problem details.
- Keys are remembered CRM_API_IDEMPOTENCY_HOURS (24); older ones are free again.

Race-safe: the key's row is written in the same transaction as what the
request creates, under a unique (token, key) constraint. A second request
with the key waits for the first's transaction (PostgreSQL holds its insert on
the unique index; SQLite's writers queue), then finds its row and replays it.
Only a success is remembered: after a refusal (4xx) the key is free, as
nothing was created.
"""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .models import IdempotencyKey

HEADER = "Idempotency-Key"


class KeyReused(exceptions.APIException):
    status_code = 422
    default_detail = "This Idempotency-Key was used for another request: use a new key for a new request."


def _key(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
        raise exceptions.ValidationError({HEADER: ["Send 1 to 255 printable ASCII characters, e.g. a UUID."]})
    return key


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(row: IdempotencyKey, fingerprint: str) -> Response:
    if row.fingerprint != fingerprint:
        raise KeyReused()
    return Response(row.response_body, status=row.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(handler):
    """Wrap a view's POST handler: see the module's docstring."""

    @wraps(handler)
    def wrapped(view, request, *args, **kwargs):
        key = _key(request)
        if key is None:
            return handler(view, request, *args, **kwargs)
        fingerprint = _fingerprint(request)  # reads the body: malformed JSON is a 400 here
        token = request.auth
        fresh_after = timezone.now() - timedelta(hours=settings.CRM_API_IDEMPOTENCY_HOURS)
        with transaction.atomic():
            IdempotencyKey.objects.filter(token=token, key=key, created_at__lt=fresh_after).delete()
            try:
                with transaction.atomic():
                    row = IdempotencyKey.objects.create(token=token, key=key, fingerprint=fingerprint)
            except IntegrityError:
                row = IdempotencyKey.objects.get(token=token, key=key)
                return _replay(row, fingerprint)
            response = handler(view, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                # As JSON, the way the client got it (times as text, decimals as strings).
                row.status_code = response.status_code
                row.response_body = json.loads(JSONRenderer().render(response.data))
                row.save(update_fields=["status_code", "response_body"])
            else:
                transaction.set_rollback(True)
            return response

    return wrapped
