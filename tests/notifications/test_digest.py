"""The daily email digest: once a day, only to those who switched it on and have something unread, escaped."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core import mail

from notifications.digest import notification_settings_update, notifications_send_digests
from notifications.models import Notification, NotificationSettings

NOW = datetime(2026, 6, 3, 7, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def clock(settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def notify(user, title="Ada replied", *, ago=timedelta(hours=2), read=False):
    return Notification.objects.create(recipient=user, kind="reply", title=title, url="/leads/1/",
                                       source=f"event:{Notification.objects.count()}", created_at=NOW - ago,
                                       read_at=NOW if read else None)


def test_the_digest_goes_once_a_day_to_those_who_asked_with_unread_notifications_of_the_last_day(
        clock, rep_user, other_rep, manager_user):
    notification_settings_update(user=rep_user, email_digest=True)
    notification_settings_update(user=manager_user, email_digest=True)  # opted in, nothing unread of the last day
    notify(rep_user, "Ada replied")
    notify(rep_user, "Old news", ago=timedelta(days=2))
    notify(rep_user, "Already read", read=True)
    notify(other_rep, "Bob replied")  # did not ask
    notify(manager_user, "Long ago", ago=timedelta(days=3))

    assert notifications_send_digests(now=NOW) == 1
    assert notifications_send_digests(now=NOW + timedelta(hours=3)) == 0  # same day
    (email,) = mail.outbox
    assert email.to == [rep_user.email] and email.subject == "1 unread notification · CRM"
    assert "Ada replied" in email.body and "Old news" not in email.body and "Already read" not in email.body
    assert NotificationSettings.objects.get(user=rep_user).digest_sent_on == NOW.date()

    notify(rep_user, "Next day's", ago=timedelta(hours=-20))
    assert notifications_send_digests(now=NOW + timedelta(days=1)) == 1
    assert "Next day's" in mail.outbox[1].body


def test_the_digests_html_escapes_what_was_typed(rep_user):
    notification_settings_update(user=rep_user, email_digest=True)
    notify(rep_user, '<script>alert(1)</script> & "Ada"')
    notifications_send_digests(now=NOW)
    html, kind = mail.outbox[0].alternatives[0]
    assert kind == "text/html" and "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Ada&quot;" in html
    assert '<script>alert(1)</script> & "Ada"' in mail.outbox[0].body  # the plain text is plain


def test_the_digest_is_off_until_switched_on_and_off_again_when_switched_off(rep_user):
    notify(rep_user)
    assert notifications_send_digests(now=NOW) == 0
    notification_settings_update(user=rep_user, email_digest=True)
    notification_settings_update(user=rep_user, email_digest=False)
    assert notifications_send_digests(now=NOW) == 0 and mail.outbox == []
