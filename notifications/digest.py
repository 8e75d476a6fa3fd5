"""The daily email digest: each user who switched it on gets one email a day listing their unread notifications
of the last day, through Django's configured email backend."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Notification, NotificationSettings

log = logging.getLogger(__name__)


def notification_settings_get(*, user) -> NotificationSettings:
    return NotificationSettings.objects.filter(user=user).first() or NotificationSettings(user=user)


@transaction.atomic
def notification_settings_update(*, user, email_digest: bool) -> NotificationSettings:
    """Switch the user's daily email digest on or off."""
    choices, _ = NotificationSettings.objects.select_for_update().get_or_create(user=user)
    choices.email_digest = bool(email_digest)
    choices.save(update_fields=["email_digest"])
    return choices


def _send(choices: NotificationSettings, notifications: list) -> None:
    user = choices.user
    context = {"user": user, "notifications": notifications, "site_url": settings.CRM_SITE_URL}
    message = EmailMultiAlternatives(
        subject=f"{len(notifications)} unread notification{'s' if len(notifications) != 1 else ''} · CRM",
        body=render_to_string("notifications/digest.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("notifications/digest.html", context), "text/html")
    message.send()


def notifications_send_digests(*, now: datetime | None = None) -> int:
    """Email each active user who switched the digest on their unread notifications of the last day: at most one
    email per user per day (the day is claimed before sending: a crash mid-send loses that day's digest rather
    than sending it twice). Users with nothing unread get nothing. Returns how many emails went out."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    since = now - timedelta(days=1)
    candidates = (NotificationSettings.objects.filter(email_digest=True, user__is_active=True)
                  .exclude(user__email="").filter(Q(digest_sent_on__isnull=True) | Q(digest_sent_on__lt=today))
                  .select_related("user").order_by("pk"))
    sent = 0
    for choices in candidates:
        notifications = list(Notification.objects.filter(recipient=choices.user_id, read_at__isnull=True,
                                                         created_at__gt=since, created_at__lte=now)[:50])
        if not notifications:
            continue
        claimed = (NotificationSettings.objects.filter(pk=choices.pk)
                   .filter(Q(digest_sent_on__isnull=True) | Q(digest_sent_on__lt=today)).update(digest_sent_on=today))
        if claimed != 1:
            continue  # another run took this user's day
        try:
            _send(choices, notifications)
        except Exception:
            log.exception("Notification digest to user %s not sent", choices.user_id)
            continue
        sent += 1
    return sent
