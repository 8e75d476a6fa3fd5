"""The Celery tasks: time limits set on purpose, and a batch that runs out of time sends nothing twice."""

from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.core.checks import run_checks
from django.core.mail.backends.locmem import EmailBackend

from crm.celery import app
from nurturing import rendering, services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import deliveries_send
from nurturing.models import Delivery, DueDelivery
from nurturing.tasks import send_batch
from tests.factories import LeadFactory, sequence_with_steps

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=dt_timezone.utc)
OUR_APPS = ("crm.", "leads.", "nurturing.", "workspace.")


def test_every_task_has_a_soft_time_limit_below_its_hard_one():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.startswith(OUR_APPS)}

    assert {"crm.tasks.worker_heartbeat", "nurturing.tasks.dispatch_due", "nurturing.tasks.send_batch"} <= set(ours)
    for name, task in ours.items():
        assert task.soft_time_limit and task.time_limit, name
        assert task.soft_time_limit < task.time_limit, name


def test_a_send_batch_ends_before_the_reaper_would_take_its_emails(settings):
    assert send_batch.time_limit < settings.CRM_NURTURE_STALE_AFTER_SECONDS
    assert not [w for w in run_checks() if w.id == "nurturing.W003"]

    settings.CRM_NURTURE_STALE_AFTER_SECONDS = send_batch.time_limit
    assert [w.id for w in run_checks() if w.id == "nurturing.W003"] == ["nurturing.W003"]


def claim_four():
    sequence = sequence_with_steps()
    leads = [LeadFactory() for _ in range(4)]
    for lead in leads:
        services.enrollment_create(lead=lead, sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    return leads, token, ids


def strike_at_second_call(monkeypatch, owner, name):
    """The soft time limit's signal lands during the second call of owner.name."""
    original, calls = getattr(owner, name), []

    def striking(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SoftTimeLimitExceeded()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, striking)


@pytest.mark.django_db
def test_the_soft_time_limit_while_an_email_is_handed_over_makes_it_unknown_and_the_rest_go_on_the_next_tick(mailbox, monkeypatch):
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        leads, token, ids = claim_four()
        strike_at_second_call(monkeypatch, EmailBackend, "send_messages")

        send_batch.apply(args=[ids, str(token)])

        assert sorted(Delivery.objects.values_list("status", flat=True)) == ["scheduled", "scheduled", "sent", "unknown"]
        unknown = Delivery.objects.select_related("enrollment__lead").get(status="unknown")
        assert "may or may not have gone out" in unknown.reason
        assert not DueDelivery.objects.filter(claim_token__isnull=False).exists()  # handed back, unclaimed

        monkeypatch.undo()
        token, ids = deliveries_claim(limit=10)
        assert deliveries_send(ids=ids, token=token).sent == 2

    assert sorted(m.to[0] for m in mailbox) == sorted(lead.email for lead in leads if lead != unknown.enrollment.lead)


@pytest.mark.django_db
def test_the_soft_time_limit_while_an_email_is_rendered_schedules_it_again_with_the_rest(mailbox, monkeypatch):
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        leads, token, ids = claim_four()
        strike_at_second_call(monkeypatch, rendering.CompiledStep, "render")

        send_batch.apply(args=[ids, str(token)])

        assert sorted(Delivery.objects.values_list("status", flat=True)) == ["scheduled", "scheduled", "scheduled", "sent"]

        monkeypatch.undo()
        token, ids = deliveries_claim(limit=10)
        assert deliveries_send(ids=ids, token=token).sent == 3

    assert sorted(m.to[0] for m in mailbox) == sorted(lead.email for lead in leads)
