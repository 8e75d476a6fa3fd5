"""When a step may go: send days and hours in the lead's time zone."""

import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings


def lead_zone(lead_timezone: str) -> zoneinfo.ZoneInfo:
    """The lead's time zone, falling back to the account's (settings.TIME_ZONE)."""
    try:
        return zoneinfo.ZoneInfo(lead_timezone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def next_send_time(earliest: datetime, *, zone: zoneinfo.ZoneInfo, days: str, start, end) -> datetime:
    """The first moment at or after `earliest` that falls on a send day within [start, end) local time."""
    local = earliest.astimezone(zone)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        if str(day.weekday()) not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=zone)
        closes = datetime.combine(day, end, tzinfo=zone)
        candidate = max(local, opens) if offset == 0 else opens
        if candidate < closes:
            return candidate.astimezone(earliest.tzinfo)
    raise ValueError(f"No send time within a week: check the send days {days!r}")
