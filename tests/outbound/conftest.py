import pytest
import time_machine

from tests.factories import manager

# Everything an outbound test makes is made at this moment (the clock moves only where a test moves it).
NOW = "2026-06-02 10:00Z"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.CRM_WEBHOOKS_TIMEOUT_SECONDS = 5
    settings.CRM_WEBHOOKS_RETRY_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]
    settings.CRM_WEBHOOKS_PAUSE_AFTER_HOURS = 24
    settings.CRM_WEBHOOKS_SECRET_OVERLAP_HOURS = 24
    settings.CRM_WEBHOOKS_LEASE_SECONDS = 300
    return settings


@pytest.fixture
def local_targets(webhook_settings):
    """The test's receiver is on loopback: allow it, as a test that needs one must say."""
    webhook_settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    return webhook_settings


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def boss(db):
    return manager(username="boss", email="boss@crm.example")
