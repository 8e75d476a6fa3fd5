"""Enrolling a saved audience in a sequence, however many leads it holds: a preview that checks them in batches
(a few queries per 2,000 leads), then the enrollment itself in the background (`AudienceEnrollment`), each lead
through `enrollment_create` with every rule of the sequence, in id order, with progress a marketer can watch."""

from collections import Counter

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.policy import check_may_build_sequences

from .audiences import audience_leads
from .models import Audience, AudienceEnrollment, Sequence
from .services import EnrollmentPlan, enrollment_create, enrollment_facts, enrollment_plan, enrollment_refusal

PLAN_BATCH = 2000
ENROLL_BATCH = 200


def _batches(audience: Audience, *, after: int, size: int):
    """The audience's leads as they are now, in id order from `after`, `size` at a time."""
    while True:
        leads = list(audience_leads(audience).filter(pk__gt=after).order_by("pk")[:size])
        if not leads:
            return
        yield leads
        after = leads[-1].pk


def audience_enroll_plan(*, audience: Audience, sequence: Sequence) -> EnrollmentPlan:
    """What enrolling the audience would do now: how many would be enrolled, in other sequences, skipped and why
    (with the first leads of each), checked in batches."""
    plan = EnrollmentPlan()
    for leads in _batches(audience, after=0, size=PLAN_BATCH):
        enrollment_plan(leads=leads, sequence=sequence, into=plan)
    return plan


def audience_enroll_start(*, audience: Audience, sequence: Sequence, by=None) -> AudienceEnrollment:
    """Start enrolling the audience's leads in the sequence in the background; the work starts once this
    commits. Refused: a sequence that is not active, or the same audience already being enrolled in it."""
    from .tasks import enroll_audience  # the task module calls this one's services

    check_may_build_sequences(by)
    if sequence.status != Sequence.Status.ACTIVE:
        raise ValidationError({"sequence": [f"“{sequence}” is {sequence.get_status_display().lower()}: activate it "
                                            "before enrolling leads in it."]})
    with transaction.atomic():
        Audience.objects.select_for_update().get(pk=audience.pk)  # two clicks on Enroll start one job
        if AudienceEnrollment.objects.filter(audience=audience, sequence=sequence,
                                             status=AudienceEnrollment.Status.RUNNING).exists():
            raise ValidationError({"sequence": [f"“{audience}” is being enrolled in “{sequence}” already: its progress "
                                                "is on the audience's page."]})
        job = AudienceEnrollment.objects.create(audience=audience, sequence=sequence, started_by=by,
                                                total=audience_leads(audience).count())
        transaction.on_commit(lambda: enroll_audience.delay(job.pk))
        return job


def audience_enroll_step(*, job_id: int, batch_size: int = ENROLL_BATCH) -> bool:
    """Enroll the job's next batch of leads; returns whether there is more to do. A lead the sequence refuses is
    counted by reason (its rules are checked again by `enrollment_create`, under its own transaction)."""
    job = AudienceEnrollment.objects.select_related("audience", "sequence", "started_by").filter(
        pk=job_id, status=AudienceEnrollment.Status.RUNNING).first()
    if job is None:
        return False
    leads = next(_batches(job.audience, after=job.last_lead_id, size=batch_size), [])
    if not leads:
        AudienceEnrollment.objects.filter(pk=job.pk, status=AudienceEnrollment.Status.RUNNING).update(
            status=AudienceEnrollment.Status.DONE, finished_at=timezone.now())
        return False
    known = enrollment_facts(leads=leads, sequence=job.sequence)
    enrolled, skipped = 0, Counter()
    for lead in leads:
        refusal = enrollment_refusal(lead=lead, sequence=job.sequence, known=known)
        if refusal:
            skipped[refusal] += 1
            continue
        try:
            enrollment_create(lead=lead, sequence=job.sequence, by=job.started_by)
        except ValidationError:  # something changed since the batch was read: say what, as the preview would
            skipped[enrollment_refusal(lead=lead, sequence=job.sequence) or "the lead is already in this sequence"] += 1
        except PermissionDenied as exc:
            skipped[str(exc)] += 1
        else:
            enrolled += 1
    with transaction.atomic():
        locked = AudienceEnrollment.objects.select_for_update().get(pk=job.pk)
        if locked.last_lead_id != job.last_lead_id:
            return True  # another run of this step did the batch (its enrollments were refused as duplicates)
        merged = Counter(locked.skipped) + skipped
        AudienceEnrollment.objects.filter(pk=job.pk).update(
            last_lead_id=leads[-1].pk, done=F("done") + len(leads), enrolled=F("enrolled") + enrolled,
            skipped=dict(merged))
    return True


def audience_enroll_fail(*, job_id: int, error: str) -> None:
    AudienceEnrollment.objects.filter(pk=job_id, status=AudienceEnrollment.Status.RUNNING).update(
        status=AudienceEnrollment.Status.FAILED, error=error[:2000], finished_at=timezone.now())
