"""Free slots: a rep's working hours in their time zone, less days off, booked meetings with their buffers, the
daily maximum, the notice needed and the horizon. Read with three queries for any number of reps and days."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.db.models import Prefetch

from .models import Calendar, DayOff, Meeting, WorkingHours

MAX_DAYS = 62  # the most days one read covers (a page shows a week)


class UnknownTimeZone(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (as a browser names it, e.g. Europe/Berlin), or UnknownTimeZone."""
    if not name or len(name) > 64 or name not in time_zones():
        raise UnknownTimeZone(f"We do not know the time zone “{name[:64]}”: choose yours from the list.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(f"We do not know the time zone “{name[:64]}”: choose yours from the list.") from None


_ZONES: tuple[str, ...] = ()


def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted (read once per process)."""
    global _ZONES
    if not _ZONES:
        _ZONES = tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))
    return _ZONES


@dataclass
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime
    reps: list = field(default_factory=list)  # ids of the reps free then, in the order they were read


def calendars_for(rep_ids, *, minutes: int, start: datetime, end: datetime) -> list[Calendar]:
    """The available calendars of active reps among `rep_ids` that take meetings of `minutes`, with their hours
    and the days off between `start` and `end` (two more queries, prefetched)."""
    calendars = (
        Calendar.objects.filter(rep_id__in=rep_ids, is_available=True, rep__is_active=True)
        .select_related("rep")
        .prefetch_related(
            Prefetch("hours", queryset=WorkingHours.objects.order_by("weekday", "starts")),
            Prefetch("days_off", queryset=DayOff.objects.filter(
                date__gte=(start - timedelta(days=1)).date(), date__lte=(end + timedelta(days=1)).date())),
        )
        .order_by("pk")
    )
    return [c for c in calendars if not c.meeting_minutes or minutes in c.meeting_minutes]


def _taken(calendars, start: datetime, end: datetime, *, exclude_meeting=None) -> dict[int, list]:
    """Per rep, the (starts_at, ends_at) of their booked meetings near the range (one query)."""
    if not calendars:
        return {}
    margin = timedelta(days=1, minutes=max(max(c.buffer_before_minutes, c.buffer_after_minutes) for c in calendars))
    meetings = Meeting.objects.filter(
        rep_id__in=[c.rep_id for c in calendars], status=Meeting.Status.BOOKED,
        starts_at__lt=end + margin, starts_at__gte=start - margin - timedelta(hours=24),
    )
    if exclude_meeting is not None:
        meetings = meetings.exclude(pk=exclude_meeting.pk)
    taken = defaultdict(list)
    for rep_id, starts_at, ends_at in meetings.values_list("rep_id", "starts_at", "ends_at"):
        taken[rep_id].append((starts_at, ends_at))
    return taken


def _local_days(start: datetime, end: datetime, tz: ZoneInfo):
    day: date = start.astimezone(tz).date() - timedelta(days=1)
    last: date = end.astimezone(tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _rep_slots(calendar: Calendar, taken: list, *, minutes: int, start: datetime, end: datetime, now: datetime,
               with_bookings: bool = True):
    tz = ZoneInfo(calendar.time_zone)
    length = timedelta(minutes=minutes)
    gap = timedelta(minutes=max(calendar.buffer_before_minutes, calendar.buffer_after_minutes))
    earliest = max(start, now + timedelta(minutes=calendar.notice_minutes))
    latest = min(end, now + timedelta(days=calendar.horizon_days))
    days_off = {day.date for day in calendar.days_off.all()}
    hours = defaultdict(list)
    for block in calendar.hours.all():
        hours[block.weekday].append(block)
    per_day = defaultdict(int)
    for starts_at, _ in taken:
        per_day[starts_at.astimezone(tz).date()] += 1
    for day in _local_days(earliest, latest, tz):
        if day in days_off or (with_bookings and per_day[day] >= calendar.daily_max):
            continue
        for block in hours[day.weekday()]:
            wall = datetime.combine(day, block.starts)
            block_end = datetime.combine(day, block.ends)
            while wall + length <= block_end:
                local = wall.replace(tzinfo=tz)
                utc = local.astimezone(UTC)
                wall += length
                if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                    continue  # a wall time the clocks skip (the spring change): no such moment
                if utc < earliest or utc >= latest:
                    continue
                finish = utc + length
                if with_bookings and any(utc < m_end + gap and finish + gap > m_start for m_start, m_end in taken):
                    continue
                yield utc, finish


def free_slots(calendars, *, minutes: int, start: datetime, end: datetime, now: datetime,
               with_bookings: bool = True, exclude_meeting=None) -> list[Slot]:
    """The slots of `minutes` starting in [start, end) at which at least one of `calendars` is free, in time
    order, each with the reps free then. `with_bookings` False: the working grid alone (to tell a taken slot
    from one outside the hours)."""
    end = min(end, start + timedelta(days=MAX_DAYS))
    taken = _taken(calendars, start, end, exclude_meeting=exclude_meeting) if with_bookings else {}
    slots: dict[datetime, Slot] = {}
    for calendar in calendars:
        for starts_at, ends_at in _rep_slots(calendar, taken.get(calendar.rep_id, []), minutes=minutes,
                                             start=start, end=end, now=now, with_bookings=with_bookings):
            slots.setdefault(starts_at, Slot(starts_at, ends_at)).reps.append(calendar.rep_id)
    return [slots[key] for key in sorted(slots)]
