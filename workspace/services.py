"""The reps' pages' own writes: a lead made or changed with its company typed by name, and saved list views.

Each is one transaction over the leads services, which check the policy and write the events.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from leads import services as lead_services
from leads.models import Company, Lead


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
