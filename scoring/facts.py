"""Reading what scoring needs to know about leads: a fixed number of queries per batch of leads, whatever its
size, reading only the kinds of actions some rule rewards, and only as far back as they still count."""

from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db.models import Q

from leads.models import FormSubmission, Lead
from nurturing.models import EmailEvent
from traffic.models import PageView, VisitorKind

from .models import ScoringRule
from .rules import HORIZON_HALF_LIVES, Action, Facts

K = ScoringRule.Kind
_EMAIL_KINDS = {EmailEvent.Kind.OPENED: K.EMAIL_OPEN, EmailEvent.Kind.CLICKED: K.EMAIL_CLICK,
                EmailEvent.Kind.REPLIED: K.EMAIL_REPLY}


def horizon(*, now: datetime, half_life_days: int) -> datetime | None:
    """The oldest action that can still count (None: all of them, when nothing decays)."""
    return now - timedelta(days=HORIZON_HALF_LIVES * half_life_days) if half_life_days else None


def page_filter(rules) -> Q | None:
    """The page views some page rule rewards (None: no page rule)."""
    paths = {rule.value.strip().rstrip("/") for rule in rules if rule.is_active and rule.kind == K.PAGE_VIEW}
    if not paths:
        return None
    return reduce(or_, (Q(path=path) | Q(path__startswith=path + "/") for path in sorted(paths)))


def facts_for(lead_ids, rules, *, now: datetime, half_life_days: int) -> dict[int, Facts]:
    """Each lead's facts (leads that do not exist are left out)."""
    lead_ids = list(lead_ids)
    kinds = {rule.kind for rule in rules if rule.is_active}
    facts = {
        pk: Facts(persona_id=persona, source_id=source, title=title, company_size=size or "", country=country or "")
        for pk, persona, source, title, size, country in Lead.objects.filter(pk__in=lead_ids).values_list(
            "pk", "persona_id", "source_id", "title", "company__size", "company__country")
    }
    if not facts:
        return facts
    since = horizon(now=now, half_life_days=half_life_days)
    email_kinds = [email_kind for email_kind, rule_kind in _EMAIL_KINDS.items() if rule_kind in kinds]
    if email_kinds:
        events = EmailEvent.objects.filter(lead_id__in=lead_ids, kind__in=email_kinds, is_machine=False)
        if since:
            events = events.filter(occurred_at__gte=since)
        for lead_id, kind, at, url in events.values_list("lead_id", "kind", "occurred_at", "url"):
            facts[lead_id].actions.append(Action(_EMAIL_KINDS[kind], at, url))
    pages = page_filter(rules)
    if pages is not None:
        views = PageView.objects.filter(pages, lead_id__in=lead_ids, kind=VisitorKind.HUMAN)
        if since:
            views = views.filter(received_at__gte=since)
        for lead_id, at, path in views.values_list("lead_id", "received_at", "path"):
            if lead_id in facts:
                facts[lead_id].actions.append(Action(K.PAGE_VIEW, at, path))
    if kinds & {K.FORM, K.DOWNLOAD}:
        submissions = FormSubmission.objects.filter(lead_id__in=lead_ids)
        if since:
            submissions = submissions.filter(submitted_at__gte=since)
        for lead_id, slug, resource_id, at in submissions.values_list(
                "lead_id", "form_slug", "resource_id", "submitted_at"):
            facts[lead_id].actions.append(Action(K.FORM, at, slug, resource_id))
    return facts
