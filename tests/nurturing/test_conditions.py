"""Steps that wait on what the lead did: a person's click, no reply, a downloaded resource."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads import services as lead_services
from leads.models import Resource
from nurturing import claim, dispatch, services
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import Delivery, Enrollment
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db


def run_once():
    token, ids = claim.deliveries_claim(limit=100)
    return dispatch.deliveries_send(ids=ids, token=token) if ids else None


def enroll_and_send_first(condition, **step):
    lead = LeadFactory(first_name="Ada")
    sequence = sequence_with_steps({}, {"condition": condition, **step}, {})
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    run_once()  # step 1 goes; step 2 is scheduled right away (no delay)
    return enrollment, enrollment.deliveries.get(step__position=1)


def click(delivery, *, machine=False):
    event_record(IncomingEvent(
        provider="postmark", kind="clicked", occurred_at=timezone.now() + timedelta(minutes=5),
        message_id=delivery.message_id, url="https://example.com/guide",
        user_agent="Mozilla/5.0 (compatible; Mimecast)" if machine else "Mozilla/5.0 (Windows NT 10.0) Chrome/130",
    ))


@pytest.mark.parametrize("machine", [False, True], ids=["person", "scanner"])
def test_a_step_for_clickers_goes_only_after_a_persons_click(mailbox, machine):
    enrollment, first = enroll_and_send_first("human_click")
    click(first, machine=machine)
    run_once()
    second = enrollment.deliveries.get(step__position=2)
    if machine:
        assert second.status == Delivery.Status.SKIPPED and "no earlier email got a click from a person" in second.reason
        assert enrollment.deliveries.get(step__position=3).status == Delivery.Status.SCHEDULED  # the lead goes on
    else:
        assert second.status == Delivery.Status.SENT


def test_a_step_for_downloaders_waits_for_the_resource(mailbox):
    guide = Resource.objects.create(name="Pricing guide", slug="pricing-guide")
    enrollment, _ = enroll_and_send_first("downloaded", condition_resource=guide)
    run_once()
    second = enrollment.deliveries.get(step__position=2)
    assert second.status == Delivery.Status.SKIPPED and "has not downloaded Pricing guide" in second.reason

    other, _ = enroll_and_send_first("downloaded", condition_resource=guide)
    lead_services.form_submission_record(lead=other.lead, form_name="Guide download", resource=guide)
    run_once()
    assert other.deliveries.get(step__position=2).status == Delivery.Status.SENT


def test_a_reply_ends_the_sequence_before_a_no_reply_step(mailbox):
    enrollment, first = enroll_and_send_first("no_reply")
    event_record(IncomingEvent(provider="postmark", kind="replied", occurred_at=timezone.now(), message_id=first.message_id))
    run_once()
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED
    assert enrollment.deliveries.get(step__position=2).status == Delivery.Status.SKIPPED
    assert len(mailbox) == 1


def test_a_no_reply_step_is_skipped_after_a_reply_that_did_not_end_the_sequence(mailbox):
    from nurturing.models import EmailEvent

    enrollment, first = enroll_and_send_first("no_reply")
    # A reply recorded without its rules (e.g. before the rule existed): the enrollment is still active.
    EmailEvent.objects.create(delivery=first, lead=enrollment.lead, kind="replied", provider="manual",
                              occurred_at=timezone.now(), dedupe_key="r1")
    run_once()
    second = enrollment.deliveries.get(step__position=2)
    assert second.status == Delivery.Status.SKIPPED and "an earlier email got a reply" in second.reason
    assert enrollment.deliveries.get(step__position=3).status == Delivery.Status.SCHEDULED
