"""The email providers' webhook views: anymail's own, a little stricter (see nurturing.webhooks).

Kept apart from the signal handlers so that workers, which never serve
webhooks, do not import every provider's view.
"""

import functools
import json
import logging
from datetime import datetime
from datetime import timezone as dt_timezone

from anymail import urls as anymail_urls
from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailImproperlyInstalled,
    AnymailWebhookValidationFailure,
)
from anymail.signals import tracking
from anymail.utils import EmailAddress
from anymail.webhooks.amazon_ses import AnymailBotoClientAPIError
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from django.urls import path, re_path
from django.urls.resolvers import RegexPattern
from django.utils import timezone

from . import providers
from .models import WebhookNonce
from .services import REPLAY_WINDOW

log = logging.getLogger(__name__)


class RequireSecretMixin:
    """Refuse every call when no webhook secret is configured (anymail would accept them with a warning)."""

    def validate_request(self, request):  # anymail runs every validate_request of the class chain
        # Both attributes are anymail's AnymailBasicAuthMixin's, which every webhook view of anymail has.
        if self.warn_if_no_basic_auth and not self.basic_auth:
            raise AnymailWebhookValidationFailure(
                "No webhook secret is configured (ANYMAIL_WEBHOOK_SECRET): unauthenticated webhooks are refused."
            )


class AlreadyHandled(Exception):
    """A signed call answered before (a provider's retry, or a replay): 200, nothing recorded again."""


# What anymail's views raise on a body they cannot read (a JSON list where an object
# belongs, a missing key, a wrong type, an assertion about the shape...).
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError, AnymailAPIError)


class Malformed(Exception):
    """The call's body is not what its provider sends: 400, nothing recorded."""


def _reading(step):
    """Run one of anymail's reading steps, turning what a bad body makes it raise into Malformed."""
    try:
        return step()
    except (AnymailWebhookValidationFailure, AnymailImproperlyInstalled, AnymailBotoClientAPIError, AlreadyHandled):
        raise  # refused (400), answered before (200), or our installation or AWS failed (500: the provider retries)
    except AnymailConfigurationError as exc:  # e.g. the inbound webhook pointed at the tracking URL
        log.error("Webhook refused: %s", exc)
        raise Malformed(f"not a call this URL takes: {exc}") from exc
    except MALFORMED as exc:
        raise Malformed(f"{exc.__class__.__name__}: {exc}") from exc


def _inbound_problem(message) -> str:
    """What an inbound email lacks to be read as somebody's email, or "".

    anymail gives a list for an email with several From addresses: whose reply
    (or request to stop) it is cannot be told.
    """
    if not message.from_email:
        return "no sender"
    return "" if isinstance(message.from_email, EmailAddress) else "several senders"


class StrictWebhookMixin(RequireSecretMixin):
    """anymail's view, refusing unauthenticated calls, malformed bodies and replays.

    Whatever is wrong with a body (before or after authentication) is a 400, never
    a 500: a provider retries a 5xx for hours, and a malformed body never gets
    better. An error in recording the events stays a 500, for the provider to
    retry. One transaction: if recording fails, the provider's retry finds nothing
    half-done (not even the replay guard's token).
    """

    def post(self, request, *args, **kwargs):
        try:
            with transaction.atomic():
                # anymail's: validators, parse_events, the signals. It reads no URL argument (Mailgun's
                # inbound URL has one): passing them on or not is the same.
                return super().post(request, *args, **kwargs)  # pragma: no mutate
        except AlreadyHandled:
            return HttpResponse()
        except Malformed as exc:
            log.warning("Malformed %s webhook refused: %s", self.esp_name, exc)
            return HttpResponseBadRequest(f"Malformed {self.esp_name} webhook: {exc}".encode()[:500])

    def run_validators(self, request):
        _reading(lambda: super(StrictWebhookMixin, self).run_validators(request))

    def parse_events(self, request):
        events = [event for event in _reading(lambda: super(StrictWebhookMixin, self).parse_events(request))
                  if event is not None]
        for event in events:
            problem = (
                providers.tracking_event_problem(self.esp_name, event) if self.signal is tracking
                else _inbound_problem(event.message)
            )
            if problem:
                raise Malformed(f"{self.esp_name} event with {problem}")
        if not events and not _reading(lambda: providers.is_documented_empty_post(self.esp_name, request)):
            raise Malformed(f"{self.esp_name} webhook without an event")
        return events


class SignedReplayGuardMixin:
    """For providers that sign a timestamp and a one-time token (Mailgun): each signed call is accepted once, fresh.

    The signature covers the timestamp and the token, not the body: a token
    seen again is answered 200 and nothing is read from the body (a provider
    retrying a call we took, or someone replaying it with another body). The
    provider's own retries come with a new token; they are recorded once by
    the event's id (nurturing.providers.event_id).
    """

    def parse_events(self, request):  # after every validator, the signature's included
        timestamp, token = _reading(lambda: self._signed_timestamp_and_token(request))
        if timestamp is not None:
            signed_at = _reading(lambda: datetime.fromtimestamp(int(timestamp), tz=dt_timezone.utc))
            if abs(timezone.now() - signed_at) > REPLAY_WINDOW:
                raise AnymailWebhookValidationFailure("Webhook signed more than 8 hours ago: refused as a replay.")
            try:
                with transaction.atomic():
                    WebhookNonce.objects.create(provider=self.esp_name, token=str(token)[:200])
            except IntegrityError:
                raise AlreadyHandled from None
        return super().parse_events(request)

    @staticmethod
    def _signed_timestamp_and_token(request):
        if request.content_type == "application/json":
            signature = json.loads(request.body.decode()).get("signature") or {}
            return signature.get("timestamp"), signature.get("token")
        return request.POST.get("timestamp"), request.POST.get("token")


SIGNS_TIMESTAMP_AND_TOKEN = {"Mailgun"}


def _strict(view_class):
    # anymail's own post() still runs inside ours: Amazon SES answers SNS's first,
    # unauthenticated call with a 401 challenge there.
    mixins = (StrictWebhookMixin,)
    if view_class.esp_name in SIGNS_TIMESTAMP_AND_TOKEN:  # every anymail webhook view names its provider
        mixins = (SignedReplayGuardMixin, *mixins)
    # type() gives the class the calling module, this one, as its __module__ anyway: said for the reader.
    namespace = {"__module__": __name__}  # pragma: no mutate
    return type(f"Strict{view_class.__name__}", (*mixins, view_class), namespace)


def _only_if_configured(view_class, initkwargs):
    """A provider this installation does not configure (anymail will not build its view without
    its keys) is not served: 404 with the reason, not a 500 for anyone who posts to its URL."""
    view = view_class.as_view(**initkwargs)

    @functools.wraps(view)
    def serve(request, *args, **kwargs):
        try:
            view_class(**initkwargs)  # anymail reads the provider's settings as it builds the view
        except AnymailConfigurationError as exc:
            log.warning("Webhook for an unconfigured provider refused: %s", exc)
            return HttpResponseNotFound(b"This email provider's webhook is not configured on this CRM.")
        return view(request, *args, **kwargs)

    return serve


def webhook_urlpatterns():
    """anymail's webhook URLs, each view made strict (see the module's docstring)."""
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        view = pattern.callback
        route = re_path if isinstance(pattern.pattern, RegexPattern) else path
        served = _only_if_configured(_strict(view.view_class), view.view_initkwargs)
        patterns.append(route(str(pattern.pattern), served, name=pattern.name))
    return patterns

