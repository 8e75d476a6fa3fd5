"""Webhooks go only to public addresses: private, loopback, link-local and the like are refused, at save and at send."""

import socket

import pytest
from django.core.exceptions import ValidationError

from outbound import services
from outbound.models import Attempt, Delivery, Endpoint
from outbound.targets import address_problem, target_for
from tests.factories import LeadFactory
from tests.outbound.steps import deliver_due

pytestmark = pytest.mark.django_db

REFUSED = [
    ("http://127.0.0.1:8000/hooks", "loopback"),
    ("http://10.1.2.3/hooks", "private"),
    ("http://192.168.0.10/hooks", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]:8080/hooks", "loopback"),
    ("http://[::ffff:127.0.0.1]/hooks", "loopback"),
    ("http://[fe80::1]/hooks", "link-local"),
    ("http://[fd00::5]/hooks", "private"),
    ("http://0.0.0.0/hooks", "unspecified"),
    ("http://224.0.0.1/hooks", "multicast"),
    ("http://100.64.0.1/hooks", "not public"),
    ("http://2130706433/hooks", "loopback"),  # 127.0.0.1 written as one number
]


@pytest.fixture
def fake_dns(monkeypatch):
    """Names the test chooses resolve to the addresses it gives (None: to nothing); the rest as usual."""
    names = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names and names[host] is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.mark.parametrize(("url", "kind"), REFUSED, ids=[url for url, _ in REFUSED])
def test_a_non_public_address_is_refused_when_saved_with_an_error_naming_the_url_field(url, kind, boss):
    with pytest.raises(ValidationError) as refused:
        services.endpoint_create(url=url, event_types=["lead.created"], by=boss)

    message = refused.value.message_dict["url"][0]
    assert f"({kind})" in message and "only to public addresses" in message
    assert not Endpoint.objects.exists()


def test_a_host_name_resolving_to_a_private_address_is_refused(fake_dns, boss):
    fake_dns["hooks.partner.example"] = "10.0.0.7"

    with pytest.raises(ValidationError, match="hooks.partner.example resolves to 10.0.0.7"):
        services.endpoint_create(url="https://hooks.partner.example/in", event_types=["deal.won"], by=boss)


def test_public_addresses_pass_and_other_schemes_or_credentials_do_not(fake_dns):
    fake_dns["hooks.partner.example"] = "93.184.215.14"
    fake_dns["no-such-host.invalid"] = None
    assert address_problem("93.184.215.14") == "" and address_problem("2606:4700::6810:84e5") == ""
    target = target_for("https://hooks.partner.example:8443/in?x=1")
    assert (target.address, target.port, target.path, target.host_header) == (
        "93.184.215.14", 8443, "/in?x=1", "hooks.partner.example:8443")
    for url, says in [("ftp://hooks.partner.example/", "Only http:// and https://"),
                      ("https://user:pw@hooks.partner.example/", "no user name or password"),
                      ("https://no-such-host.invalid/", "could not be found")]:
        with pytest.raises(ValidationError, match=says):
            target_for(url)


def test_a_name_that_resolves_to_a_private_address_at_send_time_is_refused_and_nothing_is_sent(
        fake_dns, receiver, clock, boss, webhook_settings):
    # Saved while it resolved to a public address; then its DNS answer changed to the CRM's own network.
    fake_dns["hooks.partner.example"] = "93.184.215.14"
    port = receiver.url.split(":")[2].split("/")[0]
    services.endpoint_create(url=f"http://hooks.partner.example:{port}/hooks", event_types=["lead.created"], by=boss)
    fake_dns["hooks.partner.example"] = "127.0.0.1"
    LeadFactory(by=boss)

    deliver_due()

    delivery = Delivery.objects.get()
    assert delivery.status == "retrying" and "resolves to 127.0.0.1 (loopback)" in delivery.last_error
    assert receiver.requests == [] and Attempt.objects.get().response_status is None


def test_with_the_setting_a_private_receiver_is_allowed_and_reached_at_the_address_checked(
        fake_dns, receiver, clock, boss, webhook_settings):
    webhook_settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    fake_dns["erp.internal"] = "127.0.0.1"
    port = receiver.url.split(":")[2].split("/")[0]
    services.endpoint_create(url=f"http://erp.internal:{port}/hooks", event_types=["lead.created"], by=boss)
    LeadFactory(by=boss)

    deliver_due()

    (path, headers, _), = receiver.requests
    assert (path, headers["host"]) == ("/hooks", f"erp.internal:{port}")
    assert Delivery.objects.get().status == "succeeded"


def test_an_event_type_that_does_not_exist_is_refused_by_field(receiver, boss, local_targets):
    with pytest.raises(ValidationError) as refused:
        services.endpoint_create(url=receiver.url, event_types=["lead.created", "lead.teleported"], by=boss)
    assert "Unknown event type(s): lead.teleported" in refused.value.message_dict["event_types"][0]
    with pytest.raises(ValidationError, match="at least one event type"):
        services.endpoint_create(url=receiver.url, event_types=[], by=boss)


def test_the_checks_refuse_a_lease_shorter_than_a_try_and_warn_of_private_targets_on_deploy(webhook_settings):
    from outbound.checks import check_lease_outlasts_a_try, check_private_targets_are_refused

    assert check_lease_outlasts_a_try() == [] and check_private_targets_are_refused() == []
    webhook_settings.CRM_WEBHOOKS_LEASE_SECONDS, webhook_settings.CRM_WEBHOOKS_TIMEOUT_SECONDS = 20, 10
    webhook_settings.CRM_WEBHOOKS_RETRY_SCHEDULE = []
    webhook_settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    assert [problem.id for problem in check_lease_outlasts_a_try()] == ["outbound.E001", "outbound.E002"]
    assert [problem.id for problem in check_private_targets_are_refused()] == ["outbound.W001"]
