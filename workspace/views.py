"""The reps' pages. Views parse input, ask `access` who may do it, call one service and render.

Actions work in place with htmx (the form opens in the lead page's action
panel; on success the lead's summary and timeline are redrawn) and without
JavaScript (a page per form, then a redirect back to the lead).
"""

from dataclasses import dataclass
from functools import wraps
from typing import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from core.pagination import BoundedCountPaginator
from core.people import person_name
from core.policy import access_for, check_may_change_task
from core.roles import user_can_export_personal_data
from leads import exports as lead_exports
from leads import pipeline
from leads import services as lead_services
from leads import tags as lead_tags
from leads.deals import deal_change_stage
from leads.forms import add_service_errors
from leads.models import Deal, DealStage, Lead, Task
from leads.money import money_format
from nurturing import engagement
from nurturing import services as nurturing_services
from nurturing.models import Enrollment

from . import display, forms, selectors
from .undo import undo_of_task, undo_tags

PAGE_SIZE = 25


def workspace_view(view):
    """Login required; users with none of the three roles get 403. The view gets `access` as a keyword."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        access = access_for(request.user)
        if not access.has_workspace:
            raise PermissionDenied("Your account has no role in the CRM yet: ask a manager to add you to one.")
        return view(request, *args, access=access, **kwargs)

    return wrapped


def _lead(access, pk: int, action: str) -> Lead:
    lead = get_object_or_404(Lead.objects.select_related(*selectors.LIST_RELATED), pk=pk)
    access.check(lead, action)
    return lead


# --- Today and my numbers ---------------------------------------------------------------


@require_GET
@workspace_view
def today(request, *, access):
    if not access.owns_leads:
        return redirect("workspace:lead_list")
    context = {
        "today": selectors.today_for(access=access),
        "numbers": selectors.rep_numbers(user=request.user, period="week"),
        "snooze_until": forms.next_morning(),
        "nav": "today",
    }
    return render(request, "workspace/today.html", context)


@require_GET
@workspace_view
def numbers(request, *, access):
    period = request.GET.get("period", "month")
    return render(
        request,
        "workspace/numbers.html",
        {"numbers": selectors.rep_numbers(user=request.user, period=period), "periods": selectors.PERIODS, "nav": "numbers"},
    )


# --- My leads ------------------------------------------------------------------------------


@require_GET
@workspace_view
def lead_list(request, *, access):
    form = forms.LeadFilterForm(request.GET or None, access=access)
    filters = form.cleaned_data if form.is_valid() else {}
    leads = selectors.lead_list(access=access, filters=filters)
    paginator = BoundedCountPaginator(leads, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form, "page": page, "paginator": paginator, "query": query.urlencode(), "access": access, "nav": "leads",
        "can_export": user_can_export_personal_data(request.user),
    }
    template = "workspace/partials/lead_rows.html" if request.htmx and request.htmx.target == "lead-results" else "workspace/lead_list.html"
    return render(request, template, context)


@require_GET
@workspace_view
def lead_export(request, file_format, *, access):
    """The Leads page's list as a file, every page of it: the same filters, within what the user may see.

    Only for who may export personal data (managers, unless given to someone): the page shows
    others no button, and their request is refused. Filters the page cannot read are an error
    here (naming them), not ignored: an export never holds more than was asked for.
    """
    if file_format not in lead_exports.FORMATS:
        raise Http404("Export as csv or xlsx.")
    if not user_can_export_personal_data(request.user):
        raise PermissionDenied("Exporting leads needs the export permission, which managers have.")
    form = forms.LeadFilterForm(request.GET or None, access=access)
    if form.is_bound and not form.is_valid():
        problems = "; ".join(
            f"{form[name].label if name in form.fields else 'Filters'}: {' '.join(errors)}" for name, errors in form.errors.items()
        )
        return HttpResponseBadRequest(f"Nothing was exported: these filters were not understood. {problems}",
                                      content_type="text/plain; charset=utf-8")
    query = request.GET.copy()
    query.pop("page", None)
    try:
        export = lead_exports.list_export(
            spec=lead_exports.LEADS, rows=selectors.lead_list(access=access, filters=form.cleaned_data if form.is_bound else {}),
            by=request.user, file_format=file_format, filters=query.urlencode(),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("workspace:lead_list") + (f"?{query.urlencode()}" if query else ""))
    return export.as_response()


# --- The lead page ---------------------------------------------------------------------------


def _lead_context(request, access, lead, **extra) -> dict:
    return {
        "lead": lead,
        "access": access,
        "can_work": access.can_work(lead),
        "can_claim": access.can_claim(lead),
        "can_enroll": access.can_manage_enrollments(lead),
        "can_tag": access.can_tag(lead),
        "allowed_moves": [pipeline.LeadStatus(s) for s in pipeline.allowed_moves(lead.status)],
        "actions": [(name, spec) for name, spec in ACTIONS.items() if _allowed(access, lead, spec)],
        "nav": "leads",
        **selectors.lead_page(lead=lead),
        **extra,
    }


@require_GET
@workspace_view
def lead_detail(request, pk, *, access):
    lead = _lead(access, pk, "view")
    extra = {}
    name = request.GET.get("action")
    if name in ACTIONS and _allowed(access, lead, ACTIONS[name]):
        extra = {"open_action": name, "action_form": ACTIONS[name].form(lead, None)}
    return render(request, "workspace/lead_detail.html", _lead_context(request, access, lead, **extra))


def _lead_updated(request, access, lead, message: str):
    """After a change: htmx redraws the lead's main column; a plain POST redirects back to the lead."""
    messages.success(request, message)
    if request.htmx:
        lead = _lead(access, lead.pk, "view")  # fresh: status, owner, touch
        return render(request, "workspace/partials/lead_main.html", _lead_context(request, access, lead))
    return redirect("workspace:lead_detail", pk=lead.pk)


# --- Actions on a lead ------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    title: str
    permission: str  # see access.Access.check
    form: Callable  # (lead, data) -> Form
    perform: Callable  # (request, lead, form) -> success message
    key: str  # keyboard shortcut on the lead page
    when: Callable = lambda lead: True  # offered for this lead at all?


def _log_call(request, lead, form):
    lead_services.activity_log_call(lead=lead, by=request.user, **form.service_kwargs())
    return "Call logged" + (" with its next step." if form.cleaned_data.get("follow_up_title") else ".")


def _log_objection(request, lead, form):
    lead_services.objection_log(lead=lead, by=request.user, **form.cleaned_data)
    return "Objection logged."


def _add_note(request, lead, form):
    lead_services.activity_add_note(lead=lead, by=request.user, body=form.cleaned_data["body"])
    return "Note added."


def _log_social(request, lead, form):
    activity = lead_services.activity_log_social(lead=lead, by=request.user, **form.cleaned_data)
    return f"{activity.get_channel_display()} touch logged: {activity.get_social_action_display().lower()}."


def _log_meeting(request, lead, form):
    minutes = form.cleaned_data.get("duration_minutes")
    lead_services.activity_log_meeting(
        lead=lead, by=request.user, occurred_at=form.cleaned_data["occurred_at"], body=form.cleaned_data.get("body", ""),
        duration_seconds=None if minutes is None else minutes * 60,
    )
    return "Meeting logged."


def _log_reply(request, lead, form):
    event = engagement.reply_log(lead=lead, by=request.user, at=form.cleaned_data["occurred_at"],
                                 note=form.cleaned_data.get("note", ""))
    if event is not None and event.actions:
        return f"Reply logged: {event.actions}."
    return "Reply logged."


def _add_task(request, lead, form):
    lead_services.task_create(assignee=request.user, lead=lead, by=request.user, **form.cleaned_data)
    return "Follow-up task scheduled."


def _change_stage(request, lead, form):
    change = lead_services.lead_change_stage(
        lead=lead, to_status=form.cleaned_data["to_status"], reason=form.cleaned_data.get("reason", ""), by=request.user
    )
    return f"Moved to {change.get_to_status_display()}."


def _convert(request, lead, form):
    deal = lead_services.lead_convert_to_customer(lead=lead, by=request.user, **form.cleaned_data)
    return f"Converted to a customer: deal #{deal.pk} won, {money_format(deal.value, deal.currency)}."


def _open_deal(request, lead, form):
    deal = lead_services.deal_open(lead=lead, by=request.user, **form.cleaned_data)
    stage = f" in {deal.stage.name}" if deal.stage_id else ""
    return f"Deal opened{stage}: {money_format(deal.value, deal.currency)}."


def _deal_form(lead, data):
    from django.conf import settings

    return forms.DealOpenForm(data, initial={"currency": settings.CRM_DEFAULT_CURRENCY})


def _enroll(request, lead, form):
    enrollment = nurturing_services.enrollment_create(lead=lead, sequence=form.cleaned_data["sequence"], by=request.user)
    return f"Enrolled in {enrollment.sequence.name}."


def _convert_form(lead, data):
    from django.conf import settings

    return forms.ConvertForm(data, initial={"currency": settings.CRM_DEFAULT_CURRENCY})


ACTIONS: dict[str, Action] = {
    "call": Action("Log a call", "work", lambda lead, data: forms.CallForm(data), _log_call, "c"),
    "objection": Action("Log an objection", "work", lambda lead, data: forms.ObjectionForm(data), _log_objection, "o"),
    "note": Action("Add a note", "work", lambda lead, data: forms.NoteForm(data), _add_note, "n"),
    "meeting": Action("Log a meeting", "work", lambda lead, data: forms.MeetingForm(data), _log_meeting, "m"),
    "reply": Action("Log a reply", "work", lambda lead, data: forms.ReplyForm(data), _log_reply, "r"),
    "social": Action("Log a social touch", "work", lambda lead, data: forms.SocialTouchForm(data), _log_social, "l"),
    "task": Action("Schedule a follow-up", "work", lambda lead, data: forms.TaskForm(data), _add_task, "t"),
    "stage": Action("Change stage", "work", lambda lead, data: forms.StageMoveForm(data, from_status=lead.status),
                    _change_stage, "s", when=lambda lead: bool(pipeline.allowed_moves(lead.status))),
    "deal": Action("Open a deal", "work", _deal_form, _open_deal, "d",
                   when=lambda lead: lead.status not in pipeline.ENDED_STATUSES),
    "convert": Action("Convert to customer", "work", _convert_form, _convert, "v",
                      when=lambda lead: pipeline.is_move_allowed(lead.status, pipeline.LeadStatus.CUSTOMER)),
    "enroll": Action("Enroll in a sequence", "enroll", lambda lead, data: forms.EnrollForm(data), _enroll, "e",
                     when=lambda lead: lead.is_open),
}


def _allowed(access, lead, spec: Action) -> bool:
    permitted = {"work": access.can_work, "enroll": access.can_manage_enrollments}[spec.permission](lead)
    return permitted and spec.when(lead)


@workspace_view
def lead_action(request, pk, name, *, access):
    spec = ACTIONS.get(name)
    if spec is None:
        raise Http404("No such action.")
    lead = _lead(access, pk, spec.permission)
    if request.method == "POST":
        form = spec.form(lead, request.POST)
        if form.is_valid():
            try:
                message = spec.perform(request, lead, form)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return _lead_updated(request, access, lead, message)
        status = 422
    elif request.method == "GET":
        form, status = spec.form(lead, None), 200
    else:
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    context = {"lead": lead, "name": name, "spec": spec, "form": form}
    if request.htmx:
        response = render(request, "workspace/partials/action_form.html", context, status=status)
        return reswap(retarget(response, "#action-panel"), "innerHTML") if status != 200 else response
    return render(request, "workspace/action_page.html", context, status=status)


@require_POST
@workspace_view
def lead_claim(request, pk, *, access):
    lead = _lead(access, pk, "claim")
    try:
        lead_services.lead_claim(lead=lead, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        if request.htmx:
            return render(request, "workspace/partials/lead_main.html", _lead_context(request, access, _lead(access, pk, "view")))
        return redirect("workspace:lead_detail", pk=pk)
    return _lead_updated(request, access, lead, "The lead is yours now.")


# --- Tags ------------------------------------------------------------------------------------------


def _lead_not_changed(request, access, lead, error: str):
    """A refused change: the message on the lead page (htmx redraws it, as it swaps only a 200; a plain POST goes
    back to it)."""
    messages.error(request, error)
    if request.htmx:
        return render(request, "workspace/partials/lead_main.html", _lead_context(request, access, lead))
    return redirect("workspace:lead_detail", pk=lead.pk)


@require_POST
@workspace_view
def lead_tag_add(request, pk, *, access):
    lead = _lead(access, pk, "tag")
    form = forms.TagForm(request.POST)
    if not form.is_valid():
        return _lead_not_changed(request, access, lead, " ".join(form.errors.get("tag", ["Write the tag."])))
    try:
        lead_tags.lead_tag_add(lead=lead, name=form.cleaned_data["tag"], by=request.user)
    except ValidationError as exc:
        return _lead_not_changed(request, access, lead, " ".join(exc.messages))
    return _lead_updated(request, access, lead, f"Tagged “{lead_tags.tag_name_clean(form.cleaned_data['tag'])}”.")


@require_POST
@workspace_view
def lead_tag_remove(request, pk, *, access):
    lead = _lead(access, pk, "tag")
    name = request.POST.get("tag", "")
    if lead_tags.lead_tag_remove(lead=lead, name=name, by=request.user):
        return _lead_updated(request, access, lead, f"Tag “{' '.join(name.split())}” removed.")
    return _lead_not_changed(request, access, lead, "The lead does not have that tag (any more).")


# --- Enrollments ---------------------------------------------------------------------------------

ENROLLMENT_OPS = {
    "pause": (nurturing_services.enrollment_pause, "Paused: no email goes out until you resume."),
    "resume": (nurturing_services.enrollment_resume, "Resumed."),
}


@require_POST
@workspace_view
def enrollment_change(request, pk, op, *, access):
    enrollment = get_object_or_404(Enrollment.objects.select_related("sequence"), pk=pk)
    lead = _lead(access, enrollment.lead_id, "enroll")
    if op == "remove":
        nurturing_services.enrollment_exit(
            enrollment=enrollment, reason=f"Removed by {person_name(request.user)}", by=request.user
        )
        message = f"Removed from {enrollment.sequence.name}."
    elif op in ENROLLMENT_OPS:
        service, message = ENROLLMENT_OPS[op]
        before = enrollment.status
        enrollment = service(enrollment=enrollment, by=request.user)
        if enrollment.status == before:
            message = f"Nothing to {op}: the enrollment is {enrollment.get_status_display().lower()}."
    else:
        raise Http404("No such change.")
    return _lead_updated(request, access, lead, message)


# --- Tasks ------------------------------------------------------------------------------------------


def _task(access, pk) -> Task:
    """A task its assignee may always close or snooze (even on a lead since given to someone else)."""
    task = get_object_or_404(Task.objects.select_related("lead"), pk=pk)
    if task.assignee_id == access.user.pk:
        return task
    if task.lead is not None and not access.can_see(task.lead):
        raise Http404("No such task.")
    check_may_change_task(access.user, task)
    return task


def _back(request, fallback: str):
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


TASK_VIEWS = {"today": "Due by today", "all": "All open"}


@require_GET
@workspace_view
def task_list(request, *, access):
    """My open tasks, all of them a page at a time (Today shows the first 25): due by today, or all."""
    due = request.GET.get("due") if request.GET.get("due") in TASK_VIEWS else "today"
    tasks = selectors.my_open_tasks(user=request.user, due_by=selectors.day_end_of(timezone.now()) if due == "today" else None)
    paginator = BoundedCountPaginator(tasks, PAGE_SIZE)
    context = {
        "page": paginator.get_page(request.GET.get("page")), "paginator": paginator, "due": due, "views": TASK_VIEWS,
        "snooze_until": forms.next_morning(), "nav": "today",
    }
    return render(request, "workspace/task_list.html", context)


def _task_changed(request, task, text: str, undo: dict):
    """After Done or Snooze: what happened, with its Undo; with htmx in place of the task's row, else as a message."""
    if request.htmx:
        return render(request, "workspace/partials/task_changed.html",
                      {"task": task, "text": text, "undo": undo, "next": request.POST.get("next", "")})
    messages.success(request, text, extra_tags=undo_tags(undo))
    return _back(request, reverse("workspace:today"))


def _task_not_changed(request, error: str):
    if request.htmx:
        return render(request, "workspace/partials/message.html", {"level": "danger", "text": error}, status=422)
    messages.error(request, error)
    return _back(request, reverse("workspace:today"))


@require_POST
@workspace_view
def deal_stage(request, pk, *, access):
    """Move an open deal to another stage and/or set its next step (the lead page's form on each deal)."""
    deal = get_object_or_404(Deal.objects.select_related("lead", "stage"), pk=pk)
    access.check(deal.lead, "work")
    stage = DealStage.objects.filter(pk=request.POST.get("stage") or 0, is_active=True).first()
    next_step = request.POST.get("next_step", "").strip()[:300]
    try:
        with transaction.atomic():
            if next_step != deal.next_step:
                lead_services.deal_update(deal=deal, next_step=next_step, by=request.user)
            if stage is not None and stage.pk != deal.stage_id:
                deal_change_stage(deal=deal, stage=stage, by=request.user)
    except ValidationError as exc:
        messages.error(request, "Not saved: " + " ".join(exc.messages))
    else:
        messages.success(request, f"Deal saved: {deal.stage.name if deal.stage else 'no stage'}"
                                  + (f", next: {next_step}." if next_step else "."))
    return redirect("workspace:lead_detail", pk=deal.lead_id)


@require_POST
@workspace_view
def task_done(request, pk, *, access):
    task = lead_services.task_complete(task=_task(access, pk), by=request.user)
    return _task_changed(request, task, f"Task “{task.title}” done.", undo_of_task(task, what="done"))


@require_POST
@workspace_view
def task_snooze(request, pk, *, access):
    task = _task(access, pk)
    form = forms.SnoozeForm(request.POST)
    if not form.is_valid():
        return _task_not_changed(request, " ".join(form.errors.get("until", ["Choose a time to snooze to."])))
    try:
        lead_services.task_snooze(task=task, until=form.cleaned_data["until"], by=request.user)
    except ValidationError as exc:
        return _task_not_changed(request, " ".join(exc.messages))
    return _task_changed(request, task, f"Task “{task.title}” snoozed until {display.moment_ahead(task.due_at)}.",
                         undo_of_task(task, what="snooze", snoozed_to=task.due_at))


@require_POST
@workspace_view
def task_undo(request, pk, *, access):
    """The Undo of a Done or a Snooze (within lead_services.TASK_UNDO_WINDOW): the task as it was before."""
    task = _task(access, pk)
    what = request.POST.get("undo")
    try:
        if what == "done":
            lead_services.task_reopen(task=task, by=request.user)
            text = f"Undone: task “{task.title}” is open again."
        elif what == "snooze":
            try:
                snoozed_to = parse_datetime(request.POST.get("snoozed_to", ""))
            except ValueError:
                snoozed_to = None
            if snoozed_to is None or timezone.is_naive(snoozed_to):
                return HttpResponseBadRequest("Say which snooze to undo: snoozed_to, a time with its offset.")
            lead_services.task_snooze_undo(task=task, snoozed_to=snoozed_to, by=request.user)
            text = f"Undone: task “{task.title}” is due {display.moment_ahead(task.due_at)}, as before."
        else:
            return HttpResponseBadRequest("Say what to undo: done or snooze.")
    except ValidationError as exc:
        return _task_not_changed(request, " ".join(exc.messages))
    if request.htmx:  # the row comes back
        task = get_object_or_404(Task.objects.select_related("lead", "lead__company"), pk=task.pk)
        return render(request, "workspace/partials/task_row.html",
                      {"task": task, "snooze_until": forms.next_morning(), "next": request.POST.get("next", "")})
    messages.success(request, text)
    return _back(request, reverse("workspace:today"))


def home(request):
    """The front door: reps and managers start on Today, marketers on the leads, staff without a role in the admin."""
    if not request.user.is_authenticated:
        return redirect("login")
    access = access_for(request.user)
    if access.owns_leads:
        return redirect("workspace:today")
    if access.has_workspace:
        return redirect("workspace:lead_list")
    if request.user.is_staff:
        return redirect("admin:index")
    raise PermissionDenied("Your account has no role in the CRM yet: ask a manager to add you to one.")
