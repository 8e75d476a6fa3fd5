"""A/B tests of a step: variants, the random split, the recorded assignment, the winner, and the dispatcher."""

import smtplib
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from core.models import DomainEvent
from leads.models import Lead
from nurturing import rendering, services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import TransientSendError, deliveries_send
from nurturing.models import Delivery, Enrollment, SequenceVersion, StepVariant, VariantAssignment
from nurturing.variants import (
    variant_for,
    variant_pick_winner,
    variant_save,
    variant_switch_off,
    variants_assign,
)
from nurturing.versions import versions_diff
from tests.factories import LeadFactory, sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC, Connection, enroll, row, run_once

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monday():
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        yield


@pytest.fixture
def sequence(marketer_user):
    sequence = sequence_with_steps(
        {"subject_template": "Your guide, {{ first_name|default:'there' }}", "text_template": "Step text."},
        {"delay": timedelta(days=2)},
        name="Guide follow-up",
    )
    services.sequence_version_record(sequence=sequence, by=marketer_user)
    return sequence


@pytest.fixture
def step(sequence):
    return sequence.steps.get(position=1)


def add_variant(step, by, **templates):
    return variant_save(variant=StepVariant(step=step, **templates), by=by)


def control(step):
    return StepVariant.objects.get(step=step, label="A")


# --- Saving variants ------------------------------------------------------------------------


def test_the_first_variant_makes_the_step_s_own_email_variant_a_and_itself_b(step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="A question for {{ first_name|default:'you' }}")
    c = add_variant(step, marketer_user, text_template="Shorter text.")

    assert [(v.label, v.subject_template, v.weight, v.is_active) for v in StepVariant.objects.filter(step=step)] == [
        ("A", "", 1, True), ("B", "A question for {{ first_name|default:'you' }}", 1, True), ("C", "", 1, True)]
    assert (b.label, c.label, b.created_by) == ("B", "C", marketer_user)


def test_a_variant_with_an_unknown_merge_field_is_refused_with_what_to_fix_and_nothing_is_written(step, marketer_user):
    with pytest.raises(ValidationError) as refused:
        add_variant(step, marketer_user, subject_template="Hi", text_template="Hello {{ company.nmae }}")

    assert refused.value.message_dict["text_template"] == [
        "plain-text body: unknown merge field “company.nmae” on line 1. Did you mean “name”? "
        "company has: name, domain, industry."]
    assert not StepVariant.objects.exists()


def test_a_variant_that_changes_nothing_is_refused(step, marketer_user):
    with pytest.raises(ValidationError) as refused:
        add_variant(step, marketer_user)

    assert "a subject, bodies or both" in refused.value.message_dict["subject_template"][0]


def test_variant_a_keeps_the_step_s_own_email(step, marketer_user):
    add_variant(step, marketer_user, subject_template="Other subject")
    a = control(step)
    a.subject_template = "Changed here"

    with pytest.raises(ValidationError) as refused:
        variant_save(variant=a, by=marketer_user)

    assert "change the step to change it" in refused.value.message_dict["subject_template"][0]


def test_a_rep_cannot_add_a_variant(step, rep_user):
    with pytest.raises(PermissionDenied):
        add_variant(step, rep_user, subject_template="Other subject")
    assert not StepVariant.objects.exists()


def test_a_live_sequence_s_new_variant_is_a_new_version_that_keeps_the_variants(sequence, step, marketer_user):
    add_variant(step, marketer_user, subject_template="Other subject")

    latest = SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first()
    assert latest.number == 2
    assert [v["label"] for v in latest.steps[0]["variants"]] == ["A", "B"]
    assert latest.steps[0]["variants"][1]["subject_template"] == "Other subject"
    assert "variants" not in latest.steps[1]  # a step without a test is kept as before
    previous = SequenceVersion.objects.get(sequence=sequence, number=1)
    added = [line for kind, line in versions_diff(previous.steps, latest.steps) if kind == "added"]
    assert added == ["  A/B variant A (weight 1)", "  A/B variant B (weight 1)", "    subject:", "      | Other subject"]


def test_picking_the_winner_is_a_version_the_diff_names(sequence, step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="Other subject")
    before = SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first()

    variant_pick_winner(variant=b, by=marketer_user)

    latest = SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first()
    assert latest.number == before.number + 1
    assert ("added", "  A/B winner: B (every lead gets it)") in versions_diff(before.steps, latest.steps)


# --- The split -------------------------------------------------------------------------------


def many_enrollments(sequence, n):
    leads = Lead.objects.bulk_create([Lead(first_name=f"L{i}", email=f"split{i}@example.org") for i in range(n)])
    return Enrollment.objects.bulk_create([Enrollment(lead=lead, sequence=sequence) for lead in leads])


def split(step, enrollments):
    variants = {step.pk: list(StepVariant.objects.filter(step=step))}
    for start in range(0, len(enrollments), 500):  # as the dispatcher does, a batch at a time
        variants_assign([(e.pk, step.pk) for e in enrollments[start:start + 500]], variants=variants,
                        winners={step.pk: None})
    counts = {}
    for label in VariantAssignment.objects.filter(step=step).values_list("variant__label", flat=True):
        counts[label] = counts.get(label, 0) + 1
    return counts


def test_ten_thousand_leads_split_half_and_half_within_three_points(sequence, step, marketer_user):
    add_variant(step, marketer_user, subject_template="Other subject")

    counts = split(step, many_enrollments(sequence, 10_000))

    assert sum(counts.values()) == 10_000
    assert abs(counts["A"] / 10_000 - 0.5) <= 0.03
    assert abs(counts["B"] / 10_000 - 0.5) <= 0.03


def test_ten_thousand_leads_split_80_20_by_weight_within_three_points(sequence, step, marketer_user):
    add_variant(step, marketer_user, subject_template="Other subject")
    a = control(step)
    a.weight = 4
    variant_save(variant=a, by=marketer_user)

    counts = split(step, many_enrollments(sequence, 10_000))

    assert abs(counts["A"] / 10_000 - 0.8) <= 0.03
    assert abs(counts["B"] / 10_000 - 0.2) <= 0.03
    assert VariantAssignment.objects.filter(is_random=False).count() == 0


def test_a_switched_off_variant_gets_no_new_lead(sequence, step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="Other subject")
    variant_switch_off(variant=control(step), by=marketer_user)

    counts = split(step, many_enrollments(sequence, 50))

    assert counts == {"B": 50}
    assert variant_for(enrollment=Enrollment.objects.first(), step=step) == b


# --- Sending ---------------------------------------------------------------------------------


def test_a_delivery_records_its_variant_and_the_version_it_came_from(sequence, step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="A question for {{ first_name|default:'you' }}")
    variant_switch_off(variant=control(step), by=marketer_user)
    enrollment = enroll(sequence, first_name="Ada")
    connection = Connection()

    run_once(connection=connection)

    delivery = row(enrollment)
    latest = SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first()
    assert (delivery.status, delivery.variant, delivery.version) == (Delivery.Status.SENT, b, latest)
    assert [v["is_active"] for v in latest.steps[0]["variants"]] == [False, True]
    [message] = connection.sent
    assert message.subject == "A question for Ada"
    assert message.body.startswith("Step text.")  # the variant's blank body is the step's
    assert VariantAssignment.objects.get(enrollment=enrollment, step=step).variant == b


def test_a_variant_s_bodies_replace_the_step_s_together(sequence, step, marketer_user):
    from nurturing.rendering import step_content

    step.html_template = "<p>The step's HTML</p>"
    step.save()
    subject_only = add_variant(step, marketer_user, subject_template="Other subject")
    text_only = add_variant(step, marketer_user, text_template="Variant text.")

    assert step_content(step, subject_only) == ("Other subject", "Step text.", "<p>The step's HTML</p>")
    # Never B's plain text beside A's HTML: a variant with a plain-text body and no HTML sends no HTML.
    assert step_content(step, text_only) == ("Your guide, {{ first_name|default:'there' }}", "Variant text.", "")
    assert step_content(step, None) == ("Your guide, {{ first_name|default:'there' }}", "Step text.",
                                        "<p>The step's HTML</p>")


def test_a_step_without_a_test_sends_its_own_email_and_records_no_variant(sequence):
    enrollment = enroll(sequence, first_name="Ada")

    run_once(connection=Connection())

    assert (row(enrollment).status, row(enrollment).variant, row(enrollment).subject) == (
        Delivery.Status.SENT, None, "Your guide, Ada")
    assert not VariantAssignment.objects.exists()


def test_a_retry_renders_the_variant_the_first_try_drew(sequence, step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="Variant B for {{ first_name|default:'you' }}")
    variant_switch_off(variant=control(step), by=marketer_user)
    enrollment = enroll(sequence, first_name="Ada")
    token, ids = deliveries_claim(limit=10)
    connection = Connection(error_at=0, error=smtplib.SMTPServerDisconnected("reset"))

    with pytest.raises(TransientSendError):
        deliveries_send(ids=ids, token=token, connection=connection)
    # Meanwhile the test changes: B is off, A is on. The lead keeps what it was given.
    a = control(step)
    a.is_active = True
    variant_save(variant=a, by=marketer_user)
    variant_switch_off(variant=b, by=marketer_user)
    deliveries_send(ids=ids, token=token, connection=connection)

    [message] = connection.sent
    assert message.subject == "Variant B for Ada"
    assert row(enrollment).variant == b
    assert VariantAssignment.objects.count() == 1


def test_the_winner_goes_to_later_leads_and_earlier_leads_keep_theirs(sequence, step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="Variant B")
    variant_switch_off(variant=control(step), by=marketer_user)
    earlier = enroll(sequence, first_name="Ada")
    assert variant_for(enrollment=earlier, step=step) == b

    a = variant_pick_winner(variant=control(step), by=marketer_user)
    step.refresh_from_db()
    later = enroll(sequence, first_name="Bo")
    connection = Connection()
    run_once(connection=connection)

    assert step.winner == a and a.is_active  # picking a switched-off variant switches it on
    assert (row(earlier).variant, row(later).variant) == (b, a)
    assert sorted(m.subject for m in connection.sent) == ["Variant B", "Your guide, Bo"]
    given = VariantAssignment.objects.get(enrollment=later)
    assert (given.variant, given.is_random) == (a, False)
    assert VariantAssignment.objects.get(enrollment=earlier).is_random
    event = DomainEvent.objects.get(type="variant.winner_picked")
    assert (event.actor_user, event.payload["variant"], event.payload["step"]) == (marketer_user, "A", step.pk)
    assert SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first().steps[0]["winner"] == "A"


def test_the_winner_cannot_be_switched_off(step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="Variant B")
    variant_pick_winner(variant=b, by=marketer_user)

    with pytest.raises(ValidationError) as refused:
        variant_switch_off(variant=StepVariant.objects.get(pk=b.pk), by=marketer_user)

    assert "is the winner" in refused.value.message_dict["is_active"][0]
    assert StepVariant.objects.get(pk=b.pk).is_active


def test_a_step_whose_test_is_over_takes_no_new_variant(step, marketer_user):
    b = add_variant(step, marketer_user, subject_template="Variant B")
    variant_pick_winner(variant=b, by=marketer_user)

    with pytest.raises(ValidationError) as refused:
        add_variant(step, marketer_user, subject_template="Variant C")

    assert "test is over" in refused.value.message_dict["step"][0]


# --- Queries ---------------------------------------------------------------------------------


def batch_queries(leads, marketer_user, *, under_test):
    """The queries of one batch that sends step 1 (under an A/B test, or not) to `leads` new leads."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sequence = sequence_with_steps({}, {})
    if under_test:
        add_variant(sequence.steps.get(position=1), marketer_user, subject_template="Variant B")
    for _ in range(leads):
        services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    token, ids = deliveries_claim(limit=100)
    rendering.book_demo_links.forget()  # each batch reads the booking pages once (a process does every few seconds)
    with CaptureQueriesContext(connection) as queries:
        assert deliveries_send(ids=ids, token=token, connection=Connection()).sent == leads
    Delivery.objects.all().delete()
    return len(queries)


def test_a_batch_under_an_a_b_test_makes_as_many_queries_for_twenty_emails_as_for_two(marketer_user):
    without = batch_queries(2, marketer_user, under_test=False)
    # Those of a batch without a test, and three: the variants, the recorded assignments, the new ones; and the
    # savepoint around the insert (two statements), as the test runs in a transaction (a worker runs none).
    assert batch_queries(20, marketer_user, under_test=True) == batch_queries(2, marketer_user, under_test=True) == without + 5
    assert VariantAssignment.objects.count() == 22
