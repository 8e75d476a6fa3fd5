"""When the mail server or the provider fails mid-send: retried when nothing went, never resent when it may have,
and never sooner than the provider asked."""

import asyncio
import smtplib
from datetime import timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend

from nurturing.claim import deliveries_claim, deliveries_reap
from nurturing.dispatch import TransientSendError, deliveries_send
from nurturing.models import Delivery
from nurturing.tasks import send_batch
from nurturing.transport import OutcomeUnknown, SMTPSender, retry_after
from tests.factories import sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC, Connection, enroll
from tests.smtp_sink import free_port

SENDING_TIME = MONDAY_10_UTC + timedelta(minutes=5)


class _Server:
    """An SMTP server on loopback that stalls (`stall`: after the whole message, or at RCPT) without answering."""

    def __init__(self, stall):
        self.stall, self.received = stall, []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stall == "rcpt":
            await asyncio.sleep(5)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content)
        if self.stall == "data":
            await asyncio.sleep(5)
        return "250 OK"


@pytest.fixture
def stalling_server(request):
    server = _Server(request.param)
    controller = Controller(server, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    yield server, controller.port
    controller.stop()


def send_over(port):
    backend = EmailBackend(host="127.0.0.1", port=port, timeout=0.5)
    backend.open()
    try:
        SMTPSender(backend).send(EmailMessage("Hi", "Body", "crm@example.org", ["ada@example.org"]))
    finally:
        backend.close()


@pytest.mark.parametrize("stalling_server", ["data"], indirect=True)
def test_a_server_that_stops_answering_once_it_has_the_whole_message_leaves_its_fate_unknown(stalling_server):
    server, port = stalling_server
    with pytest.raises(OutcomeUnknown, match="did not answer once it had the whole message"):
        send_over(port)
    assert len(server.received) == 1  # it had it: sending it again could deliver it twice


@pytest.mark.parametrize("stalling_server", ["rcpt"], indirect=True)
def test_a_server_that_stops_answering_before_the_message_is_a_plain_network_error(stalling_server):
    server, port = stalling_server
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send_over(port)
    assert server.received == []


def claimed(n):
    sequence = sequence_with_steps()
    for _ in range(n):
        enroll(sequence)
    return deliveries_claim(limit=10, now=MONDAY_10_UTC)


@pytest.mark.django_db
def test_an_email_whose_outcome_was_lost_is_unknown_with_the_reason_and_the_rest_wait_for_the_retry():
    token, ids = claimed(3)
    connection = Connection(error_at=1, error=OutcomeUnknown("The mail server did not answer once it had the whole message: timed out"))

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(TransientSendError):
        deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    rows = {d.status: d for d in Delivery.objects.filter(pk__in=ids)}
    assert len(rows) == 3 and {"sent", "unknown"} <= set(rows)  # the third waits for the retry
    assert rows["unknown"].reason == ("The mail server did not answer once it had the whole message: timed out "
                                      "It may or may not have gone out, so it is not sent again.")
    waiting = next(d for status, d in rows.items() if status not in ("sent", "unknown"))
    # The retry sends the one left, and never the unknown one.
    again = Connection()
    with time_machine.travel(SENDING_TIME + timedelta(seconds=15), tick=False):
        deliveries_send(ids=ids, token=token, connection=again, now=MONDAY_10_UTC)
    assert [m.to for m in again.sent] == [[waiting.enrollment.lead.email]]
    assert sorted(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == ["sent", "sent", "unknown"]


@pytest.mark.django_db
def test_a_mail_server_that_refuses_the_connection_leaves_the_batch_to_its_retry():
    token, ids = claimed(2)
    connection = Connection(on_open=lambda: (_ for _ in ()).throw(ConnectionRefusedError(111, "Connection refused")))

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(TransientSendError, match="Connection refused"):
        deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    # Nothing was tried: the retry, under the same claim, sends both.
    again = Connection()
    with time_machine.travel(SENDING_TIME + timedelta(seconds=15), tick=False):
        result = deliveries_send(ids=ids, token=token, connection=again, now=MONDAY_10_UTC)
    assert (result.sent, len(again.sent)) == (2, 2)


def answer(**headers):
    return SimpleNamespace(response=SimpleNamespace(headers=headers))


def test_retry_after_is_read_in_seconds_or_as_a_date_and_is_none_when_not_given():
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert retry_after(answer(**{"Retry-After": "7"})) == 7.0
        assert retry_after(answer(**{"Retry-After": format_datetime(MONDAY_10_UTC + timedelta(seconds=90), usegmt=True)})) == 90.0
        assert retry_after(answer(**{"Retry-After": "soon"})) is None
    assert retry_after(answer()) is None
    assert retry_after(ConnectionRefusedError()) is None


@pytest.mark.parametrize("asked, retries, expected", [(None, 0, 15), (40, 0, 40), (5, 2, 60), (None, 9, 600)])
def test_a_batch_is_retried_with_back_off_and_never_sooner_than_the_provider_asked(monkeypatch, settings, asked, retries, expected):
    settings.CRM_NURTURE_RETRY_SECONDS = 15
    countdowns = []

    def refused(**kwargs):
        raise TransientSendError("429 Too Many Requests", retry_after=asked)

    def retry(exc, countdown):
        countdowns.append(countdown)
        return RuntimeError("retried")

    monkeypatch.setattr("nurturing.tasks.deliveries_send", refused)
    monkeypatch.setattr(send_batch, "retry", retry)
    send_batch.push_request(retries=retries)
    try:
        with pytest.raises(RuntimeError, match="retried"):
            send_batch.run([1], "00000000-0000-0000-0000-000000000000")
    finally:
        send_batch.pop_request()
    assert countdowns == [expected]


def test_the_mail_server_has_a_timeout():
    from django.conf import settings

    assert 0 < settings.EMAIL_TIMEOUT <= 60


# --- A provider's HTTP API (Postmark's, through anymail's own backend, on loopback) ---------------------------


def postmark(url, timeout=0.5):
    from django.core.mail import get_connection

    return get_connection("anymail.backends.postmark.EmailBackend", server_token="fault-test", api_url=url,
                          requests_timeout=timeout)


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_a_provider_that_had_the_request_but_never_answered_leaves_that_email_unknown_and_never_resends_it(fault):
    from tests.faults.faulty_mail import FakePostmark

    token, ids = claimed(3)
    with FakePostmark(plan=[(200, None), (fault, None)], hang_seconds=2.0) as provider:
        with time_machine.travel(SENDING_TIME, tick=True), pytest.raises(TransientSendError) as raised:
            deliveries_send(ids=ids, token=token, connection=postmark(provider.url), now=MONDAY_10_UTC)
        assert "did not answer once it had the request" in str(raised.value)
        rows = {d.pk: d for d in Delivery.objects.filter(pk__in=ids)}
        unknown = [d for d in rows.values() if d.status == "unknown"]
        assert len(unknown) == 1 and sorted(d.status for d in rows.values()) == ["scheduled", "sent", "unknown"]
        assert unknown[0].reason.startswith("The mail provider did not answer once it had the request: ")
        assert unknown[0].reason.endswith("It may or may not have gone out, so it is not sent again.")
        # The retry sends the one that waited, and never the unknown one, which the provider did have.
        with time_machine.travel(SENDING_TIME + timedelta(seconds=15), tick=True):
            deliveries_send(ids=ids, token=token, connection=postmark(provider.url), now=MONDAY_10_UTC)
    assert sorted(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == ["sent", "sent", "unknown"]
    assert sorted(len(accepted) for accepted in provider.accepted.values()) == [1, 1, 1]
    assert [delivery for _, delivery, _ in provider.requests].count(str(unknown[0].pk)) == 1


@pytest.mark.django_db
def test_a_provider_that_cannot_be_reached_got_nothing_so_the_whole_batch_is_retried():
    from tests.faults.faulty_mail import FakePostmark

    token, ids = claimed(2)
    closed = f"http://127.0.0.1:{free_port()}/"
    with time_machine.travel(SENDING_TIME, tick=True), pytest.raises(TransientSendError):
        deliveries_send(ids=ids, token=token, connection=postmark(closed), now=MONDAY_10_UTC)
    assert sorted(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == ["scheduled", "scheduled"]

    with FakePostmark() as provider, time_machine.travel(SENDING_TIME + timedelta(seconds=15), tick=True):
        result = deliveries_send(ids=ids, token=token, connection=postmark(provider.url), now=MONDAY_10_UTC)
    assert result.sent == 2
    assert sorted(len(accepted) for accepted in provider.accepted.values()) == [1, 1]


def test_which_provider_failures_may_have_sent_the_email():
    """Amazon SES's SDK (botocore): an answer that timed out or a connection closed mid-call may have sent it;
    a failure to reach the endpoint did not. anymail raises its own error from the SDK's, as these are."""
    from anymail.exceptions import AnymailAPIError
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    from nurturing.transport import provider_outcome_unknown

    def through_anymail(error):
        try:
            raise AnymailAPIError(str(error)) from error
        except AnymailAPIError as exc:
            return exc

    url = "https://email.eu-west-1.amazonaws.com/"
    assert provider_outcome_unknown(through_anymail(ReadTimeoutError(endpoint_url=url)))
    assert provider_outcome_unknown(through_anymail(ConnectionClosedError(endpoint_url=url)))
    assert not provider_outcome_unknown(through_anymail(EndpointConnectionError(endpoint_url=url)))
    assert not provider_outcome_unknown(AnymailAPIError("Postmark answered 500"))


def test_amazon_ses_is_asked_once_per_call_so_the_sdk_never_sends_again_on_its_own(monkeypatch):
    from anymail.backends.amazon_ses import EmailBackend as SesBackend

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    backend = SesBackend()
    backend.open()
    try:
        assert backend.client.meta.config.retries["total_max_attempts"] == 1
    finally:
        backend.close()


@pytest.mark.django_db
def test_a_mail_server_refusing_the_login_sends_nothing_and_each_email_says_why_it_waits():
    token, ids = claimed(2)
    refused = smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")
    connection = Connection(on_open=lambda: (_ for _ in ()).throw(refused))

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(smtplib.SMTPAuthenticationError):
        deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    rows = list(Delivery.objects.filter(pk__in=ids).select_related("queued"))
    assert [d.status for d in rows] == ["scheduled", "scheduled"]
    assert all(d.queued.claim_token == token for d in rows)  # still claimed: tried again when the claim goes stale
    assert all(d.reason.startswith("Not sent yet: the mail server refused the connection (") for d in rows)
    assert all("(535 5.7.8 Authentication credentials invalid)" in d.reason and "EMAIL_URL" in d.reason for d in rows)
    # The claim expires: the reaper hands them back, and each still says why it has not gone out.
    with time_machine.travel(SENDING_TIME + timedelta(hours=1), tick=False):
        assert deliveries_reap() == (2, 0)
    reaped = list(Delivery.objects.filter(pk__in=ids).select_related("queued"))
    assert [(d.status, d.queued.claim_token) for d in reaped] == [("scheduled", None)] * 2
    assert [d.reason for d in reaped] == [d.reason for d in rows]
    # Once the login works, a new claim sends both, and the reason is gone.
    with time_machine.travel(SENDING_TIME + timedelta(hours=1, seconds=15), tick=False):
        token, claimed_again = deliveries_claim(limit=10)
        result = deliveries_send(ids=claimed_again, token=token, connection=Connection(), now=MONDAY_10_UTC)
    assert sorted(claimed_again) == sorted(ids) and result.sent == 2
    assert list(Delivery.objects.filter(pk__in=ids).values_list("reason", flat=True)) == ["", ""]
