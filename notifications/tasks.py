"""Notifications' Celery tasks: thin, safe to run twice."""

from celery import shared_task


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def notify_from_events():
    """Notify of what the event log tells (notifications.services.notifications_from_events)."""
    from .services import notifications_from_events

    while notifications_from_events() == 500:
        pass


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=58)
def check_due():
    """Tasks coming due and deals stalled (notifications.services.notifications_check_due)."""
    from .services import notifications_check_due

    notifications_check_due()


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def send_digests():
    """The daily email digest (notifications.digest.notifications_send_digests)."""
    from .digest import notifications_send_digests

    notifications_send_digests()
