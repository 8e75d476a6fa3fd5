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
