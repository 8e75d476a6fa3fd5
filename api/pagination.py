"""Keyset ("cursor") pagination: a page starts after the last row of the one before, by (time, id).

An offset would skip or repeat rows when leads are added while a client
pages, and would read every row before the page; a cursor holds the sort key
of the last row sent, so the next page is one index range read, as fast on
page 10,000 as on page 1, and rows added meanwhile never shift it.
"""

import base64
import binascii
import json
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Q
from rest_framework import exceptions


def page_size(requested: int | None) -> int:
    """The rows per page: the client's number, capped at CRM_API_MAX_PAGE_SIZE (a huge one is not an error)."""
    if requested is None:
        return settings.CRM_API_PAGE_SIZE
    return max(1, min(requested, settings.CRM_API_MAX_PAGE_SIZE))


def encode_cursor(ordering: str, value: datetime, pk: int) -> str:
    raw = json.dumps({"o": ordering, "v": value.isoformat(), "id": pk}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bad_cursor():
    return exceptions.ValidationError({"cursor": ["This cursor is not valid: use next_cursor from the previous page."]})


def decode_cursor(cursor: str, ordering: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        value, pk = datetime.fromisoformat(data["v"]).astimezone(UTC), int(data["id"])
        kept_ordering = data["o"]
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error, UnicodeError):
        raise _bad_cursor() from None
    if kept_ordering != ordering:
        raise exceptions.ValidationError({"cursor": ["This cursor belongs to another ordering: keep the ordering while paging."]})
    if not 0 < pk < 2**63:
        raise _bad_cursor()
    return value, pk


def keyset_page(queryset, *, field: str, descending: bool, cursor: str | None, size: int, ordering: str):
    """One page of `queryset` ordered by (`field`, id), after `cursor`; returns (rows, the next page's cursor or None)."""
    if cursor:
        value, pk = decode_cursor(cursor, ordering)
        # (field, id) past the cursor's; the plain range on `field` alone is redundant, but it is what lets
        # the database start its index scan at the cursor instead of filtering every row before it.
        before, after = ("lt", "lte") if descending else ("gt", "gte")
        queryset = queryset.filter(**{f"{field}__{after}": value}).filter(
            Q(**{f"{field}__{before}": value}) | Q(**{f"id__{before}": pk})
        )
    order = (f"-{field}", "-id") if descending else (field, "id")
    rows = list(queryset.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(ordering, getattr(rows[-1], field), rows[-1].pk) if more else None
    return rows, next_cursor
