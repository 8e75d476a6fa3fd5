"""The email providers' webhooks: anymail's own views, a little stricter, feeding nurturing.engagement.

Every provider anymail supports is served at anymail's paths under
/webhooks/ (e.g. /webhooks/postmark/tracking/, /webhooks/mailgun/inbound/),
with anymail's authentication: the basic-auth secret (ANYMAIL_WEBHOOK_SECRET)
and, where the provider signs its calls, the signature (e.g.
ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY). On top of anymail:

- no secret configured means every call is refused (anymail would accept it
  with a warning);
- a body that cannot be read, or an event without what its provider always
  sends, gets 400 (never 500), and nothing of the call is recorded;
- a call signed more than 8 hours ago is refused as a replay; a signed call
  seen before is answered 200 and nothing is read from it (Mailgun's signed
  timestamp and one-time token); a provider's retry of an event is recorded
  once, by the provider's own event id.

The views are in nurturing.webhook_views. anymail's `tracking` and
`inbound` signals are handled here (connected in NurturingConfig.ready) and
turned into engagement events; what each provider means by its own fields
(bounce types, machine opens, event ids) is in nurturing.providers.
"""

from django.conf import settings
from django.utils import timezone

from leads.models import Lead

from . import providers
from .compose import BadUnsubscribeLink, unsubscribe_token_read
from .engagement import IncomingEvent, deliveries_for_messages, event_record, unsubscribe_by_link
from .models import EmailEvent, Suppression, email_hash
from .services import normalize_email, suppression_add

K = EmailEvent.Kind


# --- anymail's signals -> engagement events ------------------------------------------------


def on_tracking(sender, event, esp_name, **kwargs):
    if event.event_type in providers.IGNORED:
        return
    outcome = providers.tracking_outcome(esp_name, event)
    event_record(IncomingEvent(
        provider=esp_name.lower(), kind=outcome.kind, occurred_at=event.timestamp or timezone.now(),
        message_id=event.message_id or "", event_id=providers.event_id(esp_name, event), recipient=event.recipient or "",
        url=event.click_url or "", user_agent=event.user_agent or "", bounce=outcome.bounce,
        description=event.description or event.mta_response or "",
        machine_hint=providers.machine_open_reason(esp_name, event),
    ))


def _is_automatic(message) -> bool:
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    return auto != "no" or bool(message.get("X-Autoreply") or message.get("X-Autorespond")) or (
        (message.get("Precedence") or "").lower() in ("auto_reply", "bulk", "junk")
    )


# A reply that only asks to stop is an unsubscribe (the unsubscribe page tells people they may do this).
_STOP_WORDS = {"unsubscribe", "stop", "remove me", "remove", "unsubscribe me", "please unsubscribe", "opt out", "opt-out"}
MAX_REFERENCES = 10


def _asks_to_stop(message) -> bool:
    subject = (message.subject or "").strip().lower()
    while subject[:3] in ("re:", "aw:", "sv:"):
        subject = subject[3:].strip()
    first_line = next((line.strip().lower().rstrip(".!") for line in (message.text or "").splitlines() if line.strip()), "")
    return subject in _STOP_WORDS or first_line in _STOP_WORDS


def _replied_to(message):
    """The delivery a reply answers: In-Reply-To first, then the newest References (at most 10, one query)."""
    in_reply_to = (message.get("In-Reply-To") or "").split()
    references = list(reversed((message.get("References") or "").split()))
    candidates = list(dict.fromkeys(in_reply_to[:1] + references))[:MAX_REFERENCES]
    for reference, delivery in zip(candidates, deliveries_for_messages(candidates)):
        if delivery is not None:
            return reference, delivery
    return (candidates[0] if candidates else ""), None


def on_inbound(sender, event, esp_name, **kwargs):
    message = event.message
    recipients = {address.addr_spec.lower() for address in (message.to or [])}
    # The strict views hand on only an email from one sender, whose address anymail has checked
    # (nurturing.webhook_views._inbound_problem): there is always an address here.
    sender_address = normalize_email(message.from_email.addr_spec)
    if settings.CRM_UNSUBSCRIBE_MAILTO.lower() in recipients:
        _unsubscribe_by_mail(event, esp_name, sender_address)
        return
    reference, delivery = _replied_to(message)
    lead = delivery.enrollment.lead if delivery is not None else Lead.objects.live().filter(email=sender_address).first()
    automatic = _is_automatic(message)
    asks_to_stop = not automatic and _asks_to_stop(message)
    # Anyone can write any From: a "stop" unsubscribes only from someone who answers one of
    # our emails (its headers name it) or whom the provider authenticated. Otherwise it is
    # a reply (the lead leaves its sequences) with a note for a person to check.
    stop = asks_to_stop and (delivery is not None or providers.sender_is_authenticated(esp_name, event, sender_address))
    note = "Asks to stop, not verified (not an answer to one of our emails, sender not authenticated): check it.\n"
    kind = K.OTHER if automatic else (K.UNSUBSCRIBED if stop else K.REPLIED)
    recorded = event_record(IncomingEvent(
        provider=esp_name.lower(), kind=kind, occurred_at=event.timestamp or timezone.now(),
        message_id=delivery.message_id if delivery else reference,
        event_id=event.event_id or (message.get("Message-ID") or ""), recipient=sender_address,
        description=("Automatic reply: " if automatic else note if asks_to_stop and not stop else "")
        + f"{message.subject or ''}\n{(message.text or '')[:1500]}",
        delivery=delivery, lead=lead,
    ))
    if stop and recorded is not None and lead is None:
        # Not one of our leads (or not found): the address is suppressed all the same.
        suppression_add(email=sender_address, reason=Suppression.Reason.UNSUBSCRIBED, source=f"reply asking to stop ({esp_name})")


def _unsubscribe_by_mail(event, esp_name, sender_address):
    """Mail to the unsubscribe address (List-Unsubscribe's mailto, whose subject carries the signed token).

    With a valid token, the address the token was made for is unsubscribed.
    Without one, the sender's own address is unsubscribed only if the provider
    authenticated the sender's domain; else the request is logged for a person
    to check, and nothing is suppressed (anyone can write any From).
    """
    message = event.message
    token = (message.subject or "").strip().removeprefix("unsubscribe").strip()
    source = f"mail to the unsubscribe address ({esp_name})"
    try:
        lead_id, address_hash, delivery_id = unsubscribe_token_read(token)
    except BadUnsubscribeLink:
        verified = providers.sender_is_authenticated(esp_name, event, sender_address)
        event_record(IncomingEvent(
            provider=esp_name.lower(), kind=K.UNSUBSCRIBED if verified else K.OTHER, occurred_at=timezone.now(),
            event_id=f"unsubscribe-mail-{'verified' if verified else 'unverified'}-{email_hash(sender_address)[:32]}",
            recipient=sender_address,
            description=source if verified else (
                f"{source}, without the link's token and from a sender the provider did not authenticate: "
                "not unsubscribed. Check it and unsubscribe the address by hand if the request is real."
            ),
            lead=Lead.objects.live().filter(email=sender_address).first(),
        ))
        if verified:
            suppression_add(email=sender_address, reason=Suppression.Reason.UNSUBSCRIBED, source=source)
        return
    unsubscribe_by_link(lead_id=lead_id, address_hash=address_hash, delivery_id=delivery_id, source=source)
