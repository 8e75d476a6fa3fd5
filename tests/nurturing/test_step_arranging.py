"""Reordering, duplicating and switching steps: the builder's writes, refused whole on bad input, versioned when live."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from nurturing import services
from nurturing.models import Step
from tests.factories import sequence_with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel("2026-11-30 10:00:00Z", tick=False):
        yield


def _subjects(sequence):
    return list(Step.objects.filter(sequence=sequence).order_by("position").values_list("subject_template", flat=True))


def _three(status="draft"):
    return sequence_with_steps({"subject_template": "A"}, {"subject_template": "B"}, {"subject_template": "C"},
                               status=status)


def test_reordering_puts_the_steps_in_the_given_order_numbered_from_one(marketer_user):
    sequence = _three()
    a, b, c = Step.objects.filter(sequence=sequence).order_by("position")
    services.steps_reorder(sequence=sequence, order=[c.pk, a.pk, b.pk], by=marketer_user)
    assert _subjects(sequence) == ["C", "A", "B"]
    assert list(Step.objects.filter(sequence=sequence).order_by("position").values_list("position", flat=True)) == [1, 2, 3]


def test_reordering_a_live_sequence_makes_a_new_version(marketer_user):
    sequence = _three(status="draft")
    services.sequence_activate(sequence=sequence, by=marketer_user)
    a, b, c = Step.objects.filter(sequence=sequence).order_by("position")
    services.steps_reorder(sequence=sequence, order=[b.pk, a.pk, c.pk], by=marketer_user)
    latest = sequence.versions.order_by("-number").first()
    assert latest.number == 2
    assert [step["subject_template"] for step in latest.steps] == ["B", "A", "C"]


@pytest.mark.parametrize(("order_of", "says"), [
    (lambda a, b, c, other: [a, b], "leaves out steps"),
    (lambda a, b, c, other: [a, b, c, c], "lists a step twice"),
    (lambda a, b, c, other: [a, b, other], "not in"),
    (lambda a, b, c, other: [a, b, "x"], "by their numbers"),
])
def test_an_order_that_does_not_list_exactly_the_sequences_steps_is_refused_and_nothing_moves(marketer_user, order_of,
                                                                                              says):
    sequence = _three()
    other = sequence_with_steps(name="Other").steps.get()
    a, b, c = Step.objects.filter(sequence=sequence).order_by("position")
    with pytest.raises(ValidationError, match=says):
        services.steps_reorder(sequence=sequence, order=order_of(a.pk, b.pk, c.pk, other.pk), by=marketer_user)
    assert _subjects(sequence) == ["A", "B", "C"]


def test_a_rep_may_not_reorder_steps(rep_user):
    sequence = _three()
    a, b, c = Step.objects.filter(sequence=sequence).order_by("position")
    with pytest.raises(PermissionDenied):
        services.steps_reorder(sequence=sequence, order=[c.pk, b.pk, a.pk], by=rep_user)
    assert _subjects(sequence) == ["A", "B", "C"]


def test_duplicating_a_step_puts_its_copy_right_after_it(marketer_user):
    sequence = _three()
    b = Step.objects.get(sequence=sequence, subject_template="B")
    Step.objects.filter(pk=b.pk).update(delay=timedelta(days=3), click_link_contains="/pricing",
                                        click_creates_call_task=True)
    copy = services.step_duplicate(step=b, by=marketer_user)
    assert _subjects(sequence) == ["A", "B", "B", "C"]
    copy.refresh_from_db()
    assert (copy.position, copy.delay, copy.click_link_contains, copy.click_creates_call_task) == (
        3, timedelta(days=3), "/pricing", True)


def test_duplicating_a_step_of_a_live_sequence_makes_a_new_version(marketer_user):
    sequence = _three()
    services.sequence_activate(sequence=sequence, by=marketer_user)
    services.step_duplicate(step=Step.objects.get(sequence=sequence, subject_template="A"), by=marketer_user)
    assert [s["subject_template"] for s in sequence.versions.order_by("-number").first().steps] == ["A", "A", "B", "C"]


def test_a_step_with_a_refused_template_is_not_duplicated(marketer_user):
    sequence = _three()
    Step.objects.filter(sequence=sequence, subject_template="A").update(text_template="Hi {{ company.nmae }}")
    with pytest.raises(ValidationError, match="Did you mean"):
        services.step_duplicate(step=Step.objects.get(sequence=sequence, subject_template="A"), by=marketer_user)
    assert _subjects(sequence) == ["A", "B", "C"]


def test_switching_a_step_off_and_on_again_is_kept_and_versioned_when_live(marketer_user):
    sequence = _three()
    services.sequence_activate(sequence=sequence, by=marketer_user)
    b = Step.objects.get(sequence=sequence, subject_template="B")
    services.step_switch(step=b, is_active=False, by=marketer_user)
    assert Step.objects.get(pk=b.pk).is_active is False
    assert sequence.versions.order_by("-number").first().steps[1]["is_active"] is False
    services.step_switch(step=b, is_active=True, by=marketer_user)
    assert Step.objects.get(pk=b.pk).is_active is True
    assert sequence.versions.count() == 3


def test_the_only_active_step_of_an_active_sequence_cannot_be_switched_off(marketer_user):
    sequence = sequence_with_steps(status="active")
    step = sequence.steps.get()
    with pytest.raises(ValidationError, match="pause the sequence instead"):
        services.step_switch(step=step, is_active=False, by=marketer_user)
    assert Step.objects.get(pk=step.pk).is_active is True


def test_a_step_whose_template_is_refused_cannot_be_switched_on(marketer_user):
    sequence = _three()
    Step.objects.filter(sequence=sequence, subject_template="C").update(is_active=False, subject_template="{{ frist_name }}")
    step = Step.objects.get(sequence=sequence, position=3)
    with pytest.raises(ValidationError, match="Did you mean"):
        services.step_switch(step=step, is_active=True, by=marketer_user)
    assert Step.objects.get(pk=step.pk).is_active is False


def test_a_change_to_the_steps_is_the_sequences_last_change(marketer_user):
    sequence = _three()
    with time_machine.travel("2026-11-30 12:00:00Z", tick=False):
        services.step_save(step=Step.objects.get(sequence=sequence, position=1), by=marketer_user)
    sequence.refresh_from_db()
    assert sequence.updated_at.isoformat() == "2026-11-30T12:00:00+00:00"
