"""Inbound mail through the providers' real webhooks: replies found by their headers, unsubscribes that are really the sender's."""

import json

import pytest
from django.utils import timezone

from nurturing import services
from nurturing.compose import unsubscribe_token
from nurturing.models import EmailEvent, Enrollment, Suppression, email_hash
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


# --- Replies: which email they answer, automatic ones, the ones that only ask to stop -----------------------


def postmark_mail(sender, *, to="rep1@example.com", subject="Re: Your guide", text="Thanks", headers=(), message_id="in-1"):
    return {"FromFull": {"Email": sender, "Name": ""}, "ToFull": [{"Email": to, "Name": ""}], "Subject": subject,
            "MessageID": message_id, "TextBody": text, "Headers": [{"Name": n, "Value": v} for n, v in headers]}


def reply(client, sent, **fields):
    fields.setdefault("headers", [("In-Reply-To", sent.message_id)])
    response = post_json(client, "postmark_inbound_webhook", postmark_mail(sent.to_email, **fields))
    assert response.status_code == 200
    return EmailEvent.objects.get()


def test_a_reply_is_recorded_with_its_subject_words_and_the_email_it_answers(client, sent):
    event = reply(client, sent, subject="Re: pricing", text="Call me Tuesday.", message_id="pm-in-7")
    assert (event.provider, event.kind, event.delivery, event.message_id, event.event_id, event.recipient, event.description) == (
        "postmark", EmailEvent.Kind.REPLIED, sent, sent.message_id, "pm-in-7", sent.to_email, "Re: pricing\nCall me Tuesday."
    )


def test_a_reply_keeps_its_first_1500_characters(client, sent):
    text = "".join(str(i % 10) for i in range(2000))
    assert reply(client, sent, subject="", text=text).description == "\n" + text[:1500]


def test_amazon_ses_a_reply_to_the_rewritten_id_is_recorded_under_our_message_id(client, sent):
    ses_mail(client, sender=sent.to_email, to="rep1@example.com", subject="Re: hi", text="Yes",
             headers=[("In-Reply-To", f"<{sent.provider_message_id}@email.amazonses.com>")])
    event = EmailEvent.objects.get()
    assert (event.provider, event.delivery, event.message_id) == ("amazon ses", sent, sent.message_id)


@pytest.mark.parametrize("headers, message_id", [
    ([], ""),
    ([("In-Reply-To", "<elsewhere@mail.example>")], "<elsewhere@mail.example>"),
    ([("References", "<older@mail.example> <newer@mail.example>")], "<newer@mail.example>"),
], ids=["no thread headers", "unknown in-reply-to", "unknown references: the newest"])
def test_a_reply_that_answers_none_of_our_emails_is_recorded_under_the_id_it_answers(client, sent, headers, message_id):
    event = reply(client, sent, headers=headers)
    assert (event.delivery, event.message_id, event.lead) == (None, message_id, sent.enrollment.lead)


def test_only_the_first_id_of_in_reply_to_is_read(client, sent):
    event = reply(client, sent, headers=[("In-Reply-To", f"<elsewhere@mail.example> {sent.message_id}")])
    assert (event.delivery, event.message_id) == (None, "<elsewhere@mail.example>")


@pytest.mark.parametrize("older, matched", [(9, True), (10, False)])
def test_a_reply_is_matched_by_its_ten_newest_references(client, sent, older, matched):
    newer = " ".join(f"<n{i}@mail.example>" for i in range(older))
    event = reply(client, sent, headers=[("References", f"{sent.message_id} {newer}")])
    assert (event.delivery == sent) is matched


@pytest.mark.parametrize("header, value", [
    ("Auto-Submitted", "auto-replied"), ("Auto-Submitted", " Auto-Generated "), ("X-Autoreply", "yes"),
    ("X-Autorespond", "yes"), ("Precedence", "auto_reply"), ("Precedence", "Bulk"), ("Precedence", "junk"),
])
def test_an_automatic_reply_is_recorded_as_other_and_stops_nothing(client, sent, header, value):
    event = reply(client, sent, subject="Out of office", text="Back Monday.",
                  headers=[("In-Reply-To", sent.message_id), (header, value)])
    assert (event.kind, event.description) == (EmailEvent.Kind.OTHER, "Automatic reply: Out of office\nBack Monday.")
    assert Enrollment.objects.get(pk=sent.enrollment_id).status == Enrollment.Status.ACTIVE


@pytest.mark.parametrize("header, value", [("Auto-Submitted", " No "), ("Precedence", "list")])
def test_a_person_s_reply_with_such_headers_is_a_reply(client, sent, header, value):
    event = reply(client, sent, headers=[("In-Reply-To", sent.message_id), (header, value)])
    assert event.kind == EmailEvent.Kind.REPLIED


@pytest.mark.parametrize("subject, text", [
    ("Re: stop", "Thanks"), ("AW: Stop", ""), ("Sv: re:unsubscribe", ""), ("RE:stop", ""),
    ("Re: your guide", "\n\n  Remove me!\n> quoted"), ("Re: your guide", "Opt out."), ("", "please unsubscribe"),
])
def test_a_reply_that_only_asks_to_stop_unsubscribes_its_sender(client, sent, subject, text):
    event = reply(client, sent, subject=subject, text=text)
    assert event.kind == EmailEvent.Kind.UNSUBSCRIBED
    assert Suppression.objects.get(email=sent.to_email).reason == Suppression.Reason.UNSUBSCRIBED


@pytest.mark.parametrize("subject, text", [("Re: stop by on Monday?", ""), ("Re: your guide", "Stop sending me PDFs, email me")])
def test_a_reply_that_says_more_than_stop_is_a_reply(client, sent, subject, text):
    assert reply(client, sent, subject=subject, text=text).kind == EmailEvent.Kind.REPLIED
    assert not Suppression.objects.exists()


def test_a_stop_from_a_stranger_the_provider_authenticated_suppresses_their_address(client, db):
    ses_mail(client, sender="Stranger <someone@elsewhere.example>", to="rep1@example.com", subject="Unsubscribe", text="")
    event = EmailEvent.objects.get()
    assert (event.kind, event.lead, event.recipient) == (EmailEvent.Kind.UNSUBSCRIBED, None, "someone@elsewhere.example")
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.source) == (
        "someone@elsewhere.example", Suppression.Reason.UNSUBSCRIBED, "reply asking to stop (Amazon SES)"
    )


def test_a_plain_reply_from_a_stranger_suppresses_nothing(client, db):
    ses_mail(client, sender="someone@elsewhere.example", to="rep1@example.com", subject="Re: hello", text="Who are you?")
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.REPLIED
    assert not Suppression.objects.exists()


def test_a_stop_without_a_verified_sender_is_noted_for_a_person(client, sent):
    event = reply(client, sent, subject="stop", text="", headers=[])
    assert event.description == (
        "Asks to stop, not verified (not an answer to one of our emails, sender not authenticated): check it.\nstop\n"
    )


@pytest.mark.parametrize("verdict", ["PASS", "FAIL"])
def test_mail_to_the_unsubscribe_address_without_a_token_is_recorded_once_per_sender(client, sent, verdict):
    for message_id in ("<one@mail.example>", "<two@mail.example>"):
        ses_mail(client, sender=sent.to_email, to=UNSUBSCRIBE_TO, subject="Unsubscribe", text="", verdict=verdict,
                 message_id=message_id)
    verified = verdict == "PASS"
    event = EmailEvent.objects.get()
    assert (event.provider, event.kind, event.recipient, event.lead, event.occurred_at, event.event_id) == (
        "amazon ses", EmailEvent.Kind.UNSUBSCRIBED if verified else EmailEvent.Kind.OTHER, sent.to_email,
        sent.enrollment.lead, timezone.now(),
        f"unsubscribe-mail-{'verified' if verified else 'unverified'}-{email_hash(sent.to_email)[:32]}",
    )
    source = "mail to the unsubscribe address (Amazon SES)"
    if verified:
        assert event.description == source
        assert Suppression.objects.get().reason == Suppression.Reason.UNSUBSCRIBED
    else:
        assert event.description == (
            f"{source}, without the link's token and from a sender the provider did not authenticate: "
            "not unsubscribed. Check it and unsubscribe the address by hand if the request is real."
        )
        assert not Suppression.objects.exists()


def test_mail_to_the_unsubscribe_address_from_an_authenticated_stranger_suppresses_their_address(client, db):
    ses_mail(client, sender="someone@elsewhere.example", to=UNSUBSCRIBE_TO, subject="unsubscribe", text="")
    event = EmailEvent.objects.get()
    assert (event.kind, event.lead, event.recipient) == (EmailEvent.Kind.UNSUBSCRIBED, None, "someone@elsewhere.example")
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.source) == (
        "someone@elsewhere.example", Suppression.Reason.UNSUBSCRIBED, "mail to the unsubscribe address (Amazon SES)"
    )


def test_mail_to_the_unsubscribe_address_with_the_token_is_recorded_against_the_email_it_came_from(client, sent):
    token = unsubscribe_token(lead_id=sent.enrollment.lead_id, email=sent.to_email, delivery_id=sent.pk)
    ses_mail(client, sender=sent.to_email, to=UNSUBSCRIBE_TO, subject=f"unsubscribe {token}", text="", verdict="FAIL")
    event = EmailEvent.objects.get()
    assert (event.kind, event.delivery, event.description) == (
        EmailEvent.Kind.UNSUBSCRIBED, sent, "mail to the unsubscribe address (Amazon SES)"
    )
    assert Suppression.objects.get().source == f"link event #{event.pk} (mail to the unsubscribe address (Amazon SES))"


# --- The sender verdicts each provider gives --------------------------------------------------------------


def sendgrid_unsubscribe_mail(client, sender, dkim):
    headers = f"From: Ada <{sender}>\nTo: {UNSUBSCRIBE_TO}\nSubject: unsubscribe\nMessage-ID: <sg-1@example.org>\n"
    fields = {"headers": headers, "from": f"Ada <{sender}>", "to": UNSUBSCRIBE_TO, "subject": "unsubscribe",
              "text": "", "dkim": dkim, "SPF": "pass", "charsets": '{"subject": "UTF-8", "text": "UTF-8"}',
              "envelope": json.dumps({"to": [UNSUBSCRIBE_TO], "from": sender})}
    return post_form(client, "sendgrid_inbound_webhook", fields)


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
@pytest.mark.parametrize("dkim, verified", [
    ("{@example.net : pass}", True),
    ("{@example.net:pass}", True),
    ("{example.net : pass}", True),
    ("{@EXAMPLE.NET : pass}", True),
    ("{@attacker.example : pass, @example.net : pass}", True),
    ("{@example.net : pass, @attacker.example : fail}", True),
    ("{@attacker.example : pass, @example.net : fail}", False),
    ("{@mail.example.net : pass}", False),
    ("{@example.net : passed}", False),
    ("{@example.net : PASS}", False),
    ("{@example.net : fail : pass}", False),
    ("{@example.net}", False),
    ("", False),
], ids=lambda value: str(value))
def test_sendgrid_a_sender_is_authenticated_only_by_a_passing_signature_of_its_own_domain(client, db, dkim, verified):
    assert sendgrid_unsubscribe_mail(client, "Ada@Example.NET", dkim).status_code == 200
    assert services.email_is_suppressed("ada@example.net") is verified
    assert EmailEvent.objects.get().kind == (EmailEvent.Kind.UNSUBSCRIBED if verified else EmailEvent.Kind.OTHER)


@pytest.mark.parametrize("verdict, verified", [("PASS", True), ("pass", True), ("FAIL", False), ("", False)])
def test_amazon_ses_a_sender_is_authenticated_by_a_passing_dmarc_verdict(client, db, verdict, verified):
    ses_mail(client, sender="ada@example.net", to=UNSUBSCRIBE_TO, subject="unsubscribe", text="", verdict=verdict)
    assert services.email_is_suppressed("ada@example.net") is verified


def test_amazon_ses_a_receipt_without_a_dmarc_verdict_authenticates_nobody(client, db):
    notification = ses_inbound(sender="ada@example.net", to=UNSUBSCRIBE_TO, subject="unsubscribe", text="")
    ses_event = json.loads(notification["Message"])
    del ses_event["receipt"]["dmarcVerdict"]
    assert post_sns(client, "amazon_ses_inbound_webhook", {**notification, "Message": json.dumps(ses_event)}).status_code == 200
    assert not services.email_is_suppressed("ada@example.net")


def test_a_provider_without_sender_verdicts_authenticates_nobody(client, db):
    payload = {"FromFull": {"Email": "ada@example.net", "Name": "Ada"}, "ToFull": [{"Email": UNSUBSCRIBE_TO, "Name": ""}],
               "Subject": "unsubscribe", "MessageID": "pm-1", "TextBody": "", "Headers": []}
    assert post_json(client, "postmark_inbound_webhook", payload).status_code == 200
    assert not services.email_is_suppressed("ada@example.net")
    assert EmailEvent.objects.get().kind == EmailEvent.Kind.OTHER


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
@pytest.mark.parametrize("message_id_header, event_id", [("Message-ID: <sg-7@example.org>\n", "<sg-7@example.org>"),
                                                         ("", "")])
def test_sendgrid_a_reply_is_recorded_under_its_message_id_header(client, sent, message_id_header, event_id):
    # SendGrid's inbound parse gives no id of its own.
    headers = f"From: Ada <{sent.to_email}>\nTo: rep1@example.com\nSubject: Re: hi\n{message_id_header}"
    fields = {"headers": headers, "from": f"Ada <{sent.to_email}>", "to": "rep1@example.com", "subject": "Re: hi",
              "text": "Call me", "charsets": '{"subject": "UTF-8", "text": "UTF-8"}',
              "envelope": json.dumps({"to": ["rep1@example.com"], "from": sent.to_email})}
    assert post_form(client, "sendgrid_inbound_webhook", fields).status_code == 200
    event = EmailEvent.objects.get()
    assert (event.kind, event.provider, event.event_id, event.lead) == ("replied", "sendgrid", event_id, sent.enrollment.lead)


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_the_senders_domain_is_after_the_last_at_sign(client, db):
    sender = '"ada@attacker.example"@example.net'
    assert sendgrid_unsubscribe_mail(client, sender, "{@example.net : pass}").status_code == 200
    assert services.email_is_suppressed(sender)


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_a_signing_domain_is_compared_whatever_its_case(client, db):
    assert sendgrid_unsubscribe_mail(client, "ada@xyz.example", "{@XYZ.example : pass}").status_code == 200
    assert services.email_is_suppressed("ada@xyz.example")
