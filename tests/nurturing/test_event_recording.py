"""How an email event is stored: once, matched to its email and lead, cut to its columns, marked human or machine.

Through nurturing.engagement.event_record, as the webhooks call it; the clock is frozen.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Task
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import Delivery, EmailEvent, Suppression, email_hash
from tests.factories import LeadFactory

pytestmark = pytest.mark.usefixtures("webhooks")

K = EmailEvent.Kind
HUMAN_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
BURST_REASON = "several links of the email clicked within 2 s (link scanner)"


def incoming(**fields):
    values = {"provider": "postmark", "kind": K.OTHER, "occurred_at": timezone.now(), **fields}
    return IncomingEvent(**values)


def test_an_event_is_stored_as_the_provider_said_it_cut_to_its_columns(db, rep_user):
    long_address = "a" * 300 + "@example.org"
    event = event_record(incoming(
        provider="p" * 50, kind=K.BOUNCED, bounce=EmailEvent.Bounce.SOFT, event_id="e" * 250, message_id="m" * 350,
        recipient=f"  {long_address.upper()} ", url="https://example.com/" + "u" * 600, user_agent="x" * 600,
        description="d" * 6000, occurred_at=timezone.now() - timedelta(minutes=3), recorded_by=rep_user,
    ))

    stored = EmailEvent.objects.get()
    assert stored.pk == event.pk
    assert (stored.provider, stored.event_id, stored.message_id) == ("p" * 40, "e" * 200, "m" * 300)
    assert stored.recipient == long_address[:254]
    assert (stored.url, stored.user_agent, stored.description) == ("https://example.com/" + "u" * 600, "x" * 500, "d" * 5000)
    assert (stored.kind, stored.bounce, stored.occurred_at) == (K.BOUNCED, "soft", timezone.now() - timedelta(minutes=3))
    assert (stored.delivery, stored.lead, stored.recorded_by, stored.is_machine, stored.machine_reason) == (
        None, None, rep_user, False, "")


def test_an_event_about_a_sent_email_is_linked_to_it_and_its_lead_and_names_its_address(sent):
    event = event_record(incoming(kind=K.DELIVERED, message_id=sent.provider_message_id, event_id="d-1"))
    assert (event.delivery, event.lead, event.recipient) == (sent, sent.enrollment.lead, sent.to_email)


def test_the_email_and_lead_the_caller_names_come_before_the_message_id(sent, rep_user):
    other = LeadFactory(owner=rep_user)
    event = event_record(incoming(kind=K.DELIVERED, message_id="<not-ours@elsewhere>", event_id="d-1", delivery=sent,
                                  lead=other))
    assert (event.delivery, event.lead, event.recipient) == (sent, other, sent.to_email)


@pytest.mark.parametrize("message_id", ["{message_id}", "  {message_id}  ", "{bare}", "{provider_message_id}",
                                        "<{provider_message_id}>", "<{provider_message_id}@email.amazonses.com>"],
                         ids=["message-id", "spaces", "without-brackets", "provider-id", "provider-id-bracketed",
                              "ses-rewritten"])
def test_an_event_finds_its_email_by_any_form_of_its_message_id(sent, message_id):
    given = message_id.format(message_id=sent.message_id, bare=sent.message_id.strip("<>"),
                              provider_message_id=sent.provider_message_id)
    assert event_record(incoming(kind=K.DELIVERED, message_id=given, event_id="d-1")).delivery == sent


def test_a_provider_id_is_matched_as_it_is_whatever_letters_it_starts_and_ends_with(sent):
    Delivery.objects.filter(pk=sent.pk).update(provider_message_id="Xq7Lw2KmX")  # a random mixed-case token
    assert event_record(incoming(kind=K.DELIVERED, message_id="Xq7Lw2KmX", event_id="d-1")).delivery == sent


def test_a_message_id_is_matched_as_it_is_whatever_letters_it_starts_and_ends_with(sent):
    Delivery.objects.filter(pk=sent.pk).update(message_id="<X7.imported@mail.example.X>", provider_message_id="")
    event = event_record(incoming(kind=K.DELIVERED, message_id="X7.imported@mail.example.X", event_id="d-1"))
    assert event.delivery == sent


def test_a_provider_id_kept_in_angle_brackets_is_found_without_them(sent):
    Delivery.objects.filter(pk=sent.pk).update(provider_message_id="<20260603100000.1.ab12@mg.example.org>")  # as Mailgun has it
    event = event_record(incoming(kind=K.DELIVERED, message_id="20260603100000.1.ab12@mg.example.org", event_id="d-1"))
    assert event.delivery == sent


def test_the_part_before_the_at_sign_of_our_own_message_id_finds_no_email(sent):
    local_part = sent.message_id.strip("<>").partition("@")[0]
    Delivery.objects.filter(pk=sent.pk).update(provider_message_id="")
    rewritten = event_record(incoming(kind=K.DELIVERED, message_id=f"<{local_part}@elsewhere.example>", event_id="d-1"))
    assert rewritten.delivery is None
    assert event_record(incoming(kind=K.DELIVERED, message_id=local_part, event_id="d-2")).delivery is None


def test_an_event_without_a_message_id_is_linked_to_no_email(sent):
    Delivery.objects.filter(pk=sent.pk).update(provider_message_id="")
    assert event_record(incoming(kind=K.DELIVERED, message_id="", event_id="d-1")).delivery is None
    assert event_record(incoming(kind=K.DELIVERED, message_id="<>", event_id="d-2")).delivery is None


# --- Recorded once ---------------------------------------------------------------------------


def test_an_event_the_provider_sends_again_under_its_id_is_recorded_once(sent):
    first = event_record(incoming(kind=K.DELIVERED, event_id="evt-1", message_id=sent.provider_message_id))
    again = event_record(incoming(kind=K.DELIVERED, event_id="evt-1", message_id=sent.provider_message_id,
                                  occurred_at=timezone.now() + timedelta(seconds=5)))
    assert first is not None and again is None
    assert EmailEvent.objects.count() == 1
    other_provider = event_record(incoming(provider="mailgun", kind=K.DELIVERED, event_id="evt-1"))
    assert other_provider is not None


def test_an_event_without_an_id_is_recorded_once_whatever_the_case_of_its_address(sent):
    fields = {"kind": K.OPENED, "message_id": sent.provider_message_id, "recipient": "Ada@Example.org",
              "user_agent": HUMAN_AGENT}
    assert event_record(incoming(**fields)) is not None
    assert event_record(incoming(**{**fields, "recipient": "ada@example.org"})) is None
    assert EmailEvent.objects.count() == 1


def test_the_key_an_event_is_recognized_by_stays_the_same_from_one_version_to_the_next(db):
    """Keys are stored: a provider's retry that arrives after an upgrade must still be recognized."""
    import hashlib

    with_id = event_record(incoming(kind=K.OPENED, event_id="evt-7", user_agent=HUMAN_AGENT))
    without = event_record(incoming(kind=K.CLICKED, message_id="<one@crm.test>", recipient="Ada@Example.org",
                                    url="https://example.com/a", user_agent=HUMAN_AGENT))
    assert with_id.dedupe_key == hashlib.sha256(b"postmark|id|evt-7").hexdigest()
    basis = "postmark|clicked|<one@crm.test>|ada@example.org|2026-06-03T10:00:00+00:00|https://example.com/a"
    assert without.dedupe_key == hashlib.sha256(basis.encode()).hexdigest()


@pytest.mark.parametrize("change", [
    {"provider": "mailgun"}, {"kind": K.CLICKED}, {"message_id": "<other@crm.test>"}, {"recipient": "bob@example.org"},
    {"occurred_at": "later"}, {"url": "https://example.com/b"},
], ids=["provider", "kind", "message-id", "recipient", "time", "url"])
def test_events_without_an_id_that_differ_in_anything_they_say_are_each_recorded(db, change):
    fields = {"kind": K.OPENED, "message_id": "<one@crm.test>", "recipient": "ada@example.org",
              "url": "https://example.com/a", "user_agent": HUMAN_AGENT}
    if change.get("occurred_at") == "later":
        change = {"occurred_at": timezone.now() + timedelta(seconds=1)}
    assert event_record(incoming(**fields)) is not None
    assert event_record(incoming(**{**fields, **change})) is not None
    assert EmailEvent.objects.count() == 2


# --- Person or machine -----------------------------------------------------------------------


def test_a_provider_that_says_a_machine_did_it_is_believed_and_nothing_follows(sent):
    event = event_record(incoming(kind=K.CLICKED, message_id=sent.provider_message_id, url="https://example.com/pricing",
                                  user_agent=HUMAN_AGENT, machine_hint="Link checked by the provider's scanner"))
    assert (event.is_machine, event.machine_reason, event.actions) == (True, "Link checked by the provider's scanner", "")
    assert not Task.objects.exists()


def click(delivery, url, at, **fields):
    return event_record(incoming(kind=K.CLICKED, message_id=delivery.provider_message_id, url=url, occurred_at=at,
                                 user_agent=HUMAN_AGENT, **fields))


def test_a_click_on_another_link_of_the_same_email_within_2_seconds_is_a_scanner(sent):
    click(sent, "https://example.com/blog", timezone.now() - timedelta(seconds=2))
    event = click(sent, "https://example.com/pricing", timezone.now())
    assert (event.is_machine, event.machine_reason, event.actions) == (True, BURST_REASON, "")


def test_the_same_link_clicked_twice_within_2_seconds_is_a_person(sent):
    click(sent, "https://example.com/blog", timezone.now() - timedelta(seconds=1))
    event = click(sent, "https://example.com/blog", timezone.now())
    assert (event.is_machine, event.machine_reason) == (False, "")


def test_clicks_on_other_emails_or_opens_do_not_make_a_click_a_scanners(sent):
    other = sent.enrollment.deliveries.exclude(pk=sent.pk).get()
    Delivery.objects.filter(pk=other.pk).update(status=Delivery.Status.SENT, sent_at=timezone.now() - timedelta(hours=1),
                                                provider_message_id="pm-other")
    other.refresh_from_db()
    click(other, "https://example.com/blog", timezone.now() - timedelta(seconds=1))
    event_record(incoming(kind=K.OPENED, message_id=sent.provider_message_id, user_agent=HUMAN_AGENT,
                          occurred_at=timezone.now() - timedelta(seconds=1)))
    event = click(sent, "https://example.com/pricing", timezone.now())
    assert (event.is_machine, event.actions) == (False, "moved to MQL; call task for rep1")


def test_clicks_on_emails_we_cannot_find_are_not_compared_with_each_other(db):
    click_fields = {"kind": K.CLICKED, "message_id": "<unknown@elsewhere>", "user_agent": HUMAN_AGENT}
    event_record(incoming(url="https://example.com/a", occurred_at=timezone.now() - timedelta(seconds=1), **click_fields))
    event = event_record(incoming(url="https://example.com/b", **click_fields))
    assert (event.delivery, event.is_machine) == (None, False)


def test_a_click_fetched_with_a_head_request_is_a_link_scanners(sent):
    event = click(sent, "https://example.com/pricing", timezone.now(), method="head")
    assert (event.is_machine, event.machine_reason, event.actions) == (True, "HEAD request (link scanner)", "")


def test_a_click_is_judged_against_the_time_its_email_was_sent(sent, settings):
    settings.CRM_SCANNER_CLICK_SECONDS = 10
    Delivery.objects.filter(pk=sent.pk).update(sent_at=timezone.now() - timedelta(seconds=10))
    event = click(sent, "https://example.com/pricing", timezone.now())
    assert (event.is_machine, event.machine_reason) == (True, "clicked 10 s after sending (link scanner)")


# --- Erased people ---------------------------------------------------------------------------


def erased(address):
    """The address kept only as its hash, as erasing a person leaves it."""
    Suppression.objects.create(email_hash=email_hash(address), reason=Suppression.Reason.ERASED)


def test_an_event_about_an_erased_address_keeps_nothing_the_person_wrote_or_sent(db):
    erased("gone@example.org")
    event = event_record(incoming(kind=K.CLICKED, message_id="<old@crm.test>", recipient="Gone@Example.org",
                                  url="https://example.com/?who=gone", user_agent=HUMAN_AGENT, description="Gone's words"))
    stored = EmailEvent.objects.get(pk=event.pk)
    assert (stored.recipient, stored.url, stored.user_agent, stored.description) == ("", "", "", "")
    assert (stored.kind, stored.message_id) == (K.CLICKED, "<old@crm.test>")


def test_an_event_about_an_address_suppressed_with_its_address_keeps_what_it_says(db):
    Suppression.objects.create(email="kept@example.org", email_hash=email_hash("kept@example.org"),
                               reason=Suppression.Reason.UNSUBSCRIBED)
    event = event_record(incoming(kind=K.OTHER, message_id="<old@crm.test>", recipient="kept@example.org", description="Hi"))
    assert (event.recipient, event.description) == ("kept@example.org", "Hi")


def test_an_event_about_a_known_lead_keeps_its_address_even_if_a_hash_only_suppression_matches(db, rep_user):
    lead = LeadFactory(owner=rep_user, email="back@example.org")
    erased("back@example.org")
    event = event_record(incoming(kind=K.OTHER, recipient="back@example.org", description="Hi again", lead=lead))
    assert (event.recipient, event.description) == ("back@example.org", "Hi again")
