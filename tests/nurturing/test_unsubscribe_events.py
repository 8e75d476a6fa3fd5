"""An unsubscribe by our link or mailto address: what it suppresses, whom it takes out, and the one event it logs.

Through nurturing.engagement.unsubscribe_by_link, as the unsubscribe page and the unsubscribe mailbox call it
with what the signed link holds; the clock is frozen.
"""

import pytest
from django.utils import timezone

from leads import services as lead_services
from nurturing import services
from nurturing.engagement import unsubscribe_by_link
from nurturing.models import EmailEvent, Enrollment, Suppression, email_hash
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.usefixtures("webhooks")

K = EmailEvent.Kind
PAGE = "unsubscribe page"


def test_the_link_of_an_email_suppresses_its_address_and_logs_one_event_on_that_email(sent):
    lead = sent.enrollment.lead
    address_hash = email_hash(lead.email)

    assert unsubscribe_by_link(lead_id=lead.pk, address_hash=address_hash, source=PAGE, delivery_id=sent.pk) == lead

    event = EmailEvent.objects.get()
    assert (event.provider, event.kind, event.occurred_at, event.delivery, event.lead) == (
        "link", K.UNSUBSCRIBED, timezone.now(), sent, lead)
    assert (event.event_id, event.message_id, event.recipient, event.description) == (
        f"unsubscribe-{address_hash[:32]}-{sent.pk}", sent.message_id, lead.email, PAGE)
    assert event.actions == f"suppressed {lead.email}; left 1 sequence"
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.source) == (
        lead.email, Suppression.Reason.UNSUBSCRIBED, f"link event #{event.pk} ({PAGE})")
    enrollment = Enrollment.objects.get(pk=sent.enrollment_id)
    assert (enrollment.status, enrollment.exit_reason, enrollment.exit_event) == (
        Enrollment.Status.EXITED, "Unsubscribed", event)


def test_a_link_without_an_email_logs_the_event_on_the_lead_alone(sent):
    lead = sent.enrollment.lead
    address_hash = email_hash(lead.email)
    unsubscribe_by_link(lead_id=lead.pk, address_hash=address_hash, source=PAGE)
    event = EmailEvent.objects.get()
    assert (event.event_id, event.delivery, event.message_id, event.lead, event.recipient) == (
        f"unsubscribe-{address_hash[:32]}-0", None, "", lead, lead.email)
    assert event.actions == f"suppressed {lead.email}; left 1 sequence"


def test_a_link_naming_another_leads_email_logs_no_email(sent, rep_user):
    other = LeadFactory(owner=rep_user)
    unsubscribe_by_link(lead_id=other.pk, address_hash=email_hash(other.email), source=PAGE, delivery_id=sent.pk)
    event = EmailEvent.objects.get()
    assert (event.lead, event.delivery, event.message_id) == (other, None, "")
    assert Enrollment.objects.get(pk=sent.enrollment_id).status == Enrollment.Status.ACTIVE


def test_a_link_in_an_email_to_an_address_the_lead_no_longer_has_suppresses_the_address_it_went_to(sent):
    lead = sent.enrollment.lead
    old_hash = email_hash(lead.email)
    lead_services.lead_update(lead=lead, email="ada.new@example.org")

    unsubscribe_by_link(lead_id=lead.pk, address_hash=old_hash, source=PAGE, delivery_id=sent.pk)

    event = EmailEvent.objects.get()
    assert (event.recipient, event.actions) == (sent.to_email, "suppressed " + sent.to_email + "; left 1 sequence")
    assert not services.email_is_suppressed("ada.new@example.org")


def test_a_link_for_an_address_the_lead_no_longer_has_and_no_email_suppresses_only_the_hash(sent):
    lead = sent.enrollment.lead
    old_hash = email_hash(lead.email)
    lead_services.lead_update(lead=lead, email="ada.new@example.org")

    unsubscribe_by_link(lead_id=lead.pk, address_hash=old_hash, source=PAGE)

    event = EmailEvent.objects.get()
    assert (event.recipient, event.actions) == ("", "left 1 sequence")  # the new address is not the one that asked
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.email_hash, suppression.reason, suppression.source) == (
        "", old_hash, Suppression.Reason.UNSUBSCRIBED, PAGE)
    assert not services.email_is_suppressed("ada.new@example.org")


def test_a_link_for_a_lead_that_is_gone_still_suppresses_the_address_by_its_hash(db):
    address_hash = email_hash("gone@example.org")
    assert unsubscribe_by_link(lead_id=987654, address_hash=address_hash, source=PAGE) is None
    assert not EmailEvent.objects.exists()
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.email_hash, suppression.reason, suppression.source) == (
        "", address_hash, Suppression.Reason.UNSUBSCRIBED, PAGE)


def test_the_same_link_used_again_after_the_address_was_let_back_in_suppresses_it_again(sent):
    lead = sent.enrollment.lead
    address_hash = email_hash(lead.email)
    unsubscribe_by_link(lead_id=lead.pk, address_hash=address_hash, source=PAGE, delivery_id=sent.pk)
    Suppression.objects.all().delete()  # an admin let the address back in, and the lead was enrolled again
    again = services.enrollment_create(lead=lead, sequence=sequence_with_steps(name="Webinar invite"))

    again_by = unsubscribe_by_link(lead_id=lead.pk, address_hash=address_hash, source="one-click button", delivery_id=sent.pk)
    assert again_by == lead

    assert EmailEvent.objects.count() == 1  # the same link: one event
    again.refresh_from_db()
    assert (again.status, again.exit_reason, again.exit_event) == (Enrollment.Status.EXITED, "Unsubscribed", None)
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason, suppression.source) == (
        lead.email, Suppression.Reason.UNSUBSCRIBED, "one-click button")
