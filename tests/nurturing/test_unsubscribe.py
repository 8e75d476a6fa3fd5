"""Every nurture email can be unsubscribed from in one click, and nothing goes to a suppressed address."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from nurturing import claim, dispatch, previews, services
from nurturing.compose import unsubscribe_token
from nurturing.models import Delivery, Enrollment, Suppression, email_hash
from tests.factories import LeadFactory, sequence_with_steps


def run_once(now=None):
    token, ids = claim.deliveries_claim(limit=100, now=now)
    return dispatch.deliveries_send(ids=ids, token=token, now=now) if ids else None


def unsubscribe_link(message) -> str:
    header = message.extra_headers["List-Unsubscribe"]
    https = header.split(",")[0].strip().strip("<>")
    return https.removeprefix("http://testserver")


@pytest.fixture
def enrolled(db):
    lead = LeadFactory(first_name="Ada")
    sequence = sequence_with_steps({"html_template": "<html><body><p>Hi {{ first_name }}</p></body></html>"},
                                   {"delay": timedelta(days=2)})
    return services.enrollment_create(lead=lead, sequence=sequence)


@pytest.fixture(autouse=True)
def site(settings):
    settings.CRM_SITE_URL = "http://testserver"
    settings.CRM_POSTAL_ADDRESS = "Acme GmbH, Hauptstr. 1, 10115 Berlin"
    settings.CRM_UNSUBSCRIBE_MAILTO = "unsubscribe@crm.example"


def test_every_nurture_email_has_one_click_unsubscribe_headers_and_a_footer(enrolled, mailbox):
    run_once()
    [message] = mailbox
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://testserver/unsubscribe/") and "<mailto:unsubscribe@crm.example?subject=unsubscribe%20" in header
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Acme GmbH, Hauptstr. 1, 10115 Berlin" in message.body and "Unsubscribe: http://testserver/unsubscribe/" in message.body
    html = message.alternatives[0][0]
    assert html.index("Unsubscribe</a>") < html.index("</body>")
    delivery = enrolled.deliveries.get(status=Delivery.Status.SENT)
    assert "Acme GmbH" in delivery.body_text  # the log keeps the email as sent


def test_one_click_post_unsubscribes_at_once_without_login_or_csrf(enrolled, mailbox):
    from django.test import Client

    run_once()
    link = unsubscribe_link(mailbox[0])
    response = Client(enforce_csrf_checks=True).post(link, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    lead = enrolled.lead
    suppression = Suppression.objects.get(email=lead.email)
    assert suppression.reason == Suppression.Reason.UNSUBSCRIBED and "one-click" in suppression.source
    enrolled.refresh_from_db()
    assert enrolled.status == Enrollment.Status.EXITED and enrolled.exit_reason == "Unsubscribed"
    assert not enrolled.deliveries.filter(status=Delivery.Status.SCHEDULED).exists()


def test_the_link_opens_a_page_that_unsubscribes_with_one_button(client, enrolled):
    link = reverse("nurturing:unsubscribe", args=[unsubscribe_token(lead_id=enrolled.lead.pk, email=enrolled.lead.email)])
    page = client.get(link)
    assert page.status_code == 200 and b'<button class="btn btn-primary" type="submit">Unsubscribe</button>' in page.content
    assert not Suppression.objects.exists()  # a GET (a scanner following links) changes nothing
    assert client.post(link).status_code == 200
    assert services.email_is_suppressed(enrolled.lead.email)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_link_is_refused_and_says_what_to_do(client, enrolled, method):
    token = unsubscribe_token(lead_id=enrolled.lead.pk, email=enrolled.lead.email)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = getattr(client, method)(reverse("nurturing:unsubscribe", args=[tampered]))
    assert response.status_code == 400
    assert b"not valid" in response.content and b"unsubscribe@crm.example" in response.content
    assert not Suppression.objects.exists()


def test_an_expired_link_is_refused(client, enrolled, settings):
    settings.CRM_UNSUBSCRIBE_LINK_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=31)):
        token = unsubscribe_token(lead_id=enrolled.lead.pk, email=enrolled.lead.email)
    response = client.post(reverse("nurturing:unsubscribe", args=[token]))
    assert response.status_code == 400 and b"expired" in response.content
    assert not Suppression.objects.exists()
    enrolled.refresh_from_db()
    assert enrolled.status == Enrollment.Status.ACTIVE


def test_a_link_for_an_old_address_suppresses_that_address_not_the_new_one(client, enrolled):
    from leads.services import lead_update

    lead = enrolled.lead
    old = lead.email
    token = unsubscribe_token(lead_id=lead.pk, email=old)
    lead_update(lead=lead, email="new.address@example.org")
    client.post(reverse("nurturing:unsubscribe", args=[token]))
    assert services.email_is_suppressed(old) and not services.email_is_suppressed("new.address@example.org")


def test_a_suppression_written_while_a_batch_runs_stops_that_email(enrolled, mailbox, monkeypatch):
    sort = dispatch._Batch.sort

    def sort_then_unsubscribe(batch):
        sort(batch)  # the batch has checked the list and decided to send...
        services.suppression_add(email=enrolled.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)

    monkeypatch.setattr(dispatch._Batch, "sort", sort_then_unsubscribe)
    run_once()

    assert mailbox == []
    delivery = enrolled.deliveries.get(step__position=1)
    assert delivery.status == Delivery.Status.SKIPPED and "suppressed just before sending" in delivery.reason


def test_a_suppression_kept_only_as_a_hash_still_stops_email(enrolled, mailbox):
    Suppression.objects.create(email_hash=email_hash(enrolled.lead.email.upper()), reason=Suppression.Reason.ERASED)
    run_once()
    assert mailbox == []
    assert services.email_is_suppressed(enrolled.lead.email)


def test_the_unsubscribe_event_is_on_the_enrollment_and_counted_once(client, enrolled, mailbox):
    from nurturing.models import EmailEvent

    run_once()
    link = unsubscribe_link(mailbox[0])
    client.post(link, {"List-Unsubscribe": "One-Click"})
    client.post(link)  # the page's button pressed too
    event = EmailEvent.objects.get(kind=EmailEvent.Kind.UNSUBSCRIBED)
    enrolled.refresh_from_db()
    assert enrolled.exit_event == event and event.delivery == enrolled.deliveries.get(step__position=1)
    assert "left 1 sequence" in event.actions


def test_the_link_in_emails_is_the_unsubscribe_pages_address(settings):
    from nurturing.compose import unsubscribe_url

    settings.CRM_SITE_URL = "https://crm.example.com"
    assert unsubscribe_url("TOKEN") == "https://crm.example.com" + reverse("nurturing:unsubscribe", args=["TOKEN"])


def test_a_test_send_unsubscribes_its_recipient_not_the_lead(client, enrolled, mailbox):
    lead = enrolled.lead
    previews.step_send_test(step=enrolled.sequence.steps.get(position=1), lead=lead, to_email="marketer@example.com")
    link = unsubscribe_link(mailbox[0])
    assert client.post(link, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert services.email_is_suppressed("marketer@example.com")
    assert not services.email_is_suppressed(lead.email)
    enrolled.refresh_from_db()
    assert enrolled.status == Enrollment.Status.ACTIVE


def test_a_preview_has_no_working_unsubscribe_link(client, enrolled):
    rendered = previews.step_preview(step=enrolled.sequence.steps.get(position=1), lead=enrolled.lead)
    link = rendered.text.split("Unsubscribe: ")[1].split()[0].removeprefix("http://testserver")
    assert client.post(link).status_code == 400
    assert not Suppression.objects.exists()


def test_the_link_of_a_sent_email_suppresses_the_address_it_went_to_and_no_other(client, enrolled, mailbox):
    from leads.services import lead_update

    run_once()
    link = unsubscribe_link(mailbox[0])
    sent_to = enrolled.lead.email
    lead_update(lead=enrolled.lead, email="new.address@example.org")  # the lead changed its address since

    assert client.post(link, {"List-Unsubscribe": "One-Click"}).status_code == 200

    assert list(Suppression.objects.values_list("email_hash", flat=True)) == [email_hash(sent_to)]
    assert not services.email_is_suppressed("new.address@example.org")
