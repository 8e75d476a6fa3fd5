"""Outbound webhooks end to end in one process: from a service's change to a real receiver, signed, retried, paused."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.models import DomainEvent
from leads import services as lead_services
from outbound import services
from outbound.claim import deliveries_claim
from outbound.fanout import deliveries_fan_out
from outbound.models import Attempt, Delivery, Endpoint
from outbound.sending import body_of, deliveries_send
from outbound.signing import signed_headers
from outbound.targets import target_for
from outbound.transport import Sender
from tests.factories import LeadFactory
from tests.outbound.receiver import Receiver
from tests.outbound.steps import deliver_due

pytestmark = pytest.mark.django_db

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


def subscribe(receiver, *types, by):
    return services.endpoint_create(url=receiver.url, event_types=list(types), description="ERP", by=by)


def verified(secret, request):
    _, headers, body = request
    return Webhook(secret).verify(body, headers)


def test_a_lead_created_and_moved_reaches_the_subscribed_receiver_signed_the_standard_way(
        receiver, local_targets, clock, boss):
    endpoint = subscribe(receiver, "lead.created", "stage.changed", by=boss)
    lead = LeadFactory(first_name="Ada", by=boss)
    lead_services.lead_change_stage(lead=lead, to_status="contacted", by=boss, reason="called")

    result = deliver_due()

    assert (result.succeeded, result.failed) == (2, 0)
    created, moved = (verified(endpoint.secret, request) for request in receiver.requests)
    assert created["type"] == "lead.created" and created["data"]["lead_id"] == lead.pk
    assert created["timestamp"] == "2026-06-02T10:00:00+00:00"
    assert moved["type"] == "stage.changed"
    assert moved["data"]["payload"]["to"] == "contacted" and moved["data"]["lead_id"] == lead.pk
    assert moved["data"]["actor"] == {"kind": "user", "label": f"{boss.get_full_name()} (boss)"}
    assert lead.email not in json.dumps(created) + json.dumps(moved)  # ids, stages and who: no person's address
    _, headers, _ = receiver.requests[0]
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-timestamp"] == str(int(timezone.now().timestamp()))
    assert headers["content-type"] == "application/json"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    with pytest.raises(WebhookVerificationError):
        verified("whsec_" + "A" * 44, receiver.requests[0])


def test_unsubscribed_types_and_paused_endpoints_get_nothing_and_the_cursor_never_sends_twice(
        local_targets, clock, boss):
    deals, paused = Receiver(), Receiver()
    try:
        subscribe(deals, "deal.won", by=boss)
        services.endpoint_pause(endpoint=subscribe(paused, "lead.created", "deal.won", by=boss), by=boss)
        lead = LeadFactory(by=boss)
        lead_services.lead_convert_to_customer(lead=lead, deal_value=1200, by=boss)

        deliver_due()
        deliver_due()
        clock.shift(timedelta(hours=1))
        deliver_due()

        assert [json.loads(body)["type"] for _, _, body in deals.requests] == ["deal.won"]
        assert paused.requests == [] and Delivery.objects.count() == 1
    finally:
        deals.close()
        paused.close()


def test_two_readers_of_the_log_at_once_make_each_delivery_once(receiver, local_targets, clock, boss):
    subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    deliveries_fan_out()
    # A second reader that read the same events before the first moved the cursor (a crash, two beats).
    from core.models import EventCursor

    EventCursor.objects.filter(name="outbound.webhooks").update(position=0)
    deliveries_fan_out()

    assert Delivery.objects.count() == 1


def test_during_a_rotation_receivers_knowing_either_secret_verify_and_afterwards_only_the_new_one(
        receiver, local_targets, clock, boss):
    endpoint = subscribe(receiver, "lead.created", by=boss)
    old = endpoint.secret
    endpoint = services.endpoint_rotate_secret(endpoint=endpoint, by=boss)
    new = endpoint.secret
    LeadFactory(by=boss)
    deliver_due()

    during = receiver.requests[-1]
    assert len(during[1]["webhook-signature"].split(" ")) == 2
    assert verified(old, during)["type"] == "lead.created"
    assert verified(new, during)["type"] == "lead.created"

    clock.shift(timedelta(hours=24, seconds=1))
    LeadFactory(by=boss)
    deliver_due()

    after = receiver.requests[-1]
    assert verified(new, after)["type"] == "lead.created"
    with pytest.raises(WebhookVerificationError):
        verified(old, after)


def test_a_failing_receiver_is_retried_exactly_on_the_schedule_then_given_up(receiver, local_targets, clock, boss):
    local_targets.CRM_WEBHOOKS_PAUSE_AFTER_HOURS = 48
    receiver.status = 500
    subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    start = timezone.now()

    deliver_due()
    delivery = Delivery.objects.get()
    elapsed = 0
    for attempt, wait in enumerate(SCHEDULE, start=1):
        delivery.refresh_from_db()
        elapsed += wait
        assert (delivery.status, delivery.attempts) == ("retrying", attempt)
        assert delivery.next_attempt_at == start + timedelta(seconds=elapsed)
        clock.move_to(delivery.next_attempt_at - timedelta(seconds=1))
        assert deliver_due() is None  # not yet
        clock.move_to(delivery.next_attempt_at)
        result = deliver_due()
        assert (result.failed, result.given_up) == ((1, 0) if attempt < len(SCHEDULE) else (0, 1))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("given_up", 8, None)
    assert elapsed == 99305  # about a day: 27.6 hours
    assert len(receiver.requests) == 8 and len(set(receiver.ids())) == 1
    assert delivery.last_status_code == 500 and "answered 500" in delivery.last_error
    clock.shift(timedelta(days=3))
    assert deliver_due() is None


def test_an_endpoint_failing_for_a_day_is_paused_with_an_event_and_an_email_to_the_managers_then_resumed(
        receiver, local_targets, clock, boss, django_capture_on_commit_callbacks):
    receiver.status = 503
    endpoint = subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    deliver_due()
    clock.shift(timedelta(hours=23))
    LeadFactory(by=boss)  # a second delivery, failing too
    deliver_due()
    assert Endpoint.objects.get().is_active

    clock.shift(timedelta(hours=1, seconds=5))  # 24 h since the first failure, and the second delivery's retry is due
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due()

    endpoint.refresh_from_db()
    assert not endpoint.is_active and "every delivery has failed since 2026-06-02 10:00" in endpoint.paused_reason
    event = DomainEvent.objects.get(type="webhook_endpoint.paused")
    assert (event.actor_kind, event.actor_ref, event.payload["endpoint"]) == ("system", {"name": "webhooks"}, endpoint.pk)
    assert [message.to for message in mail.outbox] == [["boss@crm.example"]]
    assert receiver.url in mail.outbox[0].body and "resume" in mail.outbox[0].body
    sent = len(receiver.requests)
    clock.shift(timedelta(hours=12))
    LeadFactory(by=boss)
    deliver_due()
    assert len(receiver.requests) == sent  # nothing goes to a paused endpoint, and no delivery is made for it

    receiver.status = 200
    services.endpoint_resume(endpoint=endpoint, by=boss)
    deliver_due()

    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is None
    assert Delivery.objects.filter(status="succeeded").count() == 2  # the two that were still being retried
    assert DomainEvent.objects.filter(type="webhook_endpoint.resumed", actor_user=boss).exists()


def test_a_resend_keeps_the_webhook_id_and_the_log_records_each_try(receiver, local_targets, clock, boss):
    endpoint = subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    deliver_due()
    delivery = Delivery.objects.get()

    clock.shift(timedelta(minutes=3))
    services.delivery_resend(delivery=delivery, by=boss)
    deliver_due()

    first, second = receiver.requests
    assert first[1]["webhook-id"] == second[1]["webhook-id"] == delivery.message_id
    assert first[2] == second[2]  # the same body
    assert int(second[1]["webhook-timestamp"]) - int(first[1]["webhook-timestamp"]) == 180
    assert verified(endpoint.secret, second)["type"] == "lead.created"
    tries = list(Attempt.objects.filter(delivery=delivery).order_by("id"))
    assert [(a.response_status, a.response_excerpt, a.error) for a in tries] == [(200, "ok", ""), (200, "ok", "")]
    assert tries[1].request_headers["webhook-id"] == delivery.message_id
    assert tries[1].request_body == second[2].decode() and tries[1].request_url == receiver.url
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_a_lease_left_by_a_dead_worker_is_taken_again_after_it_runs_out_with_the_same_webhook_id(
        receiver, local_targets, clock, boss):
    subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    deliveries_fan_out()
    token, ids = deliveries_claim(limit=10)
    # The worker that claimed it sent it and died before recording anything.
    delivery = Delivery.objects.select_related("endpoint").get()
    assert delivery.status == "delivering"
    sender = Sender(timeout=5, excerpt_bytes=100)
    body = body_of(delivery)
    sender.post(target_for(delivery.endpoint.url), body=body, headers=signed_headers(
        [delivery.endpoint.secret], message_id=delivery.message_id, timestamp=int(timezone.now().timestamp()), body=body))
    sender.close()

    clock.shift(timedelta(seconds=299))
    assert deliveries_claim(limit=10)[1] == []  # still held
    clock.shift(timedelta(seconds=1))
    again, ids_again = deliveries_claim(limit=10)
    assert ids_again == ids
    deliveries_send(ids=ids_again, token=str(again))
    # The dead worker's batch, were it to wake up, holds nothing any more.
    assert deliveries_send(ids=ids, token=str(token)).not_held == 1

    assert receiver.ids() == [delivery.message_id, delivery.message_id]  # the receiver dedupes on it
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


@pytest.mark.parametrize("down_status", [503, 429])
def test_a_receiver_that_is_down_is_probed_with_one_delivery_and_the_others_wait_without_holding_up_the_rest(
        receiver, local_targets, clock, boss, down_status):
    local_targets.CRM_WEBHOOKS_PAUSE_AFTER_HOURS = 48
    down = Receiver(status=down_status)
    try:
        subscribe(down, "lead.created", by=boss)
        subscribe(receiver, "lead.created", by=boss)
        for _ in range(3):
            LeadFactory(by=boss)
        start = timezone.now()

        result = deliver_due()

        # One try to the receiver that is down; its other two wait for that try's retry, the healthy one gets all 3.
        assert (len(down.requests), len(receiver.requests)) == (1, 3)
        assert (result.failed, result.held_back, result.succeeded) == (1, 2, 3)
        waiting = Delivery.objects.filter(endpoint__url=down.url)
        assert {(d.status, d.next_attempt_at) for d in waiting} == {
            ("retrying", start + timedelta(seconds=5)), ("pending", start + timedelta(seconds=5))}
        assert sorted(d.attempts for d in waiting) == [0, 0, 1]

        clock.shift(timedelta(seconds=5))
        result = deliver_due()
        assert (len(down.requests), result.failed, result.held_back) == (2, 1, 2)
        assert {d.next_attempt_at for d in waiting.all()} == {timezone.now() + timedelta(seconds=300)}

        down.status = 200  # back up: the next turn delivers everything, each once
        clock.shift(timedelta(seconds=300))
        result = deliver_due()
        assert (result.succeeded, result.held_back) == (3, 0)
        assert len(set(down.ids())) == 3 and len(down.ids()) == 5
        assert set(waiting.values_list("status", flat=True)) == {"succeeded"}
    finally:
        down.close()


def test_a_delivery_refused_with_a_4xx_does_not_hold_back_the_endpoints_others(receiver, local_targets, clock, boss):
    # The first delivery is refused (the receiver cannot take that one), the next is taken.
    receiver.answer = lambda path, headers, body: (422 if len(receiver.requests) == 1 else 200, {})
    subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    LeadFactory(by=boss)

    result = deliver_due()

    assert (result.failed, result.succeeded, result.held_back, len(receiver.requests)) == (1, 1, 0, 2)


def test_a_batch_hands_back_what_it_cannot_finish_within_its_lease(receiver, local_targets, clock, boss):
    subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    LeadFactory(by=boss)
    deliveries_fan_out()
    token, ids = deliveries_claim(limit=10)
    clock.shift(timedelta(seconds=295))  # less than two timeouts left

    result = deliveries_send(ids=ids, token=str(token))

    assert (result.handed_back, receiver.requests) == (2, [])
    assert deliveries_claim(limit=10)[1] == ids


def test_a_redirect_is_not_followed(local_targets, clock, boss):
    inside = Receiver()  # a private address the redirect points at
    redirecting = Receiver(answer=lambda path, headers, body: (302, {"Location": inside.url}))
    try:
        subscribe(redirecting, "lead.created", by=boss)
        LeadFactory(by=boss)
        deliver_due()
        delivery = Delivery.objects.get()
        assert delivery.status == "retrying" and delivery.last_status_code == 302
        assert "not followed" in delivery.last_error and inside.url in delivery.last_error
        assert inside.requests == []
    finally:
        inside.close()
        redirecting.close()


def test_a_test_event_is_sent_and_logged_like_any_delivery(receiver, local_targets, clock, boss):
    endpoint = subscribe(receiver, "deal.won", by=boss)

    services.endpoint_send_test(endpoint=endpoint, by=boss)
    deliver_due()

    message = verified(endpoint.secret, receiver.requests[0])
    assert message["type"] == "webhook.test" and message["data"]["endpoint_id"] == endpoint.pk
    assert Delivery.objects.get().status == "succeeded"


def test_an_unreachable_receiver_is_a_failed_try_with_the_reason(local_targets, clock, boss):
    gone = Receiver()
    url = gone.url
    gone.close()
    services.endpoint_create(url=url, event_types=["lead.created"], by=boss)
    LeadFactory(by=boss)

    deliver_due()

    delivery = Delivery.objects.get()
    assert delivery.status == "retrying" and delivery.last_status_code is None
    assert "Connection" in delivery.last_error or "refused" in delivery.last_error.lower()
    assert Attempt.objects.get().error == delivery.last_error


def test_an_https_receiver_whose_certificate_is_not_trusted_is_a_failed_try(
        local_targets, clock, boss, tmp_path, monkeypatch):
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    receiver = Receiver()
    server = receiver.server
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    monkeypatch.setattr("outbound.targets._resolve", lambda host, port: ["127.0.0.1"])  # not ::1 first
    try:
        url = receiver.url.replace("http://127.0.0.1", "https://localhost")
        services.endpoint_create(url=url, event_types=["lead.created"], by=boss)
        LeadFactory(by=boss)

        deliver_due()

        delivery = Delivery.objects.get()
        assert delivery.status == "retrying" and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        assert receiver.requests == []
    finally:
        receiver.close()


def test_a_delivery_whose_endpoint_was_deleted_while_it_was_being_sent_is_dropped_quietly(
        receiver, local_targets, clock, boss):
    subscribe(receiver, "lead.created", by=boss)
    LeadFactory(by=boss)
    deliveries_fan_out()
    token, ids = deliveries_claim(limit=10)
    delivery = Delivery.objects.select_related("endpoint").get()
    Endpoint.objects.all().delete()

    from outbound.sending import delivery_try

    assert delivery_try(delivery, token=str(token), sender=Sender(timeout=5, excerpt_bytes=10))[0] is None
    assert not Attempt.objects.exists()


def test_finished_deliveries_leave_the_log_after_its_days_with_their_tries_and_due_ones_stay(db, clock, settings):
    from datetime import timedelta

    from django.utils import timezone

    from outbound.models import Attempt, Delivery, Endpoint
    from outbound.services import deliveries_prune
    from outbound.tasks import prune

    settings.CRM_WEBHOOKS_LOG_DAYS = 30
    S = Delivery.Status
    endpoint = Endpoint.objects.create(url="https://hooks.example.com/crm", event_types=["lead.created"],
                                       secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    now = timezone.now()

    def delivery(name, status, age_days, due=False):
        made = Delivery.objects.create(
            endpoint=endpoint, event_type="lead.created", message_id=f"msg_{name}", payload={}, status=status,
            next_attempt_at=now if due else None, updated_at=now - timedelta(days=age_days),
        )
        Attempt.objects.create(delivery=made, request_url=endpoint.url, request_body="{}")
        return made

    delivery("old-ok", S.SUCCEEDED, 31)
    delivery("old-given-up", S.GIVEN_UP, 45)
    delivery("old-but-retrying", S.RETRYING, 40, due=True)
    delivery("recent-ok", S.SUCCEEDED, 29)

    assert deliveries_prune(batch_size=1) == 2

    assert sorted(Delivery.objects.values_list("message_id", flat=True)) == ["msg_old-but-retrying", "msg_recent-ok"]
    assert sorted(Attempt.objects.values_list("delivery__message_id", flat=True)) == [
        "msg_old-but-retrying", "msg_recent-ok"]
    clock.shift(timedelta(days=2))
    prune.delay()  # beat's daily task: the recent one is now past the 30 days too
    assert list(Delivery.objects.values_list("message_id", flat=True)) == ["msg_old-but-retrying"]
    assert settings.CELERY_BEAT_SCHEDULE["webhooks-prune"]["task"] == prune.name
