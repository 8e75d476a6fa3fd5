"""The send policy, row by row: who is skipped, who waits and until when, who is capped, and the reason each row keeps."""

from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine

from leads.models import Resource
from leads.pipeline import LeadStatus
from nurturing import services
from nurturing.models import Delivery, Enrollment, Step, Suppression
from tests.factories import lead_at, sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC, enroll, row, run_once

pytestmark = pytest.mark.django_db

TUESDAY_MIDNIGHT_UTC = datetime(2026, 11, 24, 0, 0, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def utc_account(settings):
    settings.TIME_ZONE = "UTC"


# --- Stops: skipped, and the lead leaves the sequence -----------------------------------


def test_a_suppressed_address_is_skipped_with_the_reason_and_the_lead_exits_at_the_batchs_time(mailbox):
    enrollment = enroll(sequence_with_steps({}, {}))
    services.suppression_add(email=enrollment.lead.email, reason=Suppression.Reason.BOUNCED)
    batch_time = MONDAY_10_UTC + timedelta(minutes=3)

    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=5), tick=False):
        result = run_once(now=batch_time)

    assert (result.sent, result.skipped, result.rescheduled) == (0, 1, 0)
    assert mailbox == []
    skipped = row(enrollment)
    assert (skipped.status, skipped.reason, skipped.updated_at) == (
        Delivery.Status.SKIPPED, "Skipped: the address is suppressed.", batch_time,
    )
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason, enrollment.finished_at) == (
        Enrollment.Status.EXITED, "the address is suppressed", batch_time,
    )
    assert list(enrollment.deliveries.values_list("step__position", flat=True)) == [1]  # no next step


def test_only_the_suppressed_lead_of_a_batch_is_skipped(mailbox):
    sequence = sequence_with_steps()
    kept, stopped = enroll(sequence), enroll(sequence)
    services.suppression_add(email=stopped.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.skipped) == (1, 1)
    assert [m.to for m in mailbox] == [[kept.lead.email]]
    assert (row(kept).status, row(stopped).status) == (Delivery.Status.SENT, Delivery.Status.SKIPPED)
    kept.refresh_from_db()
    assert kept.status == Enrollment.Status.COMPLETED


def test_a_lead_that_exits_while_the_batch_sorts_keeps_its_own_exit(mailbox, monkeypatch):
    from nurturing import send_policy

    enrollment = enroll(sequence_with_steps())
    services.suppression_add(email=enrollment.lead.email, reason=Suppression.Reason.UNSUBSCRIBED)
    stop_reason = send_policy.delivery_stop_reason

    def replied_meanwhile(**kwargs):
        services.enrollment_exit(enrollment=enrollment, reason="Replied")
        return stop_reason(**kwargs)

    monkeypatch.setattr(send_policy, "delivery_stop_reason", replied_meanwhile)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once(now=MONDAY_10_UTC + timedelta(minutes=3))

    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason, enrollment.finished_at) == (Enrollment.Status.EXITED, "Replied", MONDAY_10_UTC)


def test_a_lead_past_the_goal_is_skipped_with_the_stage_it_reached(mailbox):
    sequence = sequence_with_steps(goal_stage=LeadStatus.MQL)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        lead = lead_at(LeadStatus.NURTURING)
        enrollment = services.enrollment_create(lead=lead, sequence=sequence)
        type(lead).objects.filter(pk=lead.pk).update(status=LeadStatus.SQL)
        run_once()

    assert row(enrollment).reason == "Skipped: the lead reached SQL, the sequence's goal."
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, "the lead reached SQL, the sequence's goal")


def test_a_delivery_of_an_enrollment_that_already_left_is_skipped_and_its_exit_is_kept(mailbox):
    enrollment = enroll(sequence_with_steps())
    exited_at = MONDAY_10_UTC - timedelta(days=1)
    Enrollment.objects.filter(pk=enrollment.pk).update(status=Enrollment.Status.EXITED, exit_reason="Replied", finished_at=exited_at)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.skipped, mailbox) == (1, [])
    assert row(enrollment).reason == "Skipped: the lead left the sequence (Replied)."
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason, enrollment.finished_at) == (Enrollment.Status.EXITED, "Replied", exited_at)


def test_a_switched_off_step_is_skipped_and_the_lead_stays_in_the_sequence_for_the_next_one(mailbox):
    sequence = sequence_with_steps({}, {"delay": timedelta(hours=1)})
    enrollment = enroll(sequence)
    Step.objects.filter(sequence=sequence, position=1).update(is_active=False)
    batch_time = MONDAY_10_UTC + timedelta(minutes=3)

    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=5), tick=False):
        result = run_once(now=batch_time)

    assert (result.sent, result.skipped) == (0, 1)
    assert row(enrollment).reason == "Skipped: the step was switched off."
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.ACTIVE, "")
    # Passed over: the next step is due its delay after the batch's time.
    assert (row(enrollment, 2).status, row(enrollment, 2).due_at) == (Delivery.Status.SCHEDULED, batch_time + timedelta(hours=1))


def test_a_switched_off_last_step_completes_the_enrollment(mailbox):
    sequence = sequence_with_steps()
    enrollment = enroll(sequence)
    Step.objects.filter(sequence=sequence).update(is_active=False)
    batch_time = MONDAY_10_UTC + timedelta(minutes=3)

    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=5), tick=False):
        run_once(now=batch_time)

    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.finished_at) == (Enrollment.Status.COMPLETED, batch_time)


def test_a_switched_off_step_of_a_paused_enrollment_schedules_nothing_after_it(mailbox):
    sequence = sequence_with_steps({}, {})
    enrollment = enroll(sequence)
    Step.objects.filter(sequence=sequence, position=1).update(is_active=False)
    services.enrollment_pause(enrollment=enrollment)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().skipped == 1

    assert list(enrollment.deliveries.values_list("step__position", "status")) == [(1, Delivery.Status.SKIPPED)]
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.PAUSED


def test_a_call_step_for_a_lead_without_an_email_still_goes(mailbox, rep_user):
    sequence = sequence_with_steps({"kind": Step.Kind.CALL_TASK, "subject_template": "", "text_template": ""})
    enrollment = enroll(sequence, owner=rep_user)
    type(enrollment.lead).objects.filter(pk=enrollment.lead.pk).update(email="", phone="+1 555 0100")

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 1


# --- Waits: still scheduled, until a given time -----------------------------------------------


def test_a_paused_sequence_looks_again_in_a_quarter_of_an_hour(mailbox):
    sequence = sequence_with_steps()
    enrollment = enroll(sequence)
    services.sequence_pause(sequence=sequence)
    batch_time = MONDAY_10_UTC + timedelta(minutes=3)

    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=5), tick=False):
        result = run_once(now=batch_time)

    assert (result.rescheduled, result.skipped, result.sent) == (1, 0, 0)
    waiting = row(enrollment)
    assert (waiting.status, waiting.due_at, waiting.reason, waiting.claim_token, waiting.claimed_at, waiting.updated_at) == (
        Delivery.Status.SCHEDULED, batch_time + timedelta(minutes=15), "Waiting: the sequence is paused.", None, None, batch_time,
    )
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_a_paused_enrollment_waits_with_its_reason_and_the_rest_of_the_batch_goes(mailbox):
    sequence = sequence_with_steps()
    active, enrollment = enroll(sequence), enroll(sequence)
    services.enrollment_pause(enrollment=enrollment)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert (run_once().sent, row(active).status) == (1, Delivery.Status.SENT)

    assert (row(enrollment).reason, row(enrollment).due_at) == (
        "Waiting: the lead's enrollment is paused.", MONDAY_10_UTC + timedelta(minutes=15),
    )


def test_outside_the_window_a_delivery_waits_for_the_next_window_with_the_reason(mailbox):
    sequence = sequence_with_steps({"window_start": time(9), "window_end": time(17), "send_days": "0123456"})
    enrollment = enroll(sequence)
    evening = datetime(2026, 11, 23, 17, 0, tzinfo=dt_timezone.utc)  # the window closes at 17:00

    with time_machine.travel(evening, tick=False):
        result = run_once()

    assert (result.rescheduled, mailbox) == (1, [])
    waiting = row(enrollment)
    assert (waiting.status, waiting.due_at, waiting.reason, waiting.claim_token) == (
        Delivery.Status.SCHEDULED, datetime(2026, 11, 24, 9, 0, tzinfo=dt_timezone.utc),
        "Moved to the next send window (outside the step's days or hours in the lead's time zone).", None,
    )


def test_a_delivery_sent_after_waiting_keeps_no_waiting_reason(mailbox):
    sequence = sequence_with_steps()
    enrollment = enroll(sequence)
    services.sequence_pause(sequence=sequence)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once()
    services.sequence_activate(sequence=sequence)

    with time_machine.travel(MONDAY_10_UTC + timedelta(minutes=15), tick=False):
        assert run_once().sent == 1

    assert (row(enrollment).status, row(enrollment).reason) == (Delivery.Status.SENT, "")


# --- Conditions: passed over, and the lead goes on ---------------------------------------------


def condition_step(condition, **fields):
    return sequence_with_steps({"condition": condition, **fields}, {"delay": timedelta(hours=1)})


def test_a_step_for_downloaders_without_its_resource_is_passed_over_with_the_reason(mailbox):
    enrollment = enroll(condition_step(Step.Condition.DOWNLOADED))

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.skipped, mailbox) == (1, [])
    assert row(enrollment).reason == "Skipped: condition not met (the lead has not downloaded the resource)."
    assert row(enrollment, 2).due_at == MONDAY_10_UTC + timedelta(hours=1)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_a_step_for_downloaders_goes_to_the_lead_who_downloaded_it_and_not_to_others(mailbox):
    guide = Resource.objects.create(name="Pricing guide", slug="pricing-guide")
    other = Resource.objects.create(name="Webinar", slug="webinar")
    sequence = condition_step(Step.Condition.DOWNLOADED, condition_resource=guide)
    downloader, elsewhere, nobody = enroll(sequence), enroll(sequence), enroll(sequence)
    from leads import services as lead_services

    lead_services.form_submission_record(lead=downloader.lead, form_name="Guide", resource=guide)
    lead_services.form_submission_record(lead=elsewhere.lead, form_name="Webinar", resource=other)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.skipped) == (1, 2)
    assert [m.to for m in mailbox] == [[downloader.lead.email]]
    reason = "Skipped: condition not met (the lead has not downloaded Pricing guide)."
    assert (row(elsewhere).reason, row(nobody).reason) == (reason, reason)


def test_a_step_for_clickers_is_passed_over_after_a_reply_without_a_click(mailbox):
    from nurturing.models import EmailEvent

    sequence = sequence_with_steps({}, {"condition": Step.Condition.HUMAN_CLICK})
    enrollment = enroll(sequence)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once()
        EmailEvent.objects.create(delivery=row(enrollment), lead=enrollment.lead, kind="replied", provider="manual",
                                  occurred_at=MONDAY_10_UTC, dedupe_key="r1")
        run_once()

    assert row(enrollment, 2).reason == "Skipped: condition not met (no earlier email got a click from a person)."


def test_a_no_reply_step_is_passed_over_after_a_persons_reply_with_the_reason(mailbox):
    from nurturing.models import EmailEvent

    sequence = sequence_with_steps({}, {"condition": Step.Condition.NO_REPLY}, {})
    enrollment = enroll(sequence)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once()
        # Recorded without its rules (as before they existed): the enrollment is still active.
        EmailEvent.objects.create(delivery=row(enrollment), lead=enrollment.lead, kind="replied", provider="manual",
                                  occurred_at=MONDAY_10_UTC, dedupe_key="r1")
        assert run_once().skipped == 1

    assert row(enrollment, 2).reason == "Skipped: condition not met (an earlier email got a reply)."
    assert row(enrollment, 3).status == Delivery.Status.SCHEDULED


def test_a_no_reply_step_goes_after_a_click_without_a_reply(mailbox):
    from nurturing.models import EmailEvent

    sequence = sequence_with_steps({}, {"condition": Step.Condition.NO_REPLY})
    enrollment = enroll(sequence)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once()
        EmailEvent.objects.create(delivery=row(enrollment), lead=enrollment.lead, kind="clicked", provider="manual",
                                  occurred_at=MONDAY_10_UTC, dedupe_key="c1")
        assert run_once().sent == 1


def test_a_no_reply_step_ignores_a_machines_reply(mailbox):
    from nurturing.models import EmailEvent

    sequence = sequence_with_steps({}, {"condition": Step.Condition.NO_REPLY})
    enrollment = enroll(sequence)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once()
        EmailEvent.objects.create(delivery=row(enrollment), lead=enrollment.lead, kind="replied", provider="manual",
                                  occurred_at=MONDAY_10_UTC, dedupe_key="r1", is_machine=True)
        assert run_once().sent == 1


def test_a_clickers_step_counts_only_clicks_in_the_leads_own_enrollment(mailbox):
    from nurturing.models import EmailEvent

    sequence = sequence_with_steps({}, {"condition": Step.Condition.HUMAN_CLICK})
    clicker, other = enroll(sequence), enroll(sequence)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        run_once()
        EmailEvent.objects.create(delivery=row(clicker), lead=clicker.lead, kind="clicked", provider="manual",
                                  occurred_at=MONDAY_10_UTC, dedupe_key="c1")
        result = run_once()

    assert (result.sent, result.skipped) == (1, 1)
    assert (row(clicker, 2).status, row(other, 2).status) == (Delivery.Status.SENT, Delivery.Status.SKIPPED)


# --- The daily cap per sender ----------------------------------------------------------------


def sent_earlier(sequence, sender, at=MONDAY_10_UTC - timedelta(hours=1)):
    """A delivery of `sequence` that `sender` sent at `at` (it counts toward the cap of that day)."""
    enrollment = enroll(sequence)
    Delivery.objects.filter(pk=row(enrollment).pk).update(status=Delivery.Status.SENT, sender=sender, sent_at=at)


def test_the_cap_moves_what_is_past_it_to_tomorrows_window_with_the_reason(mailbox, rep_user, other_rep):
    sequence = sequence_with_steps({"window_start": time(9), "window_end": time(17), "send_days": "0123456"},
                                   daily_cap_per_sender=1)
    sent_earlier(sequence, other_rep)
    capped = enroll(sequence, owner=other_rep)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.rescheduled, mailbox) == (0, 1, [])
    waiting = row(capped)
    assert (waiting.status, waiting.due_at, waiting.reason, waiting.claim_token, waiting.claimed_at) == (
        Delivery.Status.SCHEDULED, datetime(2026, 11, 24, 9, 0, tzinfo=dt_timezone.utc),
        "Moved to the next day: the daily cap of 1 for this sender was reached.", None, None,
    )


def test_a_cap_of_one_sends_one_email_of_a_batch(mailbox, rep_user):
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    enrollments = [enroll(sequence, owner=rep_user) for _ in range(3)]

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.rescheduled, len(mailbox)) == (1, 2, 1)
    assert sorted(row(e).status for e in enrollments) == [Delivery.Status.SCHEDULED, Delivery.Status.SCHEDULED, Delivery.Status.SENT]


def test_a_lead_outside_its_window_waits_and_the_rest_of_the_batch_goes(mailbox):
    sequence = sequence_with_steps({"window_start": time(9), "window_end": time(17), "send_days": "0123456"})
    here, new_york = enroll(sequence), enroll(sequence)
    # The lead's time zone was set after it was enrolled: 10:00 UTC is 05:00 in New York.
    type(new_york.lead).objects.filter(pk=new_york.lead.pk).update(timezone="America/New_York")

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.rescheduled) == (1, 1)
    assert (row(here).status, row(new_york).due_at) == (Delivery.Status.SENT, datetime(2026, 11, 23, 14, 0, tzinfo=dt_timezone.utc))


def test_the_cap_moves_a_lead_to_its_own_next_midnight(mailbox, rep_user):
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    sent_earlier(sequence, rep_user)
    tokyo = enroll(sequence, owner=rep_user, timezone="Asia/Tokyo")

    # The batch's time (19:00:07 in Tokyo) counts, not the clock while it sends.
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=6), tick=False):
        run_once(now=MONDAY_10_UTC + timedelta(seconds=7, microseconds=123456))

    assert row(tokyo).due_at == datetime(2026, 11, 23, 15, 0, tzinfo=dt_timezone.utc)  # Tuesday 00:00 in Tokyo


def test_each_sender_has_its_own_cap(mailbox, rep_user, other_rep):
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    sent_earlier(sequence, rep_user)
    capped, free = enroll(sequence, owner=rep_user), enroll(sequence, owner=other_rep)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.rescheduled) == (1, 1)
    assert (row(capped).status, row(free).status) == (Delivery.Status.SCHEDULED, Delivery.Status.SENT)


def test_each_sequence_has_its_own_cap(mailbox, rep_user):
    one, two = sequence_with_steps(daily_cap_per_sender=1, name="One"), sequence_with_steps(daily_cap_per_sender=1, name="Two")
    sent_earlier(one, rep_user)
    enroll(two, owner=rep_user)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 1


def test_the_sequences_sender_is_capped_not_the_leads_owner(mailbox, rep_user, other_rep):
    sequence = sequence_with_steps(daily_cap_per_sender=1, sender=other_rep)
    sent_earlier(sequence, other_rep)
    capped = enroll(sequence, owner=rep_user)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        result = run_once()

    assert (result.sent, result.rescheduled) == (0, 1)
    assert row(capped).status == Delivery.Status.SCHEDULED


def test_the_leads_owner_is_not_capped_for_what_the_sequences_sender_sent(mailbox, rep_user, other_rep):
    sequence = sequence_with_steps(daily_cap_per_sender=1, sender=other_rep)
    sent_earlier(sequence, rep_user)
    enroll(sequence, owner=rep_user)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 1
    assert mailbox[0].reply_to == [other_rep.email]


def test_emails_with_no_sender_are_not_capped(mailbox):
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    enroll(sequence)
    enroll(sequence)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 2


def test_the_cap_counts_sends_from_the_accounts_midnight_on(mailbox, rep_user, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin_midnight = datetime(2026, 11, 22, 23, 0, tzinfo=dt_timezone.utc)
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    at_midnight, before_midnight = enroll(sequence, owner=rep_user), enroll(sequence, owner=rep_user)
    Delivery.objects.filter(pk=row(at_midnight).pk).update(status=Delivery.Status.SENT, sender=rep_user, sent_at=berlin_midnight)
    Delivery.objects.filter(pk=row(before_midnight).pk).update(
        status=Delivery.Status.SENT, sender=rep_user, sent_at=berlin_midnight - timedelta(microseconds=1)
    )
    capped = enroll(sequence, owner=rep_user)

    # The day of the batch's time (11:17:07 in Berlin) counts, not the clock's (the next day).
    with time_machine.travel(MONDAY_10_UTC + timedelta(days=1), tick=False):
        result = run_once(now=MONDAY_10_UTC + timedelta(minutes=17, seconds=7, microseconds=123456))

    assert (result.sent, result.rescheduled) == (0, 1)
    assert row(capped).reason == "Moved to the next day: the daily cap of 1 for this sender was reached."


def test_sends_before_the_accounts_midnight_count_for_the_day_before(mailbox, rep_user, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin_midnight = datetime(2026, 11, 22, 23, 0, tzinfo=dt_timezone.utc)
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    yesterday = enroll(sequence, owner=rep_user)
    Delivery.objects.filter(pk=row(yesterday).pk).update(
        status=Delivery.Status.SENT, sender=rep_user, sent_at=berlin_midnight - timedelta(microseconds=1)
    )
    enroll(sequence, owner=rep_user)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 1


def test_failed_and_skipped_emails_do_not_count_toward_the_cap(mailbox, rep_user):
    sequence = sequence_with_steps(daily_cap_per_sender=1)
    failed, skipped = enroll(sequence, owner=rep_user), enroll(sequence, owner=rep_user)
    Delivery.objects.filter(pk=row(failed).pk).update(status=Delivery.Status.FAILED, sender=rep_user, sent_at=MONDAY_10_UTC)
    Delivery.objects.filter(pk=row(skipped).pk).update(status=Delivery.Status.SKIPPED, sender=rep_user, sent_at=MONDAY_10_UTC)
    enroll(sequence, owner=rep_user)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 1


def test_the_cap_counts_what_a_sender_sent_in_the_same_sequence_only(mailbox, rep_user, other_rep):
    sequence, other_sequence = sequence_with_steps(daily_cap_per_sender=1), sequence_with_steps(name="Other")
    elsewhere, by_other = enroll(other_sequence, owner=rep_user), enroll(sequence, owner=other_rep)
    Delivery.objects.filter(pk=row(elsewhere).pk).update(status=Delivery.Status.SENT, sender=rep_user, sent_at=MONDAY_10_UTC)
    Delivery.objects.filter(pk=row(by_other).pk).update(status=Delivery.Status.SENT, sender=other_rep, sent_at=MONDAY_10_UTC)
    enroll(sequence, owner=rep_user)

    with time_machine.travel(MONDAY_10_UTC, tick=False):
        assert run_once().sent == 1
