"""Provider webhooks, through anymail's real views: each rule, and bad input refused with nothing recorded.

Payloads are shaped as Postmark, Brevo and Mailgun send them; the clock is frozen.
"""

import base64
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import StageChange, Task
from nurturing import services
from nurturing.models import Delivery, EmailEvent, Enrollment, Suppression
from tests.factories import LeadFactory, sequence_with_steps
from tests.nurturing.provider_payloads import iso, mailgun_event, postmark_bounce
from tests.nurturing.webhook_posts import AUTH, MAILGUN_KEY, mailgun_signature, post_json, url

pytestmark = pytest.mark.usefixtures("webhooks")

HUMAN_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"




def test_postmark_hard_bounce_suppresses_and_takes_the_lead_out(client, sent):
    response = post_json(client, "postmark_tracking_webhook", postmark_bounce(sent))

    assert response.status_code == 200
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.BOUNCED
    enrollment = sent.enrollment
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED and enrollment.exit_reason == "Hard bounce"
    event = EmailEvent.objects.get()
    assert enrollment.exit_event == event and event.delivery == sent and event.bounce == "hard"
    assert not enrollment.deliveries.filter(status=Delivery.Status.SCHEDULED).exists()


def test_postmark_sending_the_same_event_twice_counts_once(client, sent):
    payload = postmark_bounce(sent, bounce_id=4242)
    assert post_json(client, "postmark_tracking_webhook", payload).status_code == 200
    assert post_json(client, "postmark_tracking_webhook", payload).status_code == 200
    assert EmailEvent.objects.count() == 1


def test_postmark_soft_bounce_sends_again_later_and_repeated_ones_suppress(client, sent, settings):
    settings.CRM_SOFT_BOUNCES_TO_SUPPRESS = 2
    post_json(client, "postmark_tracking_webhook", postmark_bounce(sent, kind="SoftBounce", bounce_id=1))
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SCHEDULED and sent.due_at > timezone.now() + timedelta(hours=5)
    assert "Soft bounce" in sent.reason
    assert not Suppression.objects.exists()
    later = sent.enrollment.deliveries.exclude(pk=sent.pk).get()
    assert later.due_at > sent.due_at  # the next step waits for the retry

    post_json(client, "postmark_tracking_webhook", postmark_bounce(sent, kind="SoftBounce", bounce_id=2))
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.SOFT_BOUNCES


def test_postmark_inbound_reply_takes_the_lead_out_and_can_pause_the_company(client, sent, rep_user):
    sequence = sent.enrollment.sequence
    sequence.pause_company_on_reply = True
    sequence.save()
    colleague = LeadFactory(first_name="Bob", owner=rep_user, company=sent.enrollment.lead.company)
    other = services.enrollment_create(lead=colleague, sequence=sequence)
    payload = {
        "FromFull": {"Email": sent.to_email, "Name": "Ada"}, "ToFull": [{"Email": "rep1@example.com", "Name": ""}],
        "Subject": "Re: " + sent.subject, "MessageID": str(uuid.uuid4()), "TextBody": "Sounds good, call me Tuesday.",
        "Headers": [{"Name": "In-Reply-To", "Value": sent.message_id}],
    }
    response = post_json(client, "postmark_inbound_webhook", payload)

    assert response.status_code == 200
    enrollment = sent.enrollment
    enrollment.refresh_from_db()
    other.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED and enrollment.exit_reason == "Replied"
    assert other.status == Enrollment.Status.PAUSED
    event = EmailEvent.objects.get(kind=EmailEvent.Kind.REPLIED)
    assert event.delivery == sent and "call me Tuesday" in event.description and "paused" in event.actions


def test_an_out_of_office_reply_does_not_stop_the_sequence(client, sent):
    payload = {
        "FromFull": {"Email": sent.to_email, "Name": "Ada"}, "ToFull": [{"Email": "rep1@example.com", "Name": ""}],
        "Subject": "Out of office", "MessageID": str(uuid.uuid4()), "TextBody": "Back on Monday.",
        "Headers": [{"Name": "In-Reply-To", "Value": sent.message_id}, {"Name": "Auto-Submitted", "Value": "auto-replied"}],
    }
    assert post_json(client, "postmark_inbound_webhook", payload).status_code == 200
    sent.enrollment.refresh_from_db()
    assert sent.enrollment.status == Enrollment.Status.ACTIVE
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.OTHER


@pytest.mark.parametrize("auth", [{}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hooks:wrong").decode()}],
                         ids=["unsigned", "forged"])
def test_an_unauthenticated_webhook_is_refused_and_nothing_recorded(client, sent, auth):
    response = post_json(client, "postmark_tracking_webhook", postmark_bounce(sent), auth=auth)
    assert response.status_code == 400
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists()


def test_without_a_configured_secret_every_webhook_is_refused(client, sent, settings):
    settings.ANYMAIL = {}
    response = post_json(client, "postmark_tracking_webhook", postmark_bounce(sent), auth={})
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_malformed_json_is_a_400_and_nothing_is_recorded(client, sent):
    response = client.post(url("postmark_tracking_webhook"), data="{not json", content_type="application/json", **AUTH)
    assert response.status_code == 400
    response = client.post(url("brevo_tracking_webhook"), data='{"event": "click"', content_type="application/json", **AUTH)
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_an_event_for_an_unknown_message_is_logged_and_changes_nothing(client, sent):
    payload = postmark_bounce(sent)
    payload["MessageID"] = "not-one-of-ours"
    assert post_json(client, "postmark_tracking_webhook", payload).status_code == 200
    event = EmailEvent.objects.get()
    assert event.delivery is None and event.lead is None and event.actions == ""
    assert not Suppression.objects.exists()
    sent.enrollment.refresh_from_db()
    assert sent.enrollment.status == Enrollment.Status.ACTIVE


def test_an_apple_privacy_prefetch_open_is_a_machine_open(client, sent):
    payload = {"RecordType": "Open", "MessageID": sent.provider_message_id, "Recipient": sent.to_email,
               "ReceivedAt": iso(timezone.now()), "UserAgent": "Mozilla/5.0", "FirstOpen": True}
    post_json(client, "postmark_tracking_webhook", payload)
    payload = {**payload, "UserAgent": HUMAN_AGENT, "ReceivedAt": iso(timezone.now() + timedelta(minutes=5))}
    post_json(client, "postmark_tracking_webhook", payload)
    machine, human = EmailEvent.objects.order_by("occurred_at")
    assert machine.is_machine and "Apple" in machine.machine_reason
    assert not human.is_machine


# --- Brevo -----------------------------------------------------------------------------------------


def brevo_event(delivery, event, at=None, **fields):
    at = at or timezone.now()
    return {"event": event, "email": delivery.to_email, "id": 12345, "date": at.strftime("%Y-%m-%d %H:%M:%S"),
            "ts_epoch": int(at.timestamp() * 1000), "message-id": delivery.message_id, **fields}


def test_brevo_spam_complaint_suppresses(client, sent):
    response = post_json(client, "brevo_tracking_webhook", brevo_event(sent, "spam"))
    assert response.status_code == 200
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.COMPLAINED
    sent.enrollment.refresh_from_db()
    assert sent.enrollment.status == Enrollment.Status.EXITED and sent.enrollment.exit_reason == "Marked the email as spam"


def test_brevo_a_proxy_open_is_a_machine_open(client, sent):
    post_json(client, "brevo_tracking_webhook", brevo_event(sent, "unique_proxy_open"))
    assert EmailEvent.objects.get().is_machine


def test_brevo_a_scanner_click_is_kept_but_moves_nothing_and_a_human_click_moves_the_lead(client, sent):
    lead = sent.enrollment.lead
    Delivery.objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(seconds=2))
    scanner = brevo_event(sent, "click", link="https://example.com/pricing?utm=nurture")
    assert post_json(client, "brevo_tracking_webhook", scanner).status_code == 200
    lead.refresh_from_db()
    assert lead.status == "new" and not Task.objects.exists()
    assert EmailEvent.objects.get().is_machine

    human = brevo_event(sent, "click", at=timezone.now() + timedelta(minutes=30), link="https://example.com/pricing?utm=nurture")
    assert post_json(client, "brevo_tracking_webhook", human).status_code == 200
    lead.refresh_from_db()
    assert lead.status == "mql"
    change = StageChange.objects.get(lead=lead, to_status="mql")
    event = EmailEvent.objects.get(is_machine=False)
    assert change.actor.startswith("sequence Guide follow-up step 1, event #") and f"#{event.pk}" in change.actor
    task = Task.objects.get(lead=lead)
    assert task.assignee == lead.owner and "pricing" in task.title
    assert "moved to MQL" in event.actions

    again = brevo_event(sent, "click", at=timezone.now() + timedelta(minutes=40), link="https://example.com/pricing")
    post_json(client, "brevo_tracking_webhook", again)
    assert Task.objects.filter(lead=lead).count() == 1  # the actions ran once


def test_postmark_a_click_from_a_link_scanner_agent_is_a_machine_click(client, sent):
    payload = {"RecordType": "Click", "MessageID": sent.provider_message_id, "Recipient": sent.to_email,
               "ReceivedAt": iso(timezone.now()), "OriginalLink": "https://example.com/pricing",
               "UserAgent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"}
    assert post_json(client, "postmark_tracking_webhook", payload).status_code == 200
    event = EmailEvent.objects.get()
    assert event.is_machine and "barracuda" in event.machine_reason
    sent.enrollment.lead.refresh_from_db()
    assert sent.enrollment.lead.status == "new"


# --- Mailgun (signed) ------------------------------------------------------------------------------


def mailgun_payload(delivery, event, *, signed_at=None, key=MAILGUN_KEY, **data):
    return mailgun_event(delivery, event, signature=mailgun_signature(signed_at=signed_at, key=key), **data)


def test_mailgun_a_click_seconds_after_sending_is_a_scanner(client, sent):
    Delivery.objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(seconds=3))
    payload = mailgun_payload(sent, "clicked", url="https://example.com/pricing", **{"client-info": {"user-agent": HUMAN_AGENT}})
    assert post_json(client, "mailgun_tracking_webhook", payload).status_code == 200
    event = EmailEvent.objects.get()
    assert event.is_machine and "after sending" in event.machine_reason
    sent.enrollment.lead.refresh_from_db()
    assert sent.enrollment.lead.status == "new"


def test_mailgun_a_wrong_signature_is_refused(client, sent):
    payload = mailgun_payload(sent, "complained", key="not-the-key")
    assert post_json(client, "mailgun_tracking_webhook", payload).status_code == 400
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists()


def test_mailgun_unsubscribe_suppresses(client, sent):
    assert post_json(client, "mailgun_tracking_webhook", mailgun_payload(sent, "unsubscribed")).status_code == 200
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED


def test_a_step_with_click_actions_needs_the_link_and_never_converts():
    from django.core.exceptions import ValidationError

    from nurturing.models import Step

    step = Step(kind=Step.Kind.EMAIL, subject_template="Hi", text_template="Hello", click_stage_action="customer")
    with pytest.raises(ValidationError) as exc:
        services.step_check(step)
    assert set(exc.value.message_dict) == {"click_stage_action", "click_link_contains"}


def test_every_role_can_read_engagement_events(db, manager_user, marketer_user, rep_user):
    for user in (manager_user, marketer_user, rep_user):
        assert user.has_perm("nurturing.view_emailevent") and user.has_perm("leads.view_formsubmission")
    assert marketer_user.has_perm("leads.change_resource") and not rep_user.has_perm("leads.change_resource")


def postmark_inbound(sent, *, to="rep1@example.com", subject=None, text="Thanks", headers=None):
    return {
        "FromFull": {"Email": sent.to_email.upper(), "Name": "Ada"}, "ToFull": [{"Email": to, "Name": ""}],
        "Subject": subject if subject is not None else "Re: " + sent.subject, "MessageID": str(uuid.uuid4()),
        "TextBody": text, "Headers": headers if headers is not None else [{"Name": "In-Reply-To", "Value": sent.message_id}],
    }


def test_a_reply_that_only_asks_to_stop_unsubscribes(client, sent):
    assert post_json(client, "postmark_inbound_webhook", postmark_inbound(sent, text="STOP\n\n> earlier email")).status_code == 200
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.UNSUBSCRIBED


def test_a_reply_is_matched_by_in_reply_to_before_older_references(client, sent, rep_user):
    other_lead = LeadFactory(owner=rep_user)
    other = services.enrollment_create(lead=other_lead, sequence=sent.enrollment.sequence)
    Delivery.objects.filter(enrollment=other).update(status=Delivery.Status.SENT, message_id="<older@crm.test>",
                                                    sent_at=timezone.now())
    headers = [{"Name": "In-Reply-To", "Value": sent.message_id},
               {"Name": "References", "Value": f"<older@crm.test> {sent.message_id}"}]
    post_json(client, "postmark_inbound_webhook", postmark_inbound(sent, headers=headers))
    assert EmailEvent.objects.get().delivery == sent


@pytest.mark.parametrize("headers", [
    [],  # a client that keeps no thread headers
    [{"Name": "In-Reply-To", "Value": "<someone-elses@mail.example>"}, {"Name": "References", "Value": "<unknown@elsewhere.example>"}],
], ids=["no-thread-headers", "unknown-thread"])
def test_a_reply_that_matches_no_email_still_takes_the_sender_out_of_every_sequence(client, sent, headers):
    # A second sequence the lead is in, nothing sent from it yet: the reply ends it too.
    other = services.enrollment_create(lead=sent.enrollment.lead, sequence=sequence_with_steps(name="Webinar invite"))
    response = post_json(client, "postmark_inbound_webhook", postmark_inbound(sent, headers=headers, text="Sounds good, call me"))
    assert response.status_code == 200
    event = EmailEvent.objects.get()
    assert (event.kind, event.delivery, event.lead) == (EmailEvent.Kind.REPLIED, None, sent.enrollment.lead)
    for enrollment in (sent.enrollment, other):
        enrollment.refresh_from_db()
        assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, "Replied")
    assert not Delivery.objects.filter(status=Delivery.Status.SCHEDULED).exists()


def test_a_soft_bounced_email_that_arrived_after_all_is_not_sent_again(client, sent):
    post_json(client, "postmark_tracking_webhook", postmark_bounce(sent, kind="SoftBounce", bounce_id=7))
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SCHEDULED
    delivered = {"RecordType": "Delivery", "MessageID": sent.provider_message_id, "Recipient": sent.to_email,
                 "DeliveredAt": iso(timezone.now()), "Details": "250 OK"}
    post_json(client, "postmark_tracking_webhook", delivered)
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT and "Delivered after all" in sent.reason


def test_a_soft_bounce_is_not_resent_once_a_later_step_went(client, sent):
    Delivery.objects.filter(enrollment=sent.enrollment).exclude(pk=sent.pk).update(
        status=Delivery.Status.SENT, sent_at=timezone.now()
    )
    post_json(client, "postmark_tracking_webhook", postmark_bounce(sent, kind="SoftBounce", bounce_id=8))
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT
    assert "a later step already went" in EmailEvent.objects.get().actions


def test_old_webhook_tokens_are_forgotten_by_the_reaper(db):
    from nurturing.models import WebhookNonce
    from nurturing.tasks import reap_stale

    WebhookNonce.objects.create(provider="Mailgun", token="old", seen_at=timezone.now() - timedelta(days=2))
    WebhookNonce.objects.create(provider="Mailgun", token="recent")
    reap_stale()
    assert list(WebhookNonce.objects.values_list("token", flat=True)) == ["recent"]
