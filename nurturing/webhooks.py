"""The email providers' webhooks: anymail's own views, a little stricter, feeding nurturing.engagement.

Every provider anymail supports is served at anymail's paths under
/webhooks/ (e.g. /webhooks/postmark/tracking/, /webhooks/mailgun/inbound/),
with anymail's authentication: the basic-auth secret (ANYMAIL_WEBHOOK_SECRET)
and, where the provider signs its calls, the signature (e.g.
ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY). On top of anymail:

- no secret configured means every call is refused (anymail would accept it
  with a warning);
- a body that cannot be parsed gets 400, and nothing is recorded;
- a signed call seen before, or signed more than 5 minutes ago, is refused
  as a replay (Mailgun's signed timestamp and one-time token).

anymail's `tracking` and `inbound` signals are handled here (connected in
NurturingConfig.ready) and turned into engagement events.
"""

import json
import logging
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import EventType
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import path, re_path
from django.urls.resolvers import RegexPattern
from django.utils import timezone

from leads.models import Lead

from .compose import BadUnsubscribeLink, unsubscribe_token_read
from .engagement import IncomingEvent, delivery_for_message, event_record, unsubscribe_by_link
from .models import EmailEvent, WebhookNonce

log = logging.getLogger(__name__)
K = EmailEvent.Kind
REPLAY_WINDOW = timedelta(minutes=5)


class StrictWebhookMixin:
    """anymail's view, refusing unauthenticated calls, malformed bodies and replays."""

    def validate_request(self, request):  # anymail runs every validate_request of the class chain
        if getattr(self, "warn_if_no_basic_auth", False) and not self.basic_auth:
            raise AnymailWebhookValidationFailure(
                "No webhook secret is configured (ANYMAIL_WEBHOOK_SECRET): unauthenticated webhooks are refused."
            )

    def post(self, request, *args, **kwargs):
        self.run_validators(request)  # a failure is a 400 (SuspiciousOperation)
        # One transaction: if recording fails, the provider's retry finds nothing half-done
        # (not even the replay guard's token).
        with transaction.atomic():
            try:
                events = self.parse_events(request)
            except AnymailWebhookValidationFailure:
                raise
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                log.warning("Malformed %s webhook refused: %s", self.esp_name, exc)
                return HttpResponseBadRequest(f"Malformed {self.esp_name} webhook body: {exc.__class__.__name__}.")
            for event in events:
                self.signal.send(sender=self.__class__, event=event, esp_name=self.esp_name)
        return HttpResponse()


class SignedReplayGuardMixin:
    """For providers that sign a timestamp and a one-time token (Mailgun): each signed call is accepted once, fresh."""

    def parse_events(self, request):  # after every validator, the signature's included
        timestamp, token = self._signed_timestamp_and_token(request)
        if timestamp is not None:
            signed_at = datetime.fromtimestamp(int(timestamp), tz=dt_timezone.utc)
            if abs(timezone.now() - signed_at) > REPLAY_WINDOW:
                raise AnymailWebhookValidationFailure("Webhook signed more than 5 minutes ago: refused as a replay.")
            try:
                with transaction.atomic():
                    WebhookNonce.objects.create(provider=self.esp_name, token=str(token)[:200])
            except IntegrityError:
                raise AnymailWebhookValidationFailure("Webhook token seen before: refused as a replay.") from None
        return super().parse_events(request)

    @staticmethod
    def _signed_timestamp_and_token(request):
        if request.content_type == "application/json":
            signature = json.loads(request.body.decode("utf-8")).get("signature") or {}
            return signature.get("timestamp"), signature.get("token")
        return request.POST.get("timestamp"), request.POST.get("token")


SIGNS_TIMESTAMP_AND_TOKEN = {"Mailgun"}


def _strict(view_class):
    mixins = (StrictWebhookMixin,)
    if getattr(view_class, "esp_name", None) in SIGNS_TIMESTAMP_AND_TOKEN:
        mixins = (SignedReplayGuardMixin, *mixins)
    return type(f"Strict{view_class.__name__}", (*mixins, view_class), {"__module__": __name__})


def webhook_urlpatterns():
    """anymail's webhook URLs, each view made strict (see the module's docstring)."""
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        view = pattern.callback
        route = re_path if isinstance(pattern.pattern, RegexPattern) else path
        patterns.append(route(str(pattern.pattern), _strict(view.view_class).as_view(**view.view_initkwargs), name=pattern.name))
    return patterns


# --- anymail's signals -> engagement events ------------------------------------------------

_KINDS = {
    EventType.DELIVERED: K.DELIVERED,
    EventType.OPENED: K.OPENED,
    EventType.CLICKED: K.CLICKED,
    EventType.BOUNCED: K.BOUNCED,
    EventType.COMPLAINED: K.COMPLAINED,
    EventType.UNSUBSCRIBED: K.UNSUBSCRIBED,
    EventType.REJECTED: K.REJECTED,
    EventType.FAILED: K.REJECTED,
    EventType.DEFERRED: K.OTHER,  # the provider retries by itself; a final failure comes as a bounce
    EventType.AUTORESPONDED: K.OTHER,
}
_IGNORED = {EventType.QUEUED, EventType.SENT}
# Bounces that the provider calls soft (the mailbox may accept mail again).
_SOFT = {
    ("Postmark", "Type"): {"SoftBounce", "Transient", "DnsError", "AutoResponder"},
    ("Brevo", "event"): {"soft_bounce"},
    ("SendGrid", "type"): {"blocked"},
}
# Opens the provider itself says a privacy proxy made.
_PROXY_OPENS = {("Brevo", "event"): {"unique_proxy_open", "proxy_open"}}


def _bounce(event, esp_name) -> str:
    if event.event_type == EventType.REJECTED and event.reject_reason == "bounced":
        return EmailEvent.Bounce.HARD
    if event.event_type != EventType.BOUNCED:
        return ""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    for (esp, field), soft in _SOFT.items():
        if esp == esp_name and raw.get(field) in soft:
            return EmailEvent.Bounce.SOFT
    return EmailEvent.Bounce.HARD


def _machine_hint(event, esp_name) -> str:
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    for (esp, field), values in _PROXY_OPENS.items():
        if esp == esp_name and raw.get(field) in values:
            return f"{esp_name} reports a privacy proxy open"
    return ""


def on_tracking(sender, event, esp_name, **kwargs):
    if event.event_type in _IGNORED:
        return
    kind = _KINDS.get(event.event_type, K.OTHER)
    if event.event_type == EventType.REJECTED and event.reject_reason == "unsubscribed":
        kind = K.UNSUBSCRIBED
    if event.event_type == EventType.REJECTED and event.reject_reason == "spam":
        kind = K.COMPLAINED
    event_record(IncomingEvent(
        provider=esp_name.lower(), kind=kind, occurred_at=event.timestamp or timezone.now(),
        message_id=event.message_id or "", event_id=event.event_id or "", recipient=event.recipient or "",
        url=event.click_url or "", user_agent=event.user_agent or "", bounce=_bounce(event, esp_name),
        description=event.description or event.mta_response or "", machine_hint=_machine_hint(event, esp_name),
    ))


def _is_automatic(message) -> bool:
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    return auto != "no" or bool(message.get("X-Autoreply") or message.get("X-Autorespond")) or (
        (message.get("Precedence") or "").lower() in ("auto_reply", "bulk", "junk")
    )


def on_inbound(sender, event, esp_name, **kwargs):
    message = event.message
    recipients = {address.addr_spec.lower() for address in (message.to or [])}
    if settings.CRM_UNSUBSCRIBE_MAILTO.lower() in recipients:
        _unsubscribe_by_mail(message, esp_name)
        return
    delivery = None
    references = f"{message.get('In-Reply-To') or ''} {message.get('References') or ''}".split()
    for reference in reversed(references):  # In-Reply-To first, then the newest reference
        delivery = delivery_for_message(reference)
        if delivery is not None:
            break
    sender_address = message.from_email.addr_spec if message.from_email else ""
    lead = delivery.enrollment.lead if delivery is not None else (
        Lead.objects.live().filter(email__iexact=sender_address).first() if sender_address else None
    )
    automatic = _is_automatic(message)
    event_record(IncomingEvent(
        provider=esp_name.lower(), kind=K.OTHER if automatic else K.REPLIED,
        occurred_at=event.timestamp or timezone.now(), message_id=delivery.message_id if delivery else (references[-1:] or [""])[0],
        event_id=event.event_id or (message.get("Message-ID") or ""), recipient=sender_address,
        description=("Automatic reply: " if automatic else "") + f"{message.subject or ''}\n{(message.text or '')[:1500]}",
        delivery=delivery, lead=lead,
    ))


def _unsubscribe_by_mail(message, esp_name):
    token = (message.subject or "").strip().removeprefix("unsubscribe").strip()
    try:
        lead_id, address_hash, delivery_id = unsubscribe_token_read(token)
    except BadUnsubscribeLink:
        log.warning("Unsubscribe email with an invalid token from %s: nobody unsubscribed", message.from_email)
        return
    unsubscribe_by_link(lead_id=lead_id, address_hash=address_hash, delivery_id=delivery_id,
                        source=f"mail to the unsubscribe address ({esp_name})")
