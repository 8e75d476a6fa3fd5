"""Calendar files: a meeting's invitation (REQUEST, or CANCEL) and a rep's feed of booked meetings.

Times are written in UTC (`...Z`): every calendar shows them in its own time zone, correct across daylight
saving changes, with no VTIMEZONE to get wrong. The UID is the meeting's, so a reschedule or cancel updates the
event already in the calendar (a higher SEQUENCE)."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar as ICalendar
from icalendar import Event, vCalAddress, vText

PRODID = "-//Lead nurturing CRM//Booking//EN"


def meeting_uid(meeting) -> str:
    return f"meeting-{meeting.pk}@{urlsplit(settings.CRM_SITE_URL).hostname or 'crm'}"


def _event(meeting, *, description: str = "") -> Event:
    rep, lead = meeting.rep, meeting.lead
    event = Event()
    event.add("uid", meeting_uid(meeting))
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", meeting.starts_at.astimezone(UTC))
    event.add("dtend", meeting.ends_at.astimezone(UTC))
    event.add("sequence", meeting.sequence)
    event.add("summary", f"{meeting.page.title}: {lead.full_name or lead.email} and {rep.get_full_name() or rep.get_username()}")
    if description:
        event.add("description", description)
    if meeting.meeting_url:
        event.add("location", meeting.meeting_url)
        event.add("url", meeting.meeting_url)
    organizer = vCalAddress(f"mailto:{rep.email}")
    organizer.params["cn"] = vText(rep.get_full_name() or rep.get_username())
    event["organizer"] = organizer
    if lead.email:
        attendee = vCalAddress(f"mailto:{lead.email}")
        attendee.params["cn"] = vText(lead.full_name or lead.email)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", attendee, encode=0)
    cancelled = meeting.status == meeting.Status.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def invitation(meeting, *, description: str = "") -> bytes:
    """One meeting as an invitation (METHOD:REQUEST) or, once cancelled, its cancellation (METHOD:CANCEL)."""
    cal = ICalendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if meeting.status == meeting.Status.CANCELLED else "REQUEST")
    cal.add_component(_event(meeting, description=description))
    return cal.to_ical()


def feed(meetings, *, name: str) -> bytes:
    """A subscribed calendar: the meetings given (a rep's booked ones), refreshed hourly by most clients."""
    cal = ICalendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    for meeting in meetings:
        cal.add_component(_event(meeting))
    return cal.to_ical()


def parse_times(data: bytes) -> list[tuple[datetime, datetime]]:
    """The (start, end) of each event in a calendar file, as aware datetimes."""
    cal = ICalendar.from_ical(data)
    return [(event.decoded("dtstart"), event.decoded("dtend")) for event in cal.walk("VEVENT")]
