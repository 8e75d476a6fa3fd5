"""The marketers' pages. Views parse input, call one service (or read a preview) and render.

Every page and every POST asks `access_for(user).builds_sequences` (marketers and managers): anyone else gets 403.
The step editor works without JavaScript (Preview, Save and Send a test are buttons of one form); studio.js adds
the live preview, the lead search as you type, and drag-and-drop reordering.
"""

from functools import wraps

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.policy import access_for
from nurturing import previews, services
from nurturing.models import Sequence, Step
from nurturing.sandbox import ALLOWED_FILTERS, TemplateProblem
from nurturing.versions import sequence_version_rows

from . import forms, selectors

MERGE_HINT = ("first_name", "last_name", "lead.full_name", "company.name", "owner.full_name", "sender.full_name",
              "campaign.name", "resource.title", "links.book_demo")

# The email's HTML is shown in a sandboxed frame (no scripts run in it), which takes the page's
# Content-Security-Policy: let it keep its inline styles and remote images, as a mail client shows them.
# Scripts stay 'self' only.
email_frame_csp = csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["https:"]})


def studio_view(view):
    """Login required; only users who build sequences (marketers, managers); others get 403."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        access = access_for(request.user)
        if not access.builds_sequences:
            raise PermissionDenied("Only a marketer or a manager can build sequences.")
        return view(request, *args, access=access, **kwargs)

    return wrapped


def _is_fetch(request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _refused(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


def _step(step_pk: int) -> Step:
    return get_object_or_404(Step.objects.select_related("sequence", "condition_resource"), pk=step_pk)


# --- Sequences ------------------------------------------------------------------------------------------


@require_GET
@studio_view
def sequence_list(request, *, access):
    return render(request, "studio/sequence_list.html", {"sequences": selectors.sequence_list(), "nav": "studio"})


@require_http_methods(["GET", "POST"])
@studio_view
def sequence_new(request, *, access):
    return _sequence_form(request, Sequence(), created=True)


@require_http_methods(["GET", "POST"])
@studio_view
def sequence_settings(request, pk, *, access):
    return _sequence_form(request, get_object_or_404(Sequence, pk=pk), created=False)


def _sequence_form(request, sequence, *, created):
    form = forms.SequenceForm(request.POST or None, instance=sequence)
    if request.method == "POST" and form.is_valid():
        try:
            sequence = services.sequence_save(sequence=form.save(commit=False), by=request.user)
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            messages.success(request, "Sequence created: add its first step." if created else "Settings saved.")
            return redirect("studio:sequence_detail", pk=sequence.pk)
    return render(request, "studio/sequence_form.html",
                  {"form": form, "sequence": sequence if sequence.pk else None, "nav": "studio"})


@require_GET
@studio_view
def sequence_detail(request, pk, *, access):
    sequence = get_object_or_404(Sequence.objects.select_related("sender", "target_persona"), pk=pk)
    steps = selectors.sequence_steps(sequence)
    context = {
        "sequence": sequence, "steps": steps, "nav": "studio",
        "live_enrollments": selectors.sequence_live_enrollments(sequence),
        "latest_version": selectors.sequence_latest_version(sequence),
        "validated": "validate" in request.GET,
        "problems": selectors.steps_problems(steps) if "validate" in request.GET else {},
        "kinds": Step.Kind.choices,
    }
    return render(request, "studio/sequence_detail.html", context)


@require_GET
@studio_view
def sequence_versions(request, pk, *, access):
    """Each version of a live sequence, what changed from the one before, and how many emails went from it."""
    sequence = get_object_or_404(Sequence, pk=pk)
    return render(request, "studio/sequence_versions.html",
                  {"sequence": sequence, "rows": sequence_version_rows(sequence), "nav": "studio"})


# What each status change calls, and what it tells the marketer when it is done.
STATUS_CHANGES = {
    "activate": (services.sequence_activate, "Not activated:", "“{}” is active: enrolled leads get its steps."),
    "pause": (services.sequence_pause, "Not paused:", "“{}” is paused: its due emails wait until it is active again."),
}


@require_POST
@studio_view
def sequence_status_change(request, pk, op, *, access):
    """Activate or pause; when the service refuses, each of its reasons is shown."""
    change, refused, done = STATUS_CHANGES[op]
    sequence = get_object_or_404(Sequence, pk=pk)
    try:
        change(sequence=sequence, by=request.user)
    except ValidationError as exc:
        messages.error(request, refused)
        _refused(request, exc)
    else:
        messages.success(request, done.format(sequence))
    return redirect("studio:sequence_detail", pk=sequence.pk)


# --- Arranging steps ----------------------------------------------------------------------------------------


def _arranged(request, sequence, write, done: str, *, step=None):
    """Run one arranging service; answer a script with 204 (or 400) and a person with the sequence page, scrolled
    to the step they acted on (a keyboard user keeps their place)."""
    try:
        write()
    except ValidationError as exc:
        _refused(request, exc)
        status = 400
    else:
        messages.success(request, done)
        status = 204
    if _is_fetch(request):
        return HttpResponse(status=status)  # the script reloads the page, which shows the message
    anchor = f"#step-{step.pk}" if step is not None else "#step-flow"
    return redirect(reverse("studio:sequence_detail", args=[sequence.pk]) + anchor)


@require_POST
@studio_view
def steps_reorder(request, pk, *, access):
    sequence = get_object_or_404(Sequence, pk=pk)
    order = request.POST.getlist("order")
    return _arranged(request, sequence, lambda: services.steps_reorder(sequence=sequence, order=order, by=request.user),
                     "Steps reordered.")


@require_POST
@studio_view
def step_move(request, step_pk, direction, *, access):
    """Move a step one place up or down (the keyboard's way to reorder): the new order goes to `steps_reorder`."""
    if direction not in ("up", "down"):
        raise Http404("Move a step up or down.")
    step = _step(step_pk)
    order = list(Step.objects.filter(sequence_id=step.sequence_id).order_by("position").values_list("pk", flat=True))
    at = order.index(step.pk)
    to = at - 1 if direction == "up" else at + 1
    if 0 <= to < len(order):
        order[at], order[to] = order[to], order[at]
    return _arranged(request, step.sequence,
                     lambda: services.steps_reorder(sequence=step.sequence, order=order, by=request.user),
                     f"Step moved {direction}.", step=step)


@require_POST
@studio_view
def step_duplicate(request, step_pk, *, access):
    step = _step(step_pk)
    return _arranged(request, step.sequence, lambda: services.step_duplicate(step=step, by=request.user),
                     f"Step {step.position} duplicated: the copy follows it.", step=step)


@require_POST
@studio_view
def step_switch(request, step_pk, state, *, access):
    if state not in ("on", "off"):
        raise Http404("Switch a step on or off.")
    step = _step(step_pk)
    return _arranged(request, step.sequence,
                     lambda: services.step_switch(step=step, is_active=state == "on", by=request.user),
                     f"Step {step.position} switched {state}.", step=step)


# --- The step editor and its preview ------------------------------------------------------------------------


def _new_step(sequence: Sequence, kind: str) -> Step:
    if kind not in Step.Kind.values:
        kind = Step.Kind.EMAIL
    last = Step.objects.filter(sequence=sequence).aggregate(last=Max("position"))["last"] or 0
    return Step(sequence=sequence, kind=kind, position=last + 1)



def _chosen_lead(request, access):
    """The lead to preview on: a match the marketer clicked, else the one chosen before for the same search, else
    the search's first match. Only leads the user may see."""
    data = request.POST if request.method == "POST" else request.GET
    asked = (data.get("lead_q") or "").strip()
    matches = selectors.lead_search(access=access, query=asked) if asked else []
    lead = None
    if data.get("pick_lead"):
        lead = selectors.lead_for_preview(access=access, pk=data["pick_lead"])
    elif data.get("lead") and data.get("lead_for", "") == asked:
        lead = selectors.lead_for_preview(access=access, pk=data["lead"])
    if lead is None and matches:
        lead = matches[0]
    return asked, lead, matches


def _preview(step: Step, *, lead, asked: str, matches) -> dict:
    """The step as this lead would get it, the merge fields that come out empty for them, and across the
    sequence's leads. Nothing is sent or stored."""
    context = {"lead": lead, "asked": asked, "matches": [m for m in matches if lead is None or m.pk != lead.pk],
               "is_email": step.kind == Step.Kind.EMAIL}
    if not context["is_email"]:
        return context
    try:
        context["empty_across"] = previews.empty_field_counts(step=step)
        if lead is not None:
            merge = previews.preview_context(step=step, lead=lead)
            context["rendered"] = previews.step_preview(step=step, lead=lead, context=merge)
            context["empty_here"] = previews.empty_fields(step=step, context=merge)
    except TemplateProblem as exc:  # shown to the marketer, who is fixing the template
        context["problem"] = str(exc)
    return context


@email_frame_csp
@require_http_methods(["GET", "POST"])
@studio_view
def step_new(request, pk, *, access):
    sequence = get_object_or_404(Sequence, pk=pk)
    return _step_editor(request, access, _new_step(sequence, request.POST.get("kind") or request.GET.get("kind")))


@email_frame_csp
@require_http_methods(["GET", "POST"])
@studio_view
def step_edit(request, step_pk, *, access):
    return _step_editor(request, access, _step(step_pk))


def _step_editor(request, access, step: Step):
    """One form: Save goes through `step_save`; Preview (and a lead picked) re-renders with the unsaved templates;
    Send a test mails the unsaved step, rendered for the chosen lead, to the marketer."""
    is_new = step.pk is None
    form = forms.StepForm(request.POST or None, instance=step)
    asked, lead, matches = _chosen_lead(request, access)
    if request.method == "POST":
        valid = form.is_valid()  # builds the unsaved step from what was typed, for the preview too
        if "save" in request.POST and valid:
            try:
                services.step_save(step=form.instance, by=request.user)
            except ValidationError as exc:
                forms.add_service_errors(form, exc)
            else:
                messages.success(request, f"Step {step.position} {'added' if is_new else 'saved'}.")
                return redirect("studio:sequence_detail", pk=step.sequence_id)
        elif "send_test" in request.POST:
            if lead is None:
                messages.error(request, "Choose a lead to render the test for (search by name or email).")
            else:
                try:
                    previews.step_send_test(step=form.instance, lead=lead, to_email=request.user.email, by=request.user)
                except ValidationError as exc:
                    _refused(request, exc)
                else:
                    messages.success(request, f"Test sent to {request.user.email}, rendered for {lead}.")
    context = {
        "form": form, "step": step, "sequence": step.sequence, "is_new": is_new, "nav": "studio",
        "merge_hint": MERGE_HINT, "filters": ALLOWED_FILTERS,
        **_preview(form.instance, lead=lead, asked=asked, matches=matches),
    }
    return render(request, "studio/step_edit.html", context)


@require_POST
@studio_view
def step_preview(request, pk=None, step_pk=None, *, access):
    """The preview panel alone, for the editor's script: the unsaved templates rendered for the chosen lead."""
    if step_pk is not None:
        step = _step(step_pk)
    else:
        step = _new_step(get_object_or_404(Sequence, pk=pk), request.POST.get("kind"))
    form = forms.StepForm(request.POST, instance=step)
    form.is_valid()  # the fields that parse are previewed; their errors show when saving
    asked, lead, matches = _chosen_lead(request, access)
    return render(request, "studio/partials/preview.html", _preview(form.instance, lead=lead, asked=asked,
                                                                     matches=matches))


@require_GET
@studio_view
def lead_search(request, *, access):
    """A few leads this user may see whose name or email matches, as buttons to preview on."""
    asked = (request.GET.get("lead_q") or request.GET.get("q") or "").strip()
    return render(request, "studio/partials/lead_matches.html",
                  {"matches": selectors.lead_search(access=access, query=asked), "asked": asked})
