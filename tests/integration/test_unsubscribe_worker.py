"""Unsubscribing end to end: PostgreSQL, Redis, a real Celery worker, a real SMTP server on loopback.

A lead who unsubscribes with the mail client's one-click button (RFC 8058: a
POST of `List-Unsubscribe=One-Click` to the link in the List-Unsubscribe
header, with no session and no CSRF token) between two steps never gets the
second; every nurture email the SMTP server receives carries the headers and
the postal footer.
"""

import collections
import re
import time
from datetime import timedelta
from urllib.parse import unquote, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from nurturing import services
from nurturing.claim import deliveries_claim
from nurturing.models import Delivery, EmailEvent, Enrollment, Suppression, email_hash
from nurturing.tasks import dispatch_due, send_batch
from tests import waiting
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.integration

SITE_URL = "https://crm.example.test"
SITE_HOST = "crm.example.test"
POSTAL_ADDRESS = "Example Trading Ltd, 1 Test Street, 75001 Paris, France"
MAILTO = "unsubscribe@crm.example.test"


@pytest.fixture
def worker_env(smtp_sink):
    return {
        "EMAIL_URL": smtp_sink.url,
        "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "CRM_SITE_URL": SITE_URL,
        "CRM_POSTAL_ADDRESS": POSTAL_ADDRESS,
        "CRM_UNSUBSCRIBE_MAILTO": MAILTO,
    }


@pytest.fixture
def site_settings(settings):
    """The test process (where the link is followed) sees the same site as the worker."""
    settings.CRM_SITE_URL = SITE_URL
    settings.CRM_POSTAL_ADDRESS = POSTAL_ADDRESS
    settings.CRM_UNSUBSCRIBE_MAILTO = MAILTO
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, SITE_HOST]
    return settings



def wait_for(predicate):
    return waiting.wait_for(predicate, timeout=30.0, interval=0.1)


def enrolled_leads(count):
    """`count` leads in a two-step sequence (HTML and text), send windows open all day.

    Step 2 waits a day after step 1, so nothing sends it until the test moves
    its due time: which emails go when is up to the test alone.
    """
    sequence = sequence_with_steps(
        {
            "subject_template": "Step 1 for {{ first_name }}",
            "text_template": "Hello {{ first_name }}, here is your guide.",
            "html_template": "<html><body><p>Hello {{ first_name }}, here is your guide.</p></body></html>",
        },
        {
            "subject_template": "Step 2 for {{ first_name }}",
            "text_template": "Hello again {{ first_name }}.",
            "html_template": "<html><body><p>Hello again {{ first_name }}.</p></body></html>",
            "delay": timedelta(days=1),
        },
    )
    leads = [LeadFactory(first_name=f"Reader{i}", email=f"reader{i}@example.org") for i in range(count)]
    for lead in leads:
        services.enrollment_create(lead=lead, sequence=sequence)
    return leads


def received(sink, subject_prefix=""):
    """(recipient, message) for each email the sink holds, optionally only one step's."""
    out = []
    for _, rcpts, message in sink.messages:
        assert len(rcpts) == 1, rcpts
        if str(message["Subject"]).startswith(subject_prefix):
            out.append((rcpts[0], message))
    return out


def unsubscribe_links(message):
    """The https URL and the mailto of the List-Unsubscribe header, checked against RFC 2369 / RFC 8058."""
    header = str(message["List-Unsubscribe"] or "")
    links = re.findall(r"<([^<>]+)>", header)
    https = [link for link in links if link.startswith("https://")]
    mailto = [link for link in links if link.startswith("mailto:")]
    assert len(https) == 1 and len(mailto) == 1 and len(links) == 2, f"List-Unsubscribe: {header!r}"
    assert str(message["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click", message["List-Unsubscribe-Post"]
    return https[0], mailto[0]


def assert_nurture_headers_and_footer(message):
    """What every nurture email must carry; returns its https unsubscribe URL."""
    https, mailto = unsubscribe_links(message)
    url = urlsplit(https)
    assert (url.scheme, url.netloc) == ("https", SITE_HOST), https
    assert url.path.startswith("/unsubscribe/") and url.path.endswith("/"), https
    token = url.path.removeprefix("/unsubscribe/").removesuffix("/")
    assert mailto.startswith(f"mailto:{MAILTO}?subject="), mailto
    assert unquote(mailto.split("?subject=", 1)[1]) == f"unsubscribe {token}", mailto
    text = message.get_body(preferencelist=("plain",))
    assert text is not None, message
    text = text.get_content()
    assert POSTAL_ADDRESS in text, text
    assert f"Unsubscribe: {https}" in text, text
    html = message.get_body(preferencelist=("html",))
    assert html is not None and POSTAL_ADDRESS in html.get_content(), message
    return https


def one_click(url):
    """What a mail client's unsubscribe button does (RFC 8058): a POST with no cookies and no CSRF token."""
    client = Client(enforce_csrf_checks=True)
    return client.post(
        urlsplit(url).path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        secure=True,
        headers={"host": SITE_HOST},
    )


def settled(deliveries):
    return not deliveries.filter(status__in=[Delivery.Status.SCHEDULED, Delivery.Status.SENDING]).exists()


def send_step_one(worker, sink, leads):
    """Step 1 through the real worker; returns {address: message} of what the SMTP server received."""
    dispatch_due.apply_async(queue=worker.queue)
    assert wait_for(lambda: sink.count() >= len(leads)), worker.log()
    step1 = Delivery.objects.filter(step__position=1)
    assert wait_for(lambda: settled(step1)), worker.log()
    messages = received(sink)
    assert len(messages) == len(leads) and {to for to, _ in messages} == {lead.email for lead in leads}
    assert all(str(m["Subject"]).startswith("Step 1 for ") for _, m in messages)
    assert step1.filter(status=Delivery.Status.SENT).count() == len(leads)
    return dict(messages)


def assert_unsubscribed(lead, *, step1_message):
    """The lead is suppressed, out of the sequence, and its unsubscribe is logged against the email it came from."""
    assert Suppression.objects.filter(email_hash=email_hash(lead.email), reason=Suppression.Reason.UNSUBSCRIBED).exists()
    enrollment = Enrollment.objects.get(lead=lead)
    assert enrollment.status == Enrollment.Status.EXITED
    assert enrollment.exit_reason == "Unsubscribed"
    event = EmailEvent.objects.get(lead=lead, kind=EmailEvent.Kind.UNSUBSCRIBED)
    assert event.recipient == lead.email
    assert event.description == "one-click button in the mail client"  # the POST body was read as RFC 8058's
    step1 = Delivery.objects.get(enrollment__lead=lead, step__position=1)
    assert event.delivery_id == step1.pk
    assert step1.message_id == step1_message["Message-ID"]


def test_a_one_click_unsubscribe_between_two_steps_stops_the_second(celery_worker_process, smtp_sink, site_settings):
    worker, sink = celery_worker_process, smtp_sink
    leads = enrolled_leads(5)
    quitter, stayers = leads[0], leads[1:]

    # Step 1 goes to everyone, with the unsubscribe headers and the postal footer.
    step1_by_address = send_step_one(worker, sink, leads)
    links = {address: assert_nurture_headers_and_footer(message) for address, message in step1_by_address.items()}
    assert len(set(links.values())) == len(leads)  # each email has its own signed link

    # A link scanner's GET shows the page and unsubscribes no one.
    page = Client(enforce_csrf_checks=True).get(urlsplit(links[quitter.email]).path, secure=True, headers={"host": SITE_HOST})
    assert page.status_code == 200
    assert not Suppression.objects.exists()

    # The quitter presses the mail client's unsubscribe button.
    response = one_click(links[quitter.email])
    assert response.status_code == 200, response.content.decode()[:2000]
    assert_unsubscribed(quitter, step1_message=step1_by_address[quitter.email])

    # Step 2 becomes due for everyone, and the worker runs again.
    step2 = Delivery.objects.filter(step__position=2)
    assert step2.count() == len(leads)
    step2.filter(status=Delivery.Status.SCHEDULED).update(due_at=timezone.now() - timedelta(seconds=1))
    dispatch_due.apply_async(queue=worker.queue)

    assert wait_for(lambda: len(received(sink, "Step 2 for ")) >= len(stayers)), worker.log()
    assert wait_for(lambda: settled(step2)), worker.log()
    time.sleep(0.3)  # anything still on its way to the SMTP server lands now

    messages = received(sink)
    per_address = collections.Counter(to for to, _ in messages)
    assert per_address[quitter.email] == 1, [m["Subject"] for to, m in messages if to == quitter.email]
    assert all(per_address[lead.email] == 2 for lead in stayers), per_address
    assert len(messages) == 1 + 2 * len(stayers)
    per_delivery = collections.Counter(str(m["X-CRM-Delivery"]) for _, m in messages)
    assert max(per_delivery.values()) == 1, per_delivery
    assert len({str(m["Message-ID"]) for _, m in messages}) == len(messages)

    # Step 2 carries the headers and the footer too.
    step2_messages = received(sink, "Step 2 for ")
    assert {to for to, _ in step2_messages} == {lead.email for lead in stayers}
    for _, message in step2_messages:
        assert_nurture_headers_and_footer(message)

    # The quitter's step 2 was skipped because of the unsubscribe; the others' went.
    skipped = step2.get(enrollment__lead=quitter)
    assert skipped.status == Delivery.Status.SKIPPED
    assert re.search(r"unsubscribed|suppressed", skipped.reason, re.IGNORECASE), skipped.reason
    assert not skipped.message_id and skipped.sent_at is None
    assert step2.filter(status=Delivery.Status.SENT).count() == len(stayers)
    assert set(step2.filter(status=Delivery.Status.SENT).values_list("message_id", flat=True)) == {
        str(m["Message-ID"]) for _, m in step2_messages
    }
    assert Enrollment.objects.get(lead=quitter).exit_reason == "Unsubscribed"
    assert Enrollment.objects.filter(lead__in=stayers, status=Enrollment.Status.COMPLETED).count() == len(stayers)
    assert EmailEvent.objects.filter(kind=EmailEvent.Kind.UNSUBSCRIBED).count() == 1


def test_an_unsubscribe_after_step_two_was_claimed_still_stops_it(celery_worker_process, smtp_sink, site_settings):
    """The button is pressed after the dispatcher claimed step 2 but before the worker sends it."""
    worker, sink = celery_worker_process, smtp_sink
    leads = enrolled_leads(3)
    quitter, stayers = leads[0], leads[1:]
    step1_by_address = send_step_one(worker, sink, leads)
    links = {address: assert_nurture_headers_and_footer(message) for address, message in step1_by_address.items()}

    # The dispatcher's first half: step 2 is claimed for a batch...
    step2 = Delivery.objects.filter(step__position=2)
    step2.update(due_at=timezone.now() - timedelta(seconds=1))
    token, ids = deliveries_claim(limit=100)
    assert sorted(ids) == sorted(step2.values_list("pk", flat=True))
    # ...the quitter unsubscribes while the batch waits in the queue...
    response = one_click(links[quitter.email])
    assert response.status_code == 200, response.content.decode()[:2000]
    assert_unsubscribed(quitter, step1_message=step1_by_address[quitter.email])
    # ...and the worker sends the batch.
    send_batch.apply_async(args=[ids, str(token)], queue=worker.queue)

    assert wait_for(lambda: settled(step2)), worker.log()
    time.sleep(0.3)
    per_address = collections.Counter(to for to, _ in received(sink))
    assert per_address[quitter.email] == 1, per_address
    assert all(per_address[lead.email] == 2 for lead in stayers), per_address
    for _, message in received(sink, "Step 2 for "):
        assert_nurture_headers_and_footer(message)
    skipped = step2.get(enrollment__lead=quitter)
    assert skipped.status == Delivery.Status.SKIPPED
    assert re.search(r"unsubscribed|suppressed", skipped.reason, re.IGNORECASE), skipped.reason
    assert not skipped.message_id and skipped.sent_at is None
    assert Enrollment.objects.get(lead=quitter).exit_reason == "Unsubscribed"
