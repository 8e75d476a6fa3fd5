"""The engine's emails go out as the very bytes Django's SMTP backend would send, serialized without building
Django's MIME objects; any other kind of message takes Django's way, and header injection is still refused."""

import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import formataddr
from types import SimpleNamespace
from unittest import mock

import pytest
import time_machine
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import BadHeaderError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nurturing import transport
from nurturing.claim import deliveries_claim
from nurturing.compose import nurture_email, unsubscribe_token
from nurturing.dispatch import deliveries_send
from nurturing.models import Delivery
from nurturing.rendering import RenderedEmail
from nurturing.transport import SMTPSender, as_bytes, mime_bytes
from tests.factories import sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC, Connection, enroll
from tests.smtp_sink import SmtpSink

NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
TOKEN = 1234567890123456789  # what random.randrange gives the boundary in these tests


@pytest.fixture(autouse=True)
def site(settings):
    settings.CRM_SITE_URL = "https://crm.example"
    settings.CRM_POSTAL_ADDRESS = "Acme GmbH\nHauptstr. 1 & 2, 10115 Berlin"
    settings.CRM_UNSUBSCRIBE_MAILTO = "unsubscribe@crm.example"
    settings.DEFAULT_FROM_EMAIL = "Acme <hello@acme.example>"


@contextmanager
def same_clock_and_randomness(token=TOKEN):
    """The Date, the MIME boundary and a generated Message-ID come out the same on both ways."""
    with (
        time_machine.travel(NOW, tick=False),
        mock.patch.object(transport.random, "randrange", lambda *args: token),
        mock.patch.object(transport.random, "getrandbits", lambda bits: 42),
    ):
        yield


def djangos(message) -> bytes:
    return as_bytes(message.message())


def outcome(serialize, message):
    """The bytes, or the exception's kind and text."""
    try:
        return serialize(message)
    except Exception as exc:
        return type(exc), str(exc)


def boundary_of(token=TOKEN) -> str:
    return "=" * 15 + "%019d" % token + "=="


# --- The engine's own messages --------------------------------------------------------

REP = SimpleNamespace(email="rita@acme.example", get_full_name=lambda: "Rita Rép-Ærøskøbing", get_username=lambda: "rita")
TEXT = "Hi Ada,\n\nThanks for downloading our guide.\n.\nFrom the team: 1. review, 2. stages.\n\nBest,\nRita\n"
HTML = "<!doctype html>\n<html><body><p>Hi Ada,</p>\n<p>Thanks for downloading our guide.</p></body></html>\n"


def engine_message(subject="Ada, the pipeline review checklist for Initech", text=TEXT, html=HTML, sender=REP):
    token = unsubscribe_token(lead_id=7, email="ada@example.org", delivery_id=31)
    message, _ = nurture_email(
        rendered=RenderedEmail(subject=subject, text=text, html=html), token=token, sender=sender, to="ada@example.org",
        message_id="<31.a1b2c3@crm.example>", headers={"X-CRM-Delivery": "31"},
    )
    return message


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"sender": None},
        {"html": ""},  # no HTML part: a text/plain message
        {"subject": "Zoë, the pipeline review checklist for Müller & Söhne, with a subject long enough to fold"},
        {"subject": "x" * 90},
        {"subject": "Ada, the pipeline review checklist for Initech: the weekly review in thirty minutes"},
        # Over 76 characters, Django's Header(subject).encode() breaks the line where the policy's folding would not.
        {"subject": "Your pipeline review for Initech: the stages to track before a deal is real, Ada"},
        {"text": "Grüße\r\n" + "é" * 700 + "\n.\n"},  # a line over 998 bytes: quoted-printable
        {"html": "<p>" + "x" * 1200 + "</p>"},
    ],
)
def test_the_engines_message_is_the_bytes_django_writes(fields):
    message = engine_message(**fields)
    with same_clock_and_randomness():
        fast = mime_bytes(message)
        assert fast is not None and fast == djangos(message)


@pytest.mark.django_db
def test_the_messages_the_engine_builds_for_its_leads_are_the_bytes_django_writes(rep_user):
    sequence = sequence_with_steps({
        "subject_template": "{{ first_name|default:'there' }}, the pipeline review checklist for {{ company.name|default:'your team' }}",
        "text_template": "Hi {{ first_name }},\n\nThe checklist: {{ links.unsubscribe }}\n",
        "html_template": "<html><body><p>Hi {{ first_name }}</p><p>Ünïcode &amp; more</p></body></html>",
    })
    for name in ("Ada", "Zoë", "Łukasz-Bartholomew"):
        enroll(sequence, first_name=name, owner=rep_user)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    connection = Connection()
    with time_machine.travel(NOW, tick=False):
        deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    assert len(connection.sent) == 3
    for message in connection.sent:
        with same_clock_and_randomness():
            fast = mime_bytes(message)
            assert fast is not None and fast == djangos(message)


# --- Any subject, name, body and HTML -------------------------------------------------

ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)  # controls, unicode
PIECES = st.one_of(
    ANY_TEXT,
    st.sampled_from(["From here", ".", "..", " ", "\t", "--", "=", "=3D", "é", "😀", "\x00", "\x7f", "\x0c", "<b>"]),
)
LONG_LINES = st.one_of(
    st.integers(990, 1003).map(lambda n: "x" * n),  # around the 998-byte line limit
    st.tuples(st.sampled_from(["a", "é", "€", "😀", "= ", "a b", "\x85x"]), st.integers(200, 1100)).map(lambda t: t[0] * t[1]),
)
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\r\r\n", "\n\r", "\n\n", "\x85", "\u2028", "\x0b", "\x1c"])
LINES = st.lists(st.tuples(st.lists(PIECES, max_size=3).map("".join), LINE_ENDS), max_size=5)
SHORT_LINES = st.tuples(LINES, st.lists(PIECES, max_size=2).map("".join)).map(lambda t: "".join(a + b for a, b in t[0]) + t[1])
BODIES = st.one_of(SHORT_LINES, SHORT_LINES, st.tuples(SHORT_LINES, LONG_LINES, SHORT_LINES).map("".join))
SUBJECTS = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=60, max_size=90),  # ASCII around 76
    st.text(alphabet=st.sampled_from("ab ;,\t"), max_size=100),
    st.lists(st.sampled_from(["Ada,", "the", "pipeline", "review", "for", "Initech:", "Zoë", "a", "deal", "is", "real"]), max_size=16).map(
        " ".join
    ),
    st.sampled_from(["", " ", "Hi ", " Hi", "Hi\nBcc: x@example.org", "=?utf-8?q?x?=", "a" * 76, "a" * 77, "x" * 70 + " y" * 4]),
)
ADDRESSES = st.sampled_from(["ada@example.org", "Zoë <zoe@example.org>", "ada@exämple.org", "a.b+c@sub.example.co.uk"])
EXTRA = st.fixed_dictionaries(
    {},
    optional={
        "Message-ID": st.sampled_from(["<1.2@crm.example>", "<" + "m" * 80 + "@crm.example>"]),
        "Date": st.just("Mon, 23 Nov 2026 10:05:00 -0000"),
        "List-Unsubscribe": st.text(max_size=30).map(
            lambda t: f"<https://crm.example/unsubscribe/{t}/>, <mailto:unsubscribe@crm.example?subject=unsubscribe%20{t}>"
        ),
        "List-Unsubscribe-Post": st.just("List-Unsubscribe=One-Click"),
        "X-CRM-Delivery": st.one_of(st.integers(0, 10**12).map(str), ANY_TEXT),
        "Subject": SUBJECTS,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    subject=SUBJECTS, name=st.text(max_size=40), body=BODIES, html=st.none() | BODIES, to=ADDRESSES,
    reply_to=st.lists(ADDRESSES, max_size=1), extra=EXTRA, token=st.integers(0, sys.maxsize - 1), clash=st.booleans(),
)
def test_any_message_of_the_engines_shape_is_the_bytes_django_writes(subject, name, body, html, to, reply_to, extra, token, clash):
    if clash:  # the parts hold the first boundary tried: both ways take the next one
        body += f"\n--{boundary_of(token)}\n"
    message = EmailMultiAlternatives(
        subject=subject, body=body, from_email=formataddr((name, "tom@example.com")), to=[to], reply_to=reply_to, headers=extra,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    with same_clock_and_randomness(token):
        expected = outcome(djangos, message)
        fast = outcome(mime_bytes, message)
    assert fast is not None  # the engine's shape is never sent the long way
    assert fast == expected
    if isinstance(fast, bytes):
        event("quoted-printable" if b"quoted-printable" in fast else "8bit" if b"8bit" in fast else "7bit")
        event("folded" if b"\r\n " in fast else "unfolded")
    else:
        event(f"refused: {fast[0].__name__}")


def test_the_boundary_is_the_generators_one_and_moves_when_a_part_holds_it():
    message = engine_message(text="Hi\n--" + boundary_of() + "\n")
    with same_clock_and_randomness():
        fast = mime_bytes(message)
        assert fast == djangos(message)
    assert b'boundary="' + boundary_of().encode() + b'.0"' in fast


# --- Other messages take Django's way --------------------------------------------------


def with_alternatives(*alternatives, **fields):
    message = EmailMultiAlternatives(**fields)
    for content, mimetype in alternatives:
        message.attach_alternative(content, mimetype)
    return message


class Subclass(EmailMultiAlternatives):
    pass


class Latin1(EmailMessage):
    encoding = "iso-8859-1"


class HtmlBody(EmailMessage):
    content_subtype = "html"


def base(**fields):
    return {"subject": "Hi", "body": "Body é", "from_email": "crm@example.org", "to": ["ada@example.org"],
            "headers": {"Message-ID": "<1@crm.example>"}, **fields}


OTHERS = {
    "attachment": lambda: EmailMultiAlternatives(attachments=[("a.txt", "attached", "text/plain")], **base()),
    "cc": lambda: EmailMultiAlternatives(**base(cc=["bob@example.org"])),
    "bcc": lambda: EmailMultiAlternatives(**base(bcc=["bob@example.org"])),
    "two recipients": lambda: EmailMultiAlternatives(**base(to=["ada@example.org", "bob@example.org"])),
    "two reply-to": lambda: EmailMultiAlternatives(**base(reply_to=["a@example.org", "b@example.org"])),
    "an html body": lambda: HtmlBody(**base()),
    "another alternative": lambda: with_alternatives(("BEGIN:VCALENDAR", "text/calendar"), **base()),
    "two alternatives": lambda: with_alternatives(("<p>a</p>", "text/html"), ("<p>b</p>", "text/html"), **base()),
    "latin-1": lambda: Latin1(**base()),
    "a subclass": lambda: Subclass(**base()),
    "To in the headers": lambda: EmailMultiAlternatives(**base(headers={"To": "Team <team@example.org>"})),
    "From in the headers": lambda: EmailMultiAlternatives(**base(headers={"From": "Other <other@example.org>"})),
    "Reply-To in the headers": lambda: EmailMultiAlternatives(**base(headers={"reply-to": "r@example.org"})),
    "Content-Type in the headers": lambda: EmailMessage(**base(headers={"Content-Type": "text/plain"})),
}


@pytest.mark.parametrize("make", OTHERS.values(), ids=OTHERS.keys())
def test_any_other_message_is_left_to_django(make):
    assert mime_bytes(make()) is None


class RawSmtpSink(SmtpSink):
    """tests.smtp_sink.SmtpSink that also keeps the bytes each message arrived as."""

    def __init__(self):
        super().__init__()
        self.raw = []
        keep = self.collector.handle_DATA

        async def handle_DATA(server, session, envelope):
            self.raw.append(envelope.content)
            return await keep(server, session, envelope)

        self.collector.handle_DATA = handle_DATA


@pytest.fixture
def sink():
    with RawSmtpSink() as sink:
        yield sink


def received_as(raw: bytes) -> bytes:
    """What the server gets for `raw`: smtplib ends the data with a line break when it has none."""
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def send_through(sink, *messages):
    backend = EmailBackend(host="127.0.0.1", port=sink.port, use_tls=False, use_ssl=False, timeout=5)
    backend.open()
    try:
        sender = SMTPSender(backend)
        for message in messages:
            sender.send(message)
    finally:
        backend.close()


@pytest.mark.parametrize("make", OTHERS.values(), ids=OTHERS.keys())
def test_any_other_message_still_goes_out_as_django_writes_it(make, sink):
    message = make()
    with same_clock_and_randomness(), mock.patch.object(transport, "as_bytes", wraps=as_bytes) as long_way:
        expected = djangos(message)
        long_way.reset_mock()
        send_through(sink, message)
    assert long_way.call_count == 1
    assert sink.raw == [received_as(expected)]
    [(_, recipients, _)] = sink.messages
    assert recipients == message.recipients()


# --- Over a real SMTP server -----------------------------------------------------------


def test_the_engines_email_reaches_a_real_smtp_server_byte_for_byte(sink):
    plain, rich = engine_message(html=""), engine_message(text="Grüße\r\n.\nFrom us\n" + "é" * 600 + "\n")
    with same_clock_and_randomness(), mock.patch.object(transport, "as_bytes", side_effect=AssertionError("long way")):
        send_through(sink, plain, rich)
    with same_clock_and_randomness():
        assert sink.raw == [received_as(djangos(plain)), received_as(djangos(rich))]
    received = sink.messages[1][2]
    assert received["Subject"] == rich.subject and received["From"] == "Rita Rép-Ærøskøbing <rita@acme.example>"
    text, html = (part.get_content().replace("\r\n", "\n") for part in received.iter_parts())
    assert text == rich.body.replace("\r\n", "\n") and html == rich.alternatives[0][0]


@pytest.mark.django_db
def test_the_engines_batch_over_smtp_delivers_each_email_as_recorded(rep_user, sink):
    sequence = sequence_with_steps({"html_template": "<html><body><p>Hi {{ first_name }}</p></body></html>"})
    for name in ("Ada", "Zoë"):
        enroll(sequence, first_name=name, owner=rep_user)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    with time_machine.travel(NOW, tick=False):
        result = deliveries_send(ids=ids, token=token, connection=EmailBackend(host="127.0.0.1", port=sink.port, timeout=5),
                                 now=MONDAY_10_UTC)

    assert result.sent == 2
    received = {message["Message-ID"]: (recipients, message) for _, recipients, message in sink.messages}
    for delivery in Delivery.objects.filter(pk__in=ids):
        recipients, message = received[delivery.message_id]
        assert recipients == [delivery.to_email] and message["Subject"] == delivery.subject
        assert message["X-CRM-Delivery"] == str(delivery.pk)
        text, html = (part.get_content().replace("\r\n", "\n") for part in message.iter_parts())
        assert (text, html) == (delivery.body_text, delivery.body_html)


# --- Header injection -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\nBcc: everyone@example.org"},
        {"subject": "Grüße\r\nBcc: everyone@example.org"},
        {"reply_to": ["rita@acme.example\nBcc: everyone@example.org"]},
        {"headers": {"Message-ID": "<1@crm.example>", "X-CRM-Delivery": "1\r\nBcc: everyone@example.org"}},
    ],
)
def test_a_line_break_in_a_header_is_refused(fields, sink):
    message = EmailMultiAlternatives(**{**base(), **fields})
    with pytest.raises(BadHeaderError):
        mime_bytes(message)
    with pytest.raises(BadHeaderError):
        send_through(sink, message)
    assert sink.raw == []
