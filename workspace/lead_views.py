"""The reps' pages that make and change leads: a new lead, its edit page.

Views parse input, ask `access` who may do it, call one service and render (see workspace.views).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render

from leads.forms import add_service_errors

from . import lead_forms, services
from .views import _lead, workspace_view


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
