"""What every nurture email carries besides its step: the unsubscribe link and headers, the postal footer.

- `List-Unsubscribe` with an https link and a mailto address, and
  `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): mail clients
  show an unsubscribe button that POSTs to the link, which unsubscribes at once.
- The link carries a signed token naming the lead and the address's keyed
  hash (nurturing.address_hash): it cannot be forged or altered, it does not
  tell the address to whoever reads it, and it expires after
  CRM_UNSUBSCRIBE_LINK_DAYS.
- A footer with the sender's postal address (CRM_POSTAL_ADDRESS) and the link.
"""

from email.utils import formataddr
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.utils.html import escape

from core import signing as fast_signing
from core.people import person_name

from .address_hash import email_hash, keyed_hash
from .rendering import RenderedEmail

_SALT = "crm.nurturing.unsubscribe"
# The unsubscribe page's path (nurturing/urls.py mounts it at the site's root). The
# URL is built from it, not reversed: workers send email and never load the URLconf.
UNSUBSCRIBE_PATH = "unsubscribe/"


class BadUnsubscribeLink(ValidationError):
    pass


def unsubscribe_token(*, lead_id: int, email: str, delivery_id: int | None = None) -> str:
    data = {"l": lead_id, "a": email_hash(email)}
    if delivery_id is not None:
        data["d"] = delivery_id
    return fast_signing.dumps(data, salt=_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[int, str, int | None]:
    """The lead id, address hash (keyed) and delivery a token was made for; a tampered or expired token raises BadUnsubscribeLink."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.CRM_UNSUBSCRIBE_LINK_DAYS * 86400)
    except signing.SignatureExpired:
        raise BadUnsubscribeLink("This unsubscribe link has expired.", code="expired") from None
    except signing.BadSignature:
        raise BadUnsubscribeLink("This unsubscribe link is not valid: it may have been cut or changed.", code="invalid") from None
    if not isinstance(data, dict) or not isinstance(data.get("l"), int):
        raise BadUnsubscribeLink("This unsubscribe link is not valid.", code="invalid")
    address_hash = data.get("a")
    if "h" in data and isinstance(data["h"], str):
        # A link sent before addresses were hashed with a key carries their plain SHA-256: it
        # works until it expires, CRM_UNSUBSCRIBE_LINK_DAYS after the change, and then this goes.
        address_hash = keyed_hash(data["h"])
    if not isinstance(address_hash, str):
        raise BadUnsubscribeLink("This unsubscribe link is not valid.", code="invalid")
    delivery_id = data.get("d")
    return data["l"], address_hash, delivery_id if isinstance(delivery_id, int) else None


def unsubscribe_url(token: str) -> str:
    return f"{settings.CRM_SITE_URL}/{UNSUBSCRIBE_PATH}{token}/"


def unsubscribe_headers(token: str) -> dict:
    mailto = f"mailto:{settings.CRM_UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + token)}"
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(token)}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def with_footer(rendered: RenderedEmail, url: str) -> RenderedEmail:
    """The step's email with the postal address and the unsubscribe link at the bottom."""
    address = settings.CRM_POSTAL_ADDRESS.strip()
    lines = [line for line in (address, f"Unsubscribe: {url}") if line]
    text = rendered.text.rstrip("\n") + "\n\n-- \n" + "\n".join(lines) + "\n"
    html = rendered.html
    if html:
        footer = (
            '<p style="font-size:12px;color:#666;margin-top:24px">'
            + (escape(address).replace("\n", "<br>") + "<br>" if address else "")
            + f'<a href="{escape(url)}">Unsubscribe</a></p>'
        )
        at = html.lower().rfind("</body>")
        html = html[:at] + footer + html[at:] if at >= 0 else html + footer
    return RenderedEmail(subject=rendered.subject, text=text, html=html)


def nurture_email(*, rendered: RenderedEmail, token: str, sender, to: str, message_id: str, headers=None, connection=None):
    """The message for one step to one lead: from the sender (replies to them), with footer and unsubscribe headers.

    `token` is the lead's unsubscribe token (`unsubscribe_token`), also given to
    the template as `links.unsubscribe`. Returns the message and the email as
    sent (with its footer).
    """
    final = with_footer(rendered, unsubscribe_url(token))
    from_email, reply_to = settings.DEFAULT_FROM_EMAIL, []
    if sender is not None and sender.email:
        from_email = formataddr((person_name(sender), sender.email))
        reply_to = [sender.email]
    message = EmailMultiAlternatives(
        subject=final.subject,
        body=final.text,
        from_email=from_email,
        to=[to],
        reply_to=reply_to,
        headers={"Message-ID": message_id, **unsubscribe_headers(token), **(headers or {})},
        connection=connection,
    )
    if final.html:
        message.attach_alternative(final.html, "text/html")
    return message, final
