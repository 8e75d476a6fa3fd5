"""Moments written for people, in the account's time zone (CRM_TIME_ZONE): never an ISO string on a rep's page."""

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.formats import date_format

MOMENT = "j M Y, G:i"  # 3 Mar 2026, 14:05


def moment(value: datetime | None) -> str:
    """"3 Mar 2026, 14:05"; "" for no time."""
    if value is None:
        return ""
    return date_format(timezone.localtime(value), MOMENT)


def moment_ahead(value: datetime, *, now: datetime | None = None) -> str:
    """A time to come, as short as stays clear: "Thu 9:00" within the coming week, "Thu 12 Mar, 9:00" later
    this year, "Thu 12 Mar 2027, 9:00" beyond."""
    local, today = timezone.localtime(value), timezone.localtime(now).date()
    if today <= local.date() < today + timedelta(days=7):
        return date_format(local, "D G:i")
    if local.year == today.year:
        return date_format(local, "D j M, G:i")
    return date_format(local, "D j M Y, G:i")
