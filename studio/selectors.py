"""What the marketers' pages read: sequences with their counts, a sequence's steps, leads to preview on."""

from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from leads.models import Lead
from nurturing.models import Enrollment, Sequence, SequenceVersion, Step
from nurturing.services import LIVE_ENROLLMENT, step_check

LEAD_MATCHES = 8


def sequence_list():
    """Every sequence with its number of steps and of leads in it now (active or paused): one query, a count
    beside each row rather than a join of steps and enrollments."""
    def count(queryset):
        return Subquery(queryset.order_by().values("sequence_id").annotate(n=Count("pk")).values("n"),
                        output_field=IntegerField())

    steps = Step.objects.filter(sequence_id=OuterRef("pk"))
    live = Enrollment.objects.filter(sequence_id=OuterRef("pk"), status__in=LIVE_ENROLLMENT)
    return (Sequence.objects.annotate(step_count=Coalesce(count(steps), 0), live_enrollments=Coalesce(count(live), 0))
            .order_by("name", "pk"))


def sequence_steps(sequence: Sequence) -> list[Step]:
    return list(Step.objects.filter(sequence=sequence).select_related("condition_resource").order_by("position"))


def sequence_live_enrollments(sequence: Sequence) -> int:
    return Enrollment.objects.filter(sequence=sequence, status__in=LIVE_ENROLLMENT).count()


def sequence_latest_version(sequence: Sequence) -> SequenceVersion | None:
    return SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first()


def steps_problems(steps) -> dict[int, list[str]]:
    """Per step id, what `step_check` refuses in it (steps without problems are left out)."""
    problems = {}
    for step in steps:
        try:
            step_check(step)
        except ValidationError as exc:
            problems[step.pk] = exc.messages
    return problems


def lead_search(*, access, query: str, limit: int = LEAD_MATCHES) -> list[Lead]:
    """Live leads this user may see whose name or email holds every word of `query` (at most `limit`)."""
    words = query.split()[:4]
    if not words:
        return []
    condition = Q()
    for word in words:
        condition &= Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
    leads = access.leads(Lead.objects.filter(archived_at__isnull=True))
    return list(leads.filter(condition).select_related("company", "owner", "campaign")
                .order_by("last_name", "first_name", "pk")[:limit])


def lead_for_preview(*, access, pk) -> Lead | None:
    """The lead with this id, if this user may see it."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    leads = access.leads(Lead.objects.filter(archived_at__isnull=True))
    return leads.select_related("company", "owner", "campaign").filter(pk=pk).first()
