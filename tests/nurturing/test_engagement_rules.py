"""What each email event does to the lead, its sequences and its address, and what the event records it did.

Events are recorded as the webhooks record them (nurturing.engagement.event_record); the clock is frozen.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads import services as lead_services
from leads.models import StageChange, Task
from nurturing import services
from nurturing.engagement import IncomingEvent, event_record, reply_log
from nurturing.models import Delivery, EmailEvent, Enrollment, Step, Suppression
from tests.factories import CompanyFactory, LeadFactory, sequence_with_steps

pytestmark = pytest.mark.usefixtures("webhooks")

K = EmailEvent.Kind
HUMAN_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
PRICING = "https://example.com/pricing?utm=nurture"


def record(delivery, kind, *, event_id=None, at=None, **fields):
    """An event about a sent email, as a provider reports it (an hour after sending, unless `at`)."""
    fields.setdefault("message_id", delivery.provider_message_id)
    return event_record(IncomingEvent(
        provider=fields.pop("provider", "postmark"), kind=kind, occurred_at=at or timezone.now(),
        event_id=event_id or f"{kind}-{EmailEvent.objects.count()}", **fields,
    ))


def click(delivery, url=PRICING, **fields):
    fields.setdefault("user_agent", HUMAN_AGENT)
    return record(delivery, K.CLICKED, url=url, **fields)


def enrollment_of(delivery):
    return Enrollment.objects.get(pk=delivery.enrollment_id)


@pytest.fixture
def second_sequence(sent):
    """The lead of `sent` is in a second sequence too, nothing sent from it yet."""
    return services.enrollment_create(lead=sent.enrollment.lead, sequence=sequence_with_steps(name="Webinar invite"))


# --- Hard bounces, complaints, unsubscribes --------------------------------------------------


def test_a_hard_bounce_suppresses_the_address_and_takes_the_lead_out_of_every_sequence(sent, second_sequence):
    event = record(sent, K.BOUNCED, bounce=EmailEvent.Bounce.HARD, description="550 user unknown")

    assert event.actions == f"suppressed {sent.to_email}; left 2 sequences"
    assert EmailEvent.objects.get(pk=event.pk).actions == event.actions
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.source) == (
        sent.to_email, Suppression.Reason.BOUNCED, f"postmark event #{event.pk}")
    for enrollment in (enrollment_of(sent), second_sequence):
        enrollment.refresh_from_db()
        assert (enrollment.status, enrollment.exit_reason, enrollment.exit_event) == (
            Enrollment.Status.EXITED, "Hard bounce", event)


def test_a_hard_rejection_by_the_provider_suppresses_like_a_hard_bounce(sent):
    event = record(sent, K.REJECTED, bounce=EmailEvent.Bounce.HARD)
    assert event.actions == f"suppressed {sent.to_email}; left 1 sequence"
    assert Suppression.objects.get().reason == Suppression.Reason.BOUNCED
    assert enrollment_of(sent).exit_reason == "Hard bounce"


def test_a_soft_rejection_by_the_provider_changes_nothing(sent):
    event = record(sent, K.REJECTED, bounce=EmailEvent.Bounce.SOFT)
    assert event.actions == ""
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT and enrollment_of(sent).status == Enrollment.Status.ACTIVE
    assert not Suppression.objects.exists()


def test_a_bounce_of_no_known_type_changes_nothing(sent):
    event = record(sent, K.BOUNCED)
    assert event.actions == "" and not Suppression.objects.exists()
    assert enrollment_of(sent).status == Enrollment.Status.ACTIVE


@pytest.mark.parametrize("kind, reason, exit_reason", [
    (K.COMPLAINED, Suppression.Reason.COMPLAINED, "Marked the email as spam"),
    (K.UNSUBSCRIBED, Suppression.Reason.UNSUBSCRIBED, "Unsubscribed"),
], ids=["complaint", "unsubscribe"])
def test_a_complaint_or_an_unsubscribe_at_the_provider_suppresses_and_takes_the_lead_out(sent, kind, reason, exit_reason):
    event = record(sent, kind, provider="mailgun", description="said by the provider")
    assert event.actions == f"suppressed {sent.to_email}; left 1 sequence"
    suppression = Suppression.objects.get()
    assert (suppression.reason, suppression.source) == (reason, f"mailgun event #{event.pk}")  # a provider's words are not kept
    assert enrollment_of(sent).exit_reason == exit_reason


def test_an_unsubscribe_a_rep_records_keeps_its_note_in_the_suppression_source(sent):
    note = "Asked on the phone to get no more emails. " * 4
    event = record(sent, K.UNSUBSCRIBED, provider="manual", description=note)
    assert Suppression.objects.get().source == f"manual event #{event.pk} ({note[:100]})"


def test_a_suppressing_event_for_a_lead_in_no_sequence_only_suppresses(sent):
    services.lead_exit_all(lead_id=sent.enrollment.lead_id, reason="Converted")
    event = record(sent, K.COMPLAINED)
    assert event.actions == f"suppressed {sent.to_email}"


def test_a_suppressing_event_without_an_address_takes_the_lead_out_and_suppresses_nothing(sent):
    lead = sent.enrollment.lead
    event = event_record(IncomingEvent(provider="postmark", kind=K.COMPLAINED, occurred_at=timezone.now(), event_id="c-1",
                                       lead=lead))
    assert (event.recipient, event.actions) == ("", "left 1 sequence")
    assert not Suppression.objects.exists()


# --- Replies ----------------------------------------------------------------------------------


def test_a_reply_takes_the_lead_out_of_that_sequence_only(sent, second_sequence):
    event = record(sent, K.REPLIED, description="Call me")
    assert event.actions == "left Guide follow-up"
    enrollment = enrollment_of(sent)
    assert (enrollment.status, enrollment.exit_reason, enrollment.exit_event) == (Enrollment.Status.EXITED, "Replied", event)
    second_sequence.refresh_from_db()
    assert second_sequence.status == Enrollment.Status.ACTIVE


def test_a_reply_while_the_sequence_is_paused_for_the_lead_takes_it_out(sent):
    services.enrollment_pause(enrollment=sent.enrollment)
    event = record(sent, K.REPLIED)
    assert event.actions == "left Guide follow-up"
    assert enrollment_of(sent).status == Enrollment.Status.EXITED


def test_a_reply_after_the_lead_left_the_sequence_records_nothing_done(sent):
    services.enrollment_exit(enrollment=sent.enrollment, reason="Converted")
    event = record(sent, K.REPLIED)
    assert event.actions == ""
    assert enrollment_of(sent).exit_reason == "Converted"


def company_colleague(sent, rep_user, **fields):
    lead = LeadFactory(owner=rep_user, company=sent.enrollment.lead.company, **fields)
    return services.enrollment_create(lead=lead, sequence=sent.enrollment.sequence)


def test_a_reply_pauses_the_sequence_for_the_other_leads_of_the_company_when_it_says_so(sent, rep_user):
    sequence = sent.enrollment.sequence
    sequence.pause_company_on_reply = True
    sequence.save()
    colleagues = [company_colleague(sent, rep_user) for _ in range(2)]
    stranger = services.enrollment_create(lead=LeadFactory(owner=rep_user, company=CompanyFactory()), sequence=sequence)
    elsewhere = services.enrollment_create(lead=colleagues[0].lead, sequence=sequence_with_steps(name="Webinar invite"))

    event = record(sent, K.REPLIED)

    assert event.actions == "left Guide follow-up; paused Guide follow-up for 2 other leads of Initech"
    statuses = Enrollment.objects.filter(pk__in=[c.pk for c in colleagues]).values_list("status", flat=True)
    assert list(statuses) == [Enrollment.Status.PAUSED] * 2
    for other in (stranger, elsewhere):
        other.refresh_from_db()
        assert other.status == Enrollment.Status.ACTIVE
    assert enrollment_of(sent).status == Enrollment.Status.EXITED


def test_one_other_lead_of_the_company_paused_is_said_in_the_singular(sent, rep_user):
    sequence = sent.enrollment.sequence
    sequence.pause_company_on_reply = True
    sequence.save()
    colleague = company_colleague(sent, rep_user)
    services.enrollment_exit(enrollment=company_colleague(sent, rep_user), reason="Converted")  # not paused: out already

    event = record(sent, K.REPLIED)

    assert event.actions == "left Guide follow-up; paused Guide follow-up for 1 other lead of Initech"
    colleague.refresh_from_db()
    assert colleague.status == Enrollment.Status.PAUSED


def test_a_reply_to_an_email_of_an_earlier_enrollment_pauses_the_others_but_not_the_lead_itself(sent, rep_user):
    sequence = sent.enrollment.sequence
    sequence.pause_company_on_reply = True
    sequence.save()
    services.enrollment_exit(enrollment=sent.enrollment, reason="Moved to another campaign")
    current = services.enrollment_create(lead=sent.enrollment.lead, sequence=sequence)  # back in the sequence since
    colleague = company_colleague(sent, rep_user)

    event = record(sent, K.REPLIED)

    assert event.actions == "paused Guide follow-up for 1 other lead of Initech"
    current.refresh_from_db()
    colleague.refresh_from_db()
    assert (current.status, colleague.status) == (Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED)


def test_a_reply_pauses_no_one_else_when_the_sequence_does_not_say_so(sent, rep_user):
    colleague = company_colleague(sent, rep_user)
    event = record(sent, K.REPLIED)
    assert event.actions == "left Guide follow-up"
    colleague.refresh_from_db()
    assert colleague.status == Enrollment.Status.ACTIVE


def test_a_reply_from_a_lead_without_a_company_pauses_no_one(rep_user, mailbox):
    from nurturing import claim, dispatch

    sequence = sequence_with_steps({}, {"delay": timedelta(days=2)}, name="Solo", pause_company_on_reply=True)
    lead = LeadFactory(owner=rep_user, company=None)
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    other = services.enrollment_create(lead=LeadFactory(owner=rep_user, company=None), sequence=sequence)
    token, ids = claim.deliveries_claim(limit=10)
    dispatch.deliveries_send(ids=ids, token=token)
    delivery = enrollment.deliveries.get(step__position=1)

    event = event_record(IncomingEvent(provider="postmark", kind=K.REPLIED, occurred_at=timezone.now(), event_id="r-1",
                                       message_id=delivery.message_id))

    assert event.actions == "left Solo"
    other.refresh_from_db()
    assert other.status == Enrollment.Status.ACTIVE


def test_a_reply_that_matches_no_email_takes_the_lead_out_of_every_sequence(sent, second_sequence):
    lead = sent.enrollment.lead
    event = event_record(IncomingEvent(provider="postmark", kind=K.REPLIED, occurred_at=timezone.now(), event_id="r-1",
                                       recipient=lead.email, lead=lead))
    assert (event.delivery, event.actions) == (None, "left 2 sequences")
    for enrollment in (enrollment_of(sent), second_sequence):
        enrollment.refresh_from_db()
        assert (enrollment.status, enrollment.exit_reason, enrollment.exit_event) == (Enrollment.Status.EXITED, "Replied", event)


def test_a_reply_that_matches_no_email_from_a_lead_in_one_sequence_says_so(sent):
    lead = sent.enrollment.lead
    event = event_record(IncomingEvent(provider="postmark", kind=K.REPLIED, occurred_at=timezone.now(), event_id="r-1",
                                       lead=lead))
    assert event.actions == "left 1 sequence"
    again = event_record(IncomingEvent(provider="postmark", kind=K.REPLIED, occurred_at=timezone.now(), event_id="r-2",
                                       lead=lead))
    assert again.actions == ""


# --- Clicks on a step's chosen link -------------------------------------------------------------


def test_a_persons_click_on_the_steps_link_moves_the_lead_and_gives_the_owner_a_call_task(sent, rep_user):
    lead = sent.enrollment.lead
    event = click(sent)

    assert event.actions == "moved to MQL; call task for rep1"
    assert EmailEvent.objects.get(pk=event.pk).actions == event.actions
    why = f"sequence Guide follow-up step 1, event #{event.pk} (clicked)"
    change = StageChange.objects.get(lead=lead, to_status="mql")
    assert (change.from_status, change.to_status, change.actor, change.reason) == (
        "new", "mql", why, f"{why}: clicked {PRICING}")
    task = Task.objects.get(lead=lead)
    assert (task.assignee, task.title, task.notes, task.due_at) == (
        rep_user, f"Call {lead}: clicked /pricing (Guide follow-up)", f"{why}: {PRICING}", timezone.now())


def test_the_steps_link_is_matched_whatever_its_case_and_spaces(sent):
    Step.objects.filter(pk=sent.step_id).update(click_link_contains="  /Pricing ")
    event = click(sent, url="https://example.com/PRICING/plans")
    assert event.actions == "moved to MQL; call task for rep1"
    assert Task.objects.get().title == f"Call {sent.enrollment.lead}: clicked /Pricing (Guide follow-up)"


def test_a_click_on_another_link_does_nothing(sent):
    event = click(sent, url="https://example.com/blog")
    assert event.actions == "" and not Task.objects.exists() and not StageChange.objects.filter(to_status="mql").exists()


def test_a_step_without_a_chosen_link_does_nothing_on_a_click(sent):
    Step.objects.filter(pk=sent.step_id).update(click_link_contains="   ")
    event = click(sent)
    assert event.actions == "" and not Task.objects.exists()


def test_a_second_click_on_the_link_does_nothing_more(sent):
    click(sent)
    again = click(sent, url="https://example.com/pricing#plans", at=timezone.now() + timedelta(minutes=10))
    assert again.actions == ""
    assert Task.objects.count() == 1


def test_a_click_on_the_link_in_another_email_does_not_use_up_this_emails_click(sent, rep_user):
    other = services.enrollment_create(lead=LeadFactory(owner=rep_user), sequence=sent.enrollment.sequence)
    elsewhere = other.deliveries.get()
    Delivery.objects.filter(pk=elsewhere.pk).update(status=Delivery.Status.SENT, sent_at=timezone.now() - timedelta(hours=2),
                                                    provider_message_id="pm-elsewhere")
    elsewhere.refresh_from_db()
    assert click(elsewhere, at=timezone.now() - timedelta(minutes=20)).actions == "moved to MQL; call task for rep1"
    assert click(sent).actions == "moved to MQL; call task for rep1"


def test_only_a_click_acts_on_the_steps_link_whatever_other_events_carry(sent):
    event = record(sent, K.OTHER, url=PRICING)
    assert event.actions == "" and not Task.objects.exists()
    assert click(sent, at=timezone.now() + timedelta(minutes=1)).actions == "moved to MQL; call task for rep1"


def test_a_scanners_click_before_does_not_use_up_the_persons_click(sent):
    scanner = click(sent, user_agent="Mozilla/5.0 (compatible; Barracuda Sentinel)", at=timezone.now() - timedelta(minutes=20))
    assert scanner.is_machine and scanner.actions == ""
    event = click(sent)
    assert event.actions == "moved to MQL; call task for rep1"


def test_a_click_on_another_link_before_does_not_use_up_the_click(sent):
    click(sent, url="https://example.com/blog", at=timezone.now() - timedelta(minutes=20))
    assert click(sent).actions == "moved to MQL; call task for rep1"


def test_a_lead_already_at_the_stage_only_gets_the_call_task(sent, rep_user):
    lead_services.lead_change_stage(lead=sent.enrollment.lead, to_status="mql", by=rep_user, reason="Asked for a demo")
    event = click(sent)
    assert event.actions == "call task for rep1"
    assert StageChange.objects.filter(to_status="mql").count() == 1


def test_a_lead_that_may_not_move_to_the_stage_stays_where_it_is(sent, rep_user):
    lead = sent.enrollment.lead
    lead_services.lead_change_stage(lead=lead, to_status="sql", by=rep_user, reason="Qualified on a call")
    event = click(sent)
    assert event.actions == "call task for rep1"
    lead.refresh_from_db()
    assert lead.status == "sql"


def test_a_move_the_stage_service_refuses_is_recorded_with_its_reason(sent):
    Step.objects.filter(pk=sent.step_id).update(click_stage_action="customer")  # as an older version let it be saved
    event = click(sent)
    assert event.actions == (
        "stage not moved: A lead becomes a customer by converting it, which records the won deal and its value.; "
        "call task for rep1"
    )


def test_a_step_without_a_stage_or_a_task_does_nothing_on_a_click(sent):
    Step.objects.filter(pk=sent.step_id).update(click_stage_action="", click_creates_call_task=False)
    assert click(sent).actions == ""
    assert sent.enrollment.lead.status == "new" and not Task.objects.exists()


def test_a_lead_without_an_owner_gets_no_call_task(sent):
    from leads.models import Lead

    Lead.objects.filter(pk=sent.enrollment.lead_id).update(owner=None)
    assert click(sent).actions == "moved to MQL"
    assert not Task.objects.exists()


def test_a_long_reason_for_the_stage_move_is_cut_to_the_actors_200_characters(sent):
    from nurturing.models import Sequence

    Sequence.objects.filter(pk=sent.enrollment.sequence_id).update(name="Guide follow-up " + "g" * 180)
    event = click(sent)
    why = f"sequence Guide follow-up {'g' * 180} step 1, event #{event.pk} (clicked)"
    change = StageChange.objects.get(to_status="mql")
    assert (change.actor, change.reason) == (why[:200], f"{why}: clicked {PRICING}")


def test_a_long_call_task_title_is_cut_to_200_characters(sent):
    needle = "/pricing" + "x" * 192  # as long as the field allows
    Step.objects.filter(pk=sent.step_id).update(click_link_contains=needle)
    event = click(sent, url="https://example.com" + needle)
    assert event.actions == "moved to MQL; call task for rep1"
    title = f"Call {sent.enrollment.lead}: clicked {needle}"
    assert Task.objects.get().title == title[:200]


def test_a_click_on_an_email_we_cannot_find_does_nothing_for_the_lead(sent):
    lead = sent.enrollment.lead
    event = event_record(IncomingEvent(provider="postmark", kind=K.CLICKED, occurred_at=timezone.now(), event_id="c-1",
                                       url=PRICING, user_agent=HUMAN_AGENT, lead=lead))
    assert (event.delivery, event.lead, event.is_machine, event.actions) == (None, lead, False, "")
    assert not Task.objects.exists()


# --- Replies a rep logs by hand ------------------------------------------------------------------


def sent_email(enrollment, *, sent_at, message_id):
    """The first email of an enrollment, marked sent at `sent_at`."""
    delivery = enrollment.deliveries.get(step__position=1)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENT, sent_at=sent_at, message_id=message_id,
                                                   to_email=enrollment.lead.email)
    delivery.refresh_from_db()
    return delivery


def test_a_reply_a_rep_logs_is_recorded_on_the_latest_email_sent_to_the_lead(sent, rep_user):
    lead = sent.enrollment.lead
    newer = sent_email(services.enrollment_create(lead=lead, sequence=sequence_with_steps(name="Webinar invite")),
                       sent_at=timezone.now() - timedelta(minutes=30), message_id="<newer@crm.test>")
    # Written last, sent first (an import of old emails): the time sent counts, not the order of the rows.
    sent_email(services.enrollment_create(lead=lead, sequence=sequence_with_steps(name="Imported")),
               sent_at=timezone.now() - timedelta(hours=3), message_id="<imported@crm.test>")
    # Another lead's email went after all of them; emails still to go are not sent.
    sent_email(services.enrollment_create(lead=LeadFactory(owner=rep_user), sequence=sent.enrollment.sequence),
               sent_at=timezone.now() - timedelta(minutes=5), message_id="<someone-else@crm.test>")
    at = timezone.now() - timedelta(minutes=10)

    event = reply_log(lead=lead, by=rep_user, at=at, note="Called back: wants a demo")

    stored = EmailEvent.objects.get()
    assert stored == event
    assert (stored.provider, stored.kind, stored.occurred_at, stored.delivery, stored.lead, stored.recorded_by) == (
        "manual", K.REPLIED, at, newer, lead, rep_user)
    assert (stored.message_id, stored.event_id, stored.recipient, stored.description) == (
        "<newer@crm.test>", f"manual-{lead.pk}-{at.timestamp()}", lead.email, "Called back: wants a demo")
    assert stored.actions == "left Webinar invite"


def test_of_two_emails_sent_at_the_same_moment_the_reply_goes_to_the_later_one(sent, rep_user):
    lead = sent.enrollment.lead
    second = sent_email(services.enrollment_create(lead=lead, sequence=sequence_with_steps(name="Webinar invite")),
                        sent_at=sent.sent_at, message_id="<second@crm.test>")
    assert second.pk > sent.pk
    assert reply_log(lead=lead, by=rep_user).delivery == second


def test_a_reply_logged_without_a_time_is_at_the_moment_it_is_logged(sent, rep_user):
    event = reply_log(lead=sent.enrollment.lead, by=rep_user)
    assert (event.occurred_at, event.delivery, event.actions) == (timezone.now(), sent, "left Guide follow-up")
    assert event.description == ""  # no note given


def test_a_reply_logged_for_a_lead_whose_address_changed_names_its_address_now(sent, rep_user):
    lead = sent.enrollment.lead
    lead_services.lead_update(lead=lead, email="ada.new@example.org")
    event = reply_log(lead=lead, by=rep_user)
    assert (event.recipient, event.delivery) == ("ada.new@example.org", sent)


def test_a_reply_logged_before_any_email_went_is_on_no_email_and_ends_every_sequence(db, rep_user):
    lead = LeadFactory(owner=rep_user)
    enrollment = services.enrollment_create(lead=lead, sequence=sequence_with_steps(name="Welcome"))
    event = reply_log(lead=lead, by=rep_user, note="Wrote to the rep directly")
    assert (event.delivery, event.message_id, event.actions) == (None, "", "left 1 sequence")
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, "Replied")


def test_a_reply_logged_after_a_call_task_step_counts_for_that_sequence(rep_user, mailbox):
    from nurturing import claim, dispatch

    lead = LeadFactory(owner=rep_user)
    sequence = sequence_with_steps({"kind": Step.Kind.CALL_TASK}, {"delay": timedelta(days=2)}, name="Call first")
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    other = services.enrollment_create(lead=lead, sequence=sequence_with_steps({"delay": timedelta(days=1)}, name="Later"))
    token, ids = claim.deliveries_claim(limit=10)
    dispatch.deliveries_send(ids=ids, token=token)
    call = enrollment.deliveries.get(step__position=1, status=Delivery.Status.SENT)
    assert call.message_id == ""

    event = reply_log(lead=lead, by=rep_user)

    assert (event.delivery, event.actions) == (call, "left Call first")
    other.refresh_from_db()
    assert other.status == Enrollment.Status.ACTIVE


def test_the_same_reply_logged_twice_is_recorded_once(sent, rep_user):
    at = timezone.now() - timedelta(minutes=10)
    assert reply_log(lead=sent.enrollment.lead, by=rep_user, at=at) is not None
    assert reply_log(lead=sent.enrollment.lead, by=rep_user, at=at) is None
    assert EmailEvent.objects.count() == 1
