"""Keyset pagination by id alone, for rows with no time to page by (campaigns, spend): oldest first, so a client
that keeps `next_cursor` reads the rows added since without skipping or repeating any."""

import base64
import binascii
import json

from rest_framework import exceptions

from .serializers import MAX_ID


def _bad_cursor():
    return exceptions.ValidationError({"cursor": ["This cursor is not valid: use next_cursor from the previous page."]})


def encode_id_cursor(name: str, pk: int) -> str:
    raw = json.dumps({"o": name, "id": pk}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_id_cursor(cursor: str, name: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        kept, pk = data["o"], data["id"]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError):
        raise _bad_cursor() from None
    if kept != name or isinstance(pk, bool) or not isinstance(pk, int) or not 0 < pk <= MAX_ID:
        raise _bad_cursor()
    return pk


def id_page(queryset, *, cursor: str | None, size: int, name: str):
    """One page of `queryset` in id order after `cursor` (made for the list `name`); returns (rows, next cursor or None)."""
    if cursor:
        queryset = queryset.filter(id__gt=decode_id_cursor(cursor, name))
    rows = list(queryset.order_by("id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_id_cursor(name, rows[-1].pk) if more else None)
