"""Retargeting: a saved audience as an ad platform's customer-match file, to show ads to leads who went quiet.

Two formats, as the platforms document them for hashed uploads:

- Google Ads Customer Match: a CSV with the columns `Email` and `Phone`, each the SHA-256 (hex) of the value
  normalised first: the email trimmed and lower-cased (for gmail.com and googlemail.com addresses, without the
  dots before the @), the phone in E.164 (`+4930123456`).
- Meta custom audience (customer list): a CSV with the columns `email`, `phone`, `fn`, `ln`, each the SHA-256
  of the normalised value: the email trimmed and lower-cased, the phone as digits with its country code and no
  `+` (`4930123456`), first and last names lower-cased without punctuation or spaces.

A phone is used only when it carries its country code (written with `+` or `00`): a national number would
match someone else. Nobody who may not be advertised to is ever in a file: leads without consent, archived or
erased leads, and every address on the suppression list (unsubscribed, bounced, complained, erased) are left
out. The leads are read in batches by id, so a file of any size takes the same memory.
"""

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.http import StreamingHttpResponse

from core.emails import normalize_email

from .audiences import audience_leads
from .models import Audience, AudienceFeed
from .services import suppressed_among

BATCH = 2000
GOOGLE, META = AudienceFeed.Platform.GOOGLE, AudienceFeed.Platform.META
HEADERS = {GOOGLE: ["Email", "Phone"], META: ["email", "phone", "fn", "ln"]}

_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_INTERNATIONAL = re.compile(r"^\s*(\+|00)")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else ""


def google_email(email: str) -> str:
    """Trimmed, lower-cased; a Gmail address without the dots of its local part (Google's rule)."""
    email = normalize_email(email)
    local, _, domain = email.partition("@")
    if domain in _GMAIL:
        local = local.replace(".", "")
    return f"{local}@{domain}" if domain else ""


def international_digits(phone: str) -> str:
    """The phone's digits with its country code ("4930123456"), or "" when it was not written with one."""
    if not phone or not _INTERNATIONAL.match(phone):
        return ""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("00"):
        digits = digits[2:]
    digits = digits.lstrip("0")
    return digits if 8 <= len(digits) <= 15 else ""  # E.164: at most 15 digits


def meta_name(name: str) -> str:
    """Lower-cased letters only (accents kept, as Meta reads UTF-8), no spaces or punctuation."""
    name = unicodedata.normalize("NFC", name or "").lower()
    return "".join(ch for ch in name if ch.isalpha())


@dataclass
class ExportCounts:
    exported: int = 0
    left_out: dict = field(default_factory=dict)  # why -> how many

    def leave_out(self, why: str) -> None:
        self.left_out[why] = self.left_out.get(why, 0) + 1


def _row(platform: str, lead: dict) -> list[str] | None:
    phone = international_digits(lead["phone"])
    if platform == GOOGLE:
        row = [sha256(google_email(lead["email"])), sha256(f"+{phone}" if phone else "")]
    else:
        row = [sha256(normalize_email(lead["email"])), sha256(phone),
               sha256(meta_name(lead["first_name"])), sha256(meta_name(lead["last_name"]))]
    return row if row[0] or row[1] else None


def customer_match_rows(audience: Audience, platform: str, counts: ExportCounts | None = None) -> Iterator[list[str]]:
    """The file's header, then one row per lead the audience holds now that may be advertised to."""
    counts = counts if counts is not None else ExportCounts()
    yield HEADERS[platform]
    leads = audience_leads(audience).order_by("pk").values("pk", "email", "phone", "first_name", "last_name",
                                                            "consent_given_at", "erased_at")
    after = 0
    while True:
        batch = list(leads.filter(pk__gt=after)[:BATCH])
        if not batch:
            return
        after = batch[-1]["pk"]
        suppressed = suppressed_among(normalize_email(lead["email"]) for lead in batch)
        for lead in batch:
            if lead["erased_at"] is not None:
                counts.leave_out("erased")
            elif lead["consent_given_at"] is None:
                counts.leave_out("no consent to marketing")
            elif normalize_email(lead["email"]) in suppressed:
                counts.leave_out("on the suppression list")
            elif (row := _row(platform, lead)) is None:
                counts.leave_out("no email and no phone with its country code")
            else:
                counts.exported += 1
                yield row


def export_counts(audience: Audience) -> ExportCounts:
    """Who a file of the audience would hold now, and why the others would be left out (the same for both
    platforms: a lead goes in with an email or a phone with its country code)."""
    counts = ExportCounts()
    for _ in customer_match_rows(audience, GOOGLE, counts):
        pass
    return counts


def customer_match_csv(audience: Audience, platform: str, counts: ExportCounts | None = None) -> Iterator[str]:
    """`customer_match_rows` as CSV text, a batch of lines at a time (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i, row in enumerate(customer_match_rows(audience, platform, counts), start=1):
        writer.writerow(row)
        if i % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def customer_match_response(audience: Audience, platform: str) -> StreamingHttpResponse:
    """The file as a download, streamed a batch of leads at a time, never cached."""
    response = StreamingHttpResponse(customer_match_csv(audience, platform), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audience-{audience.pk}-{platform}.csv"'
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
