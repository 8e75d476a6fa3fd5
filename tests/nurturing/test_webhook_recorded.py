"""What a tracking webhook records, field by field, from the provider's documented payload."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from nurturing.models import EmailEvent
from tests.nurturing import provider_payloads as p
from tests.nurturing.webhook_posts import post_json

pytestmark = [pytest.mark.usefixtures("webhooks"),
              pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")]

FIELDS = ("provider", "kind", "bounce", "occurred_at", "message_id", "event_id", "recipient", "url", "user_agent",
          "description")


def recorded():
    event = EmailEvent.objects.get()
    return {field: getattr(event, field) for field in FIELDS}


def test_a_postmark_bounce_is_recorded_with_postmarks_ids_time_and_description(client, sent):
    bounce = {**p.postmark_bounce(sent, bounce_id=4242), "BouncedAt": "2026-06-03T09:58:30Z"}
    assert post_json(client, "postmark_tracking_webhook", bounce).status_code == 200

    assert recorded() == {
        "provider": "postmark", "kind": "bounced", "bounce": "hard",
        "occurred_at": datetime(2026, 6, 3, 9, 58, 30, tzinfo=dt_timezone.utc), "message_id": sent.provider_message_id,
        "event_id": "4242", "recipient": sent.to_email, "url": "", "user_agent": "",
        "description": "The server was unable to deliver your message",  # Postmark's Description, before its Details
    }


def test_a_postmark_click_is_recorded_with_its_link_and_agent(client, sent):
    agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
    click = {"RecordType": "Click", "MessageID": sent.provider_message_id, "Recipient": sent.to_email,
             "ReceivedAt": p.iso(timezone.now() - timedelta(minutes=1)), "OriginalLink": "https://example.com/pricing",
             "UserAgent": agent}
    assert post_json(client, "postmark_tracking_webhook", click).status_code == 200

    assert recorded() == {
        "provider": "postmark", "kind": "clicked", "bounce": "", "occurred_at": timezone.now() - timedelta(minutes=1),
        "message_id": sent.provider_message_id, "event_id": "", "recipient": sent.to_email,
        "url": "https://example.com/pricing", "user_agent": agent, "description": "",
    }


def test_an_event_without_a_time_is_recorded_at_the_moment_it_arrives(client, sent):
    opened = {"RecordType": "Open", "MessageID": sent.provider_message_id, "Recipient": sent.to_email}
    assert post_json(client, "postmark_tracking_webhook", opened).status_code == 200
    assert EmailEvent.objects.get().occurred_at == timezone.now()


def test_an_event_about_an_unknown_message_keeps_its_recipient(client, sent):
    bounce = {**p.postmark_bounce(sent), "MessageID": "not-one-of-ours", "Email": "Someone@Example.org"}
    assert post_json(client, "postmark_tracking_webhook", bounce).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.delivery, event.message_id, event.recipient) == (None, "not-one-of-ours", "someone@example.org")


def test_a_sendgrid_bounce_is_described_by_its_smtp_answer(client, sent):
    bounce = p.sendgrid_event(sent, "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 no such user")
    assert post_json(client, "sendgrid_tracking_webhook", [bounce]).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.provider, event.description, event.event_id) == ("sendgrid", "550 5.1.1 no such user", bounce["sg_event_id"])


def test_a_sendgrid_event_without_a_message_id_is_recorded_without_one(client, sent):
    delivered = p.sendgrid_event(sent, "delivered", response="250 OK")
    del delivered["anymail_id"]
    assert post_json(client, "sendgrid_tracking_webhook", [delivered]).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.message_id, event.delivery, event.recipient, event.description) == ("", None, sent.to_email, "250 OK")
