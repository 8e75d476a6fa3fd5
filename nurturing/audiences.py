"""Audiences: the leads a saved audience holds now, and its count and sample while a marketer edits it."""

from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from leads.models import Activity, FormSubmission, Lead, LeadTag
from leads.selectors import untouched_since

from .models import Audience, EmailEvent

HUMAN_ENGAGEMENT = (EmailEvent.Kind.OPENED, EmailEvent.Kind.CLICKED, EmailEvent.Kind.REPLIED)


def audience_leads(audience: Audience, *, now=None):
    """The live leads every rule of the audience holds for (a rule left empty holds for all)."""
    now = now or timezone.now()
    leads = Lead.objects.filter(archived_at__isnull=True)
    plain = {"source_id": audience.source_id, "campaign_id": audience.campaign_id, "persona_id": audience.persona_id,
             "owner_id": audience.owner_id, "status": audience.stage or None, "utm_medium": audience.utm_medium or None}
    leads = leads.filter(**{name: value for name, value in plain.items() if value is not None})
    if audience.country:
        leads = leads.filter(company__country__iexact=audience.country.strip())
    if audience.resource_id:
        leads = leads.filter(Exists(FormSubmission.objects.filter(lead=OuterRef("pk"), resource_id=audience.resource_id)))
    if audience.form_slug:
        leads = leads.filter(Exists(FormSubmission.objects.filter(lead=OuterRef("pk"), form_slug=audience.form_slug)))
    if audience.score_min is not None:
        leads = leads.filter(score__gte=audience.score_min)
    if audience.score_max is not None:
        leads = leads.filter(score__lte=audience.score_max)
    if audience.tag_id:
        leads = leads.filter(Exists(LeadTag.objects.filter(lead=OuterRef("pk"), tag_id=audience.tag_id)))
    if audience.engaged_within_days is not None:
        since = now - timedelta(days=audience.engaged_within_days)
        leads = leads.filter(Exists(EmailEvent.objects.filter(
            lead=OuterRef("pk"), kind__in=HUMAN_ENGAGEMENT, is_machine=False, occurred_at__gte=since)))
    if audience.clicked_link_contains.strip():
        leads = leads.filter(Exists(EmailEvent.objects.filter(
            lead=OuterRef("pk"), kind=EmailEvent.Kind.CLICKED, is_machine=False,
            url__icontains=audience.clicked_link_contains.strip())))
    if audience.meetings:
        met = Exists(Activity.objects.filter(lead=OuterRef("pk"), kind=Activity.Kind.MEETING))
        leads = leads.filter(met if audience.meetings == Audience.Meetings.BOOKED else ~met)
    if audience.inactive_for_days is not None:
        cutoff = now - timedelta(days=audience.inactive_for_days)
        leads = leads.filter(untouched_since(cutoff))
    return leads


def audience_count_and_sample(audience: Audience, *, size: int = 10) -> tuple[int, list[Lead]]:
    """How many leads the audience holds now, and its newest `size`; the audience may be unsaved (rules being
    edited)."""
    leads = audience_leads(audience)
    return leads.count(), list(leads.order_by("-created_at", "-pk")[:size])
