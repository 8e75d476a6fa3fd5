"""Handing emails to the mail server: which failures pass, and Django's SMTP sending without its repeated work."""

import random
import re
import smtplib
import sys
from datetime import UTC, datetime
from email import generator as email_generator
from email import quoprimime
from email.policy import Compat32
from email.utils import formatdate, make_msgid, parsedate_to_datetime
from io import BytesIO

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    EmailMessage,
    EmailMultiAlternatives,
    forbid_multi_line_headers,
    sanitize_address,
)
from django.core.mail.utils import DNS_NAME


def is_transient(exc: Exception) -> bool:
    """Worth retrying later (network, 4xx SMTP replies, provider 5xx or rate limit), or a final refusal."""
    from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # A 4xx to RCPT (mailbox busy, greylisting) passes; a 5xx is final.
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, AnymailRecipientsRefused):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError)):
        return True
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        return status is None or status == 429 or status >= 500
    return False


def retry_after(exc: Exception) -> float | None:
    """The seconds a provider asked us to wait (its HTTP answer's Retry-After: seconds or a date), or None."""
    value = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After", "")
    value = str(value).strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class OutcomeUnknown(Exception):
    """The whole message reached the mail server, whose answer never came (a timeout, a dropped connection):
    it may or may not have been accepted, so it must not be sent again."""


def provider_outcome_unknown(exc: Exception) -> bool:
    """A provider's API call (through anymail) failed once the request may have reached the provider, before its
    answer was read: the answer timed out, or the connection dropped mid-exchange. Whether it accepted the email is
    not known. A failure to connect (refused, unreachable, TLS handshake, connect timeout) sent nothing."""
    import requests
    from anymail.exceptions import AnymailError
    from urllib3.exceptions import MaxRetryError

    try:
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
        botocore_maybe_sent = (ConnectionClosedError, ReadTimeoutError)
    except ImportError:  # Amazon SES's SDK is not installed: no such failure
        botocore_maybe_sent = ()
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, botocore_maybe_sent):
            return True
        if not isinstance(exc, AnymailError):  # anymail's wrapper takes its cause's class: look at the cause
            if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.ChunkedEncodingError)):
                return True
            if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.ConnectTimeout):
                # requests wraps a failure to connect in MaxRetryError; a connection lost after the request was
                # written (urllib3's ProtocolError: "Connection aborted", no answer) comes bare.
                reason = exc.args[0] if exc.args else None
                return not isinstance(reason, MaxRetryError)
        exc = exc.__cause__  # anymail raises its error from the client's
    return False


# --- Serializing for SMTP -------------------------------------------------------------
#
# Django's SMTP backend sanitizes the addresses, builds the MIME message and
# serializes it with the email package, message by message; serializing
# (header folding, and a regular expression compiled per message to check the
# MIME boundary) and parsing addresses cost more than rendering, the database
# and the SMTP exchange together. `SMTPSender` does what the backend's `_send`
# does, in the same order and with the same bytes on the wire, minus work that
# repeats: it is used only with Django's own SMTP backend; every other backend
# (an ESP through anymail, the file outbox, locmem in tests) gets `send_messages`.

# Headers whose value repeats from message to message: their folded form is kept.
_REPEATING_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding", "from", "reply-to"})
_FOLDED: dict = {}
# What str.splitlines() breaks an ASCII header value at: such values take the long way.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e]")


class _FoldingCompat32(Compat32):
    """Python's compat32 policy (the one Django's messages carry), with two shortcuts to the same bytes.

    - An ASCII value without line breaks whose "Name: value" fits in
      max_line_length folds to itself (the Header algorithm splits it at
      whitespace and joins it back unchanged when no line is too long).
    - Headers that repeat from message to message are folded once: folding
      depends only on the name, the value and the policy's settings.
    """

    def fold_binary(self, name, value):
        if isinstance(value, str) and value.isascii() and not _LINE_BREAKS.search(value):
            if len(name) + 2 + len(value) <= (self.max_line_length or 1_000_000):
                return f"{name}: {value}{self.linesep}".encode("ascii")
        if not isinstance(value, str) or name.lower() not in _REPEATING_HEADERS or "boundary=" in value:
            return super().fold_binary(name, value)
        key = (name, value, self.linesep, self.max_line_length, self.cte_type)
        folded = _FOLDED.get(key)
        if folded is None:
            folded = super().fold_binary(name, value)
            if len(_FOLDED) >= 1024:
                _FOLDED.clear()
            _FOLDED[key] = folded
        return folded


_POLICY = _FoldingCompat32()


class _BytesGenerator(email_generator.BytesGenerator):
    @classmethod
    def _make_boundary(cls, text=None):
        """The stdlib's random boundary, checked with a substring test instead of a compiled regex.

        The stdlib refuses a boundary that appears as a delimiter line in the
        parts; this refuses one that appears anywhere in them, which is stricter.
        """
        token = random.randrange(sys.maxsize)
        boundary = ("=" * 15) + (email_generator._fmt % token) + "=="
        if text is None:
            return boundary
        candidate, counter = boundary, 0
        while (b"--" + candidate.encode("ascii") if isinstance(text, bytes) else "--" + candidate) in text:
            candidate = f"{boundary}.{counter}"
            counter += 1
        return candidate


def as_bytes(mime_message) -> bytes:
    """What Django's `message.as_bytes(linesep="\\r\\n")` returns (bar the random boundary), faster."""
    out = BytesIO()
    _BytesGenerator(out, mangle_from_=False, policy=_POLICY).flatten(mime_message, unixfrom=False, linesep="\r\n")
    return out.getvalue()


# --- The engine's messages, serialized directly ------------------------------------------
#
# `mime_bytes(message)` writes what `as_bytes(message.message())` writes for the
# one shape of message the engine sends (nurturing.compose.nurture_email): a
# utf-8 text body, at most one text/html alternative, one recipient, no cc, bcc
# or attachments, at most one Reply-To, and extra headers that do not replace
# Django's own. Django's steps, in its order, without building the MIME objects:
#
# - each text part: `Content-Type: text/<subtype>; charset="utf-8"`,
#   `MIME-Version: 1.0` and a Content-Transfer-Encoding of 7bit (ASCII), 8bit
#   (the UTF-8 bytes as they are) or quoted-printable when a line (as
#   str.splitlines() cuts it) is longer than 998 bytes (SafeMIMEText.set_payload);
#   the body with every \r\n, \r or \n written as \r\n (Generator._write_lines);
# - with an alternative: a multipart/alternative around the text part (left
#   out when the body is empty) and the HTML part, the boundary chosen as
#   _BytesGenerator._make_boundary chooses it from the parts' bytes;
# - the headers' values as SafeMIME*.__setitem__ stores them
#   (forbid_multi_line_headers: a line break still raises BadHeaderError), each
#   folded by the generator's policy (`_POLICY` with CRLF line ends).
#
# Anything else (and whatever it cannot write as Django would) gives None, and
# the message goes the long way.

_POLICY_CRLF = _POLICY.clone(linesep="\r\n")
_NEWLINES = re.compile(rb"\r\n|\r|\n")
# A subject that `Header(subject).encode()` (forbid_multi_line_headers) returns
# unchanged: printable ASCII, no space at either end, at most 76 characters.
_PLAIN_SUBJECT = re.compile(r"[!-~](?:[ -~]{0,74}[!-~])?")
# Extra headers that Django's message() treats apart from the rest: they take the long way.
_OWN_HEADERS = frozenset({"from", "to", "cc", "reply-to", "content-type", "mime-version", "content-transfer-encoding"})
_TEXT_PART_HEADERS = {
    (subtype, cte): (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n'
    ).encode("ascii")
    for subtype in ("plain", "html")
    for cte in ("7bit", "8bit", "quoted-printable")
}


def _text_part(text: str, subtype: str) -> bytes | None:
    """A SafeMIMEText(text, subtype, "utf-8") as the generator writes it (headers, blank line, body), or None."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: Django raises, let it
        return None
    # bytes.splitlines() cuts only at \r and \n, str.splitlines() at those and more: when no bytes line is
    # too long, no str line is either; otherwise Django's own test decides.
    if len(raw) > RFC5322_EMAIL_LINE_LENGTH_LIMIT and max(map(len, raw.splitlines())) > RFC5322_EMAIL_LINE_LENGTH_LIMIT and any(
        len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in text.splitlines()
    ):
        cte, body = "quoted-printable", quoprimime.body_encode(raw.decode("latin-1")).encode("ascii")
    else:
        cte, body = ("7bit" if raw.isascii() else "8bit"), raw
    return _TEXT_PART_HEADERS[subtype, cte] + b"\r\n" + _NEWLINES.sub(b"\r\n", body)


# How `Content-Type: multipart/alternative; boundary="..."` folds, by the boundary's length: the folding
# looks at the characters only for whitespace and the split characters (";", ","), which a boundary of
# these characters has none of, so boundaries of one length fold alike.
_BOUNDARY_CHARS = re.compile(r"[=.0-9A-Za-z]+")
_MULTIPART_FOLDS: dict[int, tuple[bytes, bytes]] = {}


def _multipart_content_type(boundary: str) -> bytes:
    plain = _BOUNDARY_CHARS.fullmatch(boundary) is not None
    if plain and len(boundary) in _MULTIPART_FOLDS:
        before, after = _MULTIPART_FOLDS[len(boundary)]
        return before + boundary.encode("ascii") + after
    folded = _POLICY_CRLF.fold_binary("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    pieces = folded.split(boundary.encode("ascii"))
    if plain and len(pieces) == 2:
        _MULTIPART_FOLDS[len(boundary)] = (pieces[0], pieces[1])
    return folded


def _header(name, value) -> bytes:
    name, value = forbid_multi_line_headers(name, value, "utf-8")
    return _POLICY_CRLF.fold_binary(name, value)


def mime_bytes(message) -> bytes | None:
    """The bytes `as_bytes(message.message())` gives (bar its random boundary, Date and Message-ID), or None
    when the message is not of the engine's shape.

    Raises BadHeaderError where Django would (a line break in a header's value).
    """
    kind = type(message)
    if kind is EmailMultiAlternatives:
        alternatives = message.alternatives
        if message.alternative_subtype != "alternative" or len(alternatives) > 1:
            return None
    elif kind is EmailMessage:
        alternatives = ()
    else:
        return None
    encoding = message.encoding or settings.DEFAULT_CHARSET
    if (
        encoding != "utf-8"
        or message.content_subtype != "plain"
        or message.attachments
        or message.cc
        or message.bcc
        or len(message.to) != 1
        or len(message.reply_to) > 1
        or not isinstance(message.body, str)
    ):
        return None
    extra_headers = message.extra_headers
    names = set()
    for name in extra_headers:
        if not isinstance(name, str):
            return None
        names.add(name.lower())
    if not names.isdisjoint(_OWN_HEADERS):
        return None

    # The parts, as message() makes them before it sets the headers.
    body = message.body
    text = _text_part(body, "plain")
    if text is None:
        return None
    if alternatives:
        html, mimetype = alternatives[0]
        if mimetype != "text/html" or not isinstance(html, str):
            return None
        html = _text_part(html, "html")
        if html is None:
            return None
        parts = [text, html] if body else [html]
        head = []
    else:
        head = [text[: text.index(b"\r\n\r\n") + 2]]  # the text part's own headers open the message

    subject = message.subject
    if isinstance(subject, str) and _PLAIN_SUBJECT.fullmatch(subject):
        head.append(_POLICY_CRLF.fold_binary("Subject", subject))
    else:
        head.append(_header("Subject", subject))
    head.append(_header("From", message.from_email))
    head.append(_header("To", ", ".join(str(v) for v in message.to)))
    if message.reply_to:
        head.append(_header("Reply-To", ", ".join(str(v) for v in message.reply_to)))
    if "date" not in names:
        head.append(_header("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
    if "message-id" not in names:
        head.append(_header("Message-ID", make_msgid(domain=DNS_NAME)))
    for name, value in extra_headers.items():
        head.append(_header(name, value))

    if not alternatives:
        return b"".join(head) + text[text.index(b"\r\n\r\n") + 2 :]
    boundary = _BytesGenerator._make_boundary(b"\r\n".join(parts))
    delimiter = b"--" + boundary.encode("ascii")
    return b"".join(
        [
            _multipart_content_type(boundary),
            b"MIME-Version: 1.0\r\n",
            *head,
            b"\r\n",
            delimiter,
            b"\r\n",
            (b"\r\n" + delimiter + b"\r\n").join(parts),
            b"\r\n",
            delimiter,
            b"--\r\n",
        ]
    )


# A plain address: a dot-atom local part and an ASCII domain whose labels IDNA accepts as they are.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*")


def sanitize_recipient(address, encoding):
    """Django's sanitize_address, which returns a plain address unchanged (parsing it costs more than the rest)."""
    if isinstance(address, str) and _PLAIN_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, encoding)


class SMTPSender:
    """Sends over an open Django SMTP backend as its `_send` does, with the sender's address sanitized once.

    Only for the messages that `_send` was written for (Django's compat32 MIME
    messages): should `message()` build another kind, the backend sends them all.
    """

    def __init__(self, backend: SMTPEmailBackend):
        self.backend = backend
        self.sanitized = {}
        self.compat32 = None  # known after the first message

    def _sanitize(self, address, encoding):
        key = (address, encoding)
        if key not in self.sanitized:
            self.sanitized[key] = sanitize_address(address, encoding)
        return self.sanitized[key]

    def send(self, message) -> None:
        backend = self.backend
        if self.compat32 is None:
            self.compat32 = isinstance(message.message().policy, Compat32)
        if not self.compat32 or backend.connection is None:  # (not open: the backend opens, sends and closes)
            backend.send_messages([message])
            return
        recipients = message.recipients()
        if not recipients:
            return
        encoding = message.encoding or settings.DEFAULT_CHARSET
        from_email = self._sanitize(message.from_email, encoding)
        recipients = [sanitize_recipient(address, encoding) for address in recipients]
        raw = mime_bytes(message)
        if raw is None:  # not the engine's kind of message
            raw = as_bytes(message.message())
        try:
            _sendmail(backend.connection, from_email, recipients, raw)
        except smtplib.SMTPException:
            if not backend.fail_silently:
                raise


def _sendmail(connection: smtplib.SMTP, from_email, recipients, raw) -> None:
    """`connection.sendmail`, raising OutcomeUnknown when the connection fails after the message's final
    "<CRLF>.<CRLF>" went out: the server may have accepted it before its answer was lost."""
    handed_over = False
    send = connection.send

    def send_watched(data):
        nonlocal handed_over
        send(data)
        if isinstance(data, bytes) and data.endswith(b"\r\n.\r\n"):  # smtplib.SMTP.data's end of the message
            handed_over = True

    connection.send = send_watched
    try:
        connection.sendmail(from_email, recipients, raw)
    except smtplib.SMTPResponseException:
        raise  # the server answered (250 or a refusal): no doubt there
    except OSError as exc:  # a timeout, a reset, smtplib's SMTPServerDisconnected
        if handed_over:
            raise OutcomeUnknown(f"The mail server did not answer once it had the whole message: {exc}") from exc
        raise
    finally:
        del connection.send  # the class's own again
