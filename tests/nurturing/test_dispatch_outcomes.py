"""What a batch records for each row it tried: the email as sent, the refusal, the call task, the stage moved, the unknown."""

import smtplib
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded

from leads.models import Task
from leads.pipeline import LeadStatus
from nurturing import rendering, services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import TransientSendError, deliveries_send
from nurturing.models import Delivery, Enrollment, Step, Suppression
from tests.factories import LeadFactory, lead_at, sequence_with_steps
from tests.nurturing.dispatching import CLAIMED, MONDAY_10_UTC, Connection, enroll, held_by, row, run_once, take

pytestmark = pytest.mark.django_db

# The batch's time (when the rows were claimed and sorted) and the clock while it sends.
BATCH_TIME = MONDAY_10_UTC + timedelta(minutes=3)
SENDING_TIME = MONDAY_10_UTC + timedelta(minutes=5)


def send_batch(connection=None):
    """One batch claimed and sorted at BATCH_TIME, sent while the clock reads SENDING_TIME."""
    with time_machine.travel(SENDING_TIME, tick=False):
        return run_once(now=BATCH_TIME, connection=connection)


# --- Sent ----------------------------------------------------------------------------------


def test_a_sent_email_is_recorded_as_it_went_out(rep_user):
    sequence = sequence_with_steps(
        {"subject_template": "Hi {{ first_name }}", "text_template": "Text for {{ first_name }}",
         "html_template": "<p>Html for {{ first_name }}</p>"},
    )
    enrollment = enroll(sequence, first_name="Ada", owner=rep_user)
    connection = Connection()

    result = send_batch(connection)

    assert (result.sent, result.skipped, result.failed, result.rescheduled, result.taken_by_others) == (1, 0, 0, 0, 0)
    [message] = connection.sent
    delivery = row(enrollment)
    assert (delivery.status, delivery.sent_at, delivery.updated_at, delivery.sender, delivery.reason) == (
        Delivery.Status.SENT, SENDING_TIME, SENDING_TIME, rep_user, "",
    )
    assert (delivery.to_email, delivery.subject, delivery.body_text, delivery.body_html) == (
        enrollment.lead.email, "Hi Ada", message.body, message.alternatives[0][0],
    )
    assert message.to == [enrollment.lead.email] and message.subject == "Hi Ada"
    assert message.body.startswith("Text for Ada") and "<p>Html for Ada</p>" in delivery.body_html
    assert delivery.message_id == message.extra_headers["Message-ID"]
    assert delivery.message_id.startswith("<") and delivery.message_id.endswith("@crm.localhost>")
    assert message.extra_headers["X-CRM-Delivery"] == str(delivery.pk)
    assert delivery.provider_message_id == ""
    assert delivery.claim_token is not None  # the claim stays on record


def test_each_email_of_a_batch_gets_its_own_message_id(settings):
    settings.CRM_MESSAGE_ID_DOMAIN = "mail.example.com"
    sequence = sequence_with_steps()
    first, second = enroll(sequence), enroll(sequence)

    send_batch()

    ids = {row(first).message_id, row(second).message_id}
    assert len(ids) == 2 and all(i.endswith("@mail.example.com>") for i in ids)


def test_the_providers_own_message_id_is_kept_up_to_its_length():
    class ESPConnection(Connection):
        def send_messages(self, messages):
            for message in messages:
                message.anymail_status = SimpleNamespace(message_id="esp-" + "x" * 400)
            return super().send_messages(messages)

    enrollment = enroll(sequence_with_steps())

    send_batch(ESPConnection())

    assert row(enrollment).provider_message_id == ("esp-" + "x" * 400)[:300]


def test_the_next_step_is_due_its_delay_after_the_email_went_out():
    enrollment = enroll(sequence_with_steps({}, {"delay": timedelta(days=2)}))

    send_batch()

    assert (row(enrollment, 2).status, row(enrollment, 2).due_at) == (Delivery.Status.SCHEDULED, SENDING_TIME + timedelta(days=2))


def test_the_last_step_completes_the_enrollment_at_the_batchs_time():
    enrollment = enroll(sequence_with_steps())

    send_batch()

    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.finished_at) == (Enrollment.Status.COMPLETED, BATCH_TIME)


def test_a_next_step_that_already_has_its_delivery_is_not_scheduled_twice():
    sequence = sequence_with_steps({}, {"delay": timedelta(days=2)})
    enrollment = enroll(sequence)
    Delivery.objects.create(enrollment=enrollment, step=sequence.steps.get(position=2), due_at=MONDAY_10_UTC + timedelta(days=9))

    assert send_batch().sent == 1

    assert (row(enrollment).status, row(enrollment, 2).due_at) == (Delivery.Status.SENT, MONDAY_10_UTC + timedelta(days=9))


def test_the_batch_opens_one_connection_and_closes_it():
    sequence = sequence_with_steps()
    enroll(sequence), enroll(sequence)
    connection = Connection()

    send_batch(connection)

    assert (connection.opened, connection.closed, len(connection.sent)) == (1, 1, 2)


def test_a_batch_with_no_email_to_send_opens_no_connection(rep_user):
    enroll(sequence_with_steps({"kind": Step.Kind.CALL_TASK, "subject_template": "", "text_template": ""}), owner=rep_user)
    connection = Connection()

    assert send_batch(connection).sent == 1

    assert (connection.opened, connection.closed) == (0, 0)


def test_the_token_may_be_given_as_text():
    enroll(sequence_with_steps())
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert deliveries_send(ids=ids, token=str(token), connection=Connection()).sent == 1


def test_without_a_time_given_the_batch_uses_the_clock():
    enrollment = enroll(sequence_with_steps())
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(SENDING_TIME, tick=False):
        deliveries_send(ids=ids, token=token, connection=Connection())

    enrollment.refresh_from_db()
    assert enrollment.finished_at == SENDING_TIME


def test_rows_another_worker_took_in_the_meantime_are_not_sent_and_are_counted():
    sequence = sequence_with_steps()
    kept, taken = enroll(sequence), enroll(sequence)
    other_token = uuid.uuid4()

    def another_worker_takes_one():
        take(row(taken).pk, other_token)

    connection = Connection(on_open=another_worker_takes_one)
    result = send_batch(connection)

    assert (result.sent, result.taken_by_others) == (1, 1)
    assert [m.to for m in connection.sent] == [[kept.lead.email]]
    assert held_by(row(taken).pk) == (CLAIMED, other_token)


def test_rows_no_longer_claimed_when_the_batch_starts_are_counted_as_taken():
    sequence = sequence_with_steps()
    enroll(sequence), enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    take(ids[0], uuid.uuid4())

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = deliveries_send(ids=ids, token=token, connection=Connection())

    assert (result.sent, result.taken_by_others) == (1, 1)


def test_each_email_handed_over_is_logged_as_sent_by_its_sequence_and_step_and_nothing_else_is(rep_user):
    from core.models import ActorKind, DomainEvent

    email = sequence_with_steps({}, {})
    calls = sequence_with_steps({"kind": Step.Kind.CALL_TASK}, name="Calls")
    emails = [enroll(email, owner=rep_user), enroll(email, owner=rep_user)]
    called = enroll(calls, owner=rep_user)
    suppressed = enroll(email, owner=rep_user)
    services.suppression_add(email=suppressed.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)
    DomainEvent.objects.all().delete()

    result = send_batch(Connection(error_at=1, error=smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"No")})))

    assert (result.sent, result.failed, result.skipped) == (2, 1, 1)  # an email and the call task; refused; suppressed
    [went] = [e for e in emails if row(e).status == Delivery.Status.SENT]
    step = email.steps.get(position=1)
    assert list(
        DomainEvent.objects.filter(type="email.sent")
        .values_list("lead_id", "subject_type", "subject_id", "actor_kind", "actor_ref", "payload", "occurred_at")
    ) == [
        (went.lead_id, "delivery", row(went).pk, ActorKind.SEQUENCE, {"sequence": email.pk, "step": step.pk},
         {"sequence": email.pk, "step": step.pk, "position": 1}, SENDING_TIME),
    ]
    assert DomainEvent.objects.filter(lead_id=called.lead_id, type="task.created").count() == 1


# --- Refused, failed ------------------------------------------------------------------------


def test_a_permanent_refusal_is_recorded_with_the_providers_words_and_nothing_follows_it():
    sequence = sequence_with_steps({}, {})
    enrollment = enroll(sequence)
    refusal = smtplib.SMTPRecipientsRefused({enrollment.lead.email: (550, b"No such user")})

    result = send_batch(Connection(error_at=0, error=refusal))

    assert (result.sent, result.failed) == (0, 1)
    failed = row(enrollment)
    assert (failed.status, failed.updated_at, failed.sent_at) == (Delivery.Status.FAILED, SENDING_TIME, None)
    assert failed.reason == f"Refused by the mail provider: {refusal}"
    assert list(enrollment.deliveries.values_list("step__position", flat=True)) == [1]
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_a_long_refusal_is_cut_to_the_reasons_length():
    enrollment = enroll(sequence_with_steps())
    refusal = smtplib.SMTPDataError(554, "Rejected: " + "spam " * 200)

    send_batch(Connection(error_at=0, error=refusal))

    assert row(enrollment).reason == f"Refused by the mail provider: {refusal}"[:500]


def test_a_step_that_cannot_render_for_a_lead_fails_with_the_reason():
    enrollment = enroll(sequence_with_steps({"text_template": "{{ first_name|date:'Y' }}{% if %}"}))

    result = send_batch(Connection())

    failed = row(enrollment)
    assert (result.failed, failed.status, failed.updated_at) == (1, Delivery.Status.FAILED, SENDING_TIME)
    assert failed.reason.startswith("Could not render: ")


# --- Transient errors and the time limit ---------------------------------------------------


def test_a_transient_error_hands_the_rest_back_to_the_claim_for_the_retry():
    sequence = sequence_with_steps()
    for _ in range(3):
        enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(SENDING_TIME, tick=False) as clock:
        connection = Connection(error_at=1, error=smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
                                before_error=lambda: clock.shift(timedelta(seconds=30)))
        with pytest.raises(TransientSendError, match="^Connection unexpectedly closed$"):
            deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    assert connection.closed == 1
    assert sorted(held_by(pk) for pk in ids) == [(CLAIMED, token), (CLAIMED, token), (Delivery.Status.SENT, token)]
    # The one started goes back to claimed (so written again); the one never started is untouched.
    started, untouched = Delivery.objects.filter(pk__in=ids).exclude(status=Delivery.Status.SENT).order_by("pk")
    assert (started.updated_at, started.reason) == (SENDING_TIME + timedelta(seconds=30), "")
    assert untouched.reason == ""


def strike(at_call, owner, name, monkeypatch, before=None):
    """The task's soft time limit lands during call number `at_call` of owner.name (after `before` ran)."""
    original, calls = getattr(owner, name), []

    def striking(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            if before:
                before()
            raise SoftTimeLimitExceeded()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, striking)


def test_out_of_time_while_handing_an_email_over_makes_it_unknown_and_schedules_the_rest_again(monkeypatch):
    sequence = sequence_with_steps()
    for _ in range(3):
        enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(SENDING_TIME, tick=False) as clock, pytest.raises(SoftTimeLimitExceeded):
        strike(2, Connection, "send_messages", monkeypatch, before=lambda: clock.shift(timedelta(seconds=30)))
        deliveries_send(ids=ids, token=token, connection=Connection(), now=MONDAY_10_UTC)

    rows = {d.status: d for d in Delivery.objects.filter(pk__in=ids)}
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["scheduled", "sent", "unknown"]
    unknown, again, sent = rows[Delivery.Status.UNKNOWN], rows[Delivery.Status.SCHEDULED], rows[Delivery.Status.SENT]
    assert (sent.claim_token, sent.claimed_at) == (token, SENDING_TIME)
    assert (unknown.updated_at, unknown.reason) == (
        SENDING_TIME + timedelta(seconds=30),
        "The batch ran out of time while handing it to the mail server: it may or may not have gone out, so it is not sent again.",
    )
    assert (again.claim_token, again.claimed_at, again.updated_at, again.due_at, again.reason) == (
        None, None, SENDING_TIME + timedelta(seconds=30), MONDAY_10_UTC, "Handed back: its batch ran out of time before trying it.",
    )


def test_out_of_time_while_rendering_schedules_that_email_and_the_rest_again(monkeypatch):
    from nurturing import rendering

    sequence = sequence_with_steps()
    for _ in range(3):
        enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    strike(2, rendering.CompiledStep, "render", monkeypatch)

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(SoftTimeLimitExceeded):
        deliveries_send(ids=ids, token=token, connection=Connection(), now=MONDAY_10_UTC)

    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["scheduled", "scheduled", "sent"]
    for again in Delivery.objects.filter(status=Delivery.Status.SCHEDULED):
        assert (again.claim_token, again.reason) == (None, "Handed back: its batch ran out of time before trying it.")


def reaper_runs():
    """The reaper, an hour on: what the batch holds looks lost to it."""
    from nurturing.claim import deliveries_reap

    deliveries_reap(now=SENDING_TIME + timedelta(hours=1), stale_after=timedelta(minutes=10))


LOST_WHILE_SENDING = "The worker was lost while sending: it may or may not have gone out, so it is not sent again."
CAME_BACK = ("Its worker stopped answering while sending and it was marked unknown; the worker came back and it handed "
             "the email to the mail server at 2026-11-23 10:05:00 UTC.")


def test_out_of_time_after_the_reaper_took_the_batchs_rows_leaves_them_unknown(monkeypatch):
    sequence = sequence_with_steps()
    for _ in range(3):
        enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(SoftTimeLimitExceeded):
        strike(2, Connection, "send_messages", monkeypatch, before=reaper_runs)
        deliveries_send(ids=ids, token=token, connection=Connection(), now=MONDAY_10_UTC)

    # All three stay as the reaper left them: the first went out, and its reason says so.
    assert sorted(Delivery.objects.values_list("status", "reason")) == [
        (Delivery.Status.UNKNOWN, CAME_BACK), (Delivery.Status.UNKNOWN, LOST_WHILE_SENDING), (Delivery.Status.UNKNOWN, LOST_WHILE_SENDING),
    ]


def test_a_transient_error_after_the_reaper_took_the_batchs_rows_hands_nothing_back():
    sequence = sequence_with_steps()
    for _ in range(3):
        enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    connection = Connection(error_at=1, error=smtplib.SMTPServerDisconnected("reset"), before_error=reaper_runs)

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(TransientSendError):
        deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    assert sorted(Delivery.objects.values_list("status", "reason")) == [
        (Delivery.Status.UNKNOWN, CAME_BACK), (Delivery.Status.UNKNOWN, LOST_WHILE_SENDING), (Delivery.Status.UNKNOWN, LOST_WHILE_SENDING),
    ]


# --- Suppressed while the batch ran ------------------------------------------------------------


def test_an_address_suppressed_after_the_batch_was_sorted_gets_nothing():
    sequence = sequence_with_steps({}, {})
    kept, stopped = enroll(sequence), enroll(sequence)

    def unsubscribe_meanwhile():
        services.suppression_add(email=stopped.lead.email.upper(), reason=Suppression.Reason.UNSUBSCRIBED)

    connection = Connection(on_open=unsubscribe_meanwhile)
    result = send_batch(connection)

    assert (result.sent, result.skipped) == (1, 1)
    assert [m.to for m in connection.sent] == [[kept.lead.email]]
    late = row(stopped)
    assert (late.status, late.reason, late.updated_at) == (
        Delivery.Status.SKIPPED, "Skipped: the address was suppressed just before sending.", SENDING_TIME,
    )
    stopped.refresh_from_db()
    assert (stopped.status, stopped.exit_reason, stopped.finished_at) == (Enrollment.Status.EXITED, "The address is suppressed", BATCH_TIME)
    assert list(stopped.deliveries.values_list("step__position", flat=True)) == [1]
    kept.refresh_from_db()
    assert kept.status == Enrollment.Status.ACTIVE


# --- Call tasks ------------------------------------------------------------------------------


def call_sequence(*more, **fields):
    return sequence_with_steps({"kind": Step.Kind.CALL_TASK, "subject_template": "", "text_template": ""}, *more, **fields)


def test_a_call_step_gives_the_owner_a_task_due_at_the_batchs_time_and_the_lead_goes_on(rep_user):
    enrollment = enroll(call_sequence({"delay": timedelta(days=1)}, name="Demo push"), owner=rep_user, first_name="Cal")

    result = send_batch(Connection())

    assert result.sent == 1
    task = Task.objects.get(lead=enrollment.lead)
    assert (task.assignee, task.title, task.due_at) == (rep_user, f"Call {enrollment.lead} (Demo push, step 1)", BATCH_TIME)
    done = row(enrollment)
    assert (done.status, done.sent_at, done.message_id, done.reason) == (Delivery.Status.SENT, SENDING_TIME, "", "")
    assert row(enrollment, 2).due_at == SENDING_TIME + timedelta(days=1)


def test_a_call_step_for_a_lead_without_an_owner_fails_with_the_reason():
    enrollment = enroll(call_sequence())

    result = send_batch(Connection())

    assert (result.sent, result.failed) == (0, 1)
    failed = row(enrollment)
    assert (failed.status, failed.reason) == (Delivery.Status.FAILED, "No owner to call the lead: assign a rep.")
    assert not Task.objects.exists()


def test_a_call_step_for_an_inactive_owner_fails_with_the_task_services_words(rep_user):
    enrollment = enroll(call_sequence(), owner=rep_user)
    type(rep_user).objects.filter(pk=rep_user.pk).update(is_active=False)

    send_batch(Connection())

    assert row(enrollment).reason == "Could not create the call task: Choose an active user to do the task."


# --- Stage actions ---------------------------------------------------------------------------


def test_a_stage_action_records_the_sequence_and_step_as_the_actor_and_the_reason(mailbox):
    sequence = sequence_with_steps({}, {"stage_action": LeadStatus.MQL}, name="Guide follow-up")
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        lead = lead_at(LeadStatus.NURTURING)
        services.enrollment_create(lead=lead, sequence=sequence)
        run_once()
        run_once()

    lead.refresh_from_db()
    change = lead.stage_changes.order_by("-changed_at", "-id").first()
    assert (lead.status, change.to_status, change.actor, change.reason) == (
        LeadStatus.MQL, LeadStatus.MQL, "sequence Guide follow-up step 2", "sequence Guide follow-up step 2: email sent",
    )


@pytest.mark.parametrize(("status", "action"), [(LeadStatus.MQL, LeadStatus.MQL), (LeadStatus.MQL, LeadStatus.CONTACTED)],
                         ids=["already-there", "move-not-allowed"])
def test_a_stage_action_the_lead_cannot_take_leaves_it_and_the_email_as_they_are(mailbox, status, action):
    sequence = sequence_with_steps({"stage_action": action})
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        lead = lead_at(status)
        enrollment = services.enrollment_create(lead=lead, sequence=sequence)
        changes = lead.stage_changes.count()
        assert run_once().sent == 1

    lead.refresh_from_db()
    assert (lead.status, lead.stage_changes.count()) == (status, changes)
    assert (row(enrollment).status, row(enrollment).reason) == (Delivery.Status.SENT, "")


def test_a_stage_action_the_stage_service_refuses_is_noted_on_the_sent_email(mailbox):
    sequence = sequence_with_steps({"stage_action": LeadStatus.CUSTOMER})
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        enrollment = services.enrollment_create(lead=LeadFactory(), sequence=sequence)
        assert run_once().sent == 1

    assert (row(enrollment).status, row(enrollment).reason) == (
        Delivery.Status.SENT,
        "Stage action not applied: A lead becomes a customer by converting it, which records the won deal and its value.",
    )
    enrollment.lead.refresh_from_db()
    assert enrollment.lead.status == LeadStatus.NEW


# --- Queries ---------------------------------------------------------------------------------


def batch_queries(leads, rep_user, campaign):
    """The queries of one batch (not its claim) that sends step 1 of a two-step sequence to `leads` new leads."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sequence = sequence_with_steps({"text_template": "{{ first_name }} came for {{ campaign.name }}"}, {}, sender=rep_user)
    for _ in range(leads):
        enroll(sequence, owner=rep_user, campaign=campaign)
    token, ids = deliveries_claim(limit=100, now=BATCH_TIME)
    rendering.book_demo_links.forget()  # each batch reads the booking pages once (a process does every few seconds)
    with time_machine.travel(SENDING_TIME, tick=False), CaptureQueriesContext(connection) as queries:
        assert deliveries_send(ids=ids, token=token, now=BATCH_TIME, connection=Connection()).sent == leads
    Delivery.objects.all().delete()
    return len(queries)


def test_a_batch_makes_as_many_queries_for_twenty_emails_as_for_two(rep_user):
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(name="Spring webinar")
    # 18, the one INSERT of the chunk's email.sent events, the one read of what each lead last downloaded, and
    # the one read of each sequence's latest version (the booking pages are read only for a step that shows
    # {{ links.book_demo }}); on PostgreSQL, the outcome's commit told not to wait for the disk.
    from django.db import connection

    expected = 21 + (connection.vendor == "postgresql")
    assert batch_queries(20, rep_user, campaign) == batch_queries(2, rep_user, campaign) == expected


def test_a_step_speaks_of_what_each_lead_last_downloaded_and_its_topic(rep_user):
    from datetime import timedelta

    from leads.models import Resource
    from leads.services import form_submission_record

    sequence = sequence_with_steps({"text_template": "{{ resource.title|default:'nothing' }}"
                                                     "{% if resource.topic == 'forecasting' %}: forecasting case study{% endif %}"})
    guide = Resource.objects.create(name="Pipeline guide", slug="pipeline", topic="pipeline")
    webinar = Resource.objects.create(name="Forecast webinar", slug="forecast", topic="forecasting")
    both, guide_only, none = (enroll(sequence, owner=rep_user) for _ in range(3))
    with time_machine.travel(MONDAY_10_UTC - timedelta(days=2), tick=False):
        form_submission_record(lead=both.lead, form_name="Guide", resource=guide)
        form_submission_record(lead=guide_only.lead, form_name="Guide", resource=guide)
    with time_machine.travel(MONDAY_10_UTC - timedelta(days=1), tick=False):
        form_submission_record(lead=both.lead, form_name="Webinar", resource=webinar)
    connection = Connection()

    send_batch(connection)

    bodies = {m.to[0]: m.body.split("\n")[0] for m in connection.sent}
    assert bodies[both.lead.email] == "Forecast webinar: forecasting case study"
    assert bodies[guide_only.lead.email] == "Pipeline guide"
    assert bodies[none.lead.email] == "nothing"


def test_the_email_names_the_leads_campaign(rep_user):
    from tests.factories import CampaignFactory

    sequence = sequence_with_steps({"text_template": "{{ first_name }} came for {{ campaign.name }}."})
    with_campaign = enroll(sequence, first_name="Ada", campaign=CampaignFactory(name="Spring webinar"))
    without = enroll(sequence, first_name="Bo")
    connection = Connection()

    send_batch(connection)

    bodies = {m.to[0]: m.body.split("\n")[0] for m in connection.sent}
    assert bodies == {with_campaign.lead.email: "Ada came for Spring webinar.", without.lead.email: "Bo came for ."}


# --- A batch of many kinds -------------------------------------------------------------------


def test_a_batch_counts_its_call_tasks_and_emails_together(rep_user):
    enroll(call_sequence(), owner=rep_user)
    enroll(sequence_with_steps())

    assert send_batch(Connection()).sent == 2


def test_a_batch_counts_its_failed_call_tasks_and_emails_together():
    enroll(call_sequence())  # no owner to call
    refused = enroll(sequence_with_steps())
    refusal = smtplib.SMTPRecipientsRefused({refused.lead.email: (550, b"No such user")})

    assert send_batch(Connection(error_at=0, error=refusal)).failed == 2


def test_a_batch_counts_the_suppressed_it_sorted_out_and_the_ones_suppressed_since():
    sequence = sequence_with_steps()
    early, late = enroll(sequence), enroll(sequence)
    services.suppression_add(email=early.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)

    def unsubscribe_meanwhile():
        services.suppression_add(email=late.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)

    result = send_batch(Connection(on_open=unsubscribe_meanwhile))

    assert (result.sent, result.skipped) == (0, 2)


def test_a_lead_that_unsubscribed_and_left_while_the_batch_ran_keeps_its_own_exit():
    enrollment = enroll(sequence_with_steps())

    def unsubscribed_meanwhile():
        services.suppression_add(email=enrollment.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)
        services.lead_exit_all(lead_id=enrollment.lead.pk, reason="Unsubscribed")

    connection = Connection(on_open=unsubscribed_meanwhile)
    result = send_batch(connection)

    assert (result.sent, result.skipped, connection.sent) == (0, 1, [])
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason, enrollment.finished_at) == (Enrollment.Status.EXITED, "Unsubscribed", SENDING_TIME)


def test_a_suppressed_address_held_by_another_worker_is_left_to_it():
    sequence = sequence_with_steps()
    mine, theirs = enroll(sequence), enroll(sequence)
    other_token = uuid.uuid4()

    def taken_and_suppressed_meanwhile():
        take(row(theirs).pk, other_token)
        services.suppression_add(email=theirs.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)

    result = send_batch(Connection(on_open=taken_and_suppressed_meanwhile))

    assert result.sent == 1
    assert (row(mine).status, held_by(row(theirs).pk), row(theirs).reason) == (Delivery.Status.SENT, (CLAIMED, other_token), "")
    theirs.refresh_from_db()
    assert theirs.status == Enrollment.Status.EXITED  # the lead leaves; the row is its holder's to record


def test_completing_one_enrollment_leaves_the_others_of_the_batch_active():
    done, going_on = enroll(sequence_with_steps(name="One step")), enroll(sequence_with_steps({}, {"delay": timedelta(days=1)}))

    send_batch()

    done.refresh_from_db()
    going_on.refresh_from_db()
    assert (done.status, going_on.status) == (Enrollment.Status.COMPLETED, Enrollment.Status.ACTIVE)


def test_an_enrollment_that_exits_while_its_last_email_goes_out_stays_exited():
    enrollment = enroll(sequence_with_steps())

    class ExitingConnection(Connection):
        def send_messages(self, messages):
            services.enrollment_exit(enrollment=enrollment, reason="Converted")
            return super().send_messages(messages)

    assert send_batch(ExitingConnection()).sent == 1

    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason, enrollment.finished_at) == (Enrollment.Status.EXITED, "Converted", SENDING_TIME)


def test_a_worker_back_after_the_reaper_marked_its_emails_unknown_leaves_them_unknown_and_says_what_became_of_them():
    """Paused past the stale time mid-send: the reaper marks the chunk unknown; the worker, resumed, hands the
    emails over (it had them) but records nothing over the reaper's verdict: no `sent`, no next step, no event."""
    from core.models import DomainEvent
    from nurturing.claim import deliveries_reap

    sequence = sequence_with_steps({}, {"delay": timedelta(days=1)})
    enroll(sequence), enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    class PausedConnection(Connection):
        def send_messages(self, messages):
            if not self.sent:  # paused here, past the stale time: the reaper runs meanwhile
                deliveries_reap(now=SENDING_TIME + timedelta(minutes=30), stale_after=timedelta(minutes=10))
            return super().send_messages(messages)

    connection = PausedConnection()
    with time_machine.travel(SENDING_TIME, tick=False):
        result = deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    assert len(connection.sent) == 2 and (result.sent, result.taken_by_others) == (0, 2)
    rows = Delivery.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", flat=True)) == {Delivery.Status.UNKNOWN}
    assert all(r.reason.startswith("Its worker stopped answering while sending and it was marked unknown; the worker came "
                                   "back and it handed the email to the mail server at ") for r in rows)
    assert not Delivery.objects.filter(step__position=2).exists()
    assert not DomainEvent.objects.filter(type="email.sent").exists()


def test_a_batch_sent_again_changes_nothing():
    sequence = sequence_with_steps()
    enroll(sequence), enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        deliveries_send(ids=ids, token=token, connection=Connection())
    before = list(Delivery.objects.order_by("pk").values_list("status", "reason", "updated_at"))

    with time_machine.travel(SENDING_TIME, tick=False):
        again = deliveries_send(ids=ids, token=token, connection=Connection())

    assert (again.sent, again.skipped, again.failed, again.rescheduled, again.taken_by_others) == (0, 0, 0, 0, 2)
    assert list(Delivery.objects.order_by("pk").values_list("status", "reason", "updated_at")) == before


def test_a_batch_looks_only_at_the_ids_it_is_given():
    sequence = sequence_with_steps()
    enroll(sequence), enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = deliveries_send(ids=ids[:1], token=token, connection=Connection())

    assert result.sent == 1
    assert [held_by(pk)[0] for pk in ids] == [Delivery.Status.SENT, CLAIMED]


def test_a_batch_under_another_token_leaves_the_rows_as_they_are():
    sequence = sequence_with_steps()
    enroll(sequence)
    services.sequence_pause(sequence=sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = deliveries_send(ids=ids, token=uuid.uuid4(), connection=Connection())

    assert (result.rescheduled, result.taken_by_others) == (0, 1)
    assert (held_by(ids[0]), Delivery.objects.get().reason) == ((CLAIMED, token), "")


def test_rows_taken_before_the_batch_loads_and_after_it_opens_are_both_counted():
    sequence = sequence_with_steps()
    enroll(sequence), enroll(sequence), enroll(sequence)
    token, ids = deliveries_claim(limit=10, now=MONDAY_10_UTC)
    take(ids[0], uuid.uuid4())

    def another_worker_takes_one():
        take(ids[1], uuid.uuid4())

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = deliveries_send(ids=ids, token=token, connection=Connection(on_open=another_worker_takes_one))

    assert (result.sent, result.taken_by_others) == (1, 2)


@pytest.fixture
def chunks_of_50(settings):
    settings.CRM_NURTURE_SEND_CHUNK = 50


def many_claimed(count):
    sequence = sequence_with_steps()
    for _ in range(count):
        enroll(sequence)
    return deliveries_claim(limit=count, now=MONDAY_10_UTC)


def test_out_of_time_leaves_the_rows_another_worker_took_from_a_later_chunk_alone(monkeypatch, chunks_of_50):
    token, ids = many_claimed(51)  # two chunks: 50 and 1
    other_token = uuid.uuid4()

    def another_worker_takes_the_last():
        take(ids[0], other_token)

    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(SoftTimeLimitExceeded):
        strike(1, Connection, "send_messages", monkeypatch)
        deliveries_send(ids=ids, token=token, connection=Connection(on_open=another_worker_takes_the_last), now=MONDAY_10_UTC)

    assert (held_by(ids[0]), Delivery.objects.get(pk=ids[0]).reason) == ((CLAIMED, other_token), "")
    assert [held_by(pk)[0] for pk in ids[1:]].count(Delivery.Status.SCHEDULED) == 49


def test_a_transient_error_leaves_the_rows_another_worker_took_from_a_later_chunk_alone(chunks_of_50):
    token, ids = many_claimed(51)
    other_token = uuid.uuid4()

    def another_worker_takes_the_last():
        take(ids[0], other_token)

    connection = Connection(on_open=another_worker_takes_the_last, error_at=0, error=smtplib.SMTPServerDisconnected("reset"))
    with time_machine.travel(SENDING_TIME, tick=False), pytest.raises(TransientSendError):
        deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    assert held_by(ids[0]) == (CLAIMED, other_token)
    assert [held_by(pk) for pk in ids[1:]] == [(CLAIMED, token)] * 50


def test_a_batch_moves_its_emails_to_sending_a_chunk_at_a_time(settings):
    """What a worker killed mid-send leaves unknown: at most a chunk per process (CRM_NURTURE_SEND_CHUNK)."""
    settings.CRM_NURTURE_SEND_CHUNK = 3
    token, ids = many_claimed(7)
    sending_at_each_send = []

    class Counting(Connection):
        def send_messages(self, messages):
            sending_at_each_send.append(Delivery.objects.filter(status=Delivery.Status.SENDING).count())
            return super().send_messages(messages)

    with time_machine.travel(SENDING_TIME, tick=False):
        assert deliveries_send(ids=ids, token=token, connection=Counting(), now=MONDAY_10_UTC).sent == 7

    assert sending_at_each_send == [3, 3, 3, 3, 3, 3, 1]  # a chunk is recorded once it is all handed over


def test_a_batch_of_more_than_a_chunk_sends_every_email_once(chunks_of_50):
    token, ids = many_claimed(51)
    connection = Connection()

    with time_machine.travel(SENDING_TIME, tick=False):
        result = deliveries_send(ids=ids, token=token, connection=connection, now=MONDAY_10_UTC)

    assert (result.sent, len(connection.sent), len({m.to[0] for m in connection.sent})) == (51, 51, 51)


def test_each_lead_of_a_batch_gets_its_stage_action_whatever_the_others_need(mailbox):
    sequence = sequence_with_steps({"stage_action": LeadStatus.MQL})
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        leads = [lead_at(LeadStatus.NURTURING), lead_at(LeadStatus.MQL), lead_at(LeadStatus.NURTURING)]
        for lead in leads:
            services.enrollment_create(lead=lead, sequence=sequence)
        assert run_once().sent == 3

    for lead in leads:
        lead.refresh_from_db()
    assert [lead.status for lead in leads] == [LeadStatus.MQL] * 3


@pytest.mark.parametrize("owner", ["none", "inactive"])
def test_a_call_step_that_fails_for_one_lead_still_goes_for_the_others(rep_user, other_rep, owner):
    sequence = call_sequence()
    callable_ = enroll(sequence, owner=rep_user)
    enroll(sequence, owner=None if owner == "none" else other_rep)
    type(other_rep).objects.filter(pk=other_rep.pk).update(is_active=False)

    result = send_batch(Connection())

    assert (result.sent, result.failed) == (1, 1)
    assert Task.objects.get().lead == callable_.lead


def test_the_template_gets_the_sender_and_the_unsubscribe_link(rep_user, settings):
    settings.CRM_SITE_URL = "https://crm.example.com"
    sequence = sequence_with_steps({"text_template": "From {{ sender.first_name }} at {{ sender.email }}: {{ links.unsubscribe }}"})
    enroll(sequence, owner=rep_user)
    connection = Connection()

    send_batch(connection)

    [message] = connection.sent
    first_line = message.body.split("\n")[0]
    assert first_line.startswith(f"From {rep_user.first_name} at {rep_user.email}: https://crm.example.com/unsubscribe/")
    assert first_line.removeprefix(f"From {rep_user.first_name} at {rep_user.email}: ") in message.extra_headers["List-Unsubscribe"]


def test_a_batch_over_djangos_smtp_backend_hands_each_email_to_the_server_once():
    from django.core.mail.backends.smtp import EmailBackend

    from tests.smtp_sink import SmtpSink

    sequence = sequence_with_steps({"subject_template": "Hi {{ first_name }}"})
    first, second = enroll(sequence, first_name="Ada"), enroll(sequence, first_name="Bo")

    with SmtpSink() as sink:
        connection = EmailBackend(host="127.0.0.1", port=sink.port, use_tls=False, timeout=10)
        assert send_batch(connection).sent == 2
        received = sink.messages

    by_recipient = {rcpt_tos[0]: message for _, rcpt_tos, message in received}
    assert sorted(by_recipient) == sorted([first.lead.email, second.lead.email])
    for enrollment, name in ((first, "Ada"), (second, "Bo")):
        message = by_recipient[enrollment.lead.email]
        assert (message["Subject"], message["Message-ID"]) == (f"Hi {name}", row(enrollment).message_id)
