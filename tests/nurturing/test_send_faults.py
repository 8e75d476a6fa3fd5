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

from nurturing.claim import deliveries_claim
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
