"""Reads: the queries pages and services share."""

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.db.models.functions import Lower

from core.emails import normalize_email
from core.people import person_name
from core.policy import lead_owner_candidates

from . import pipeline
from .models import Deal, Lead


def lead_duplicate_of(*, email: str, exclude_pk=None) -> Lead | None:
    """The live lead that already has this (lower-cased) email, if any.

    Asked as the unique index is written (lower(email) among live leads with an address), so the lookup reads
    that index instead of the table: one row at a million leads.
    """
    address = normalize_email(email)
    if not address:
        return None
    qs = Lead.objects.live().alias(email_key=Lower("email")).filter(email_key=address).exclude(email="")
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.only("id", "first_name", "last_name", "email", "phone").first()


def untouched_since(cutoff) -> Q:
    """Leads nobody called, met or emailed since `cutoff` (never touched: created before it)."""
    return Q(last_touch_at__lt=cutoff) | Q(last_touch_at__isnull=True, created_at__lt=cutoff)


def lead_search(leads, text: str):
    """Leads whose name, email, phone or company contain every word of `text` (the pg_trgm-indexed search text)."""
    for term in text.lower().split():
        leads = leads.filter(search_text__contains=term)
    return leads


def lead_owner_choices():
    """Users who can own leads (the policy's rule: active sales reps and managers), by username."""
    return lead_owner_candidates(get_user_model().objects.all()).order_by("username")


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


def _duration_label(seconds):
    if not seconds:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min" if minutes else f"{secs} s"


def lead_timeline(*, lead, limit: int = 30) -> list[dict]:
    """The latest things that happened to a lead, newest first, as plain rows.

    Merges stage changes, calls, notes, meetings and objections; each source
    reads at most `limit` rows, so the cost does not grow with the history.
    Rows: {"at", "kind", "title", "detail", "who"} (text, never HTML).
    """
    from .models import Activity, Objection, StageChange

    rows = []
    for change in StageChange.objects.filter(lead=lead).select_related("changed_by").order_by("-changed_at", "-id")[:limit]:
        title = f"Stage: {change.get_from_status_display() or 'created'} → {change.get_to_status_display()}"
        rows.append({"at": change.changed_at, "kind": "stage", "title": title, "detail": change.reason, "who": change.changed_by_label})
    for activity in Activity.objects.filter(lead=lead).select_related("author").order_by("-occurred_at", "-id")[:limit]:
        if activity.kind == Activity.Kind.CALL:
            parts = [activity.get_direction_display().lower(), activity.get_outcome_display().lower(), _duration_label(activity.duration_seconds)]
            title = f"Call ({', '.join(p for p in parts if p)})"
        elif activity.kind == Activity.Kind.MEETING:
            title = " ".join(p for p in ("Meeting", _duration_label(activity.duration_seconds)) if p)
        elif activity.kind == Activity.Kind.SOCIAL:
            title = f"{activity.get_channel_display()}: {activity.get_social_action_display().lower()}"
        else:
            title = "Note"
        who = person_name(activity.author) if activity.author_id else ""
        rows.append({"at": activity.occurred_at, "kind": activity.kind, "title": title, "detail": activity.body, "who": who})
    for objection in Objection.objects.filter(lead=lead).select_related("raised_by").order_by("-created_at", "-id")[:limit]:
        state = "resolved" if objection.is_resolved else "open"
        detail = f"“{objection.lead_words}”" + (f" — answer: {objection.response}" if objection.response else "")
        who = person_name(objection.raised_by) if objection.raised_by_id else ""
        rows.append(
            {"at": objection.created_at, "kind": "objection", "title": f"Objection: {objection.get_category_display()} ({state})", "detail": detail, "who": who}
        )
    rows.sort(key=lambda row: row["at"], reverse=True)
    return rows[:limit]
