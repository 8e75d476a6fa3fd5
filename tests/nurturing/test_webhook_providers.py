"""Each provider's own words, through its real webhook: bounce types, unsubscribes, machine opens, retries.

Payloads follow the providers' documented shapes (nurturing.providers has the table they test).
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from nurturing.models import Delivery, EmailEvent, Enrollment, Suppression
from tests.nurturing import provider_payloads as p
from tests.nurturing.webhook_posts import mailgun_signature, post_form, post_json, post_sns

pytestmark = [pytest.mark.usefixtures("webhooks"),
              pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")]
GOOGLE_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
PERSON = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"




def ses(client, name, payload):
    return post_sns(client, name, payload)


# (webhook, how the payload is posted, payload builder, expected bounce)
BOUNCES = {
    "ses-permanent": ("amazon_ses_tracking_webhook", ses, lambda d: p.ses_bounce(d, "Permanent", "General"), "hard"),
    "ses-permanent-suppressed": ("amazon_ses_tracking_webhook", ses,
                                 lambda d: p.ses_bounce(d, "Permanent", "OnAccountSuppressionList"), "hard"),
    "ses-transient-mailbox-full": ("amazon_ses_tracking_webhook", ses,
                                   lambda d: p.ses_bounce(d, "Transient", "MailboxFull"), "soft"),
    "ses-undetermined": ("amazon_ses_tracking_webhook", ses, lambda d: p.ses_bounce(d, "Undetermined", "Undetermined"),
                         "soft"),
    "mailgun-permanent": ("mailgun_tracking_webhook", post_json, lambda d: p.mailgun_failed(d, "permanent", "bounce"),
                          "hard"),
    "mailgun-gave-up-retrying": ("mailgun_tracking_webhook", post_json,
                                 lambda d: p.mailgun_failed(d, "permanent", "old", code=602), "soft"),
    "mailgun-mailbox-full": ("mailgun_tracking_webhook", post_json,
                             lambda d: p.mailgun_failed(d, "permanent", "bounce", code=552), "soft"),
    "postmark-hard": ("postmark_tracking_webhook", post_json, lambda d: p.postmark_bounce(d, "HardBounce"), "hard"),
    "postmark-bad-address": ("postmark_tracking_webhook", post_json, lambda d: p.postmark_bounce(d, "BadEmailAddress"),
                             "hard"),
    "postmark-soft": ("postmark_tracking_webhook", post_json, lambda d: p.postmark_bounce(d, "SoftBounce"), "soft"),
    "postmark-dns-error": ("postmark_tracking_webhook", post_json, lambda d: p.postmark_bounce(d, "DnsError"), "soft"),
    "postmark-blocked": ("postmark_tracking_webhook", post_json, lambda d: p.postmark_bounce(d, "Blocked"), "soft"),
    "sendgrid-bounce": ("sendgrid_tracking_webhook", post_json,
                        lambda d: [p.sendgrid_event(d, "bounce", type="bounce", status="5.1.1", reason="550 no user")],
                        "hard"),
    "sendgrid-blocked": ("sendgrid_tracking_webhook", post_json,
                         lambda d: [p.sendgrid_event(d, "bounce", type="blocked", status="5.7.1", reason="550 policy")],
                         "soft"),
    "brevo-hard": ("brevo_tracking_webhook", post_json, lambda d: p.brevo_event(d, "hard_bounce", reason="550"), "hard"),
    "brevo-soft": ("brevo_tracking_webhook", post_json, lambda d: p.brevo_event(d, "soft_bounce", reason="452"), "soft"),
    "sendinblue-soft": ("sendinblue_tracking_webhook", post_json, lambda d: p.brevo_event(d, "soft_bounce"), "soft"),
    "mailjet-hard": ("mailjet_tracking_webhook", post_json, lambda d: p.mailjet_bounce(d, hard=True), "hard"),
    "mailjet-soft": ("mailjet_tracking_webhook", post_json, lambda d: p.mailjet_bounce(d, hard=False,
                                                                                       error="quota exceeded"), "soft"),
    "mailersend-hard": ("mailersend_tracking_webhook", post_json, lambda d: p.mailersend_bounce(d, "hard_bounced"),
                        "hard"),
    "mailersend-soft": ("mailersend_tracking_webhook", post_json, lambda d: p.mailersend_bounce(d, "soft_bounced"),
                        "soft"),
    "mandrill-hard": ("mandrill_webhook", None, lambda d: p.mandrill_bounce(d, "hard_bounce"), "hard"),
    "mandrill-soft": ("mandrill_webhook", None, lambda d: p.mandrill_bounce(d, "soft_bounce"), "soft"),
    "sparkpost-invalid-recipient": ("sparkpost_tracking_webhook", post_json, lambda d: p.sparkpost_bounce(d, "10"),
                                    "hard"),
    "sparkpost-mailbox-full": ("sparkpost_tracking_webhook", post_json, lambda d: p.sparkpost_bounce(d, "22"), "soft"),
}


def post_mandrill(client, name, payload):
    return post_form(client, name, {"mandrill_events": json.dumps(payload)})


@pytest.mark.parametrize("case", list(BOUNCES))
def test_each_providers_bounce_type_is_read_as_hard_or_soft(client, sent, case):
    name, post, build, expected = BOUNCES[case]
    response = (post or post_mandrill)(client, name, build(sent))

    assert response.status_code == 200, response.content
    event = EmailEvent.objects.get()
    assert (event.kind, event.bounce, event.delivery) == ("bounced", expected, sent)
    enrollment = Enrollment.objects.get(pk=sent.enrollment_id)
    sent.refresh_from_db()
    if expected == "hard":
        assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.BOUNCED
        assert enrollment.status == Enrollment.Status.EXITED
    else:  # sent again later; the address stays
        assert not Suppression.objects.exists() and enrollment.status == Enrollment.Status.ACTIVE
        assert sent.status == Delivery.Status.SCHEDULED and "Soft bounce" in sent.reason


RETRYING = {
    "mailgun-temporary": ("mailgun_tracking_webhook", lambda d: p.mailgun_failed(d, "temporary", "generic", code=451)),
    "postmark-transient": ("postmark_tracking_webhook", lambda d: p.postmark_bounce(d, "Transient")),
    "sendgrid-deferred": ("sendgrid_tracking_webhook",
                          lambda d: [p.sendgrid_event(d, "deferred", response="451 try later", attempt="2")]),
}


@pytest.mark.parametrize("case", list(RETRYING))
def test_a_delivery_the_provider_is_still_retrying_is_not_a_bounce(client, sent, case):
    name, build = RETRYING[case]
    assert post_json(client, name, build(sent)).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.kind, event.bounce) == ("other", "")
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT and not Suppression.objects.exists()


def test_amazon_ses_subscription_opt_out_unsubscribes_and_the_next_step_is_not_sent(client, sent):
    response = ses(client, "amazon_ses_tracking_webhook", p.ses_subscription(sent))

    assert response.status_code == 200
    event = EmailEvent.objects.get()
    assert event.kind == EmailEvent.Kind.UNSUBSCRIBED and event.delivery == sent
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED
    enrollment = Enrollment.objects.get(pk=sent.enrollment_id)
    assert enrollment.status == Enrollment.Status.EXITED and enrollment.exit_reason == "Unsubscribed"
    assert not enrollment.deliveries.filter(status=Delivery.Status.SCHEDULED).exists()


def test_amazon_ses_a_topic_opt_out_is_an_unsubscribe_and_an_opt_in_is_not(client, sent):
    ses(client, "amazon_ses_tracking_webhook", p.ses_subscription(sent, unsubscribe_all=False, topic_status="OptIn"))
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.OTHER and not Suppression.objects.exists()

    ses(client, "amazon_ses_tracking_webhook", p.ses_subscription(sent, unsubscribe_all=False, topic_status="OptOut"))
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED


MACHINE_OPENS = {
    "mailgun-bot": ("mailgun_tracking_webhook", post_json,
                    lambda d: p.mailgun_event(d, "opened", **{"client-info": {
                        "client-type": "browser", "client-name": "Firefox", "bot": "gmail", "user-agent": GOOGLE_PROXY}}),
                    "Mailgun reports a machine open (gmail)"),
    "sendgrid-machine-open": ("sendgrid_tracking_webhook", post_json,
                              lambda d: [p.sendgrid_event(d, "open", useragent=PERSON, sg_machine_open=True)],
                              "SendGrid reports a machine open"),
    "ses-google-proxy": ("amazon_ses_tracking_webhook", ses, lambda d: p.ses_open(d, GOOGLE_PROXY), "Google image proxy"),
}


@pytest.mark.parametrize("case", list(MACHINE_OPENS))
def test_an_open_by_an_image_proxy_is_a_machine_open(client, sent, case):
    name, post, build, reason = MACHINE_OPENS[case]
    assert post(client, name, build(sent)).status_code == 200
    event = EmailEvent.objects.get()
    assert event.kind == EmailEvent.Kind.OPENED and event.is_machine and reason in event.machine_reason


def test_a_providers_open_without_a_machine_flag_is_a_person(client, sent):
    human = p.mailgun_event(sent, "opened", **{"client-info": {"client-name": "Safari", "bot": "", "user-agent": PERSON}})
    post_json(client, "mailgun_tracking_webhook", human)
    post_json(client, "sendgrid_tracking_webhook", [p.sendgrid_event(sent, "open", useragent=PERSON,
                                                                     sg_machine_open=False)])
    assert EmailEvent.objects.filter(kind="opened", is_machine=False).count() == 2


def test_the_providers_flag_wins_over_our_own_guess(client, sent):
    apple = p.mailgun_event(sent, "opened", **{"client-info": {"bot": "apple", "user-agent": "Mozilla/5.0"}})
    post_json(client, "mailgun_tracking_webhook", apple)
    assert EmailEvent.objects.get().machine_reason == "Mailgun reports a machine open (apple)"


def test_mailgun_a_retried_event_with_a_fresh_token_is_recorded_once(client, sent):
    first = p.mailgun_event(sent, "opened", event_id="mg-event-1", **{"client-info": {"user-agent": PERSON}})
    retry = {**first, "signature": mailgun_signature()}

    assert post_json(client, "mailgun_tracking_webhook", first).status_code == 200
    assert post_json(client, "mailgun_tracking_webhook", retry).status_code == 200
    assert EmailEvent.objects.count() == 1


def test_mailgun_the_same_signed_call_again_is_answered_200_and_records_nothing(client, sent):
    payload = p.mailgun_event(sent, "unsubscribed")
    assert post_json(client, "mailgun_tracking_webhook", payload).status_code == 200
    EmailEvent.objects.all().delete()

    forged = {**payload, "event-data": {**payload["event-data"], "id": "another-event", "event": "complained"}}
    assert post_json(client, "mailgun_tracking_webhook", forged).status_code == 200
    assert not EmailEvent.objects.exists()


def test_mailgun_a_call_signed_more_than_8_hours_ago_is_refused(client, sent):
    stale = p.mailgun_event(sent, "opened", signature=mailgun_signature(signed_at=timezone.now() - timedelta(hours=9)))
    assert post_json(client, "mailgun_tracking_webhook", stale).status_code == 400
    assert not EmailEvent.objects.exists()


# --- Events the bounce tables leave to anymail's reading -----------------------------------------------


@pytest.mark.parametrize("reason, kind, bounce, suppressed", [
    ("Bounced Address", "bounced", "hard", Suppression.Reason.BOUNCED),
    ("Unsubscribed Address", "unsubscribed", "", Suppression.Reason.UNSUBSCRIBED),
    ("Invalid", "rejected", "", None),
])
def test_sendgrid_a_dropped_email_is_read_by_why_it_was_dropped(client, sent, reason, kind, bounce, suppressed):
    dropped = p.sendgrid_event(sent, "dropped", reason=reason)
    assert post_json(client, "sendgrid_tracking_webhook", [dropped]).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.kind, event.bounce) == (kind, bounce)
    assert list(Suppression.objects.values_list("reason", flat=True)) == ([suppressed] if suppressed else [])


def test_a_bounce_the_table_does_not_know_is_hard(client, sent):
    bounce = p.postmark_bounce(sent, "SomeNewBounceType")
    assert post_json(client, "postmark_tracking_webhook", bounce).status_code == 200
    assert (EmailEvent.objects.get().kind, EmailEvent.objects.get().bounce) == ("bounced", "hard")


def test_an_event_anymail_does_not_know_is_other(client, sent):
    event = {"RecordType": "SomethingNew", "MessageID": sent.provider_message_id, "Recipient": sent.to_email}
    assert post_json(client, "postmark_tracking_webhook", event).status_code == 200
    assert EmailEvent.objects.get().kind == "other"


# --- Amazon SES list management ----------------------------------------------------------------------------


@pytest.mark.parametrize("preferences, kind", [
    ({"unsubscribeAll": True, "topicSubscriptionStatus": []}, "unsubscribed"),
    ({"unsubscribeAll": False, "topicSubscriptionStatus": [{"topicName": "A", "subscriptionStatus": "OptIn"},
                                                           {"topicName": "B", "subscriptionStatus": "OptOut"}]},
     "unsubscribed"),
    ({"unsubscribeAll": "true", "topicSubscriptionStatus": []}, "other"),
    ({"unsubscribeAll": False, "topicSubscriptionStatus": [{"topicName": "A", "subscriptionStatus": "OptIn"}]}, "other"),
    ({"unsubscribeAll": False}, "other"),
    ({}, "other"),
    (None, "other"),
], ids=["all", "one topic of two", "not a boolean", "opt-in", "no topics", "empty", "none"])
def test_amazon_ses_a_subscription_event_is_an_unsubscribe_only_when_it_opts_out(client, sent, preferences, kind):
    notification = p.ses_subscription(sent)
    ses_event = json.loads(notification["Message"])
    ses_event["subscription"]["newTopicPreferences"] = preferences
    assert ses(client, "amazon_ses_tracking_webhook", {**notification, "Message": json.dumps(ses_event)}).status_code == 200
    assert EmailEvent.objects.get().kind == kind


def test_amazon_ses_a_subscription_event_without_its_object_is_other(client, sent):
    notification = p.ses_subscription(sent)
    ses_event = json.loads(notification["Message"])
    del ses_event["subscription"]
    assert ses(client, "amazon_ses_tracking_webhook", {**notification, "Message": json.dumps(ses_event)}).status_code == 200
    assert EmailEvent.objects.get().kind == "other"


# --- Machine opens the provider reports, and the provider's event ids ----------------------------------


@pytest.mark.parametrize("case, reason", [
    ("mailgun-bot", "Mailgun reports a machine open (gmail)"),
    ("sendgrid-machine-open", "SendGrid reports a machine open"),
])
def test_the_providers_machine_open_is_named_exactly(client, sent, case, reason):
    name, post, build, _ = MACHINE_OPENS[case]
    post(client, name, build(sent))
    assert EmailEvent.objects.get().machine_reason == reason


@pytest.mark.parametrize("event", ["unique_proxy_open", "proxy_open"])
def test_brevo_a_proxy_open_is_named_by_its_event(client, sent, event):
    post_json(client, "brevo_tracking_webhook", p.brevo_event(sent, event))
    assert EmailEvent.objects.get().machine_reason == f"Brevo reports a machine open ({event})"


def test_a_bot_flag_on_a_click_is_not_a_providers_machine_open(client, sent):
    click = p.mailgun_event(sent, "clicked", url="https://example.com/x",
                            **{"client-info": {"bot": "gmail", "user-agent": PERSON}})
    post_json(client, "mailgun_tracking_webhook", click)
    event = EmailEvent.objects.get()
    assert (event.kind, event.is_machine, event.machine_reason) == ("clicked", False, "")


def test_mailgun_an_event_is_recorded_under_its_id_and_time(client, sent):
    opened = p.mailgun_event(sent, "opened", event_id="mg-ev-9", **{"client-info": {"user-agent": PERSON}})
    post_json(client, "mailgun_tracking_webhook", opened)
    assert EmailEvent.objects.get().event_id == f"mg-ev-9@{opened['event-data']['timestamp']}"


def test_mailgun_an_event_without_its_own_id_is_recorded_under_the_signatures_token(client, sent):
    opened = p.mailgun_event(sent, "opened", **{"client-info": {"user-agent": PERSON}})
    del opened["event-data"]["id"]
    post_json(client, "mailgun_tracking_webhook", opened)
    assert EmailEvent.objects.get().event_id == opened["signature"]["token"]


def test_a_bounce_field_of_another_type_than_documented_is_left_to_anymails_reading(client, sent):
    bounce = {**p.mailjet_bounce(sent, hard=True), "hard_bounce": ["yes"]}
    assert post_json(client, "mailjet_tracking_webhook", bounce).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.kind, event.bounce) == ("bounced", "hard")


def test_sparkpost_an_event_without_a_recipient_is_taken(client, sent):
    [bounce] = p.sparkpost_bounce(sent, "22")
    del bounce["msys"]["message_event"]["rcpt_to"], bounce["msys"]["message_event"]["raw_rcpt_to"]
    assert post_json(client, "sparkpost_tracking_webhook", [bounce]).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.kind, event.bounce, event.delivery, event.recipient) == ("bounced", "soft", sent, sent.to_email)


def test_amazon_ses_a_subscription_object_that_is_not_an_object_is_other(client, sent):
    notification = p.ses_subscription(sent)
    ses_event = {**json.loads(notification["Message"]), "subscription": "opted out"}
    assert ses(client, "amazon_ses_tracking_webhook", {**notification, "Message": json.dumps(ses_event)}).status_code == 200
    assert EmailEvent.objects.get().kind == "other"


@pytest.mark.parametrize("event, kind, bounce", [("bounce", "bounced", "hard"), ("delivery", "delivered", "")])
def test_a_provider_without_a_bounce_table_is_read_by_anymail(client, sent, event, kind, bounce):
    mailtrap = {"event": event, "message_id": sent.provider_message_id, "email": sent.to_email, "event_id": "mt-1",
                "timestamp": int(timezone.now().timestamp()), "response": "550 5.1.1 unknown"}
    assert post_json(client, "mailtrap_tracking_webhook", {"events": [mailtrap]}).status_code == 200
    recorded = EmailEvent.objects.get()
    assert (recorded.provider, recorded.kind, recorded.bounce, recorded.delivery) == ("mailtrap", kind, bounce, sent)
