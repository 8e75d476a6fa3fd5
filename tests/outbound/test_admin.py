"""Managers run webhooks in the admin; reps and marketers cannot see or change them, in the admin or the services."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from outbound import services
from outbound.models import Delivery, Endpoint
from tests.factories import LeadFactory, marketer, rep
from tests.outbound.steps import deliver_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(clock, receiver, local_targets, boss):
    return services.endpoint_create(url=receiver.url, event_types=["lead.created"], description="ERP", by=boss)


def test_a_manager_subscribes_an_endpoint_with_checkboxes_and_sees_its_secret(client, clock, receiver, local_targets, boss):
    client.force_login(boss)
    page = client.get(reverse("admin:outbound_endpoint_add"))
    assert page.status_code == 200 and 'type="checkbox" name="event_types" value="stage.changed"' in page.content.decode()

    response = client.post(reverse("admin:outbound_endpoint_add"), {
        "url": receiver.url, "description": "ERP", "event_types": ["lead.created", "deal.won"]})

    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = Endpoint.objects.get()
    assert (endpoint.event_types, endpoint.created_by, endpoint.is_active) == (["lead.created", "deal.won"], boss, True)
    assert endpoint.secret.startswith("whsec_")
    change = client.get(reverse("admin:outbound_endpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret in change and f"?endpoint__id__exact={endpoint.pk}" in change


def test_the_admin_shows_the_services_error_by_field_for_a_private_address(client, clock, boss):
    client.force_login(boss)
    response = client.post(reverse("admin:outbound_endpoint_add"), {
        "url": "http://169.254.169.254/latest/", "event_types": ["lead.created"]})

    assert response.status_code == 200 and "resolves to 169.254.169.254 (link-local)" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_a_manager_rotates_pauses_resumes_sends_a_test_and_resends_from_the_admin(client, endpoint, receiver, clock, boss):
    client.force_login(boss)
    changelist = reverse("admin:outbound_endpoint_changelist")
    old = endpoint.secret

    client.post(changelist, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old

    client.post(changelist, {"action": "pause", "_selected_action": [endpoint.pk]})
    assert not Endpoint.objects.get().is_active
    client.post(changelist, {"action": "resume", "_selected_action": [endpoint.pk]})
    assert Endpoint.objects.get().is_active

    client.post(changelist, {"action": "send_test", "_selected_action": [endpoint.pk]})
    deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.event_type == "webhook.test" and delivery.status == "succeeded"

    log = client.get(reverse("admin:outbound_delivery_changelist") + f"?endpoint__id__exact={endpoint.pk}")
    assert log.status_code == 200 and delivery.message_id in log.content.decode()
    by_type = reverse("admin:outbound_delivery_changelist") + "?event_type="
    assert delivery.message_id in client.get(by_type + "webhook.test").content.decode()
    assert delivery.message_id not in client.get(by_type + "deal.won").content.decode()
    detail = client.get(reverse("admin:outbound_delivery_change", args=[delivery.pk])).content.decode()
    assert "webhook-signature" in detail and "200" in detail and " ms" in detail

    client.post(reverse("admin:outbound_delivery_changelist"), {"action": "resend", "_selected_action": [delivery.pk]})
    deliver_due()
    assert receiver.ids() == [delivery.message_id, delivery.message_id]


@pytest.mark.parametrize("who", ["rep", "marketer"])
def test_reps_and_marketers_cannot_see_or_change_webhooks(client, endpoint, clock, boss, who):
    user = rep(username="r1") if who == "rep" else marketer(username="m1")
    LeadFactory(by=boss)
    deliver_due()
    delivery = Delivery.objects.get()
    client.force_login(user)

    pages = [
        reverse("admin:outbound_endpoint_changelist"), reverse("admin:outbound_endpoint_add"),
        reverse("admin:outbound_endpoint_change", args=[endpoint.pk]),
        reverse("admin:outbound_delivery_changelist"), reverse("admin:outbound_delivery_change", args=[delivery.pk]),
    ]
    for url in pages:
        response = client.get(url)
        if who == "rep":  # not staff: the admin sends them to its login page
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url
        else:
            assert response.status_code == 403, url
    posted = client.post(reverse("admin:outbound_endpoint_changelist"),
                         {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    assert posted.status_code in (302, 403) and Endpoint.objects.get().secret == endpoint.secret
    if who == "marketer":
        assert posted.status_code == 403
        assert "Outbound webhooks" not in client.get(reverse("admin:index")).content.decode()

    for refused in (
        lambda: services.endpoint_create(url=endpoint.url, event_types=["lead.created"], by=user),
        lambda: services.endpoint_rotate_secret(endpoint=endpoint, by=user),
        lambda: services.endpoint_pause(endpoint=endpoint, by=user),
        lambda: services.endpoint_resume(endpoint=endpoint, by=user),
        lambda: services.endpoint_send_test(endpoint=endpoint, by=user),
        lambda: services.delivery_resend(delivery=delivery, by=user),
    ):
        with pytest.raises(PermissionDenied, match="Only a manager"):
            refused()


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_delivery_log_reads_in_a_fixed_number_of_queries(client, endpoint, boss, rows, django_assert_max_num_queries):
    Delivery.objects.bulk_create([
        Delivery(endpoint=endpoint, event_type="lead.created", message_id=f"msg_{i}", payload={"type": "lead.created"})
        for i in range(rows)
    ])
    client.force_login(boss)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:outbound_delivery_changelist")).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:outbound_endpoint_changelist")).status_code == 200
