"""What the API reads of the sales records, through the permission policy: a record about a lead is seen by who
may see the lead (`Access.leads`), as on the lead's page; companies are everyone's accounts.

Each list is returned unordered (the caller pages it by a key, api.pagination.keyset_page) with what its rows
show joined in, so a page costs the same queries at 10 rows as at 100.
"""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.http import Http404

from core.policy import Access
from leads.models import Activity, Company, Customer, Deal, Lead, Objection, Task

from .serializers import MAX_ID


def _visible_leads(access: Access):
    """The ids of the live leads `access` may see, as a subquery."""
    return access.leads(Lead.objects.live()).values("pk")


def _about_visible_leads(rows, access: Access, field: str = "lead"):
    """Rows about a lead that `access` may see (managers and marketers: every live lead)."""
    if access.sees_all:
        return rows.filter(**{f"{field}__archived_at__isnull": True})
    return rows.filter(**{f"{field}__in": _visible_leads(access)})


def _one(rows, pk: int, what: str):
    if not 1 <= pk <= MAX_ID:
        raise Http404(f"No such {what}.")
    found = rows.filter(pk=pk).first()
    if found is None:
        raise Http404(f"No such {what}.")
    return found


def _search(rows, text: str | None, fields: tuple[str, ...]):
    for term in (text or "").split():
        match = Q()
        for field in fields:
            match |= Q(**{f"{field}__icontains": term})
        rows = rows.filter(match)
    return rows


# --- Companies ------------------------------------------------------------------------------------


def api_company_list(*, access: Access, q: str | None = None):
    """Every company (accounts are shared by the team), searched by words in the name or domain."""
    companies = Company.objects.all() if access.has_workspace else Company.objects.none()
    return _search(companies, q, ("name", "domain")).order_by()


def api_company_get(*, access: Access, pk: int) -> Company:
    return _one(api_company_list(access=access), pk, "company")


# --- Activities and objections ------------------------------------------------------------------------


def api_activity_list(*, access: Access, lead_id: int | None = None, kind: str | None = None):
    """Calls, notes and meetings on the leads `access` may see (or on one of them)."""
    rows = _about_visible_leads(Activity.objects.select_related("lead", "author"), access)
    if lead_id is not None:
        rows = rows.filter(lead_id=lead_id)
    if kind:
        rows = rows.filter(kind=kind)
    return rows.order_by()


def api_objection_list(*, access: Access, lead_id: int | None = None, category: str | None = None,
                       is_resolved: bool | None = None):
    rows = _about_visible_leads(Objection.objects.select_related("lead", "raised_by"), access)
    if lead_id is not None:
        rows = rows.filter(lead_id=lead_id)
    if category:
        rows = rows.filter(category=category)
    if is_resolved is not None:
        rows = rows.filter(is_resolved=is_resolved)
    return rows.order_by()


def api_objection_get(*, access: Access, pk: int) -> Objection:
    return _one(api_objection_list(access=access), pk, "objection")


# --- Tasks ------------------------------------------------------------------------------------------


def api_task_list(*, access: Access, filters: dict | None = None):
    """The tasks `access` may see: their own, those on the leads they may see (as the lead page shows them),
    and for managers every task; never one on an archived lead. Reps get theirs unless they ask for `all`."""
    filters = filters or {}
    user = access.user
    tasks = Task.objects.select_related("lead", "assignee", "created_by").filter(
        Q(lead__isnull=True) | Q(lead__archived_at__isnull=True)
    )
    if not access.is_manager:
        tasks = tasks.filter(Q(assignee=user) | Q(lead__in=_visible_leads(access)))
    default_scope = "mine" if access.is_rep and not access.is_manager and filters.get("assignee") is None else "all"
    if (filters.get("scope") or default_scope) == "mine":
        tasks = tasks.filter(assignee=user)
    if filters.get("assignee") is not None:
        tasks = tasks.filter(assignee_id=filters["assignee"])
    if filters.get("lead") is not None:
        tasks = tasks.filter(lead_id=filters["lead"])
    if filters.get("status") == "open":
        tasks = tasks.filter(completed_at__isnull=True)
    elif filters.get("status") == "done":
        tasks = tasks.filter(completed_at__isnull=False)
    if filters.get("due_after") is not None:
        tasks = tasks.filter(due_at__gte=filters["due_after"])
    if filters.get("due_before") is not None:
        tasks = tasks.filter(due_at__lt=filters["due_before"])
    return tasks.order_by()


def api_task_get(*, access: Access, pk: int) -> Task:
    return _one(api_task_list(access=access, filters={"scope": "all"}), pk, "task")


# --- Deals and customers ----------------------------------------------------------------------------


def api_deal_list(*, access: Access, filters: dict | None = None):
    """Deals on the leads `access` may see, filtered by status, owner, lead and close time."""
    filters = filters or {}
    deals = _about_visible_leads(Deal.objects.select_related("lead", "owner", "customer", "stage"), access)
    for name in ("status", "owner", "lead"):
        if filters.get(name) is not None:
            deals = deals.filter(**{name: filters[name]})
    if filters.get("closed_after") is not None:
        deals = deals.filter(closed_at__gte=filters["closed_after"])
    if filters.get("closed_before") is not None:
        deals = deals.filter(closed_at__lt=filters["closed_before"])
    return deals.order_by()


def api_deal_get(*, access: Access, pk: int) -> Deal:
    return _one(api_deal_list(access=access), pk, "deal")


def api_customer_list(*, access: Access, q: str | None = None):
    """Customers `access` may see: all for managers and marketers; for a rep, those with a deal on a lead they
    may see, or whose first contact is one."""
    customers = Customer.objects.select_related("company", "primary_lead")
    if not access.sees_all:
        visible = _visible_leads(access)
        customers = customers.filter(
            Exists(Deal.objects.filter(customer=OuterRef("pk"), lead__in=visible)) | Q(primary_lead__in=visible)
        )
    return _search(customers, q, ("name",)).order_by()


def api_customer_get(*, access: Access, pk: int) -> Customer:
    return _one(api_customer_list(access=access), pk, "customer")


def customers_with_totals(customers: list, *, access: Access) -> list:
    """Give each customer its deals' totals by currency (one query for the page) and its first contact if the
    user may see that lead."""
    deals = _about_visible_leads(Deal.objects.filter(customer__in=[c.pk for c in customers]), access)
    rows = (
        deals.order_by().values("customer_id", "currency", "status")
        .annotate(n=Count("id"), total=Sum("value"))
    )
    totals: dict[int, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        entry = totals[row["customer_id"]].setdefault(row["currency"], {
            "currency": row["currency"], "won_deals": 0, "won_value": Decimal("0"),
            "open_deals": 0, "open_value": Decimal("0"),
        })
        if row["status"] in (Deal.Status.WON, Deal.Status.OPEN):
            entry[f"{row['status']}_deals"] += row["n"]
            entry[f"{row['status']}_value"] += row["total"] or 0
    for customer in customers:
        customer.totals = sorted(totals[customer.pk].values(), key=lambda entry: entry["currency"])
        lead = customer.primary_lead
        customer.visible_primary_lead = lead if lead is not None and access.can_see(lead) else None
    return customers
