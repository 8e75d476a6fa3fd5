"""The reps' pages that make and change leads: a new lead, its edit page.

Views parse input, ask `access` who may do it, call one service and render (see workspace.views).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from leads import services as lead_services
from leads.forms import AssignOwnerForm, add_service_errors

from . import lead_forms, services
from .models import SavedView
from .views import _lead, _lead_updated, workspace_view


def _save(request, form, save):
    """Run the service; its errors go next to their fields. Returns the lead, or None when refused."""
    if not form.is_valid():
        return None
    try:
        return save()
    except ValidationError as exc:
        add_service_errors(form, exc)
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
    return None


@workspace_view
def lead_new(request, *, access):
    form = lead_forms.RepLeadForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        lead = _save(request, form, lambda: services.rep_lead_create(
            by=request.user, company_name=form.cleaned_data["company_name"],
            **({} if access.owns_leads else {"owner": None}), **form.service_fields(),
        ))
        if lead is not None:
            messages.success(request, f"Lead {lead} created.")
            return redirect("workspace:lead_detail", pk=lead.pk)
    status = 422 if form.errors else 200
    return render(request, "workspace/lead_form.html", {"form": form, "lead": None, "nav": "leads"}, status=status)


@workspace_view
def lead_edit(request, pk, *, access):
    lead = _lead(access, pk, "work")
    form = lead_forms.RepLeadForm(request.POST if request.method == "POST" else None, instance=lead)
    if request.method == "POST":
        saved = _save(request, form, lambda: services.rep_lead_update(
            lead=lead, by=request.user,
            company_name=form.cleaned_data["company_name"] if "company_name" in form.changed_data else None,
            **form.service_fields(),
        ))
        if saved is not None:
            messages.success(request, "Lead saved.")
            return redirect("workspace:lead_detail", pk=lead.pk)
    status = 422 if form.errors else 200
    return render(request, "workspace/lead_form.html", {"form": form, "lead": lead, "nav": "leads"}, status=status)


# --- In-place edits on the lead page ------------------------------------------------------------
# A small form in the field's place (htmx), or a page of its own (without JavaScript); saved through the
# services, then the lead is redrawn (or the browser goes back to it).

INLINE_FIELDS = {
    "title": "Job title", "phone": "Phone", "persona": "Persona", "timezone": "Time zone", "company": "Company",
    "owner": "Owner", "next_task": "Next task",
}


def _next_task(lead):
    return lead.tasks.filter(completed_at__isnull=True).order_by("due_at", "pk").first()


def _inline_form(name, lead, data):
    if name in lead_forms.STAGE_SAFE_FIELDS:
        return lead_forms.detail_form(name, lead, data)
    if name == "company":
        return lead_forms.CompanyNameForm(data, initial={"company_name": lead.company.name if lead.company_id else ""})
    if name == "owner":
        return AssignOwnerForm(data, initial={"owner": lead.owner_id})
    task = _next_task(lead)
    initial = {"title": task.title, "due_at": timezone.localtime(task.due_at)} if task else {}
    return lead_forms.NextTaskForm(data, initial=initial)


def _inline_save(request, name, lead, form) -> str:
    """Call the service for the field; returns the message to show."""
    data = form.cleaned_data
    if name in lead_forms.STAGE_SAFE_FIELDS:
        lead_services.lead_update(lead=lead, by=request.user, **{name: data[name]})
    elif name == "company":
        services.rep_lead_update(lead=lead, by=request.user, company_name=data["company_name"])
    elif name == "owner":
        lead_services.lead_assign_owner(leads=[lead], owner=data["owner"], by=request.user)
        return f"Given to {data['owner']}." if data["owner"] else "Put back in the unassigned pool."
    else:
        task = _next_task(lead)
        if task is None:
            lead_services.task_create(assignee=request.user, lead=lead, by=request.user, title=data["title"], due_at=data["due_at"])
            return "Next task scheduled."
        lead_services.task_update(task=task, by=request.user, title=data["title"], due_at=data["due_at"])
        return "Next task rescheduled."
    return f"{INLINE_FIELDS[name]} saved."


@workspace_view
def lead_field(request, pk, field, *, access):
    if field not in INLINE_FIELDS:
        raise Http404("No such field.")
    lead = _lead(access, pk, "view")
    if field == "owner" and not access.is_manager:
        raise PermissionDenied("Only a manager can give a lead to someone; a rep claims a lead from the unassigned pool.")
    if field != "owner":
        access.check(lead, "work")
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    form = _inline_form(field, lead, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        message = None
        if form.is_valid():
            try:
                message = _inline_save(request, field, lead, form)
            except ValidationError as exc:
                add_service_errors(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
        if message is not None:
            return _lead_updated(request, access, lead, message)
    status = 422 if form.errors else 200
    context = {"lead": lead, "field": field, "label": INLINE_FIELDS[field], "form": form, "nav": "leads"}
    if not request.htmx:
        return render(request, "workspace/lead_field_page.html", context, status=status)
    response = render(request, "workspace/partials/lead_field_form.html", context, status=status)
    # Refused: the form goes back in the field's place, not over the lead (its form targets the whole lead).
    return reswap(retarget(response, f"#lead-{field.replace('_', '-')}"), "innerHTML") if status != 200 else response


# --- Saved views of the Leads list ---------------------------------------------------------------


@require_POST
@workspace_view
def saved_view_save(request, *, access):
    query = request.POST.get("query", "")
    try:
        view = services.saved_view_create(user=request.user, name=request.POST.get("name", ""), query=query)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("workspace:lead_list") + (f"?{services.view_query(query)}" if query else ""))
    messages.success(request, f"View “{view.name}” saved.")
    return redirect(reverse("workspace:lead_list") + (f"?{view.query}" if view.query else ""))


@require_POST
@workspace_view
def saved_view_delete(request, pk, *, access):
    # Someone else's view is not found, rather than refused: its name is not revealed.
    view = get_object_or_404(SavedView, pk=pk, user=request.user)
    services.saved_view_delete(view=view, by=request.user)
    messages.success(request, f"View “{view.name}” deleted.")
    return redirect("workspace:lead_list")
