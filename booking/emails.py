"""The emails of a booking: to the booker (in their time zone, with the signed links to reschedule or cancel)
and to the rep (in theirs, with the lead's page), each with the invitation as an `.ics` attachment."""

from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse

from nurturing.services import suppressed_among

from .availability import UnknownTimeZone, zone
from .ics import invitation
from .models import Meeting
from .tokens import lead_token, manage_token

SUBJECTS = {
    "booked": "Confirmed: {title} on {when}",
    "rescheduled": "Moved: {title} is now on {when}",
    "cancelled": "Cancelled: {title} on {when}",
    "reminder": "Reminder: {title} on {when}",
}


def manage_url(meeting: Meeting) -> str:
    return settings.CRM_SITE_URL + reverse("booking:manage", args=[manage_token(meeting)])


def rebook_url(meeting: Meeting, *, absolute: bool = True) -> str:
    """The meeting's page again, knowing who books (the lead's signed link): nothing to type twice."""
    path = reverse("booking:page", args=[meeting.page.slug]) + "?" + urlencode(
        {"t": lead_token(meeting.lead_id), "tz": meeting.time_zone})
    return settings.CRM_SITE_URL + path if absolute else path


def _when(meeting: Meeting, time_zone: str) -> str:
    try:
        tz = zone(time_zone)
    except UnknownTimeZone:
        tz, time_zone = zone("UTC"), "UTC"
    local = meeting.starts_at.astimezone(tz)
    end = meeting.ends_at.astimezone(tz)
    return f"{local:%A %-d %B %Y, %H:%M}–{end:%H:%M} ({time_zone})"


def _attachment(meeting: Meeting, description: str) -> tuple[str, bytes, str]:
    method = "CANCEL" if meeting.status == Meeting.Status.CANCELLED else "REQUEST"
    return ("invite.ics", invitation(meeting, description=description), f"text/calendar; method={method}; charset=utf-8")


def meeting_messages(meeting: Meeting, what: str) -> list[EmailMessage]:
    """The emails for `what` happened to the meeting (booked, rescheduled, cancelled, reminder)."""
    rep, lead, page = meeting.rep, meeting.lead, meeting.page
    rep_name = rep.get_full_name() or rep.get_username()
    messages = []
    if lead.email and not suppressed_among([lead.email]):
        when = _when(meeting, meeting.time_zone)
        lines = [f"Hello{(' ' + lead.first_name) if lead.first_name else ''},", ""]
        if what == "cancelled":
            lines += [f"Your {page.title.lower()} with {rep_name} on {when} is cancelled.", "",
                      "To book another time: " + rebook_url(meeting)]
        else:
            lines += [f"{page.title} with {rep_name}", when]
            if meeting.meeting_url:
                lines += [f"Join: {meeting.meeting_url}"]
            lines += ["", f"To reschedule or cancel: {manage_url(meeting)}"]
        body = "\n".join(lines) + "\n"
        message = EmailMessage(subject=SUBJECTS[what].format(title=page.title, when=when), body=body,
                               from_email=settings.DEFAULT_FROM_EMAIL, to=[lead.email],
                               reply_to=[rep.email] if rep.email else None)
        message.attach(*_attachment(meeting, body))
        messages.append(message)
    if rep.email:
        rep_zone = getattr(getattr(rep, "booking_calendar", None), "time_zone", "") or settings.TIME_ZONE
        when = _when(meeting, rep_zone)
        lead_url = settings.CRM_SITE_URL + reverse("workspace:lead_detail", args=[lead.pk])
        who = lead.full_name or lead.email
        body = "\n".join([
            f"{page.title} with {who}" + (f" ({lead.company.name})" if lead.company_id else ""),
            when + (f" (their time zone: {meeting.time_zone})" if meeting.time_zone != rep_zone else ""),
            *(f"{question}: {answer}" for question, answer in meeting.answers.items() if answer not in ("", None)),
            "", f"The lead: {lead_url}",
        ]) + "\n"
        message = EmailMessage(subject=SUBJECTS[what].format(title=f"{page.title} with {who}", when=when), body=body,
                               from_email=settings.DEFAULT_FROM_EMAIL, to=[rep.email],
                               reply_to=[lead.email] if lead.email else None)
        message.attach(*_attachment(meeting, body))
        messages.append(message)
    return messages
