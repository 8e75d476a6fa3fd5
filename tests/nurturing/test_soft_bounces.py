"""A soft bounce sends the email again later, unless it arrived after all; repeated soft bounces suppress.

Events are recorded as a provider's webhook records them (nurturing.engagement.event_record); the clock is frozen.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from nurturing import services
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import Delivery, EmailEvent, Enrollment, Step, Suppression
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.usefixtures("webhooks")

K = EmailEvent.Kind
REASON = "Mailbox full"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.CRM_SOFT_BOUNCES_TO_SUPPRESS = 3
    settings.CRM_SOFT_BOUNCE_RETRY_HOURS = 6


def soft_bounce(delivery, *, at=None, event_id=None, description=REASON, recipient=None, **fields):
    return event_record(IncomingEvent(
        provider="postmark", kind=K.BOUNCED, bounce=EmailEvent.Bounce.SOFT, occurred_at=at or timezone.now(),
        message_id=delivery.provider_message_id, event_id=event_id or f"soft-{EmailEvent.objects.count()}",
        recipient=delivery.to_email if recipient is None else recipient, description=description, **fields,
    ))


def earlier_soft_bounce(address, at):
    """A soft bounce recorded before, to this address (from another email)."""
    return event_record(IncomingEvent(provider="postmark", kind=K.BOUNCED, bounce=EmailEvent.Bounce.SOFT, occurred_at=at,
                                      event_id=f"earlier-{at.isoformat()}-{address}", recipient=address))


def sent_elsewhere(rep_user):
    """Another lead's two-step sequence, its first email sent and its second still to go."""
    lead = LeadFactory(owner=rep_user)
    sequence = sequence_with_steps({}, {"delay": timedelta(days=1)}, name="Other")
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    first = enrollment.deliveries.get()
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.SENT, sent_at=timezone.now() - timedelta(hours=1),
                                                provider_message_id="pm-elsewhere", to_email=lead.email)
    second = Delivery.objects.create(enrollment=enrollment, step=enrollment.sequence.steps.get(position=2),
                                     due_at=timezone.now() + timedelta(hours=1))
    return Delivery.objects.get(pk=first.pk), second


def later_step(sent):
    return sent.enrollment.deliveries.exclude(pk=sent.pk).get()


def test_a_soft_bounce_schedules_the_email_again_and_the_next_step_waits_for_it(sent, rep_user):
    next_due = later_step(sent).due_at
    assert next_due < timezone.now() + timedelta(hours=6, days=2)  # it was due before the retry's own delay ends
    Delivery.objects.filter(pk=sent.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    others = sent_elsewhere(rep_user)

    event = soft_bounce(sent)

    assert event.actions == "soft bounce 1 of 3: the email goes again later"
    assert EmailEvent.objects.get(pk=event.pk).actions == event.actions
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SCHEDULED
    assert sent.due_at == timezone.now() + timedelta(hours=6)
    assert sent.updated_at == timezone.now()
    # 10:00 UTC + 6 hours, in the account's zone (Berlin, summer time)
    assert sent.reason == "Soft bounce (Mailbox full): sent again from 2026-06-03 18:00."
    later = later_step(sent)
    assert later.due_at == timezone.now() + timedelta(hours=6, days=2)  # step 2's delay after the retry
    assert later.reason == "Waits for the soft-bounced email before it."
    assert not Suppression.objects.exists()
    for other in others:  # the other lead's emails are untouched
        assert Delivery.objects.get(pk=other.pk).due_at == other.due_at
        assert Delivery.objects.get(pk=other.pk).status == other.status


def test_the_soft_bounced_email_goes_at_the_retry_time_whatever_its_steps_delay(sent):
    Step.objects.filter(pk=sent.step_id).update(delay=timedelta(days=1))
    soft_bounce(sent)
    sent.refresh_from_db()
    assert sent.due_at == timezone.now() + timedelta(hours=6)
    assert sent.reason == "Soft bounce (Mailbox full): sent again from 2026-06-03 18:00."


def test_the_retry_hours_come_from_the_settings(sent, settings):
    settings.CRM_SOFT_BOUNCE_RETRY_HOURS = 1
    soft_bounce(sent)
    sent.refresh_from_db()
    assert sent.due_at == timezone.now() + timedelta(hours=1)
    assert sent.reason == "Soft bounce (Mailbox full): sent again from 2026-06-03 13:00."


def test_a_soft_bounce_without_a_description_says_temporary_failure_and_a_long_one_is_cut(sent):
    soft_bounce(sent, description="")
    sent.refresh_from_db()
    assert sent.reason == "Soft bounce (temporary failure): sent again from 2026-06-03 18:00."

    Delivery.objects.filter(pk=sent.pk).update(status=Delivery.Status.SENT)
    soft_bounce(sent, description="x" * 199 + "yz")
    sent.refresh_from_db()
    assert sent.reason == f"Soft bounce ({'x' * 199}y): sent again from 2026-06-03 18:00."


def test_a_later_step_already_due_after_the_retry_keeps_its_time_and_reason(sent):
    later = later_step(sent)
    retry_and_delay = timezone.now() + timedelta(hours=6, days=2)
    Delivery.objects.filter(pk=later.pk).update(due_at=retry_and_delay, reason="as planned")
    soft_bounce(sent)
    later.refresh_from_db()
    assert (later.due_at, later.reason) == (retry_and_delay, "as planned")


def test_an_email_already_waiting_to_go_again_is_not_moved_by_another_soft_bounce(sent):
    soft_bounce(sent)
    sent.refresh_from_db()
    first_due, first_reason = sent.due_at, sent.reason

    with time_machine.travel(timezone.now() + timedelta(minutes=30), tick=False):
        event = soft_bounce(sent)

    assert event.actions == ""
    sent.refresh_from_db()
    assert (sent.status, sent.due_at, sent.reason) == (Delivery.Status.SCHEDULED, first_due, first_reason)


def test_the_third_soft_bounce_in_30_days_suppresses_the_address_and_takes_the_lead_out(sent):
    address = sent.to_email
    earlier_soft_bounce(address, timezone.now() - timedelta(days=30))  # just inside the 30 days
    earlier_soft_bounce(address, timezone.now() - timedelta(days=2))

    event = soft_bounce(sent)

    assert event.actions == f"suppressed {address}; left 1 sequence"
    suppression = Suppression.objects.get(email=address)
    assert (suppression.reason, suppression.source) == (Suppression.Reason.SOFT_BOUNCES, f"postmark event #{event.pk}")
    enrollment = Enrollment.objects.get(pk=sent.enrollment_id)
    assert (enrollment.status, enrollment.exit_reason, enrollment.exit_event) == (
        Enrollment.Status.EXITED, "3 soft bounces in 30 days", event)


def test_soft_bounces_older_than_30_days_hard_bounces_and_other_addresses_do_not_count(sent):
    address = sent.to_email
    earlier_soft_bounce(address, timezone.now() - timedelta(days=30, seconds=1))
    earlier_soft_bounce("someone.else@example.org", timezone.now() - timedelta(days=1))
    event_record(IncomingEvent(provider="postmark", kind=K.BOUNCED, bounce=EmailEvent.Bounce.HARD, event_id="hard-1",
                               occurred_at=timezone.now() - timedelta(days=1), recipient=address))  # of no lead we know
    event_record(IncomingEvent(provider="postmark", kind=K.OPENED, event_id="open-1", recipient=address,
                               occurred_at=timezone.now() - timedelta(days=1)))
    event_record(IncomingEvent(provider="postmark", kind=K.REJECTED, bounce=EmailEvent.Bounce.SOFT, event_id="rejected-1",
                               occurred_at=timezone.now() - timedelta(days=1), recipient=address))

    event = soft_bounce(sent)

    assert event.actions == "soft bounce 1 of 3: the email goes again later"
    assert not services.email_is_suppressed(address)


def test_the_number_of_soft_bounces_that_suppress_comes_from_the_settings(sent, settings):
    settings.CRM_SOFT_BOUNCES_TO_SUPPRESS = 2
    earlier_soft_bounce(sent.to_email, timezone.now() - timedelta(days=1))
    event = soft_bounce(sent)
    assert event.actions == f"suppressed {sent.to_email}; left 1 sequence"
    assert Enrollment.objects.get(pk=sent.enrollment_id).exit_reason == "2 soft bounces in 30 days"


def test_soft_bounces_are_counted_for_the_lead_address_when_the_provider_names_none(sent, settings):
    settings.CRM_SOFT_BOUNCES_TO_SUPPRESS = 2
    Delivery.objects.filter(pk=sent.pk).update(to_email="")
    earlier_soft_bounce(sent.enrollment.lead.email, timezone.now() - timedelta(days=2))
    earlier_soft_bounce(sent.enrollment.lead.email, timezone.now() - timedelta(days=1))
    event = soft_bounce(sent, recipient="")
    assert event.recipient == ""
    assert event.actions == "left 1 sequence"  # no address on the event to suppress
    assert Enrollment.objects.get(pk=sent.enrollment_id).exit_reason == "2 soft bounces in 30 days"


def test_a_soft_bounce_more_than_48_hours_after_sending_is_not_sent_again(sent):
    Delivery.objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(hours=48, seconds=1))
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: not sent again (the bounce came more than 48 hours after sending)"
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT


def test_a_soft_bounce_exactly_48_hours_after_sending_is_sent_again(sent):
    Delivery.objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(hours=48))
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: the email goes again later"


def test_a_soft_bounce_after_the_lead_opened_the_email_is_not_sent_again(sent):
    event_record(IncomingEvent(provider="postmark", kind=K.OPENED, event_id="open-1", message_id=sent.provider_message_id,
                               occurred_at=timezone.now() - timedelta(minutes=30), user_agent="Mozilla/5.0 (Windows NT 10.0)"))
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: not sent again (the provider or the lead showed it arrived)"
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT


def test_a_machine_open_does_not_show_the_email_arrived(sent):
    event_record(IncomingEvent(provider="postmark", kind=K.OPENED, event_id="open-1", message_id=sent.provider_message_id,
                               occurred_at=timezone.now() - timedelta(minutes=30), user_agent="Mozilla/5.0"))
    assert EmailEvent.objects.get().is_machine
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: the email goes again later"


def test_a_soft_bounce_is_not_sent_again_once_a_later_step_went(sent):
    Delivery.objects.filter(pk=later_step(sent).pk).update(status=Delivery.Status.SENT, sent_at=timezone.now())
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: not sent again (a later step already went)"
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT


def test_a_later_step_skipped_does_not_stop_the_resend_and_stays_as_it_was(sent):
    skipped = later_step(sent)
    Delivery.objects.filter(pk=skipped.pk).update(status=Delivery.Status.SKIPPED, reason="Exited: Converted")
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: the email goes again later"
    assert Delivery.objects.values_list("due_at", "reason").get(pk=skipped.pk) == (skipped.due_at, "Exited: Converted")


def test_what_happened_to_other_leads_emails_does_not_stop_the_resend(sent, rep_user):
    first, second = sent_elsewhere(rep_user)
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.SENT, sent_at=timezone.now() - timedelta(minutes=5))
    event_record(IncomingEvent(provider="postmark", kind=K.DELIVERED, event_id="delivered-elsewhere",
                               message_id=first.provider_message_id, occurred_at=timezone.now() - timedelta(minutes=50)))
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: the email goes again later"


def test_a_soft_bounce_for_a_lead_out_of_the_sequence_changes_nothing(sent):
    services.enrollment_exit(enrollment=sent.enrollment, reason="Converted")
    event = soft_bounce(sent)
    assert event.actions == ""
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT


def test_a_soft_bounce_for_a_paused_enrollment_is_sent_again(sent):
    services.enrollment_pause(enrollment=sent.enrollment)
    event = soft_bounce(sent)
    assert event.actions == "soft bounce 1 of 3: the email goes again later"


def test_a_soft_bounce_matched_to_a_lead_but_no_email_sends_nothing_again(sent):
    lead = sent.enrollment.lead
    event = event_record(IncomingEvent(provider="postmark", kind=K.BOUNCED, bounce=EmailEvent.Bounce.SOFT, event_id="soft-x",
                                       occurred_at=timezone.now(), recipient=lead.email, lead=lead))
    assert (event.delivery, event.lead, event.actions) == (None, lead, "")
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT


def test_a_soft_bounced_email_that_was_delivered_after_all_is_not_sent_again(sent, rep_user):
    waiting, _ = sent_elsewhere(rep_user)  # another soft-bounced email waiting to go again
    Delivery.objects.filter(pk=waiting.pk).update(status=Delivery.Status.SCHEDULED)
    soft_bounce(sent)
    Delivery.objects.filter(pk=sent.pk).update(updated_at=timezone.now() - timedelta(minutes=1))
    event = event_record(IncomingEvent(provider="postmark", kind=K.DELIVERED, event_id="delivered-1",
                                       message_id=sent.provider_message_id, occurred_at=timezone.now() + timedelta(minutes=5)))
    assert event.actions == "the email arrived after all: not sent again"
    sent.refresh_from_db()
    assert (sent.status, sent.reason, sent.updated_at) == (
        Delivery.Status.SENT, "Delivered after all: not sent again.", timezone.now())
    assert Delivery.objects.get(pk=waiting.pk).status == Delivery.Status.SCHEDULED


def test_a_delivered_event_for_an_email_sent_once_changes_nothing(sent):
    event = event_record(IncomingEvent(provider="postmark", kind=K.DELIVERED, event_id="delivered-1",
                                       message_id=sent.provider_message_id, occurred_at=timezone.now()))
    assert event.actions == ""
    assert Delivery.objects.values_list("status", "reason").get(pk=sent.pk) == (Delivery.Status.SENT, sent.reason)


def test_a_delivered_event_for_an_email_never_sent_changes_nothing(sent):
    later = later_step(sent)
    Delivery.objects.filter(pk=later.pk).update(message_id="<step2@crm.test>")
    event = event_record(IncomingEvent(provider="postmark", kind=K.DELIVERED, event_id="delivered-2",
                                       message_id="<step2@crm.test>", occurred_at=timezone.now()))
    assert (event.delivery, event.actions) == (later, "")
    later.refresh_from_db()
    assert later.status == Delivery.Status.SCHEDULED
