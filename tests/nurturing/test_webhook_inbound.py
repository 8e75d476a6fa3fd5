"""Inbound mail through the providers' real webhooks: replies found by their headers, unsubscribes that are really the sender's."""

import json

import pytest

from nurturing import services
from nurturing.compose import unsubscribe_token
from nurturing.models import EmailEvent, Enrollment, Suppression
from tests.factories import LeadFactory
from tests.nurturing.provider_payloads import ses_inbound
from tests.nurturing.webhook_posts import post_form, post_json, post_sns

pytestmark = pytest.mark.usefixtures("webhooks")

UNSUBSCRIBE_TO = "unsubscribe@crm.example"


@pytest.fixture(autouse=True)
def unsubscribe_address(settings):
    settings.CRM_UNSUBSCRIBE_MAILTO = UNSUBSCRIBE_TO


def ses_mail(client, **fields):
    return post_sns(client, "amazon_ses_inbound_webhook", ses_inbound(**fields))


def test_amazon_ses_a_reply_to_the_rewritten_message_id_is_linked_to_its_email(client, sent, rep_user):
    """SES sends our email as <its id@email.amazonses.com>; the reply comes from another address of the lead."""
    LeadFactory(email="ada.home@example.net", owner=rep_user)  # someone else with the address it comes from
    response = ses_mail(
        client, sender="Ada <ada.home@example.net>", to="rep1@example.com", subject="Re: " + sent.subject,
        text="Let's talk on Tuesday.",
        headers=[("In-Reply-To", f"<{sent.provider_message_id}@email.amazonses.com>"),
                 ("References", f"<{sent.provider_message_id}@email.amazonses.com>")],
    )

    assert response.status_code == 200
    event = EmailEvent.objects.get()
    assert event.kind == EmailEvent.Kind.REPLIED and event.delivery == sent and event.lead == sent.enrollment.lead
    enrollment = Enrollment.objects.get(pk=sent.enrollment_id)
    assert enrollment.status == Enrollment.Status.EXITED and enrollment.exit_reason == "Replied"


def test_a_reply_found_only_in_references_is_linked_before_the_sender_address(client, sent):
    ses_mail(client, sender="someone@elsewhere.example", to="rep1@example.com", subject="Fwd: question", text="Hi",
             headers=[("References", f"<unrelated@mail.example.org> <{sent.provider_message_id}@email.amazonses.com>")])
    assert EmailEvent.objects.get().delivery == sent


def test_mail_to_the_unsubscribe_address_with_a_forged_sender_and_no_token_suppresses_nothing(client, sent):
    payload = {
        "FromFull": {"Email": sent.to_email, "Name": "Ada"}, "ToFull": [{"Email": UNSUBSCRIBE_TO, "Name": ""}],
        "Subject": "unsubscribe", "MessageID": "forged-1", "TextBody": "", "Headers": [],
    }
    assert post_json(client, "postmark_inbound_webhook", payload).status_code == 200

    assert not services.email_is_suppressed(sent.to_email)
    assert Enrollment.objects.get(pk=sent.enrollment_id).status == Enrollment.Status.ACTIVE
    event = EmailEvent.objects.get()  # kept for a person to check
    assert event.kind == EmailEvent.Kind.OTHER and "not unsubscribed" in event.description
    assert event.lead == sent.enrollment.lead


def test_mail_to_the_unsubscribe_address_with_the_links_token_unsubscribes_whoever_sends_it(client, sent):
    token = unsubscribe_token(lead_id=sent.enrollment.lead_id, email=sent.to_email, delivery_id=sent.pk)
    ses_mail(client, sender="Ada <ada@another-client.example>", to=UNSUBSCRIBE_TO, subject=f"unsubscribe {token}",
             text="", verdict="FAIL")
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED
    assert Enrollment.objects.get(pk=sent.enrollment_id).status == Enrollment.Status.EXITED


@pytest.mark.parametrize("verdict, suppressed", [("PASS", True), ("FAIL", False), ("GRAY", False)])
def test_amazon_ses_mail_to_the_unsubscribe_address_counts_when_ses_authenticated_the_sender(client, sent, verdict,
                                                                                            suppressed):
    ses_mail(client, sender=f"Ada <{sent.to_email}>", to=UNSUBSCRIBE_TO, subject="unsubscribe", text="", verdict=verdict)
    assert services.email_is_suppressed(sent.to_email) is suppressed
    status = Enrollment.objects.get(pk=sent.enrollment_id).status
    assert status == (Enrollment.Status.EXITED if suppressed else Enrollment.Status.ACTIVE)


def test_a_stop_that_answers_none_of_our_emails_is_a_reply_with_a_note_and_suppresses_nothing(client, sent):
    payload = {
        "FromFull": {"Email": sent.to_email, "Name": "Ada"}, "ToFull": [{"Email": "rep1@example.com", "Name": ""}],
        "Subject": "stop", "MessageID": "stop-1", "TextBody": "stop", "Headers": [],
    }
    assert post_json(client, "postmark_inbound_webhook", payload).status_code == 200
    assert not Suppression.objects.exists()
    event = EmailEvent.objects.get()
    assert event.kind == EmailEvent.Kind.REPLIED and event.description.startswith("Asks to stop, not verified")


def test_amazon_ses_a_stop_from_an_authenticated_sender_unsubscribes(client, sent):
    ses_mail(client, sender=sent.to_email, to="rep1@example.com", subject="stop", text="stop", verdict="PASS")
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
@pytest.mark.parametrize("dkim, suppressed", [("{{@{domain} : pass}}", True), ("{{@attacker.example : pass}}", False),
                                              ("{{@{domain} : fail}}", False)])
def test_sendgrid_mail_to_the_unsubscribe_address_counts_when_the_from_domain_signed_it(client, sent, dkim, suppressed):
    dkim = dkim.format(domain=sent.to_email.rpartition("@")[2])
    headers = f"From: Ada <{sent.to_email}>\nTo: {UNSUBSCRIBE_TO}\nSubject: unsubscribe\nMessage-ID: <sg-1@example.org>\n"
    fields = {"headers": headers, "from": f"Ada <{sent.to_email}>", "to": UNSUBSCRIBE_TO, "subject": "unsubscribe",
              "text": "", "dkim": dkim, "SPF": "pass", "charsets": '{"subject": "UTF-8", "text": "UTF-8"}',
              "envelope": json.dumps({"to": [UNSUBSCRIBE_TO], "from": sent.to_email})}
    assert post_form(client, "sendgrid_inbound_webhook", fields).status_code == 200
    assert services.email_is_suppressed(sent.to_email) is suppressed
