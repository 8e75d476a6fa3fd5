"""What the API reads for marketing, through the permission policy: reps read the enrollments, submissions and
conversions of the leads they may see; managers and marketers read them all. Sequences, campaigns and spend are
read by every role. Each list is one query per page (two for sequences, with their steps)."""

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from rest_framework import exceptions

from core.policy import Access
from leads.models import Campaign, CampaignSpend, Conversion, FormSubmission, Lead
from nurturing.models import Enrollment, Sequence, Step

from . import selectors
from .serializers import MAX_ID


class NoSuchLead(exceptions.NotFound):
    """A lead named in a body that does not exist or that the user may not see: 404, naming the field."""

    def __init__(self, field: str = "lead"):
        detail = "No such lead, or not one you may see."
        super().__init__(detail)
        self.problem_extra = {"errors": [{"field": field, "detail": detail}]}


def _check_pk(pk: int) -> None:
    if not 1 <= pk <= MAX_ID:
        raise Http404("No such resource.")


def _of_visible_leads(rows, access: Access, *, anonymous: bool = False):
    """Those of `rows` (with a `lead`) about leads `access` may see; with `anonymous`, those of no lead too
    (an anonymous visitor's conversion), for the roles that see every lead."""
    if access.sees_all:
        visible = Q(lead__archived_at__isnull=True)
        return rows.filter(visible | Q(lead__isnull=True) if anonymous else visible)
    return rows.filter(lead__in=access.leads(Lead.objects.live()))


def _within(rows, field: str, after, before):
    """Rows whose `field` is at or after `after` and before `before` (either may be None: no bound)."""
    if after is not None:
        rows = rows.filter(**{f"{field}__gte": after})
    if before is not None:
        rows = rows.filter(**{f"{field}__lt": before})
    return rows


def api_body_lead_get(*, access: Access, pk: int) -> Lead:
    """A lead named in a body: one the user may see, or a 404 naming `lead`."""
    try:
        return selectors.api_lead_get(access=access, pk=pk)
    except Http404:
        raise NoSuchLead() from None


# --- Sequences and enrollments ------------------------------------------------------------------


def _enrollment_count(status: str):
    counted = (
        Enrollment.objects.filter(sequence=OuterRef("pk"), status=status)
        .order_by().values("sequence").annotate(n=Count("id")).values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _sequences():
    return (
        Sequence.objects.select_related("target_persona")
        .annotate(active_enrollments=_enrollment_count(Enrollment.Status.ACTIVE),
                  paused_enrollments=_enrollment_count(Enrollment.Status.PAUSED))
        .prefetch_related(Prefetch("steps", queryset=Step.objects.order_by("position")))
    )


def api_sequence_list(*, filters: dict):
    """Every sequence (all roles read them: reps enroll their leads), with steps and live enrollment counts."""
    rows = _sequences()
    if filters.get("status"):
        rows = rows.filter(status=filters["status"])
    return rows.order_by()


def api_sequence_get(*, pk: int) -> Sequence:
    _check_pk(pk)
    sequence = _sequences().filter(pk=pk).first()
    if sequence is None:
        raise Http404("No such sequence.")
    return sequence


def api_enrollment_list(*, access: Access, filters: dict):
    rows = _of_visible_leads(Enrollment.objects.select_related("sequence"), access)
    for name in ("sequence", "lead"):
        if filters.get(name) is not None:
            rows = rows.filter(**{f"{name}_id": filters[name]})
    if filters.get("status"):
        rows = rows.filter(status=filters["status"])
    return rows.order_by()


def api_enrollment_get(*, access: Access, pk: int, action: str = "view") -> Enrollment:
    """An enrollment of a lead the user may see (else 404); `action` "enroll": one they may change (else 403)."""
    _check_pk(pk)
    enrollment = Enrollment.objects.select_related("lead", "sequence").filter(pk=pk).first()
    if enrollment is None:
        raise Http404("No such enrollment.")
    access.check(enrollment.lead, action)
    return enrollment


# --- Form submissions and conversions ---------------------------------------------------------------


def api_submission_list(*, access: Access, filters: dict):
    rows = _of_visible_leads(FormSubmission.objects.select_related("resource"), access)
    if filters.get("form"):
        rows = rows.filter(form_slug=filters["form"])
    if filters.get("lead") is not None:
        rows = rows.filter(lead_id=filters["lead"])
    return _within(rows, "submitted_at", filters.get("submitted_after"), filters.get("submitted_before")).order_by()


def api_submission_get(*, access: Access, pk: int) -> FormSubmission:
    _check_pk(pk)
    submission = FormSubmission.objects.select_related("resource", "lead").filter(pk=pk).first()
    if submission is None or not access.can_see(submission.lead):
        raise Http404("No such form submission.")
    return submission


def _conversions():
    return Conversion.objects.select_related("kind", "resource")


def api_conversion_list(*, access: Access, filters: dict):
    rows = _of_visible_leads(_conversions(), access, anonymous=True)
    if filters.get("kind"):
        rows = rows.filter(kind__slug=filters["kind"])
    if filters.get("lead") is not None:
        rows = rows.filter(lead_id=filters["lead"])
    return _within(rows, "occurred_at", filters.get("occurred_after"), filters.get("occurred_before")).order_by()


def api_conversion_get(*, access: Access, pk: int) -> Conversion:
    _check_pk(pk)
    conversion = _conversions().select_related("lead").filter(pk=pk).first()
    if conversion is None:
        raise Http404("No such conversion.")
    visible = access.sees_all if conversion.lead is None else access.can_see(conversion.lead)
    if not visible:
        raise Http404("No such conversion.")
    return conversion


# --- Campaigns and spend ------------------------------------------------------------------------------


def _campaigns():
    return Campaign.objects.select_related("source", "persona")


def api_campaign_list(*, filters: dict):
    """Every campaign: all roles read them (reps see where their leads came from)."""
    rows = _campaigns()
    for name in ("source", "persona"):
        if filters.get(name) is not None:
            rows = rows.filter(**{f"{name}_id": filters[name]})
    return rows


def api_campaign_get(*, pk: int) -> Campaign:
    _check_pk(pk)
    campaign = _campaigns().filter(pk=pk).first()
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def api_spend_list(*, filters: dict):
    rows = CampaignSpend.objects.all()
    if filters.get("campaign") is not None:
        rows = rows.filter(campaign_id=filters["campaign"])
    if filters.get("period_from") is not None:
        rows = rows.filter(period_end__gte=filters["period_from"])
    if filters.get("period_to") is not None:
        rows = rows.filter(period_start__lte=filters["period_to"])
    return rows


def api_spend_get(*, pk: int) -> CampaignSpend:
    _check_pk(pk)
    spend = CampaignSpend.objects.select_related("campaign").filter(pk=pk).first()
    if spend is None:
        raise Http404("No such spend row.")
    return spend
