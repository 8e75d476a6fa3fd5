"""Reads: the queries pages and services share."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Count, Q, Sum

from . import pipeline
from .models import Deal, Lead


def lead_duplicate_of(*, email: str, exclude_pk=None) -> Lead | None:
    """The live lead that already has this (lower-cased) email, if any."""
    qs = Lead.objects.live().filter(email=email.strip().lower())
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.only("id", "first_name", "last_name", "email", "phone").first()


def _lead_owner_permission():
    return Permission.objects.get(content_type__app_label="leads", codename="change_lead")


def lead_owner_choices():
    """Users who can own leads: active, and allowed to change leads (reps and managers)."""
    perm = _lead_owner_permission()
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__permissions=perm) | Q(user_permissions=perm))
        .distinct()
        .order_by("username")
    )


def user_can_own_leads(user) -> bool:
    return user.is_active and (user.is_superuser or user.has_perm("leads.change_lead"))


def pipeline_summary(*, leads=None):
    """Per stage, in funnel order: how many leads, and the value of their deals by currency.

    Open stages count their open deals; Customer its won deals; Lost and
    Disqualified their lost deals.
    """
    leads = Lead.objects.live() if leads is None else leads
    counts = dict(leads.order_by().values_list("status").annotate(n=Count("id")))
    deal_rows = (
        Deal.objects.filter(lead__in=leads)
        .filter(
            Q(status=Deal.Status.OPEN, lead__status__in=pipeline.OPEN_STATUSES)
            | Q(status=Deal.Status.WON, lead__status=pipeline.LeadStatus.CUSTOMER)
            | Q(status=Deal.Status.LOST, lead__status__in=pipeline.ENDED_STATUSES)
        )
        .order_by()
        .values_list("lead__status", "currency")
        .annotate(total=Sum("value"), deals=Count("id"))
    )
    values: dict[str, list] = {}
    deals: dict[str, int] = {}
    for status, currency, total, n in deal_rows:
        values.setdefault(status, []).append((currency, total))
        deals[status] = deals.get(status, 0) + n
    order = [*pipeline.FUNNEL, pipeline.LeadStatus.LOST, pipeline.LeadStatus.DISQUALIFIED]
    return [
        {
            "status": status,
            "label": pipeline.label(status),
            "leads": counts.get(status, 0),
            "deals": deals.get(status, 0),
            "values": sorted(values.get(status, [])),
        }
        for status in order
    ]
