"""Signed links: a booker's link to reschedule or cancel their meeting, and a lead's booking link in a nurture
email (so the lead does not type their details again). Both are signed with the site's key and expire."""

from django.conf import settings
from django.core import signing

from core import signing as fast_signing

MANAGE_SALT = "booking.manage"
LEAD_SALT = "booking.lead"


class BadLink(Exception):
    """A link that was forged, changed or is too old: `message` says what to do."""


def manage_token(meeting) -> str:
    return fast_signing.dumps({"m": meeting.pk}, salt=MANAGE_SALT, compress=True)


def manage_meeting_id(token: str) -> int:
    try:
        return int(signing.loads(token, salt=MANAGE_SALT, max_age=settings.CRM_BOOKING_LINK_MAX_AGE_DAYS * 86400)["m"])
    except signing.SignatureExpired:
        raise BadLink("This link has expired. Book a new time on the booking page.") from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadLink("This link is not valid. Use the link in your confirmation email.") from None


def lead_token(lead_id: int) -> str:
    return fast_signing.dumps(lead_id, salt=LEAD_SALT, compress=True)


def lead_from_token(token: str) -> int:
    try:
        return int(signing.loads(token, salt=LEAD_SALT, max_age=settings.CRM_BOOKING_LINK_MAX_AGE_DAYS * 86400))
    except signing.SignatureExpired:
        raise BadLink("This booking link has expired: fill in your details below.") from None
    except (signing.BadSignature, TypeError, ValueError):
        raise BadLink("This booking link is not valid: fill in your details below.") from None
