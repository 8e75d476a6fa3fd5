import uuid

import pytest


@pytest.fixture
def mailbox():
    """The locmem outbox (settings.test), emptied for the test."""
    from django.core import mail

    mail.outbox = []
    return mail.outbox


@pytest.fixture
def sent(rep_user, mailbox):
    """A two-step sequence whose first email went out an hour ago (step 1 has a pricing-link action)."""
    from datetime import timedelta

    from django.utils import timezone

    from nurturing import claim, dispatch, services
    from nurturing.models import Delivery
    from tests.factories import CompanyFactory, LeadFactory, sequence_with_steps

    lead = LeadFactory(first_name="Ada", owner=rep_user, company=CompanyFactory(name="Initech"))
    sequence = sequence_with_steps(
        {"click_link_contains": "/pricing", "click_stage_action": "mql", "click_creates_call_task": True},
        {"delay": timedelta(days=2)},
        name="Guide follow-up",
    )
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    token, ids = claim.deliveries_claim(limit=10)
    dispatch.deliveries_send(ids=ids, token=token)
    delivery = enrollment.deliveries.get(status=Delivery.Status.SENT)
    Delivery.objects.filter(pk=delivery.pk).update(
        sent_at=timezone.now() - timedelta(hours=1), provider_message_id="pm-" + uuid.uuid4().hex
    )
    delivery.refresh_from_db()
    return delivery


WEBHOOK_NOW = "2026-06-03 10:00:00Z"


@pytest.fixture
def webhooks(settings):
    """Every provider's webhook configured (tests.nurturing.webhook_posts), and the clock frozen."""
    import time_machine

    from tests.nurturing.webhook_posts import anymail_settings

    settings.ANYMAIL = anymail_settings()
    with time_machine.travel(WEBHOOK_NOW, tick=False):
        yield
