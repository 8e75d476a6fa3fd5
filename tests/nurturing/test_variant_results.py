"""Each variant's results in a step's A/B test, and the significance check against A."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from leads.models import Lead, StageChange
from nurturing.models import Delivery, EmailEvent, Enrollment, StepVariant, VariantAssignment
from nurturing.variant_results import step_test_results, two_proportion_p_value
from nurturing.variants import variant_save
from tests.factories import sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monday():
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        yield


@pytest.fixture
def step(marketer_user):
    step = sequence_with_steps({}, {}).steps.get(position=1)
    variant_save(variant=StepVariant(step=step, subject_template="Variant B"), by=marketer_user)
    return step


def sent(step, label, n, *, replied=0, opened=0, machine_opened=0, advanced=0, is_random=True):
    """`n` emails of the step sent from variant `label` to new leads, the first `replied` replied, and so on."""
    variant = StepVariant.objects.get(step=step, label=label)
    first = Lead.objects.count()
    leads = Lead.objects.bulk_create([Lead(email=f"r{first + i}@example.org") for i in range(n)])
    enrollments = Enrollment.objects.bulk_create([Enrollment(lead=lead, sequence_id=step.sequence_id) for lead in leads])
    VariantAssignment.objects.bulk_create([VariantAssignment(enrollment=e, step=step, variant=variant, is_random=is_random)
                                           for e in enrollments])
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create([
        Delivery(enrollment=e, step=step, variant=variant, status=Delivery.Status.SENT, due_at=now, sent_at=now)
        for e in enrollments])
    events = []
    for kind, count, machine in ((EmailEvent.Kind.REPLIED, replied, False), (EmailEvent.Kind.OPENED, opened, False),
                                 (EmailEvent.Kind.OPENED, machine_opened, True)):
        events += [EmailEvent(delivery=d, lead_id=d.enrollment.lead_id, kind=kind, provider="test", is_machine=machine,
                              occurred_at=now + timedelta(hours=1), dedupe_key=f"{kind}-{machine}-{d.pk}")
                   for d in deliveries[:count]]
    EmailEvent.objects.bulk_create(events)
    StageChange.objects.bulk_create([StageChange(lead=lead, to_status="mql", source_sequence_id=step.sequence_id,
                                                 source_step_id=step.pk) for lead in leads[:advanced]])


def rows(results):
    return {row.variant.label: row for row in results.rows}


def test_each_variant_counts_its_sent_emails_and_what_people_did_with_them(step):
    sent(step, "A", 10, replied=2, opened=5, machine_opened=3, advanced=1)
    sent(step, "B", 8, replied=4, opened=2)

    a, b = rows(step_test_results(step=step)).values()

    assert (a.sent, a.replied, a.opened, a.advanced, a.assigned) == (10, 2, 5, 1, 10)  # machine opens never count
    assert (b.sent, b.replied, b.opened, b.advanced) == (8, 4, 2, 0)
    assert (a.rate("replied"), b.rate("replied")) == (20.0, 50.0)


def test_leads_given_the_winner_do_not_count_in_the_test(step):
    sent(step, "B", 5, replied=1)
    sent(step, "B", 7, replied=7, is_random=False)

    b = rows(step_test_results(step=step))["B"]

    assert (b.sent, b.replied, b.assigned) == (5, 1, 5)


def test_below_a_hundred_emails_of_each_it_is_too_early_to_tell(step):
    sent(step, "A", 100, replied=1)
    sent(step, "B", 99, replied=60)

    b = rows(step_test_results(step=step))["B"]

    assert b.verdict == "Too early to tell: each variant needs at least 100 emails sent (A: 100, B: 99)."
    assert b.p_value is None


def test_a_small_difference_is_no_clear_difference(step):
    sent(step, "A", 200, replied=20)
    sent(step, "B", 200, replied=24)

    b = rows(step_test_results(step=step))["B"]

    assert b.verdict.startswith("Too early to tell: no clear difference in reply rate yet (p = 0.")
    assert b.p_value >= 0.05


def test_a_clear_difference_names_the_variant_that_leads(step):
    sent(step, "A", 200, replied=10)
    sent(step, "B", 200, replied=40)

    b = rows(step_test_results(step=step))["B"]

    assert b.verdict == "B leads (p < 0.001)."


def test_the_control_can_lead_too_and_any_metric_can_judge(step):
    sent(step, "A", 150, replied=5, opened=80)
    sent(step, "B", 150, replied=5, opened=62)

    by_replies = rows(step_test_results(step=step))["B"]
    by_opens = rows(step_test_results(step=step, metric="opened"))["B"]

    assert by_replies.verdict.startswith("Too early to tell: no clear difference")
    assert by_opens.verdict == "A leads (p = 0.04)."  # 53% against 41% of 150 each


def test_the_p_value_is_the_two_sided_two_proportion_z_test():
    # 10/100 against 20/100: pooled 15%, z = 1.98, p = 0.0477 (checked by hand with a normal table).
    assert two_proportion_p_value(10, 100, 20, 100) == pytest.approx(0.0477, abs=0.0005)
    assert two_proportion_p_value(0, 100, 0, 100) == 1.0
    assert two_proportion_p_value(0, 0, 5, 10) == 1.0


def test_a_step_without_a_test_has_no_results():
    step = sequence_with_steps().steps.get()

    assert step_test_results(step=step).rows == []


def test_the_results_read_the_same_few_queries_however_many_emails(step, django_assert_max_num_queries):
    sent(step, "A", 300, replied=30, opened=100, advanced=5)
    sent(step, "B", 300, replied=40, opened=120, advanced=9)

    with django_assert_max_num_queries(4):
        results = step_test_results(step=step)

    assert [row.sent for row in results.rows] == [300, 300]
