"""Global search: leads, companies and deals from every reps' page, in five queries whatever the data size.

Who sees what (core.policy):

- Leads: the same rule as the Leads page's "all" scope, `access.leads(...)` on
  live leads: a rep finds their own leads and the unassigned pool, managers and
  marketers every lead.
- Deals: only through a lead the user may see (a rep never finds another
  rep's deal, nor learns its value).
- Companies: every company. Companies are shared accounts, not owned: reps and
  managers create and change them (`Access.changes_companies`), marketers read
  them, so every workspace user may see them. The number of leads shown next to
  a company counts only the leads the user may see, so it reveals nothing about
  another rep's leads.

Best first: an exact email or phone match, then a match at the start of a word
(a first name, a surname, an email, a company), then any substring. Every
branch is bounded by the same substring filter on `Lead.search_text`, which the
pg_trgm GIN index answers on PostgreSQL (leads migration 0002), and takes at
most `GROUP_SIZE` rows, so the database never sorts the whole match: one query
fetches the leads of the (at most three) bounded id lists, ranked here. A company's lead count is
read from the (company, owner) index of live leads (leads migration 0026).
"""

import re
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.db.models.functions import Lower

from core.pagination import bounded_union
from core.policy import Access
from leads.models import Company, Deal, Lead
from leads.selectors import lead_search

MIN_LENGTH = 2
GROUP_SIZE = 8
MAX_LENGTH = 100
DEAL_LEADS = 2000  # matching leads whose deals are looked for (past it, a text too common to list them all)

EXACT, PREFIX, SUBSTRING = 0, 1, 2
_PHONE = re.compile(r"^\+?[\d\s().-]{5,}$")


@dataclass
class SearchResults:
    text: str
    too_short: bool = False
    sees_all: bool = False  # the company links ask the Leads page for every lead, not only the user's
    leads: list = field(default_factory=list)
    companies: list = field(default_factory=list)
    deals: list = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.leads or self.companies or self.deals)


def _exact(text: str) -> Q | None:
    """An exact email or phone match, asked only when the text could be one (else the branch is left out)."""
    if "@" in text:
        return Q(email=text.lower())
    if _PHONE.match(text):
        return Q(phone=text)
    return None


def _word_start(text: str) -> Q:
    # search_text is lower-cased words separated by single spaces: a word starts the text or follows a space.
    # One regular expression, so that PostgreSQL reads the trigram index once (an OR of two LIKEs reads it twice).
    return Q(search_text__regex=r"(^| )" + re.escape(text.lower()))


def _rank(lead: Lead, text: str) -> int:
    lowered = text.lower()
    if lead.email == lowered or (lead.phone and lead.phone == text):
        return EXACT
    words = lead.search_text.split(" ")
    if lead.search_text.startswith(lowered) or any(w.startswith(lowered) for w in words):
        return PREFIX
    return SUBSTRING


def _search_leads(*, access: Access, text: str) -> list[Lead]:
    visible = access.leads(Lead.objects.live()).order_by()
    matching = lead_search(visible, text)
    branches = [visible.filter(_word_start(text)), matching]  # a word start contains the text: no second filter
    exact = _exact(text)
    if exact is not None:
        branches.insert(0, matching.filter(exact))
    # Each branch is a bounded id list (LIMIT in its subquery): the leads are then fetched by primary key in the
    # same query.
    leads = list(
        Lead.objects.filter(pk__in=bounded_union([branch.values("pk")[:GROUP_SIZE] for branch in branches]))
        .order_by()
        .select_related("owner", "company")
        .only("id", "first_name", "last_name", "email", "phone", "status", "search_text", "archived_at", "owner_id",
              "company_id", "owner__id", "owner__username", "owner__first_name", "owner__last_name",
              "company__id", "company__name")
    )
    leads.sort(key=lambda lead: (_rank(lead, text), lead.full_name.lower(), lead.pk))
    return leads[:GROUP_SIZE]


def _search_companies(*, access: Access, text: str) -> list[Company]:
    lowered = text.lower()
    candidates = (
        Company.objects.alias(name_key=Lower("name"), domain_key=Lower("domain"))
        .filter(Q(name_key__contains=lowered) | Q(domain_key__contains=lowered))
        .only("id", "name", "domain")
        .order_by()[: GROUP_SIZE * 4]
    )

    def rank(company):
        name, domain = company.name.lower(), company.domain.lower()
        if lowered in (name, domain):
            return EXACT
        if name.startswith(lowered) or any(w.startswith(lowered) for w in name.split()) or domain.startswith(lowered):
            return PREFIX
        return SUBSTRING

    companies = sorted(candidates, key=lambda c: (rank(c), c.name.lower(), c.pk))[:GROUP_SIZE]
    # Counted for the companies shown only (a second query), from the (company, owner) index of live leads.
    counts = dict(
        access.leads(Lead.objects.live())
        .filter(company__in=[c.pk for c in companies])
        .order_by()
        .values("company")
        .annotate(n=Count("*"))
        .values_list("company", "n")
    ) if companies else {}
    for company in companies:
        company.lead_count = counts.get(company.pk, 0)
    return companies


def _search_deals(*, access: Access, text: str) -> list[Deal]:
    # The deals of the first DEAL_LEADS matching leads: their ids first (the trigram index, each match's owner
    # checked on the row), then their deals by the deals' lead index. In one query PostgreSQL would look for
    # the few leads with deals by reading the leads table in order, expecting them early.
    leads = lead_search(access.leads(Lead.objects.live(), owner_index=False), text)
    lead_ids = list(leads.order_by().values_list("pk", flat=True)[:DEAL_LEADS])
    deals = list(
        Deal.objects.filter(lead_id__in=lead_ids)
        .select_related("lead", "lead__company")
        .order_by()[:GROUP_SIZE]
    ) if lead_ids else []
    deals.sort(key=lambda d: (_rank(d.lead, text), d.status != Deal.Status.OPEN, -d.created_at.timestamp(), d.pk))
    return deals


def global_search(*, access: Access, text: str) -> SearchResults:
    """Up to GROUP_SIZE leads, companies and deals matching `text` that the user may see, best first.

    Five queries at most (leads, companies, their lead counts, the matching leads' ids, their deals), none for a
    text shorter than MIN_LENGTH (`too_short`)."""
    text = " ".join(text.split())[:MAX_LENGTH]
    if len(text) < MIN_LENGTH:
        return SearchResults(text=text, too_short=True)
    if not access.has_workspace:
        return SearchResults(text=text)
    return SearchResults(
        text=text,
        sees_all=access.sees_all,
        leads=_search_leads(access=access, text=text),
        companies=_search_companies(access=access, text=text),
        deals=_search_deals(access=access, text=text),
    )
