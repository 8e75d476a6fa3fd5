"""Booking's Celery tasks: thin, safe to run twice."""

import logging

from celery import shared_task
from django.core.mail import get_connection

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5,
             soft_time_limit=60, time_limit=75)
def meeting_emails(meeting_id: int):
    """The emails of a meeting's latest change (booked, rescheduled, cancelled), once per revision: an earlier
    change not sent yet is said by the later one's emails."""
    from .emails import meeting_messages
    from .models import Meeting
    from .services import emails_claim, emails_release

    claimed = emails_claim(meeting_id)
    if claimed is None:
        return
    meeting = Meeting.objects.select_related("rep__booking_calendar", "lead__company", "page").get(pk=meeting_id)
    try:
        messages = meeting_messages(meeting, claimed.last_change)
        if messages:
            get_connection().send_messages(messages)
    except Exception:
        emails_release(claimed)
        raise


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=58)
def send_reminders():
    """Remind both sides of the meetings starting soon (each meeting claimed once: booking.services.reminders_due);
    and send the emails of changes that did not go out when they were made."""
    from .services import emails_unsent, reminders_due

    for meeting_id in reminders_due():
        send_reminder.delay(meeting_id)
    for meeting_id in emails_unsent():
        meeting_emails.delay(meeting_id)


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5,
             soft_time_limit=60, time_limit=75)
def send_reminder(meeting_id: int):
    from .emails import meeting_messages
    from .models import Meeting

    meeting = Meeting.objects.select_related("rep__booking_calendar", "lead__company", "page").filter(
        pk=meeting_id, status=Meeting.Status.BOOKED).first()
    if meeting is not None:
        get_connection().send_messages(meeting_messages(meeting, "reminder"))
