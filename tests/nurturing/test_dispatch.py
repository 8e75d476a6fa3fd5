"""Claim, send, record: the dispatcher's rules, one loop step at a time, with frozen time."""

import smtplib
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core.exceptions import ValidationError

from leads import services as lead_services
from leads.models import Task
from leads.pipeline import LeadStatus
from nurturing import services
from nurturing.claim import deliveries_claim, deliveries_reap
from nurturing.dispatch import TransientSendError, deliveries_send
from nurturing.models import Delivery, DueDelivery, Enrollment, Sequence, Step, Suppression
from tests.factories import LeadFactory, lead_at, sequence_with_steps

pytestmark = pytest.mark.django_db

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=dt_timezone.utc)


def run_once(now=None, limit=100):
    """One dispatcher step and one worker step, as the tasks do them."""
    token, ids = deliveries_claim(limit=limit, now=now)
    return deliveries_send(ids=ids, token=token, now=now) if ids else None


def two_step_sequence(**fields):
    return sequence_with_steps({}, {"delay": timedelta(days=2)}, **fields)


# --- Sending and the next step ------------------------------------------------------


def test_an_enrolled_lead_gets_a_personalized_email_and_its_next_step_is_scheduled(mailbox, rep_user):
    sequence = two_step_sequence()
    lead = LeadFactory(first_name="Ada", owner=rep_user)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        enrollment = services.enrollment_create(lead=lead, sequence=sequence)
        result = run_once()

    assert result.sent == 1
    assert len(mailbox) == 1
    message = mailbox[0]
    assert message.subject == "Step 1 for Ada"
    assert "Hello Ada" in message.body
    assert message.to == [lead.email]
    assert message.reply_to == [rep_user.email]
    assert rep_user.email in message.from_email
    first = enrollment.deliveries.get(step__position=1)
    assert (first.status, first.subject, first.message_id) == (Delivery.Status.SENT, "Step 1 for Ada", message.extra_headers["Message-ID"])
    second = enrollment.deliveries.get(step__position=2)
    assert second.status == Delivery.Status.SCHEDULED
    assert second.due_at == MONDAY_10_UTC + timedelta(days=2)


def test_a_missing_value_uses_the_templates_default(mailbox):
    sequence = sequence_with_steps()
    services.enrollment_create(lead=LeadFactory(first_name=""), sequence=sequence)
    run_once()
    assert mailbox[0].subject == "Step 1 for there"


def test_the_last_step_completes_the_enrollment(mailbox):
    sequence = sequence_with_steps()
    enrollment = services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    run_once()
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED


def test_nothing_goes_before_it_is_due(mailbox):
    sequence = sequence_with_steps({"delay": timedelta(hours=3)})
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
        assert run_once() is None
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=3), tick=False):
        assert run_once().sent == 1


def test_a_batch_sent_twice_sends_each_email_once(mailbox):
    sequence = sequence_with_steps()
    for _ in range(3):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    deliveries_send(ids=ids, token=token)
    again = deliveries_send(ids=ids, token=token)
    assert len(mailbox) == 3
    assert again.sent == 0


def test_two_dispatchers_never_claim_the_same_delivery():
    sequence = sequence_with_steps()
    for _ in range(5):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    _, first = deliveries_claim(limit=3)
    _, second = deliveries_claim(limit=3)
    assert len(first) == 3 and len(second) == 2
    assert not set(first) & set(second)


def test_a_delivery_claimed_under_another_token_is_not_sent(mailbox):
    sequence = sequence_with_steps()
    services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    _, ids = deliveries_claim(limit=10)
    import uuid

    result = deliveries_send(ids=ids, token=uuid.uuid4())
    assert result.sent == 0 and mailbox == []


# --- Stop rules -------------------------------------------------------------------


def test_a_suppressed_address_is_skipped_and_the_lead_leaves_the_sequence(mailbox):
    sequence = two_step_sequence()
    lead = LeadFactory()
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    services.suppression_add(email=lead.email.upper(), reason=Suppression.Reason.UNSUBSCRIBED)

    run_once()

    assert mailbox == []
    delivery = enrollment.deliveries.get()
    assert delivery.status == Delivery.Status.SKIPPED and "suppressed" in delivery.reason
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED


@pytest.mark.parametrize(
    ("status", "words"),
    [(LeadStatus.CUSTOMER, "customer"), (LeadStatus.LOST, "lost"), (LeadStatus.DISQUALIFIED, "disqualified")],
)
def test_converting_or_losing_a_lead_cancels_its_pending_deliveries(mailbox, status, words, django_capture_on_commit_callbacks):
    sequence = two_step_sequence()
    lead = lead_at(LeadStatus.CONTACTED)
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)

    with django_capture_on_commit_callbacks(execute=True):
        if status == LeadStatus.CUSTOMER:
            lead_services.lead_convert_to_customer(lead=lead, deal_value=100)
        else:
            lead_services.lead_change_stage(lead=lead, to_status=status, reason="No fit")
    run_once()

    assert mailbox == []
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED and words in enrollment.exit_reason.lower()
    assert enrollment.deliveries.get().status == Delivery.Status.SKIPPED


def test_a_lead_past_the_goal_stage_is_not_sent_to(mailbox):
    sequence = two_step_sequence(goal_stage=LeadStatus.MQL)
    lead = lead_at(LeadStatus.NURTURING)
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    # Moved behind the signal's back (e.g. a data fix): the send-time check still stops it.
    type(lead).objects.filter(pk=lead.pk).update(status=LeadStatus.SQL)

    run_once()

    assert mailbox == []
    assert "goal" in enrollment.deliveries.get().reason


def test_a_paused_sequence_holds_its_deliveries_until_resumed(mailbox):
    sequence = sequence_with_steps()
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
        services.sequence_pause(sequence=sequence)
        result = run_once()
    assert result.rescheduled == 1 and mailbox == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SCHEDULED and "paused" in delivery.reason
    services.sequence_activate(sequence=sequence)
    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=20), tick=False):
        assert run_once().sent == 1


# --- Windows, time zones, caps ---------------------------------------------------------


def test_a_delivery_outside_the_window_moves_to_the_next_window_in_the_leads_time_zone(mailbox):
    sequence = sequence_with_steps({"send_days": "01234", "window_start": time(9), "window_end": time(17)})
    lead = LeadFactory(timezone="America/New_York")
    # Monday 10:00 UTC is 05:00 in New York: too early there.
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    delivery = enrollment.deliveries.get()
    assert delivery.due_at == datetime(2026, 11, 23, 14, 0, tzinfo=dt_timezone.utc)  # 09:00 in New York

    # If it is claimed late (Friday 18:00 New York), it moves to Monday 09:00 there, with the reason.
    friday_evening = datetime(2026, 11, 27, 23, 0, tzinfo=dt_timezone.utc)
    with time_machine.travel(friday_evening, tick=False):
        result = run_once()
    assert result.rescheduled == 1 and mailbox == []
    delivery.refresh_from_db()
    assert delivery.due_at == datetime(2026, 11, 30, 14, 0, tzinfo=dt_timezone.utc)
    assert "send window" in delivery.reason


def test_a_lead_without_a_time_zone_uses_the_accounts(settings):
    settings.TIME_ZONE = "Europe/Paris"
    sequence = sequence_with_steps({"window_start": time(9), "window_end": time(17), "send_days": "0123456"})
    with time_machine.travel(datetime(2026, 11, 23, 6, 0, tzinfo=dt_timezone.utc), tick=False):
        enrollment = services.enrollment_create(lead=LeadFactory(timezone=""), sequence=sequence)
    assert enrollment.deliveries.get().due_at == datetime(2026, 11, 23, 8, 0, tzinfo=dt_timezone.utc)


@pytest.mark.parametrize(("account_zone", "next_midnight"), [
    ("UTC", datetime(2026, 11, 24, 0, 0, tzinfo=dt_timezone.utc)),
    ("Europe/Berlin", datetime(2026, 11, 23, 23, 0, tzinfo=dt_timezone.utc)),
])
def test_the_daily_cap_per_sender_moves_the_rest_to_the_next_day(mailbox, rep_user, settings, account_zone, next_midnight):
    # The day the cap counts is the account's day: its next midnight, in its own time zone.
    settings.TIME_ZONE = account_zone
    sequence = sequence_with_steps(daily_cap_per_sender=2)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        for _ in range(3):
            services.enrollment_create(lead=LeadFactory(owner=rep_user), sequence=sequence)
        result = run_once()
    assert (result.sent, result.rescheduled) == (2, 1)
    waiting = Delivery.objects.get(status=Delivery.Status.SCHEDULED)
    assert "daily cap of 2" in waiting.reason
    assert waiting.due_at == next_midnight


def test_a_later_batch_the_same_day_counts_what_earlier_batches_sent(mailbox, rep_user, settings):
    settings.TIME_ZONE = "UTC"
    sequence = sequence_with_steps(daily_cap_per_sender=3)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        for _ in range(2):
            services.enrollment_create(lead=LeadFactory(owner=rep_user), sequence=sequence)
        assert run_once().sent == 2
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=3), tick=False):
        for _ in range(3):
            services.enrollment_create(lead=LeadFactory(owner=rep_user), sequence=sequence)
        result = run_once()
    assert (result.sent, result.rescheduled) == (1, 2)  # 2 this morning + 1 now = the cap of 3
    assert len(mailbox) == 3
    with time_machine.travel(MONDAY_10_UTC + timedelta(days=1), tick=False):
        assert run_once().sent == 2  # a new day, a new cap


# --- Stage actions, call tasks, switched-off steps ---------------------------------------


def test_a_step_with_a_stage_action_moves_the_lead_through_the_stage_service(mailbox):
    sequence = sequence_with_steps({"stage_action": LeadStatus.NURTURING}, name="Guide follow-up")
    lead = lead_at(LeadStatus.CONTACTED)
    services.enrollment_create(lead=lead, sequence=sequence)
    run_once()
    lead.refresh_from_db()
    assert lead.status == LeadStatus.NURTURING
    change = lead.stage_changes.first()
    assert change.actor == "sequence Guide follow-up step 1" and change.changed_by is None


def test_a_call_step_creates_a_task_for_the_owner_instead_of_an_email(mailbox, rep_user):
    sequence = sequence_with_steps({"kind": Step.Kind.CALL_TASK, "subject_template": "", "text_template": ""})
    lead = LeadFactory(owner=rep_user, first_name="Cal")
    services.enrollment_create(lead=lead, sequence=sequence)
    result = run_once()
    assert result.sent == 1 and mailbox == []
    task = Task.objects.get(lead=lead)
    assert task.assignee == rep_user and "Call Cal" in task.title


def test_a_switched_off_step_is_passed_over_and_the_lead_goes_on(mailbox):
    sequence = sequence_with_steps({}, {}, {})
    enrollment = services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    run_once()
    Step.objects.filter(sequence=sequence, position=2).update(is_active=False)
    run_once()
    run_once()
    statuses = dict(enrollment.deliveries.values_list("step__position", "status"))
    assert statuses == {1: "sent", 2: "skipped", 3: "sent"}
    assert [m.subject for m in mailbox] == ["Step 1 for " + enrollment.lead.first_name, "Step 3 for " + enrollment.lead.first_name]


def test_an_edited_step_sends_the_new_text_to_leads_already_enrolled(mailbox):
    sequence = sequence_with_steps()
    services.enrollment_create(lead=LeadFactory(first_name="Bo"), sequence=sequence)
    Step.objects.filter(sequence=sequence).update(subject_template="Fixed typo for {{ first_name }}")
    run_once()
    assert mailbox[0].subject == "Fixed typo for Bo"


def test_a_used_step_cannot_be_deleted():
    from django.db.models import ProtectedError

    sequence = sequence_with_steps()
    services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    with pytest.raises(ProtectedError):
        sequence.steps.get().delete()


# --- Errors from the provider ------------------------------------------------------------


class FlakyConnection:
    """An email connection that fails the n-th message with `error`."""

    def __init__(self, fail_at, error):
        self.fail_at, self.error, self.sent = fail_at, error, []

    def open(self):
        return True

    def close(self):
        pass

    def send_messages(self, messages):
        if len(self.sent) == self.fail_at:
            self.fail_at = None
            raise self.error
        self.sent.extend(messages)
        return len(messages)


def test_a_transient_error_hands_the_unsent_back_and_the_retry_sends_them_once():
    sequence = sequence_with_steps()
    for _ in range(4):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    connection = FlakyConnection(2, smtplib.SMTPServerDisconnected("reset"))

    with pytest.raises(TransientSendError):
        deliveries_send(ids=ids, token=token, connection=connection)
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2
    assert DueDelivery.objects.filter(delivery_id__in=ids, claim_token=token).count() == 2  # still this task's

    deliveries_send(ids=ids, token=token, connection=connection)
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 4
    assert len(connection.sent) == 4
    assert len({m.to[0] for m in connection.sent}) == 4


def test_a_permanent_refusal_fails_that_delivery_with_the_reason_and_the_rest_go():
    sequence = sequence_with_steps()
    for _ in range(3):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    refusal = smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"No such user")})
    connection = FlakyConnection(1, refusal)

    result = deliveries_send(ids=ids, token=token, connection=connection)

    assert (result.sent, result.failed) == (2, 1)
    failed = Delivery.objects.get(status=Delivery.Status.FAILED)
    assert "No such user" in failed.reason


def test_a_step_that_renders_past_its_limits_fails_its_deliveries_with_the_reason_and_the_rest_go(mailbox, settings, monkeypatch):
    from nurturing import rendering

    settings.CRM_NURTURE_RENDER_MAX_CHARS = 100_000
    # Saved before the sandbox refused loops over fixed texts: a megabyte per email.
    loops = '{% for a in "' + "x" * 1000 + '" %}{% for b in "' + "x" * 1000 + '" %}spam{% endfor %}{% endfor %}'
    bad, good = sequence_with_steps({"text_template": loops}, name="Bad"), sequence_with_steps(name="Good")
    renders = []
    render = rendering.CompiledStep.render
    monkeypatch.setattr(rendering.CompiledStep, "render", lambda self, context: renders.append(context["lead"]) or render(self, context))
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        for sequence in (bad, bad, bad):
            services.enrollment_create(lead=LeadFactory(), sequence=sequence)
        services.enrollment_create(lead=LeadFactory(first_name="Grace"), sequence=good)
        result = run_once()

    assert (result.sent, result.failed) == (1, 3)
    assert [m.subject for m in mailbox] == ["Step 1 for Grace"]
    failed = Delivery.objects.filter(status=Delivery.Status.FAILED)
    assert {d.enrollment.sequence for d in failed} == {bad}
    assert all(d.reason.startswith("Could not render: plain-text body: longer than 100,000 characters") for d in failed)
    assert len(renders) == 2  # the bad step once: the batch's other leads fail at once


# --- The reaper: crashes never cause a second send ------------------------------------


def test_the_reaper_hands_back_unstarted_rows_and_marks_in_flight_rows_unknown(mailbox):
    sequence = sequence_with_steps()
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        for _ in range(4):
            services.enrollment_create(lead=LeadFactory(), sequence=sequence)
        _, ids = deliveries_claim(limit=10)
        assert len(ids) == 4
        # A worker took two rows into `sending` and died.
        Delivery.objects.filter(pk__in=ids[:2]).update(status=Delivery.Status.SENDING, claimed_at=MONDAY_10_UTC)
    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=11), tick=False):
        handed_back, unknown = deliveries_reap()
        assert (handed_back, unknown) == (2, 2)
        run_once()
    assert len(mailbox) == 2
    assert Delivery.objects.filter(status=Delivery.Status.UNKNOWN).count() == 2
    assert all("not sent again" in d.reason for d in Delivery.objects.filter(status=Delivery.Status.UNKNOWN))


# --- Enrollment rules ------------------------------------------------------------------------


def test_a_lead_is_in_a_sequence_at_most_once_at_a_time():
    sequence = sequence_with_steps()
    lead = LeadFactory()
    services.enrollment_create(lead=lead, sequence=sequence)
    with pytest.raises(ValidationError, match="already in this sequence"):
        services.enrollment_create(lead=lead, sequence=sequence)
    assert Enrollment.objects.count() == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda lead, seq: Sequence.objects.filter(pk=seq.pk).update(status="draft"), "activate it first"),
        (lambda lead, seq: Suppression.objects.create(email=lead.email), "suppressed"),
        (lambda lead, seq: type(lead).objects.filter(pk=lead.pk).update(email="", phone="+1 555 0100"), "no email"),
        (lambda lead, seq: type(lead).objects.filter(pk=lead.pk).update(status="customer"), "customer"),
    ],
    ids=["draft", "suppressed", "no-email", "customer"],
)
def test_enrolling_is_refused_with_the_reason(setup, message):
    sequence = sequence_with_steps()
    lead = LeadFactory()
    setup(lead, sequence)
    lead.refresh_from_db()
    sequence.refresh_from_db()
    with pytest.raises(ValidationError, match=message):
        services.enrollment_create(lead=lead, sequence=sequence)
    assert not Enrollment.objects.exists()


def test_enrolling_many_reports_each_refusal():
    sequence = sequence_with_steps()
    good, bad = LeadFactory(), LeadFactory()
    Suppression.objects.create(email=bad.email)
    enrolled, refused = services.enroll_many(leads=[good, bad], sequence=sequence)
    assert enrolled == 1 and len(refused) == 1 and "suppressed" in refused[0]




def test_a_call_step_for_an_inactive_owner_fails_with_the_reason(rep_user):
    sequence = sequence_with_steps({"kind": Step.Kind.CALL_TASK, "subject_template": "", "text_template": ""})
    lead = LeadFactory(owner=rep_user)
    services.enrollment_create(lead=lead, sequence=sequence)
    type(rep_user).objects.filter(pk=rep_user.pk).update(is_active=False)
    result = run_once()
    assert result.failed == 1
    assert "call task" in Delivery.objects.get().reason


def test_a_crash_between_recording_a_send_and_scheduling_the_next_step_leaves_nothing_half_written(mailbox, monkeypatch):
    from nurturing import dispatch

    schedule_next = dispatch._Batch._schedule_next

    def crash_after_a_send(self, done):
        if any(d.status == Delivery.Status.SENT for d in done):
            raise RuntimeError("worker lost")
        schedule_next(self, done)

    monkeypatch.setattr(dispatch._Batch, "_schedule_next", crash_after_a_send)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        enrollment = services.enrollment_create(lead=LeadFactory(), sequence=two_step_sequence())
        with pytest.raises(RuntimeError):
            run_once()
    assert len(mailbox) == 1
    # Not "sent" without its next step: still in flight, which the reaper marks unknown (never sent again).
    assert list(enrollment.deliveries.values_list("step__position", "status")) == [(1, Delivery.Status.SENDING)]
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=1), tick=False):
        assert deliveries_reap() == (0, 1)


def test_a_zero_stale_time_reaps_at_once():
    sequence = sequence_with_steps()
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    with time_machine.travel(MONDAY_10_UTC + timedelta(days=3), tick=False):
        deliveries_claim(limit=10)
    with time_machine.travel(MONDAY_10_UTC + timedelta(days=3, seconds=1), tick=False):
        assert deliveries_reap(stale_after=timedelta(0)) == (1, 0)


def test_the_dispatcher_runs_on_the_apps_clock_not_the_databases():
    # Years ahead of the database server's own clock: a claim or a reap that asked
    # the database for the time (PostgreSQL's now()) would find nothing due.
    far_ahead = datetime(2031, 1, 6, 10, 0, tzinfo=dt_timezone.utc)
    with time_machine.travel(far_ahead, tick=False):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence_with_steps())
        _, ids = deliveries_claim(limit=10)
    assert len(ids) == 1
    with time_machine.travel(far_ahead + timedelta(hours=1), tick=False):
        assert deliveries_reap(stale_after=timedelta(minutes=10)) == (1, 0)


def test_claimed_rows_are_stored_as_the_orm_stores_them():
    sequence = sequence_with_steps()
    services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    claim = DueDelivery.objects.get(delivery_id=ids[0])
    assert claim.claim_token == token
    assert DueDelivery.objects.filter(claimed_at=claim.claimed_at, claim_token=token).count() == 1
    assert Delivery.objects.filter(pk=ids[0], queued__claim_token=token).exists()


def test_a_delivery_has_its_message_id_in_the_database_before_the_email_leaves(mailbox, monkeypatch):
    from nurturing import dispatch as engine

    enrollment = services.enrollment_create(lead=LeadFactory(), sequence=two_step_sequence())
    seen = []
    message = engine._Batch._message

    def spy(batch, d):
        seen.append(Delivery.objects.values_list("status", "message_id").get(pk=d.pk))
        return message(batch, d)

    monkeypatch.setattr(engine._Batch, "_message", spy)
    run_once()
    [(status, message_id)] = seen
    assert status == Delivery.Status.SENDING and message_id == mailbox[0].extra_headers["Message-ID"]
    assert enrollment.deliveries.get(step__position=1).message_id == message_id
