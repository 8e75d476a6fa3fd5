"""The batch SMTP path must put on the wire exactly what Django's SMTP backend would."""

import re
import smtplib

import pytest
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address

from nurturing.transport import as_bytes, is_transient, sanitize_recipient

BOUNDARY = re.compile(rb"=+\d+==(?:\.\d+)?")

MESSAGES = [
    dict(subject="Hello Ada", body="Plain body\nline two", from_email="Tom Becker <tom@example.com>", to=["ada@example.org"]),
    dict(subject="Ünïcode sübject that is rather long " * 4, body="Grüße, ça va ?", from_email="Zoë Ærøskøbing <zoe@example.com>",
         to=["bob@example.org"], reply_to=["zoe@example.com"]),
    dict(subject="x" * 200, body="long subject without spaces", from_email="crm@localhost", to=["c@example.org"]),
    dict(subject="Fold me " + "word " * 40, body="b", from_email='"Last, First" <first.last@example.com>', to=["d@example.org"]),
]


@pytest.mark.parametrize("fields", MESSAGES)
@pytest.mark.parametrize("html", [False, True])
def test_the_fast_serializer_writes_the_same_bytes_as_django(fields, html):
    message = EmailMultiAlternatives(headers={"Message-ID": "<1@crm.example>", "Date": "Wed, 25 Nov 2026 10:00:00 -0000"}, **fields)
    if html:
        message.attach_alternative("<p>Grüße <b>Ada</b></p>", "text/html")
    mime = message.message()
    expected = BOUNDARY.sub(b"B", mime.as_bytes(linesep="\r\n"))
    assert BOUNDARY.sub(b"B", as_bytes(mime)) == expected


@pytest.mark.parametrize(
    "address",
    ["ada@example.org", "first.last+tag@sub.example.co.uk", "Ada <ada@example.org>", "zoë@exämple.org", "UPPER@EXAMPLE.ORG"],
)
def test_recipients_are_sanitized_as_django_does(address):
    assert sanitize_recipient(address, "utf-8") == sanitize_address(address, "utf-8")


def test_a_4xx_to_rcpt_is_retried_and_a_5xx_is_final():
    assert is_transient(smtplib.SMTPRecipientsRefused({"a@example.org": (451, b"Try later")}))
    assert not is_transient(smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"No such user")}))
