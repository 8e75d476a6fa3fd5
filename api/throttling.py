"""At most CRM_API_RATE_LIMIT_PER_MINUTE requests per token per minute (core.ratelimit), then 429 with Retry-After."""

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core.ratelimit import RateLimit, hit


class PerTokenRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        token = request.auth
        if token is None:
            return True
        rate = RateLimit("api-token", limit=settings.CRM_API_RATE_LIMIT_PER_MINUTE, window_seconds=60)
        decision = hit(rate, str(token.pk))
        self._wait = decision.retry_after_seconds
        return decision.allowed

    def wait(self):
        return getattr(self, "_wait", None)
