"""The reps' pages' own writes: a lead made or changed with its company typed by name, and saved list views.

Each is one transaction over the leads services, which check the policy and write the events.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone

from leads import services as lead_services
from leads.models import Company, Lead

from .models import SavedView


def _company(*, name: str | None, by) -> Company | None:
    """The company called `name` (any case), created through the company service when there is none."""
    name = (name or "").strip()
    if not name:
        return None
    company = Company.objects.filter(name__iexact=name).order_by("pk").first()
    return company or lead_services.company_create(name=name, by=by)


@transaction.atomic
def rep_lead_create(*, by, company_name: str = "", **fields) -> Lead:
    """A lead typed in by `by`, owned by them; its company found or made by name. Nothing is left if either fails."""
    fields.setdefault("owner", by)
    company = _company(name=company_name, by=by)
    return lead_services.lead_create(by=by, company=company, reason="Typed in on the reps' pages", **fields)


@transaction.atomic
def rep_lead_update(*, lead: Lead, by, company_name: str | None = None, **fields) -> Lead:
    """Change a lead's details (never its stage or score); `company_name` None leaves its company as it is."""
    if company_name is not None:
        fields["company"] = _company(name=company_name, by=by)
    return lead_services.lead_update(lead=lead, by=by, **fields)


def task_create_many(*, leads, by, title: str, due_at, notes: str = "", for_owner: bool = True) -> tuple[int, list]:
    """The same task on each lead, for its owner (or `by` when it has none, or when not `for_owner`).

    Each in its own transaction through `task_create`, which asks the policy: returns how many were made and
    (lead, the reasons) for each that was refused. A mistake common to all (no title, a past due time) is
    raised before any is made.
    """
    done, refused = 0, []
    for lead in leads:
        assignee = lead.owner if for_owner and lead.owner_id else by
        try:
            lead_services.task_create(assignee=assignee, lead=lead, by=by, title=title, due_at=due_at, notes=notes)
        except ValidationError as exc:
            if done == 0 and not refused and hasattr(exc, "error_dict") and set(exc.error_dict) & {"title", "due_at"}:
                raise  # wrong for every lead: said once, next to the field
            refused.append((lead, exc.messages))
        except PermissionDenied as exc:
            refused.append((lead, [str(exc)]))
        else:
            done += 1
    return done, refused


# --- Saved views of the Leads list ---------------------------------------------------------------
# A user's own shortcuts to a filtered list: they change nothing in the CRM, so no event is recorded.

SAVED_VIEWS_MAX = 30


def view_query(query: str) -> str:
    """The list's parameters without the page (a view opens on its first page) or the CSRF token."""
    params = QueryDict(query, mutable=True)
    for name in ("page", "csrfmiddlewaretoken"):
        params.pop(name, None)
    return params.urlencode()


@transaction.atomic
def saved_view_create(*, user, name: str, query: str) -> SavedView:
    """Save the list's filters and sort under `name`: one view per name for each user; saving a name again
    replaces that view's filters."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": ["Name the view, e.g. “Hot leads to call”."]})
    if len(name) > SavedView._meta.get_field("name").max_length:
        raise ValidationError({"name": [f"Use at most {SavedView._meta.get_field('name').max_length} characters."]})
    query = view_query(query)
    if len(query) > SavedView._meta.get_field("query").max_length:
        raise ValidationError({"query": ["These filters are too long to save: remove some and save again."]})
    existing = SavedView.objects.select_for_update().filter(user=user, name=name).first()
    if existing is not None:
        existing.query = query
        existing.save(update_fields=["query"])
        return existing
    if SavedView.objects.filter(user=user).count() >= SAVED_VIEWS_MAX:
        raise ValidationError({"name": [f"You have {SAVED_VIEWS_MAX} saved views: delete one first."]})
    return SavedView.objects.create(user=user, name=name, query=query, created_at=timezone.now())


def saved_view_delete(*, view: SavedView, by) -> None:
    """Delete a saved view: only its owner may."""
    if view.user_id != by.pk:
        raise PermissionDenied("Only the person who saved a view can delete it.")
    view.delete()
