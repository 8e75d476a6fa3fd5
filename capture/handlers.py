"""Capture stands on both leads and traffic: it moves the website's page views when two leads merge."""

from traffic.models import PageView, Visitor


def move_page_views_on_merge(sender, *, keep, merge, moved, **kwargs):
    """The merged lead's visitors and page views become the kept lead's (ids kept for the undo)."""
    visitors = list(Visitor.objects.filter(lead_id=merge.pk).values_list("visitor_id", flat=True))
    Visitor.objects.filter(visitor_id__in=visitors).update(lead_id=keep.pk)
    PageView.objects.filter(lead_id=merge.pk).update(lead_id=keep.pk)
    if visitors:
        moved["traffic.visitor"] = visitors


def move_page_views_back_on_unmerge(sender, *, keep, merged, moved, **kwargs):
    """A merge undone: the visitors it moved, and their page views, are the merged lead's again."""
    visitors = moved.get("traffic.visitor", [])
    if not visitors:
        return
    Visitor.objects.filter(visitor_id__in=visitors, lead_id=keep.pk).update(lead_id=merged.pk)
    PageView.objects.filter(visitor_id__in=visitors, lead_id=keep.pk).update(lead_id=merged.pk)


def erase_person(sender, *, lead_ids, address, by=None, deleted, **kwargs):
    """A person erased: their website visits are anonymous again, and what they sent that was held back is deleted."""
    from .models import Quarantine

    Visitor.objects.filter(lead_id__in=lead_ids).update(lead_id=None)
    deleted["links from website visits"] = PageView.objects.filter(lead_id__in=lead_ids).update(lead_id=None)
    if address:
        held = Quarantine.objects.filter(data__email=address)
        deleted["quarantined submissions"] = held.count()
        held.delete()


def export_person(sender, *, lead_ids, address, export, **kwargs):
    """What the capture app holds of a person, for the export of everything about them."""
    from leads.models import Conversion, LeadTouch

    from .models import Quarantine

    touch_fields = LeadTouch.TOUCH_FIELDS
    export["touches"] = [
        {"lead": t.lead_id, "kind": t.kind, **{f: getattr(t, f) for f in touch_fields}}
        for t in LeadTouch.objects.filter(lead_id__in=lead_ids).order_by("lead_id", "kind")
    ]
    export["conversions"] = [
        {"lead": c.lead_id, "kind": c.kind.name, "occurred_at": c.occurred_at, "resource": getattr(c.resource, "name", None)}
        for c in Conversion.objects.filter(lead_id__in=lead_ids).select_related("kind", "resource").order_by("occurred_at")
    ]
    export["website_page_views"] = [
        {"lead": v.lead_id, "at": v.received_at, "url": v.url, "title": v.title, "referrer": v.referrer,
         "device": v.device, "visitor_id": v.visitor_id}
        for v in PageView.objects.filter(lead_id__in=lead_ids).order_by("received_at")[:10_000]
    ]
    export["held_back_submissions"] = [
        {"form": q.form.name, "received_at": q.received_at, "reason": q.reason, "data": q.data}
        for q in Quarantine.objects.filter(data__email=address).select_related("form")
    ] if address else []
