"""Bulk actions on the Leads list: the ticked leads (at most `BULK_MAX`) assigned, enrolled, moved, given a task
or exported.

The list posts the ticked ids and the action here; a page then asks what the action needs (an owner, a
sequence with the preview of who would be skipped, a stage and its reason, a task) and, once confirmed, calls
the service, which asks the policy for each lead. A summary says how many were done and why the others were
not. Ids of leads the user cannot see count as "not found", never revealing them.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.roles import user_can_export_personal_data
from leads import exports as lead_exports
from leads import services as lead_services
from leads.forms import AssignOwnerForm, StageMoveForm, add_service_errors
from leads.models import Lead
from nurturing import services as nurturing_services

from . import forms, lead_forms, selectors, services
from .views import workspace_view

REFUSALS_SHOWN = 10


def _selected(access, ids):
    return list(access.leads(Lead.objects.live()).filter(pk__in=ids).select_related(*selectors.LIST_RELATED).order_by("pk"))


def _list_url(request) -> str:
    """The list the user came from (its filters and page), or the Leads list."""
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("workspace:lead_list")


def _back_to_list(request):
    return redirect(_list_url(request))


def _refusals(refused) -> list[str]:
    return [f"{lead}: {' '.join(why)}" for lead, why in refused]


def _summary(request, *, verb: str, done: int, refused: list[str], missing: int) -> None:
    """One message: how many were done, and each refused lead with why (the first few)."""
    text = f"{done} lead{'s' if done != 1 else ''} {verb}."
    if missing:
        text += f" {missing} not found (gone, or not yours to see)."
    if refused:
        reasons = "; ".join(refused[:REFUSALS_SHOWN])
        more = f" and {len(refused) - REFUSALS_SHOWN} more" if len(refused) > REFUSALS_SHOWN else ""
        text += f" {len(refused)} not: {reasons}{more}."
    (messages.warning if refused or missing else messages.success)(request, text)


def _action_form(action, data):
    if action == "assign":
        return AssignOwnerForm(data)
    if action == "enroll":
        return forms.EnrollForm(data)
    if action == "stage":
        return StageMoveForm(data)
    return lead_forms.BulkTaskForm(data, initial={"due_at": forms.next_morning()})


@require_POST
@workspace_view
def lead_bulk(request, *, access):
    selection = lead_forms.BulkSelectionForm(request.POST)
    if not selection.is_valid():
        for errors in selection.errors.values():
            messages.error(request, " ".join(errors))
        return _back_to_list(request)
    action, ids = selection.cleaned_data["action"], selection.cleaned_data["lead"]
    leads = _selected(access, ids)
    missing = len(ids) - len(leads)

    if action == "export":
        return _export(request, access, leads)
    if action == "assign" and not access.is_manager:
        raise PermissionDenied("Only a manager can assign leads.")

    step = request.POST.get("step", "")
    form = _action_form(action, request.POST if step else None)
    plan = None
    if step and form.is_valid():
        try:
            if action == "enroll" and step != "confirm":
                plan = _enroll_plan(access, leads, form.cleaned_data["sequence"])
            else:
                _perform(request, action, leads, form.cleaned_data, missing)
                return _back_to_list(request)
        except ValidationError as exc:
            add_service_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
    context = {
        "action": action, "title": lead_forms.BULK_ACTIONS[action].rstrip("…"), "form": form, "leads": leads,
        "missing": missing, "plan": plan, "next": _list_url(request), "nav": "leads", "bulk_max": lead_forms.BULK_MAX,
    }
    return render(request, "workspace/lead_bulk.html", context, status=422 if form.errors else 200)


def _enroll_plan(access, leads, sequence):
    """The preview: who would be enrolled, who skipped and why; leads the user may not enroll are skipped too."""
    plan = nurturing_services.EnrollmentPlan()
    allowed = [lead for lead in leads if access.can_manage_enrollments(lead)]
    for lead in leads:
        if not access.can_manage_enrollments(lead):
            plan.add("skipped", lead, why="Not yours: only the lead's owner, a marketer or a manager changes its sequences.")
    return nurturing_services.enrollment_plan(leads=allowed, sequence=sequence, into=plan)


def _perform(request, action, leads, data, missing):
    by = request.user
    if action == "assign":
        changed = lead_services.lead_assign_owner(leads=leads, owner=data["owner"], by=by)
        whom = f"given to {data['owner']}" if data["owner"] else "put back in the unassigned pool"
        _summary(request, verb=whom, done=changed, refused=[], missing=missing)
        if changed < len(leads):
            messages.info(request, f"{len(leads) - changed} already had that owner.")
    elif action == "enroll":
        enrolled, refused = nurturing_services.enroll_many(leads=leads, sequence=data["sequence"], by=by)
        _summary(request, verb=f"enrolled in {data['sequence'].name}", done=enrolled,
                 refused=refused, missing=missing)
    elif action == "stage":
        moves = lead_services.lead_change_stage_many(
            lead_ids=[lead.pk for lead in leads], to_status=data["to_status"], reason=data.get("reason", ""), by=by
        )
        label = dict(StageMoveForm().fields["to_status"].choices)[data["to_status"]]
        _summary(request, verb=f"moved to {label}", done=moves.moved, refused=_refusals(moves.refused), missing=missing)
    else:
        done, refused = services.task_create_many(
            leads=leads, by=by, title=data["title"], due_at=data["due_at"], notes=data.get("notes", ""),
            for_owner=data["assignee"] == "owner",
        )
        _summary(request, verb="given the task", done=done, refused=_refusals(refused), missing=missing)


def _export(request, access, leads) -> HttpResponse:
    if not user_can_export_personal_data(request.user):
        raise PermissionDenied("Exporting leads needs the export permission, which managers have.")
    rows = access.leads(Lead.objects.live()).filter(pk__in=[lead.pk for lead in leads])
    try:
        export = lead_exports.list_export(spec=lead_exports.LEADS, rows=rows, by=request.user, file_format="csv", ticked=True)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back_to_list(request)
    return export.as_response()
