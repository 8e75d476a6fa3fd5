"""Reading outbound webhooks, for the admin and the tests."""

from django.db.models import Count, Q

from .models import Attempt, Delivery, Endpoint


def endpoint_list():
    """Endpoints with how many deliveries wait and how many were given up."""
    return Endpoint.objects.annotate(
        waiting=Count("deliveries", filter=Q(deliveries__next_attempt_at__isnull=False)),
        given_up=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.GIVEN_UP)),
    )


def delivery_list(*, endpoint: Endpoint | None = None):
    """The delivery log, newest first (an endpoint's, or all)."""
    rows = Delivery.objects.select_related("endpoint")
    return rows.filter(endpoint=endpoint) if endpoint is not None else rows


def attempt_list(*, delivery: Delivery):
    """A delivery's tries, newest first."""
    return Attempt.objects.filter(delivery=delivery).order_by("-id")
