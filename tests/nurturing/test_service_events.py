"""The nurturing services append their events in the same transaction: enrollments started and ended, suppressions."""

from datetime import UTC, datetime

import pytest
import time_machine

from core.models import ActorKind, DomainEvent
from nurturing import services
from nurturing.models import Enrollment, Suppression
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def rows(**filters):
    return list(
        DomainEvent.objects.filter(**filters).order_by("id")
        .values_list("type", "lead_id", "subject_type", "subject_id", "actor_kind", "actor_user_id", "actor_ref", "payload")
    )


def test_an_enrollment_started_and_ended_by_hand_is_told_with_who_and_why(marketer_user):
    lead = LeadFactory()
    sequence = sequence_with_steps()
    enrollment = services.enrollment_create(lead=lead, sequence=sequence, by=marketer_user)
    services.enrollment_exit(enrollment=enrollment, reason="Removed by marketer")
    services.enrollment_exit(enrollment=enrollment, reason="Removed twice")  # nothing left to end: no event

    assert rows(subject_type="enrollment") == [
        ("enrollment.started", lead.pk, "enrollment", enrollment.pk, ActorKind.USER, marketer_user.pk, {},
         {"sequence": sequence.pk}),
        ("enrollment.exited", lead.pk, "enrollment", enrollment.pk, ActorKind.SYSTEM, None, {},
         {"sequence": sequence.pk, "reason": "Removed by marketer"}),
    ]


def test_leaving_every_sequence_tells_each_enrollment_and_names_the_email_event_behind_it():
    from nurturing.models import EmailEvent

    lead = LeadFactory()
    first, second = sequence_with_steps(name="A"), sequence_with_steps(name="B")
    one = services.enrollment_create(lead=lead, sequence=first)
    two = services.enrollment_create(lead=lead, sequence=second)
    reply = EmailEvent.objects.create(lead=lead, kind=EmailEvent.Kind.REPLIED, occurred_at=NOW, dedupe_key="r1")

    assert services.lead_exit_all(lead_id=lead.pk, reason="Replied", event=reply) == 2

    assert rows(type="enrollment.exited") == [
        ("enrollment.exited", lead.pk, "enrollment", e.pk, ActorKind.EMAIL_EVENT, None, {"email_event": reply.pk},
         {"sequence": e.sequence_id, "reason": "Replied"})
        for e in (one, two)
    ]


def test_archiving_a_sequence_tells_each_lead_that_left_it(manager_user):
    sequence = sequence_with_steps()
    enrollment = services.enrollment_create(lead=LeadFactory(), sequence=sequence)

    services.sequence_archive(sequence=sequence, by=manager_user)

    assert Enrollment.objects.get().status == Enrollment.Status.EXITED
    assert rows(type="enrollment.exited") == [
        ("enrollment.exited", enrollment.lead_id, "enrollment", enrollment.pk, ActorKind.USER, manager_user.pk, {},
         {"sequence": sequence.pk, "reason": "The sequence was archived"})
    ]


def test_a_suppression_added_and_corrected_is_told_without_the_address(manager_user):
    suppression = services.suppression_add(email="ada@example.org", reason=Suppression.Reason.COMPLAINED, by=manager_user)
    services.suppression_add(email="ADA@example.org")  # already suppressed: nothing new
    services.suppression_update(suppression=suppression, by=manager_user, reason=Suppression.Reason.MANUAL)

    assert rows(subject_type="suppression") == [
        ("suppression.added", None, "suppression", suppression.pk, ActorKind.USER, manager_user.pk, {},
         {"reason": "complained"}),
        ("suppression.updated", None, "suppression", suppression.pk, ActorKind.USER, manager_user.pk, {},
         {"fields": ["reason"]}),
    ]
    assert "ada" not in str(list(DomainEvent.objects.values_list("payload", "actor_ref")))


def test_a_refused_enrollment_tells_nothing():
    from django.core.exceptions import ValidationError

    sequence = sequence_with_steps(status="paused")
    with pytest.raises(ValidationError):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    assert not DomainEvent.objects.filter(type__startswith="enrollment.").exists()


def test_each_email_event_is_logged_once_with_the_event_or_the_rep_behind_it(rep_user, sent):
    from datetime import timedelta

    from nurturing import engagement
    from nurturing.models import EmailEvent

    lead = sent.enrollment.lead
    click = engagement.IncomingEvent(
        provider="postmark", kind="clicked", occurred_at=NOW - timedelta(minutes=5), event_id="c-1", delivery=sent,
        url="https://example.com/docs", user_agent="Mozilla/5.0 (Windows NT 10.0) Chrome/130",
    )
    stored = engagement.event_record(click)
    assert engagement.event_record(click) is None  # the provider sent it again: one row, one event
    reply = engagement.reply_log(lead=lead, by=rep_user, at=NOW - timedelta(minutes=1), note="Call me")

    assert rows(type="email.sent", subject_id=sent.pk) != []  # the email the lead engaged with
    assert rows(type__startswith="email.", type__in=["email.clicked", "email.replied", "email.opened"]) == [
        ("email.clicked", lead.pk, "emailevent", stored.pk, ActorKind.EMAIL_EVENT, None, {"email_event": stored.pk},
         {"delivery": sent.pk, "machine": False, "bounce": ""}),
        ("email.replied", lead.pk, "emailevent", reply.pk, ActorKind.USER, rep_user.pk, {},
         {"delivery": sent.pk, "machine": False, "bounce": ""}),
    ]
    assert EmailEvent.objects.count() == 2


def test_a_reply_cannot_be_logged_in_the_future_by_any_caller(rep_user):
    from datetime import timedelta

    from django.core.exceptions import ValidationError

    from nurturing import engagement
    from nurturing.models import EmailEvent

    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError) as refused:
        engagement.reply_log(lead=lead, by=rep_user, at=NOW + timedelta(minutes=2))
    assert refused.value.message_dict == {"occurred_at": ["A reply cannot be in the future."]}
    assert not EmailEvent.objects.exists() and not DomainEvent.objects.filter(type="email.replied").exists()
    assert engagement.reply_log(lead=lead, by=rep_user, at=NOW + timedelta(seconds=50)) is not None  # clocks drift


def test_pausing_resuming_and_removing_by_hand_are_told_with_who_did_it(rep_user):
    lead = LeadFactory(owner=rep_user)
    enrollment = services.enrollment_create(lead=lead, sequence=sequence_with_steps(), by=rep_user)
    services.enrollment_pause(enrollment=enrollment, by=rep_user)
    services.enrollment_pause(enrollment=enrollment, by=rep_user)  # already paused: nothing happens, nothing told
    services.enrollment_resume(enrollment=enrollment, by=rep_user)
    services.enrollment_exit(enrollment=enrollment, reason="Removed by rep1", by=rep_user)

    assert [(t, actor_kind, user) for t, _, _, _, actor_kind, user, _, _ in rows(subject_type="enrollment")] == [
        ("enrollment.started", ActorKind.USER, rep_user.pk),
        ("enrollment.paused", ActorKind.USER, rep_user.pk),
        ("enrollment.resumed", ActorKind.USER, rep_user.pk),
        ("enrollment.exited", ActorKind.USER, rep_user.pk),
    ]


# What the policy refuses in the nurturing services: another rep's lead's sequences, and building sequences as a rep.
NURTURING_REFUSED = {
    "enroll another rep's lead": lambda s, e, user: services.enrollment_create(lead=e.lead, sequence=s, by=user),
    "bulk enroll another rep's lead": lambda s, e, user: _refused_in_bulk(s, e, user),
    "pause another rep's enrollment": lambda s, e, user: services.enrollment_pause(enrollment=e, by=user),
    "resume another rep's enrollment": lambda s, e, user: services.enrollment_resume(enrollment=e, by=user),
    "remove another rep's lead": lambda s, e, user: services.enrollment_exit(enrollment=e, reason="No", by=user),
    "save a sequence as a rep": lambda s, e, user: services.sequence_save(sequence=s, by=user),
    "activate a sequence as a rep": lambda s, e, user: services.sequence_activate(sequence=s, by=user),
    "pause a sequence as a rep": lambda s, e, user: services.sequence_pause(sequence=s, by=user),
    "archive a sequence as a rep": lambda s, e, user: services.sequence_archive(sequence=s, by=user),
    "save a step as a rep": lambda s, e, user: services.step_save(step=s.steps.first(), by=user),
    "delete a step as a rep": lambda s, e, user: services.step_delete(step=s.steps.last(), by=user),
}


def _refused_in_bulk(sequence, enrollment, user):
    from django.core.exceptions import PermissionDenied

    enrolled, refused = services.enroll_many(leads=[enrollment.lead], sequence=sequence, by=user)
    assert (enrolled, len(refused)) == (0, 1) and "Only the lead's owner" in refused[0]
    raise PermissionDenied(refused[0])


@pytest.mark.parametrize("call", NURTURING_REFUSED.values(), ids=NURTURING_REFUSED.keys())
def test_what_the_policy_refuses_the_nurturing_services_refuse_and_nothing_changes(call, rep_user):
    from django.core.exceptions import PermissionDenied

    from tests.factories import rep

    sequence = sequence_with_steps({}, {})
    enrollment = services.enrollment_create(lead=LeadFactory(owner=rep(username="rep2")), sequence=sequence)
    before = (DomainEvent.objects.count(), list(Enrollment.objects.values_list("status", flat=True)),
              sequence.status, sequence.steps.count())
    with pytest.raises(PermissionDenied):
        call(sequence, enrollment, rep_user)
    sequence.refresh_from_db()
    assert (DomainEvent.objects.count(), list(Enrollment.objects.values_list("status", flat=True)),
            sequence.status, sequence.steps.count()) == before


def test_marketers_and_managers_build_sequences(marketer_user, manager_user):
    from nurturing.models import Sequence

    for user in (marketer_user, manager_user):
        sequence = sequence_with_steps({})
        services.sequence_pause(sequence=sequence, by=user)
        services.sequence_activate(sequence=sequence, by=user)
        assert services.sequence_archive(sequence=sequence, by=user) == 0
        assert Sequence.objects.get(pk=sequence.pk).status == Sequence.Status.ARCHIVED
