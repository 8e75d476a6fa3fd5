"""What the API reads: the same leads the reps' pages show, by the same selector and policy."""

from django.db.models import OuterRef, Subquery
from django.http import Http404

from core.events import events_after
from core.models import DomainEvent
from core.policy import Access
from leads.models import Lead, LeadMerge, Task
from workspace import selectors as workspace_selectors

from .serializers import MAX_ID


def api_lead_list(*, access: Access, filters: dict):
    """The leads `access` may see, filtered as the Leads page filters them (same selector), plus the API's
    own filters (owner for anyone, created range, updated since). Unordered: the caller pages it by a key."""
    page_filters = {key: filters.get(key) for key in ("status", "source", "campaign", "persona", "q")}
    page_filters["scope"] = filters.get("scope") or "all"
    leads = workspace_selectors.lead_list(access=access, filters=page_filters)
    if filters.get("owner") is not None:
        # Within what the user may see: a rep asking for another rep's leads gets none.
        leads = leads.filter(owner_id=filters["owner"])
    if filters.get("created_after") is not None:
        leads = leads.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before") is not None:
        leads = leads.filter(created_at__lt=filters["created_before"])
    if filters.get("updated_since") is not None:
        leads = leads.filter(updated_at__gte=filters["updated_since"])
    return leads.order_by()


def api_lead_get(*, access: Access, pk: int, action: str = "view") -> Lead:
    """One lead the user may see (else 404, whether it exists or not), with what its representation shows."""
    if not 1 <= pk <= MAX_ID:
        raise Http404("No such lead.")
    next_due = Task.objects.filter(lead=OuterRef("pk"), completed_at__isnull=True).order_by("due_at")
    lead = (
        Lead.objects.select_related(*workspace_selectors.LIST_RELATED)
        .annotate(next_task_due=Subquery(next_due.values("due_at")[:1]))
        .filter(pk=pk)
        .first()
    )
    if lead is None:
        raise Http404("No such lead.")
    access.check(lead, action)
    return lead


def api_merge_get(*, pk: int) -> LeadMerge:
    """A merge record by id (else 404); the caller has checked that the user may merge leads, so may see them all."""
    merge = LeadMerge.objects.filter(pk=pk).first() if 1 <= pk <= MAX_ID else None
    if merge is None:
        raise Http404("No such merge.")
    return merge


def api_event_list(*, access: Access, after: int, limit: int, type: str | None = None, lead_id: int | None = None):
    """Events after `after` (settled, oldest first) about leads the user may see; managers and marketers read
    the whole log, reps the events of their leads and the pool's (as they are now)."""
    rows = DomainEvent.objects.all()
    if lead_id is not None:
        rows = rows.filter(lead_id=lead_id)
    if not access.sees_all:
        rows = rows.filter(lead_id__in=access.leads(Lead.objects.live()).values("id"))
    return events_after(after, limit=limit, types=[type] if type else None, rows=rows)
