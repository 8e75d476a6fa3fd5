"""The strict webhook views themselves: the URLs served, what a refused call is told, the replay guard's bounds.

Django builds the project's URLs once, when it loads them; the tests that check
`webhook_urlpatterns()` itself serve the URLs it builds during the test
(`urls_built_now`), so that they test that function and not a copy made
before the test started.
"""

import types
import uuid
from datetime import timedelta

import pytest
from anymail import urls as anymail_urls
from django.urls import include, path, resolve
from django.utils import timezone

from nurturing.models import EmailEvent, Suppression, WebhookNonce
from nurturing.webhook_views import webhook_urlpatterns
from tests.nurturing.provider_payloads import mailgun_event, postmark_bounce, sendgrid_event
from tests.nurturing.webhook_posts import AUTH, SECRET, mailgun_signature, post_form, post_json, url

pytestmark = [pytest.mark.usefixtures("webhooks"),
              pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")]

REFUSED = "django.security.AnymailWebhookValidationFailure"  # where Django logs a refused (400) call


@pytest.fixture
def urls_built_now(settings):
    """The site served with the webhook URLs that `webhook_urlpatterns()` builds in this test."""
    urlconf = types.ModuleType("webhook_urls_built_now")
    webhooks = [path("webhooks/", include((webhook_urlpatterns(), "webhooks")))]
    urlconf.urlpatterns = [path("", include((webhooks, "nurturing")))]
    settings.ROOT_URLCONF = urlconf


def refusals(caplog):
    return [record.getMessage() for record in caplog.records if record.name == REFUSED]


def warnings_logged(caplog):
    return [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "nurturing.webhook_views"]


# --- The URLs served ----------------------------------------------------------------------------------


def test_every_anymail_webhook_route_is_served_under_webhooks_with_its_name_and_kind_of_pattern():
    served = [(type(p.pattern), str(p.pattern), p.name) for p in webhook_urlpatterns()]
    assert served == [(type(p.pattern), str(p.pattern), p.name) for p in anymail_urls.urlpatterns]


@pytest.mark.usefixtures("urls_built_now")
def test_each_webhook_url_is_served_by_the_providers_view_made_strict():
    for pattern in anymail_urls.urlpatterns:
        anymail_view = pattern.callback.view_class
        match = resolve(url(pattern.name))
        assert match.url_name == pattern.name
        # The name error reports and the resolver give the view.
        assert match._func_path == f"nurturing.webhook_views.Strict{anymail_view.__name__}"
        assert issubclass(match.func.view_class, anymail_view)
    assert resolve("/webhooks/mailgun/inbound_mime/").url_name == "mailgun_inbound_webhook"


@pytest.mark.usefixtures("urls_built_now")
def test_the_urls_built_now_refuse_a_malformed_body_and_record_a_good_one(client, sent):
    response = client.post(url("postmark_tracking_webhook"), data="{not json", content_type="application/json", **AUTH)
    assert response.status_code == 400

    good = [sendgrid_event(sent, "delivered")]  # a JSON list: no replay guard reads it for a signature
    assert post_json(client, "sendgrid_tracking_webhook", good).status_code == 200
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.DELIVERED
    assert not WebhookNonce.objects.exists()


@pytest.mark.usefixtures("urls_built_now")
def test_the_urls_built_now_answer_a_mailgun_replay_200_and_record_nothing(client, sent):
    payload = mailgun_event(sent, "opened")
    assert post_json(client, "mailgun_tracking_webhook", payload).status_code == 200
    assert post_json(client, "mailgun_tracking_webhook", {**payload, "event-data": {
        **payload["event-data"], "id": "another-event", "event": "complained"}}).status_code == 200
    assert list(EmailEvent.objects.values_list("kind", flat=True)) == [EmailEvent.Kind.OPENED]


@pytest.mark.usefixtures("urls_built_now")
def test_the_urls_built_now_answer_an_unconfigured_provider_404(client, db, settings, caplog):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    response = client.post(url("mailersend_tracking_webhook"), data="{}", content_type="application/json", **AUTH)
    assert response.status_code == 404
    assert response.content == b"This email provider's webhook is not configured on this CRM."
    [(level, message)] = warnings_logged(caplog)
    assert level == "WARNING" and message.startswith("Webhook for an unconfigured provider refused: ")


# --- What a refused call is told, and what is logged ------------------------------------------------------


def test_a_body_that_is_not_json_is_answered_with_the_parsers_words(client, db, caplog):
    response = client.post(url("postmark_tracking_webhook"), data="{not json", content_type="application/json", **AUTH)

    reason = "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert (response.status_code, response.content) == (400, f"Malformed Postmark webhook: {reason}".encode())
    assert warnings_logged(caplog) == [("WARNING", f"Malformed Postmark webhook refused: {reason}")]


def test_an_inbound_email_posted_to_the_tracking_url_is_refused_saying_so(client, db, caplog):
    inbound = {"FromFull": {"Email": "ada@example.com", "Name": "Ada"}, "ToFull": [{"Email": "rep1@example.com"}],
               "Subject": "Hi", "MessageID": "in-1", "TextBody": "Hello", "Headers": []}
    response = post_json(client, "postmark_tracking_webhook", inbound)

    anymail_says = "You seem to have set Postmark's *inbound* webhook to Anymail's Postmark *tracking* webhook URL."
    assert response.status_code == 400
    assert response.content == f"Malformed Postmark webhook: not a call this URL takes: {anymail_says}".encode()
    assert warnings_logged(caplog) == [
        ("ERROR", f"Webhook refused: {anymail_says}"),
        ("WARNING", f"Malformed Postmark webhook refused: not a call this URL takes: {anymail_says}"),
    ]
    assert not EmailEvent.objects.exists()


def test_an_inbound_email_without_a_sender_is_refused_saying_so(client, db):
    payload = {"ToFull": [{"Email": "rep1@example.com", "Name": ""}], "Subject": "Hi", "MessageID": "in-1",
               "TextBody": "Hello", "Headers": []}
    response = post_json(client, "postmark_inbound_webhook", payload)
    assert (response.status_code, response.content) == (400, b"Malformed Postmark webhook: Postmark event with no sender")


def test_a_tracking_event_without_its_type_is_refused_saying_so(client, sent):
    payload = postmark_bounce(sent)
    del payload["RecordType"]
    response = post_json(client, "postmark_tracking_webhook", payload)
    assert response.content == b"Malformed Postmark webhook: Postmark event with no event type"


def test_a_post_without_an_event_is_refused_saying_so(client, db):
    response = post_json(client, "sendgrid_tracking_webhook", [])
    assert (response.status_code, response.content) == (400, b"Malformed SendGrid webhook: SendGrid webhook without an event")


def test_the_answer_to_a_malformed_call_is_cut_at_500_bytes(client, db):
    # Mailgun's tracking event posted to the inbound URL: anymail's message repeats the event's name.
    event = "x" * 600
    response = post_form(client, "mailgun_inbound_webhook", {"event": event})

    said = (f"Malformed Mailgun webhook: not a call this URL takes: You seem to have set Mailgun's *{event} tracking* "
            "webhook to Anymail's Mailgun *inbound* webhook URL.")
    assert response.status_code == 400 and response.content == said.encode()[:500]


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailInsecureWebhookWarning")
def test_without_a_configured_secret_the_refusal_logged_says_to_set_one(client, db, settings, caplog):
    settings.ANYMAIL = {}
    response = post_json(client, "postmark_tracking_webhook", {"RecordType": "Open"}, auth={})
    assert response.status_code == 400
    assert refusals(caplog) == [
        "No webhook secret is configured (ANYMAIL_WEBHOOK_SECRET): unauthenticated webhooks are refused."
    ]


def test_a_provider_that_signs_its_calls_needs_no_basic_auth_secret(client, sent, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-signing-key"}
    response = post_json(client, "mailgun_tracking_webhook", mailgun_event(sent, "opened"), auth={})
    assert response.status_code == 200
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.OPENED


# --- Mailgun's signed timestamp and one-time token ----------------------------------------------------


def test_each_signed_call_keeps_its_token_once(client, sent):
    tokens = ["a" * 32, "b" * 32]
    for token in tokens:
        payload = mailgun_event(sent, "opened", signature=mailgun_signature(token=token))
        assert post_json(client, "mailgun_tracking_webhook", payload).status_code == 200

    assert EmailEvent.objects.count() == 2  # two calls, two events: neither was taken for the other
    assert sorted(WebhookNonce.objects.values_list("provider", "token")) == [("Mailgun", token) for token in tokens]


def test_a_long_token_is_kept_to_its_first_200_characters(client, sent):
    token = uuid.uuid4().hex * 8  # 256 characters, signed as they are
    payload = mailgun_event(sent, "opened", signature=mailgun_signature(token=token))
    assert post_json(client, "mailgun_tracking_webhook", payload).status_code == 200
    assert WebhookNonce.objects.get().token == token[:200]


@pytest.mark.parametrize("hours, status", [(8, 200), (-8, 200), (8.001, 400), (-8.001, 400)],
                         ids=["signed 8 hours ago", "signed 8 hours ahead", "older", "further ahead"])
def test_a_call_is_accepted_signed_up_to_8_hours_either_side_of_now(client, sent, caplog, hours, status):
    signed_at = timezone.now() - timedelta(hours=hours)
    payload = mailgun_event(sent, "opened", signature=mailgun_signature(signed_at=signed_at))
    assert post_json(client, "mailgun_tracking_webhook", payload).status_code == status

    assert EmailEvent.objects.count() == (1 if status == 200 else 0)
    assert refusals(caplog) == ([] if status == 200 else ["Webhook signed more than 8 hours ago: refused as a replay."])


def mailgun_inbound(sent, *, signature, text):
    mime = (f"From: Ada <{sent.to_email}>\r\nTo: rep1@example.com\r\nSubject: Re: {sent.subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@mail.example.org>\r\nIn-Reply-To: {sent.message_id}\r\n\r\n{text}\r\n")
    return {**signature, "body-mime": mime, "sender": sent.to_email, "recipient": "rep1@example.com"}


def test_mailgun_inbound_each_signed_form_call_is_accepted_once(client, sent):
    first = mailgun_inbound(sent, signature=mailgun_signature(token="c" * 32), text="Call me Tuesday.")
    second = mailgun_inbound(sent, signature=mailgun_signature(token="d" * 32), text="Or Wednesday.")
    for fields in (first, second, first):
        assert post_form(client, "mailgun_inbound_webhook", fields).status_code == 200

    replies = EmailEvent.objects.order_by("description").values_list("description", flat=True)
    assert [text.split("\n")[1] for text in replies] == ["Call me Tuesday.", "Or Wednesday."]
    assert sorted(WebhookNonce.objects.values_list("provider", "token")) == [("Mailgun", "c" * 32), ("Mailgun", "d" * 32)]


def test_mailgun_inbound_a_form_call_signed_more_than_8_hours_ago_is_refused(client, sent, caplog):
    stale = mailgun_signature(signed_at=timezone.now() - timedelta(hours=9))
    response = post_form(client, "mailgun_inbound_webhook", mailgun_inbound(sent, signature=stale, text="stop"))
    assert response.status_code == 400
    assert refusals(caplog) == ["Webhook signed more than 8 hours ago: refused as a replay."]
    assert not EmailEvent.objects.exists() and not Suppression.objects.exists() and not WebhookNonce.objects.exists()

