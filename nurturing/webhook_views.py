"""The email providers' webhook views: anymail's own, a little stricter (see nurturing.webhooks).

Kept apart from the signal handlers so that workers, which never serve
webhooks, do not import every provider's view.
"""

import json
import logging
from datetime import datetime
from datetime import timezone as dt_timezone

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.base import AnymailCoreWebhookView
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import path, re_path
from django.urls.resolvers import RegexPattern
from django.utils import timezone

from .models import WebhookNonce
from .services import REPLAY_WINDOW

log = logging.getLogger(__name__)



class RequireSecretMixin:
    """Refuse every call when no webhook secret is configured (anymail would accept them with a warning)."""

    def validate_request(self, request):  # anymail runs every validate_request of the class chain
        if getattr(self, "warn_if_no_basic_auth", False) and not self.basic_auth:
            raise AnymailWebhookValidationFailure(
                "No webhook secret is configured (ANYMAIL_WEBHOOK_SECRET): unauthenticated webhooks are refused."
            )


class StrictWebhookMixin(RequireSecretMixin):
    """anymail's view, refusing unauthenticated calls, malformed bodies and replays."""

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
                raise AnymailWebhookValidationFailure("Webhook signed more than 8 hours ago: refused as a replay.")
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
    # A provider whose view has its own post() (Amazon SES answers SNS's challenges there)
    # keeps it: only the secret is required on top.
    mixins = (StrictWebhookMixin,) if view_class.post is AnymailCoreWebhookView.post else (RequireSecretMixin,)
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

