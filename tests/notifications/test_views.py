"""The notifications page, opening one, marking all read, the digest switch and the bell."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Notification, NotificationSettings
from notifications.selectors import notification_unread_count
from tests.factories import LeadFactory

NOW = datetime(2026, 6, 3, 10, 0, tzinfo=dt_timezone.utc)
LIST = reverse("notifications:list")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def notify(user, n=1, **fields):
    lead = fields.pop("lead", None) or LeadFactory(owner=user)
    start = Notification.objects.count()
    return [
        Notification.objects.create(
            recipient=user, kind="reply", lead=lead, title=fields.get("title", f"Lead {i} replied"),
            url=reverse("workspace:lead_detail", args=[lead.pk]), source=f"event:{start + i}",
            created_at=NOW - timedelta(minutes=i),
        )
        for i in range(n)
    ]


def test_the_page_lists_the_users_notifications_newest_first_unread_highlighted_and_titles_escaped(rep_client, rep_user,
                                                                                                   other_rep):
    older, newer = notify(rep_user, 2, title="<b>Ada</b> replied")[::-1]
    older.read_at = NOW
    older.save()
    notify(other_rep, 1, title="Someone else's")

    page = rep_client.get(LIST).content.decode()
    assert page.index(f'data-notification="{newer.pk}"') < page.index(f'data-notification="{older.pk}"')
    assert page.count("data-unread>") == 1 and "Someone else" not in page
    assert "&lt;b&gt;Ada&lt;/b&gt; replied" in page and "<b>Ada</b>" not in page


def test_opening_a_notification_marks_it_read_and_lands_on_its_lead(rep_client, rep_user):
    (notification,) = notify(rep_user)
    response = rep_client.post(reverse("notifications:open", args=[notification.pk]))
    assert response.status_code == 302 and response["Location"] == notification.url
    notification.refresh_from_db()
    assert notification.read_at == NOW


def test_a_rep_cannot_open_or_see_another_users_notification(rep_client, other_rep):
    (notification,) = notify(other_rep)
    assert rep_client.post(reverse("notifications:open", args=[notification.pk])).status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_all_read_empties_the_bell(rep_client, rep_user):
    notify(rep_user, 3)
    assert 'data-unread="3"' in rep_client.get(reverse("workspace:today")).content.decode()
    rep_client.post(reverse("notifications:read_all"))
    assert "data-unread" not in rep_client.get(reverse("notifications:bell")).content.decode()
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_the_bell_shows_nine_plus_past_nine_unread_and_counts_in_one_query(rep_user, rep_client,
                                                                         django_assert_num_queries):
    notify(rep_user, 12)
    with django_assert_num_queries(1):
        assert notification_unread_count(user=rep_user) == 10
    bell = rep_client.get(reverse("notifications:bell")).content.decode()
    assert ">9+</span>" in bell and 'hx-trigger="every 60s"' in bell


def test_the_digest_is_switched_on_and_off_on_the_page(rep_client, rep_user):
    rep_client.post(reverse("notifications:settings"), {"email_digest": "on"})
    assert NotificationSettings.objects.get(user=rep_user).email_digest is True
    assert "checked" in rep_client.get(LIST).content.decode()
    rep_client.post(reverse("notifications:settings"), {})
    assert NotificationSettings.objects.get(user=rep_user).email_digest is False


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_page_reads_a_fixed_number_of_queries(rep_client, rep_user, rows, django_assert_max_num_queries):
    lead = LeadFactory(owner=rep_user)
    Notification.objects.bulk_create(
        Notification(recipient=rep_user, kind="reply", lead=lead, title=f"Lead replied {i}", url="/today/",
                     source=f"event:{i}") for i in range(rows))
    with django_assert_max_num_queries(8):
        response = rep_client.get(LIST)
    assert response.status_code == 200 and response.content.decode().count("data-notification=") == min(rows, 25)


def test_a_user_without_a_role_is_refused(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(LIST).status_code == 403


def test_the_page_and_the_bell_send_the_content_security_policy(rep_client):
    for url in (LIST, reverse("notifications:bell")):
        policy = rep_client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_the_bell_polled_after_the_session_ended_swaps_nothing_in(client):
    response = client.get(reverse("notifications:bell"), headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.content == b""
