"""One turn of the webhook loop, in the test's process: what beat's ticks and a worker do."""

from outbound.claim import deliveries_claim
from outbound.fanout import deliveries_fan_out
from outbound.sending import deliveries_send


def deliver_due(limit=100):
    """Make the deliveries of new events, claim what is due and send it; returns the batch's result (or None)."""
    deliveries_fan_out()
    token, ids = deliveries_claim(limit=limit)
    if not ids:
        return None
    return deliveries_send(ids=ids, token=str(token))
