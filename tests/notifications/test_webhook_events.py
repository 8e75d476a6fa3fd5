"""Replies and clicks posted through the providers' real webhooks become notifications for the lead's owner."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notifications_from_events
from tests.nurturing.provider_payloads import iso, ses_inbound
from tests.nurturing.webhook_posts import post_json, post_sns

pytestmark = pytest.mark.usefixtures("webhooks")

PERSON = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
SCANNER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36"


def reply(client, sent):
    return post_sns(client, "amazon_ses_inbound_webhook", ses_inbound(
        sender=f"Ada <{sent.to_email}>", to="rep1@example.com", subject="Re: " + sent.subject, text="Let's talk.",
        headers=[("In-Reply-To", f"<{sent.provider_message_id}@email.amazonses.com>")],
    ))


def click(client, sent, *, link, agent=PERSON, minutes_ago=1):
    payload = {"RecordType": "Click", "MessageID": sent.provider_message_id, "Recipient": sent.to_email,
               "ReceivedAt": iso(timezone.now() - timedelta(minutes=minutes_ago)), "OriginalLink": link, "UserAgent": agent}
    return post_json(client, "postmark_tracking_webhook", payload)


def test_a_reply_through_the_webhook_notifies_the_leads_owner_once_and_lights_the_bell(client, sent, rep_user):
    assert reply(client, sent).status_code == 200
    assert notifications_from_events() >= 1
    assert notifications_from_events() == 0

    notification = Notification.objects.get()
    lead = sent.enrollment.lead
    assert (notification.recipient, notification.kind, notification.lead) == (rep_user, "reply", lead)
    assert notification.url == reverse("workspace:lead_detail", args=[lead.pk])
    client.force_login(rep_user)
    page = client.get(reverse("workspace:today")).content.decode()
    assert 'data-unread="1"' in page


def test_a_persons_click_on_a_pricing_link_notifies_the_owner_and_a_scanners_click_does_not(client, sent, rep_user):
    assert click(client, sent, link="https://example.com/pricing?plan=team", agent=SCANNER).status_code == 200
    notifications_from_events()
    assert not Notification.objects.exists()

    click(client, sent, link="https://example.com/pricing?plan=team", minutes_ago=2)
    notifications_from_events()
    assert list(Notification.objects.values_list("recipient__username", "kind")) == [("rep1", "pricing_click")]


def test_a_persons_click_on_another_link_notifies_no_one_unless_its_words_are_configured(client, sent, settings):
    click(client, sent, link="https://example.com/blog/plans")
    notifications_from_events()
    assert not Notification.objects.exists()

    settings.CRM_NOTIFY_CLICK_WORDS = ["pricing", "PLANS"]
    click(client, sent, link="https://example.com/blog/plans#top", minutes_ago=2)
    notifications_from_events()
    assert Notification.objects.get().kind == "pricing_click"
