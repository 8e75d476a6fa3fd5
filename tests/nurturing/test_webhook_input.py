"""Bad input to the providers' webhooks: answered 400 (never 500), nothing recorded, on every URL we serve."""

import json

import pytest
from anymail import urls as anymail_urls

from nurturing.models import EmailEvent, Suppression, WebhookNonce
from nurturing.webhook_views import webhook_urlpatterns
from tests.nurturing.provider_payloads import mailgun_event, ses_inbound
from tests.nurturing.webhook_posts import AUTH, SECRET, post_form, post_json, post_sns

pytestmark = pytest.mark.usefixtures("webhooks")

WEBHOOKS = sorted(pattern.name for pattern in webhook_urlpatterns())
# Where a form-encoded provider puts its payload.
FORM_FIELDS = {"mailgun_inbound_webhook": "body-mime", "mandrill_webhook": "mandrill_events",
               "mandrill_tracking_webhook": "mandrill_events", "sendgrid_inbound_webhook": "email"}
GARBAGE = {
    "not JSON": "{not json",
    "a JSON string": '"hello"',
    "JSON of another shape": '{"unexpected": [1, 2], "event": {"nested": true}}',
    "an empty object": "{}",
    "an empty list": "[]",
    "an empty body": "",
}
# Mandrill checks a webhook URL by posting an empty batch (mandrill_events=[]): that is its
# documented call, answered 200 with nothing recorded.
DOCUMENTED = {("mandrill_webhook", "an empty list"), ("mandrill_tracking_webhook", "an empty list")}




def post_garbage(client, name, body):
    if name in FORM_FIELDS:
        return post_form(client, name, {FORM_FIELDS[name]: body} if body else {})
    if name.startswith("amazon_ses_"):
        return post_sns(client, name, body)
    return post_json(client, name, body)


def test_every_provider_webhook_is_served():
    assert len(WEBHOOKS) == len(anymail_urls.urlpatterns) == 27


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning",
                            "ignore::anymail.exceptions.AnymailDeprecationWarning")
@pytest.mark.parametrize("garbage", list(GARBAGE))
@pytest.mark.parametrize("name", WEBHOOKS)
def test_a_malformed_body_is_refused_with_400_and_nothing_is_recorded(client, db, name, garbage):
    client.raise_request_exception = False  # a crash must show as the 500 the provider would see
    response = post_garbage(client, name, GARBAGE[garbage])

    expected = 200 if (name, garbage) in DOCUMENTED else 400
    assert response.status_code == expected, response.content[:300]
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists() and not WebhookNonce.objects.exists()


def sns_notification(message: str, message_id="sns-1") -> dict:
    return {"Type": "Notification", "MessageId": message_id, "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
            "Message": message, "Timestamp": "2026-06-03T10:00:00.000Z", "SignatureVersion": "1"}


@pytest.mark.parametrize("message", ["not json", "{}", '{"eventType": "Bounce", "mail": {}}', "[1, 2]"],
                         ids=["not JSON", "empty", "bounce without its object", "a list"])
def test_amazon_ses_a_notification_whose_message_is_not_an_ses_event_is_a_400(client, db, message):
    client.raise_request_exception = False
    response = post_sns(client, "amazon_ses_tracking_webhook", sns_notification(message))
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_amazon_ses_the_topic_validation_notice_is_accepted_and_records_nothing(client, db):
    notice = sns_notification("Successfully validated SNS topic for Amazon SES event publishing.")
    assert post_sns(client, "amazon_ses_tracking_webhook", notice).status_code == 200
    assert not EmailEvent.objects.exists()


def test_amazon_ses_asks_for_the_secret_before_sns_sends_it(client, db):
    response = post_sns(client, "amazon_ses_tracking_webhook", sns_notification("{}"), auth={})
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic ")


def test_postmark_an_empty_body_is_a_400_and_records_nothing(client, db):
    assert post_json(client, "postmark_tracking_webhook", {}).status_code == 400
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("missing", ["RecordType", "MessageID", "Recipient"])
def test_postmark_an_event_without_what_postmark_always_sends_is_a_400(client, db, missing):
    opened = {"RecordType": "Open", "MessageID": "pm-1", "Recipient": "ada@example.com",
              "ReceivedAt": "2026-06-03T10:00:00Z", "UserAgent": "Mozilla/5.0"}
    del opened[missing]
    assert post_json(client, "postmark_tracking_webhook", opened).status_code == 400
    assert not EmailEvent.objects.exists()


def test_postmark_an_inbound_email_without_a_sender_is_a_400(client, db):
    payload = {"ToFull": [{"Email": "rep1@example.com", "Name": ""}], "Subject": "Hi", "MessageID": "in-1",
               "TextBody": "Hello", "Headers": []}
    assert post_json(client, "postmark_inbound_webhook", payload).status_code == 400
    assert not EmailEvent.objects.exists()


def test_a_batch_with_one_bad_event_records_none_of_it(client, db):
    good = {"event": "open", "email": "ada@example.com", "timestamp": 1780480800, "sg_event_id": "e1", "anymail_id": "x"}
    bad = {"email": "bob@example.com", "timestamp": 1780480800}
    response = post_json(client, "sendgrid_tracking_webhook", [good, bad])
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_basic_auth_alone_does_not_pass_a_signed_provider(client, db):
    body = json.dumps({"type": "activity.opened", "data": {}})
    response = client.post("/webhooks/mailersend/tracking/", data=body, content_type="application/json", **AUTH)
    assert response.status_code == 400


def test_a_failure_while_recording_is_a_500_for_the_provider_to_retry_and_leaves_nothing(client, sent, monkeypatch):
    def broken(incoming):
        raise TypeError("a bug of ours")

    monkeypatch.setattr("nurturing.webhooks.event_record", broken)
    client.raise_request_exception = False
    response = post_json(client, "mailgun_tracking_webhook", mailgun_event(sent, "opened"))
    assert response.status_code == 500
    assert not EmailEvent.objects.exists() and not WebhookNonce.objects.exists()  # the retry is taken


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning",
                            "ignore::anymail.exceptions.AnymailDeprecationWarning")
@pytest.mark.parametrize("name", WEBHOOKS)
def test_a_provider_left_unconfigured_answers_404_or_400_never_500(client, db, settings, name):
    # Only the basic-auth secret: the providers that sign their calls have no key to check them with.
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    client.raise_request_exception = False
    response = post_garbage(client, name, json.dumps({"event": "delivered"}))
    assert response.status_code in (400, 404), response.content[:300]
    if response.status_code == 404:
        assert b"not configured on this CRM" in response.content
    assert not EmailEvent.objects.exists()


def test_a_provider_left_unconfigured_says_so():
    from django.test import Client, override_settings

    with override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET}):
        response = Client(raise_request_exception=False).post(
            "/webhooks/mailersend/tracking/", data="{}", content_type="application/json", **AUTH
        )
    assert response.status_code == 404 and b"not configured on this CRM" in response.content


def test_an_inbound_email_from_several_senders_is_a_400_not_a_500(client, db):
    # Whose reply (or request to stop) it is cannot be told; a 500 would have the provider retry it for hours.
    client.raise_request_exception = False
    mail = ses_inbound(sender="ada@example.com, bob@example.org", to="rep1@example.com", subject="Re: hi", text="stop")
    response = post_sns(client, "amazon_ses_inbound_webhook", mail)
    assert (response.status_code, response.content) == (400, b"Malformed Amazon SES webhook: Amazon SES event with several senders")
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists()


# --- What each provider always sends, and its posts that carry no event ----------------------------------


@pytest.mark.parametrize("name, payload, problem", [
    ("postmark_tracking_webhook", {"MessageID": "pm-1", "Recipient": "ada@example.com"}, "Postmark event with no event type"),
    ("postmark_tracking_webhook", {"RecordType": "Open", "MessageID": "pm-1"}, "Postmark event with no recipient"),
    ("postmark_tracking_webhook", {"RecordType": "Open", "Recipient": "ada@example.com"}, "Postmark event with no message id"),
    ("mailgun_tracking_webhook", {"event-data": {"event": "opened", "timestamp": 1780480800, "id": "e1",
                                                 "message": {"headers": {"message-id": "m1"}}}},
     "Mailgun event with no recipient"),
    ("sendgrid_tracking_webhook", [{"event": "open", "timestamp": 1780480800, "sg_event_id": "e1"}],
     "SendGrid event with no recipient"),
], ids=["postmark-type", "postmark-recipient", "postmark-message", "mailgun-recipient", "sendgrid-recipient"])
def test_a_tracking_event_without_what_its_provider_always_sends_is_refused_saying_what(client, db, name, payload, problem):
    response = post_json(client, name, payload)
    esp = problem.split(" event with ")[0]
    assert (response.status_code, response.content) == (400, f"Malformed {esp} webhook: {problem}".encode())
    assert not EmailEvent.objects.exists()


def test_sendgrid_an_event_without_a_message_id_is_taken(client, db):
    event = {"event": "open", "email": "ada@example.com", "timestamp": 1780480800, "sg_event_id": "e1"}
    assert post_json(client, "sendgrid_tracking_webhook", [event]).status_code == 200
    assert EmailEvent.objects.get().message_id == ""


@pytest.mark.parametrize("sns_type", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_amazon_ses_snss_subscription_messages_are_answered_200_and_record_nothing(client, db, sns_type):
    message = {"Type": sns_type, "MessageId": "sns-2", "Token": "abc", "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
               "Message": "You have chosen to subscribe to the topic.", "SubscribeURL": "https://sns.example/confirm",
               "Timestamp": "2026-06-03T10:00:00.000Z", "SignatureVersion": "1"}
    assert post_sns(client, "amazon_ses_tracking_webhook", message).status_code == 200
    assert not EmailEvent.objects.exists()


def test_amazon_ses_another_sns_message_without_events_is_a_400(client, db):
    message = {"Type": "SomethingElse", "MessageId": "sns-3", "Message": "Hello", "Timestamp": "2026-06-03T10:00:00.000Z"}
    assert post_sns(client, "amazon_ses_tracking_webhook", message).status_code == 400


@pytest.mark.parametrize("body, status", [
    ([{"msys": {}}], 200), ([{"msys": {}}, {"msys": {}}], 200), ([{"msys": {}}, {"msys": {"x": 1}}], 400), ({}, 400),
], ids=["ping", "two pings", "a ping and something else", "an object"])
def test_sparkpost_its_webhook_ping_is_answered_200(client, db, body, status):
    assert post_json(client, "sparkpost_tracking_webhook", body).status_code == status
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("body, status", [
    ({"event_name": "transactional_spam_block", "event_data": {}}, 200),
    ({"events_by_user": [{"events": [{"event_name": "transactional_spam_block", "event_data": {}}]}]}, 200),
    ({"event_name": "transactional_email_status", "events_by_user": []}, 400),
], ids=["another kind of event", "a batch of other kinds", "an empty batch"])
def test_unisender_go_posts_about_other_things_than_an_emails_status_are_answered_200(client, db, body, status):
    client.raise_request_exception = False
    assert post_json(client, "unisender_go_tracking_webhook", body).status_code == status
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("events, status", [
    ([{"event": "inbound_message_received", "inbox_id": 1, "message_id": 1}], 200),
    ([{"event": "inbound.message_received", "message_id": 1}], 200),
    ([None], 400),
    ([], 400),
], ids=["inbox 1", "no inbox", "a null event", "no events"])
def test_mailtrap_its_example_inbound_event_is_answered_200(client, db, events, status):
    assert post_json(client, "mailtrap_inbound_webhook", {"events": events}).status_code == status
    assert not EmailEvent.objects.exists()
