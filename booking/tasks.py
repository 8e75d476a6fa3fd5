"""Booking's Celery tasks: thin, safe to run twice."""

import logging

from celery import shared_task
from django.core.mail import get_connection

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5,
             soft_time_limit=60, time_limit=75)
def meeting_emails(meeting_id: int, what: str, sequence: int):
    """The emails of one change of a meeting. A change superseded since (a later revision) sends nothing: the
    later one's emails say what holds."""
    from .emails import meeting_messages
    from .models import Meeting

    meeting = Meeting.objects.select_related("rep__booking_calendar", "lead__company", "page").filter(pk=meeting_id).first()
    if meeting is None or meeting.sequence != sequence:
        return
    messages = meeting_messages(meeting, what)
    if messages:
        get_connection().send_messages(messages)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=58)
def send_reminders():
    """Remind both sides of the meetings starting soon (each meeting claimed once: booking.services.reminders_due)."""
    from .services import reminders_due

    for meeting_id in reminders_due():
        send_reminder.delay(meeting_id)


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5,
             soft_time_limit=60, time_limit=75)
def send_reminder(meeting_id: int):
    from .emails import meeting_messages
    from .models import Meeting

    meeting = Meeting.objects.select_related("rep__booking_calendar", "lead__company", "page").filter(
        pk=meeting_id, status=Meeting.Status.BOOKED).first()
    if meeting is not None:
        get_connection().send_messages(meeting_messages(meeting, "reminder"))
