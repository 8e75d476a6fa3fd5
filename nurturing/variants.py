"""A/B tests of a step's email: its variants, which lead gets which, and the winner.

The model is described on `StepVariant`: the step's own email is variant A (the control), the variants a marketer
adds are B, C…; leads are split between the active variants by weight, each lead's draw recorded once
(`VariantAssignment`) and reused; once a winner is picked every later lead gets it. What each variant got out of
its leads, and whether the difference is more than chance, is in nurturing.variant_results.
"""

import random
import string

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.events import Actor, EventType, event_record
from core.policy import check_may_build_sequences

from .models import Sequence, Step, StepVariant, VariantAssignment
from .rendering import TemplateProblem, check_template
from .services import sequence_version_record

# The draw uses the operating system's randomness, not a seeded generator nor a hash of the ids: nothing about a
# lead (its id, when it enrolled) can decide its variant, so no pattern in the ids (an import enrolled in order,
# every other lead from one campaign) can leak into the split; worker processes share no generator state to
# repeat after a fork; and nothing needs reproducing, because the draw is recorded and read back, not redrawn.
_draw = random.SystemRandom()

_TEMPLATE_FIELDS = ("subject_template", "text_template", "html_template")
_LABELS = string.ascii_uppercase


def _field_label(name: str) -> str:
    return {"subject_template": "subject", "text_template": "plain-text body", "html_template": "HTML body"}[name]


def variant_check(variant: StepVariant) -> None:
    """Raise ValidationError (by field) if the variant cannot be used: what to fix, as for a step (`step_check`)."""
    errors = {}
    step = variant.step
    if step.kind != Step.Kind.EMAIL:
        errors["step"] = ["Only an email step can be A/B tested: a call task has no email to vary."]
    if variant.label == StepVariant.CONTROL:
        if any(getattr(variant, name).strip() for name in _TEMPLATE_FIELDS):
            errors["subject_template"] = [
                "Variant A is the step's own email: change the step to change it, and leave A's subject and bodies blank."
            ]
    elif not any(getattr(variant, name).strip() for name in _TEMPLATE_FIELDS):
        errors["subject_template"] = [
            "Give the variant what it changes: a subject, bodies or both (left blank, they are the step's)."
        ]
    for name in _TEMPLATE_FIELDS:
        source = getattr(variant, name)
        if source.strip() and name not in errors:
            try:
                check_template(source, field=_field_label(name))
            except TemplateProblem as exc:
                errors[name] = [str(exc)]
    if variant.weight is None or variant.weight < 1:
        errors["weight"] = ["The weight is a whole number from 1 up: its share of the leads against the other variants'."]
    if not variant.is_active and variant.pk is not None and step.winner_id == variant.pk:
        errors["is_active"] = [f"Variant {variant.label} is the winner: every lead gets it now, so it stays on."]
    if errors:
        raise ValidationError(errors)


def _record_version(step: Step, by) -> None:
    sequence = Sequence.objects.get(pk=step.sequence_id)
    if sequence.status in (Sequence.Status.ACTIVE, Sequence.Status.PAUSED):
        sequence_version_record(sequence=sequence, by=by)


@transaction.atomic
def variant_save(*, variant: StepVariant, by=None) -> StepVariant:
    """Add a variant to a step's A/B test, or change one. Guarantees: `by` builds sequences; the variant passes
    `variant_check` (its templates as a step's are checked); the first variant added to a step also adds the
    control, A (the step's own email), so the test starts with two; labels go B, C… in the order added; a test
    whose winner is picked takes no new variant; a live sequence's change is a new version."""
    check_may_build_sequences(by)
    step = Step.objects.select_for_update().get(pk=variant.step_id)  # two variants added at once are lettered in turn
    variant.step = step
    if variant.pk is None:
        if step.winner_id is not None:
            raise ValidationError({"step": [
                "This step's test is over (a winner was picked): every lead gets the winner. Start a new test on "
                "another step, or change the step itself."
            ]})
        labels = set(StepVariant.objects.filter(step=step).values_list("label", flat=True))
        free = [label for label in _LABELS[1:] if label not in labels]
        if not free:
            raise ValidationError({"step": [f"A step can have at most {len(_LABELS)} variants."]})
        variant.label = free[0]
        variant.created_by = by
        variant_check(variant)
        if StepVariant.CONTROL not in labels:
            StepVariant.objects.create(step=step, label=StepVariant.CONTROL, created_by=by)
    else:
        variant_check(variant)
    variant.save()
    _record_version(step, by)
    return variant


def variant_switch_off(*, variant: StepVariant, by=None) -> StepVariant:
    """No new lead gets the variant (those given it keep it). Refused for the winner."""
    variant.is_active = False
    return variant_save(variant=variant, by=by)


@transaction.atomic
def variant_pick_winner(*, variant: StepVariant, by=None) -> StepVariant:
    """Make `variant` the winner of its step's test: every lead that reaches the step from now on gets it, and the
    leads given another variant before keep theirs (recorded). Written as an event and, for a live sequence, a new
    version. Picking another winner later replaces it."""
    check_may_build_sequences(by)
    step = Step.objects.select_for_update().get(pk=variant.step_id)
    variant = StepVariant.objects.select_for_update().get(pk=variant.pk)
    if step.winner_id == variant.pk:
        return variant
    previous = StepVariant.objects.filter(pk=step.winner_id).values_list("label", flat=True).first()
    if not variant.is_active:
        variant.is_active = True
        variant.save(update_fields=["is_active"])
    step.winner = variant
    step.save(update_fields=["winner"])
    event_record(
        EventType.VARIANT_WINNER_PICKED, actor=Actor.of(by), subject=variant,
        payload={"sequence": step.sequence_id, "step": step.pk, "variant": variant.label, "previous": previous},
    )
    _record_version(step, by)
    return variant


# --- Who gets which ------------------------------------------------------------------------------


def variants_assign(pairs, *, variants: dict[int, list[StepVariant]], winners: dict[int, int | None]) -> dict:
    """Each (enrollment id, step id) pair's variant, drawn now and recorded if it has none yet, else the one
    recorded: {(enrollment id, step id): StepVariant or None}. None: the step runs no test (no variant on, no
    winner) and sends its own email.

    `variants`: step id -> its variants (all of them: one recorded before it was switched off is still the lead's);
    `winners`: step id -> its winner's id. Two queries whatever the number of pairs (a third only if someone else
    recorded one of them in between). The caller holds the deliveries (the dispatcher's claim), so no two callers
    draw for the same pair in the normal course.
    """
    pairs = [(enrollment_id, step_id) for enrollment_id, step_id in pairs if variants.get(step_id)]
    if not pairs:
        return {}
    by_id = {variant.pk: variant for step_variants in variants.values() for variant in step_variants}
    recorded = _recorded(pairs)
    chosen = {pair: by_id.get(recorded.get(pair)) for pair in pairs if pair in recorded}
    new = []
    now = timezone.now()
    for pair in pairs:
        if pair in chosen:
            continue
        enrollment_id, step_id = pair
        winner = by_id.get(winners.get(step_id))
        if winner is not None:
            variant, is_random = winner, False
        else:
            live = [variant for variant in variants[step_id] if variant.is_active]
            if not live:
                continue
            variant, is_random = _draw.choices(live, weights=[v.weight for v in live])[0], True
        chosen[pair] = variant
        new.append(VariantAssignment(enrollment_id=enrollment_id, step_id=step_id, variant=variant,
                                     is_random=is_random, assigned_at=now))
    if new:
        try:
            _insert(new)
        except IntegrityError:
            # Another process recorded some of these meanwhile: theirs stand, ours are dropped.
            VariantAssignment.objects.bulk_create(new, ignore_conflicts=True)
            recorded = _recorded(pairs)
            chosen = {pair: by_id.get(recorded.get(pair)) for pair in pairs if pair in recorded}
    return chosen


def _insert(assignments) -> None:
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():  # a savepoint: a conflict must not spoil the caller's transaction
            VariantAssignment.objects.bulk_create(assignments)
    else:
        VariantAssignment.objects.bulk_create(assignments)  # one statement, all or nothing on its own


def _recorded(pairs) -> dict:
    enrollment_ids = {enrollment_id for enrollment_id, _ in pairs}
    step_ids = {step_id for _, step_id in pairs}
    rows = VariantAssignment.objects.filter(enrollment_id__in=enrollment_ids, step_id__in=step_ids).values_list(
        "enrollment_id", "step_id", "variant_id")
    wanted = set(pairs)
    return {(e, s): v for e, s, v in rows if (e, s) in wanted}


def variant_for(*, enrollment, step: Step) -> StepVariant | None:
    """The variant of the step's A/B test this enrollment's lead gets (drawn and recorded the first time, the same
    one after), or None when the step runs no test."""
    variants = list(StepVariant.objects.filter(step=step))
    chosen = variants_assign([(enrollment.pk, step.pk)], variants={step.pk: variants}, winners={step.pk: step.winner_id})
    return chosen.get((enrollment.pk, step.pk))
