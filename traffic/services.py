"""What other apps ask of the traffic: link a visitor to the lead it became, read its touches, mark its kind.

The traffic app knows leads only by id (it stands beside the leads app, not on it).
"""

from datetime import datetime

from django.db import transaction

from core.attribution import UTM_PARAMS

from .models import PageView, Visitor, VisitorKind

TOUCH_FIELDS = (*UTM_PARAMS, "click_id_type")


@transaction.atomic
def visitor_link(*, visitor_id: str, lead_id: int, at: datetime) -> int:
    """The visitor became lead `lead_id`: its page views, before and after, are the lead's. Returns how many changed.

    Page views still in the queue get the lead when they are written (the worker reads Visitor).
    A visitor already linked to another lead (a shared browser) keeps its earlier views; later ones go to the new lead.
    """
    visitor, created = Visitor.objects.get_or_create(
        visitor_id=visitor_id, defaults={"first_seen_at": at, "lead_id": lead_id}
    )
    if not created and visitor.lead_id != lead_id:
        Visitor.objects.filter(pk=visitor_id).update(lead_id=lead_id)
    return PageView.objects.filter(visitor_id=visitor_id, lead_id__isnull=True).update(lead_id=lead_id)


def _touch(view: PageView) -> dict:
    return {
        **{field: getattr(view, field) for field in TOUCH_FIELDS},
        "landing_page": view.url[:1000],
        "referrer": view.referrer[:1000],
        "touched_at": view.received_at,
    }


def visitor_touches(visitor_id: str) -> tuple[dict | None, dict | None]:
    """The first and the latest visit of a visitor, by their landing pages (two index reads)."""
    if not visitor_id:
        return None, None
    landings = PageView.objects.filter(visitor_id=visitor_id, is_landing=True).exclude(kind=VisitorKind.BOT)
    first = landings.order_by("received_at").first()
    last = landings.order_by("-received_at").first()
    return (_touch(first) if first else None), (_touch(last) if last else None)


def visitors_mark(*, lead_id: int, kind: str) -> int:
    """Every visitor linked to the lead is now of `kind` (a customer): their later page views are counted so."""
    return Visitor.objects.filter(lead_id=lead_id).exclude(kind=kind).update(kind=kind)


def lead_page_views(lead_id: int, *, limit: int = 50):
    """The lead's latest page views, for its journey (the (lead_id, received_at) index)."""
    return list(PageView.objects.filter(lead_id=lead_id).order_by("-received_at")[:limit])
