"""Tracking events shaped as each provider documents them (anymail's test suite has the full samples).

Each builder takes the delivery the event is about and the fields that vary;
times come from the (frozen) clock.
"""

import json
import uuid
from datetime import timezone as dt_timezone

from django.utils import timezone

from tests.nurturing.webhook_posts import mailgun_signature


def iso(dt=None):
    return (dt or timezone.now()).astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ses_notification(ses_event: dict, *, message_id=None) -> dict:
    """An SNS notification carrying an SES event-publishing record."""
    return {
        "Type": "Notification", "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events", "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event), "Timestamp": iso(), "SignatureVersion": "1", "Signature": "EXAMPLE==",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem",
    }


def ses_mail(delivery) -> dict:
    return {
        "timestamp": iso(delivery.sent_at), "source": "rep1@example.com", "messageId": delivery.provider_message_id,
        "destination": [delivery.to_email], "headersTruncated": False,
        "headers": [{"name": "Message-ID", "value": delivery.message_id}],
        "commonHeaders": {"messageId": delivery.message_id, "subject": delivery.subject},
    }


def ses_bounce(delivery, bounce_type, sub_type) -> dict:
    return ses_notification({
        "eventType": "Bounce", "mail": ses_mail(delivery),
        "bounce": {"bounceType": bounce_type, "bounceSubType": sub_type, "timestamp": iso(),
                   "feedbackId": str(uuid.uuid4()), "reportingMTA": "dns; email.example.com",
                   "bouncedRecipients": [{"emailAddress": delivery.to_email, "action": "failed", "status": "5.1.1",
                                          "diagnosticCode": f"smtp; {bounce_type} {sub_type}"}]},
    })


def ses_open(delivery, user_agent) -> dict:
    return ses_notification({"eventType": "Open", "mail": ses_mail(delivery),
                             "open": {"ipAddress": "192.0.2.1", "timestamp": iso(), "userAgent": user_agent}})


def ses_subscription(delivery, *, unsubscribe_all=True, topic_status="OptOut") -> dict:
    preferences = {"unsubscribeAll": unsubscribe_all,
                   "topicSubscriptionStatus": [{"topicName": "Nurture", "subscriptionStatus": topic_status}]}
    return ses_notification({
        "eventType": "Subscription", "mail": ses_mail(delivery),
        "subscription": {"contactList": "Leads", "timestamp": iso(), "source": "UnsubscribeHeader",
                         "newTopicPreferences": preferences,
                         "oldTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": []}},
    })


def mailgun_event(delivery, event, *, signature=None, event_id=None, **data) -> dict:
    event_data = {"event": event, "timestamp": timezone.now().timestamp(), "id": event_id or uuid.uuid4().hex,
                  "recipient": delivery.to_email, "log-level": "info",
                  "message": {"headers": {"message-id": delivery.message_id.strip("<>")}}, **data}
    return {"signature": signature or mailgun_signature(), "event-data": event_data}


def mailgun_failed(delivery, severity, reason, code=550) -> dict:
    return mailgun_event(delivery, "failed", severity=severity, reason=reason, **{
        "log-level": "error" if severity == "permanent" else "warn",
        "delivery-status": {"attempt-no": 1, "code": code, "description": "", "message": f"{code} refused"},
    })


def postmark_bounce(delivery, kind="HardBounce", bounce_id=None) -> dict:
    return {"RecordType": "Bounce", "ID": bounce_id or uuid.uuid4().int % 10**9, "Type": kind, "TypeCode": 1,
            "MessageID": delivery.provider_message_id, "Email": delivery.to_email, "BouncedAt": iso(),
            "Description": "The server was unable to deliver your message", "Details": "smtp;550 5.1.1 user unknown",
            "Inactive": kind == "HardBounce", "CanActivate": True, "ServerID": 23, "MessageStream": "outbound"}


def sendgrid_event(delivery, event, **fields) -> dict:
    return {"email": delivery.to_email, "timestamp": int(timezone.now().timestamp()), "event": event,
            "sg_event_id": uuid.uuid4().hex, "sg_message_id": "sg-" + uuid.uuid4().hex,
            "anymail_id": delivery.provider_message_id, **fields}


def brevo_event(delivery, event, **fields) -> dict:
    now = timezone.now()
    return {"event": event, "email": delivery.to_email, "id": 12345, "date": now.strftime("%Y-%m-%d %H:%M:%S"),
            "ts_epoch": int(now.timestamp() * 1000), "message-id": delivery.message_id, **fields}


def mailjet_bounce(delivery, *, hard, error="user unknown") -> dict:
    return {"event": "bounce", "time": int(timezone.now().timestamp()), "MessageID": delivery.provider_message_id,
            "email": delivery.to_email, "mj_campaign_id": 0, "mj_contact_id": 1, "customcampaign": "",
            "blocked": False, "hard_bounce": hard, "error_related_to": "recipient", "error": error}


def mailersend_bounce(delivery, kind) -> dict:
    return {"type": f"activity.{kind}", "data": {
        "object": "activity", "id": uuid.uuid4().hex[:24], "type": kind, "created_at": iso(),
        "email": {"status": "rejected", "tags": None, "message": {"id": delivery.provider_message_id},
                  "recipient": {"email": delivery.to_email}},
        "morph": {"object": "recipient_bounce", "reason": "Mailbox unavailable"},
    }}


def mandrill_bounce(delivery, event) -> list:
    return [{"event": event, "_id": delivery.provider_message_id, "ts": int(timezone.now().timestamp()),
             "msg": {"_id": delivery.provider_message_id, "email": delivery.to_email, "state": "bounced",
                     "bounce_description": "mailbox_full" if event == "soft_bounce" else "bad_mailbox",
                     "diag": "smtp;550 refused", "ts": int(timezone.now().timestamp())}}]


def sparkpost_bounce(delivery, bounce_class) -> list:
    return [{"msys": {"message_event": {
        "type": "bounce", "bounce_class": bounce_class, "event_id": str(uuid.uuid4().int)[:18],
        "transmission_id": delivery.provider_message_id, "raw_rcpt_to": delivery.to_email,
        "rcpt_to": delivery.to_email, "timestamp": str(int(timezone.now().timestamp())),
        "raw_reason": "550 5.1.1 refused", "reason": "550 5.1.1 refused",
    }}}]


def ses_inbound(*, sender, to, subject, text, headers=(), verdict="PASS", message_id=None) -> dict:
    """An SES receipt-rule notification (SNS action, UTF-8) carrying the whole email."""
    message_id = message_id or f"<{uuid.uuid4().hex}@mail.example.org>"
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Message-ID: {message_id}",
             "MIME-Version: 1.0", *[f"{name}: {value}" for name, value in headers],
             'Content-Type: text/plain; charset="UTF-8"', "", text, ""]
    ses_event = {
        "notificationType": "Received",
        "mail": {"timestamp": iso(), "source": sender, "messageId": uuid.uuid4().hex, "destination": [to],
                 "headersTruncated": False, "commonHeaders": {"from": [sender], "to": [to], "subject": subject,
                                                              "messageId": message_id}},
        "receipt": {"timestamp": iso(), "processingTimeMillis": 357, "recipients": [to],
                    "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
                    "spfVerdict": {"status": verdict}, "dkimVerdict": {"status": verdict},
                    "dmarcVerdict": {"status": verdict},
                    "action": {"type": "SNS", "topicArn": "arn:aws:sns:eu-west-1:123456789012:ses-inbound",
                               "encoding": "UTF8"}},
        "content": "\r\n".join(lines),
    }
    return {**ses_notification(ses_event), "Subject": "Amazon SES Email Receipt Notification"}
