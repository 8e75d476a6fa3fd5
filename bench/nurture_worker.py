"""What bench.nurture_bench's Celery worker imports (`--include bench.nurture_worker`): the naive tasks and the
bench's worker settings. Kept apart from the harness, so the worker's memory is the engine's, not the bench's.
"""

import os

from celery import shared_task
from celery.signals import worker_init, worker_process_init

# --- The naive way: one Celery task per email ---------------------------------------------------


@shared_task(name="bench.nurture_worker.naive_dispatch", ignore_result=True)
def naive_dispatch(step_id):
    """Queue one task per due delivery of the step."""
    from django.utils import timezone

    from nurturing.models import Delivery

    due = Delivery.objects.filter(step_id=step_id, status="scheduled", due_at__lte=timezone.now())
    ids = list(due.values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).update(status="sending", claimed_at=timezone.now())
    for pk in ids:
        naive_send.delay(pk)


_naive_smtp = None  # the worker process's SMTP connection, kept open between tasks


def _naive_connection():
    """One SMTP connection per worker process, opened on first use and again after a failure: what a competent
    task-per-email implementation does (its database connection is kept too: _keep_database_connections)."""
    global _naive_smtp
    from django.core.mail import get_connection

    if _naive_smtp is None:
        _naive_smtp = get_connection()
        _naive_smtp.open()
    return _naive_smtp


@shared_task(name="bench.nurture_worker.naive_send", ignore_result=True)
def naive_send(delivery_id):
    """Load one delivery, render it, send it on the process's open SMTP connection, UPDATE its row."""
    global _naive_smtp
    from email.utils import formataddr

    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives
    from django.utils import timezone

    from nurturing.models import Delivery
    from nurturing.rendering import CompiledStep, lead_context

    d = Delivery.objects.select_related(
        "step", "enrollment__sequence__sender", "enrollment__lead__company", "enrollment__lead__owner", "enrollment__lead__campaign"
    ).get(pk=delivery_id)
    lead = d.enrollment.lead
    sender = d.enrollment.sequence.sender or lead.owner
    rendered = CompiledStep(d.step).render(lead_context(lead, sender=sender))
    from_email = formataddr((sender.get_full_name(), sender.email)) if sender else settings.DEFAULT_FROM_EMAIL
    message = EmailMultiAlternatives(rendered.subject, rendered.text, from_email, [lead.email])
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    try:
        _naive_connection().send_messages([message])
    except OSError:
        _naive_smtp = None  # the server dropped it: a new connection, once
        _naive_connection().send_messages([message])
    now = timezone.now()
    Delivery.objects.filter(pk=d.pk).update(
        status="sent", sender=sender, to_email=lead.email, subject=rendered.subject, body_text=rendered.text,
        body_html=rendered.html, sent_at=now, updated_at=now,
    )


@worker_init.connect
def _keep_database_connections(sender=None, **kwargs):
    """Each worker process keeps its PostgreSQL connection between tasks, for both ways: Celery's Django fixup
    closes it after every task unless told to reuse it, and a naive task per email would then pay a new
    connection per email, which a competent implementation (a pooled connection) does not."""
    for fixup in getattr(getattr(sender, "app", None), "_fixups", ()):
        worker_fixup = getattr(fixup, "worker_fixup", None)
        if worker_fixup is not None:
            worker_fixup.db_reuse_max = 1_000_000


# --- The event write's cost: a worker started with BENCH_NURTURE_NO_SENT_EVENTS=1 skips it ---------

NO_SENT_EVENTS = "BENCH_NURTURE_NO_SENT_EVENTS"


@worker_process_init.connect
def _without_sent_events(**kwargs):
    """In each pool process of a worker started with NO_SENT_EVENTS=1: the engine writes no email.sent event."""
    if os.environ.get(NO_SENT_EVENTS) == "1":
        from nurturing import dispatch

        dispatch.sent_events_record = lambda rows: 0
