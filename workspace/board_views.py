"""The pipeline board's pages: the board, a column's next page, and the moves.

A move is a form POST (a card's "Move to" control, or a drag, which submits the
same form with fetch). With `Accept: application/json` the answer is JSON with
a message for people (4xx when refused, nothing changed); otherwise a redirect
back to the board with the message.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leads import pipeline
from leads import services as lead_services
from leads.deals import deal_change_stage
from leads.forms import OwnerChoiceField
from leads.models import Campaign, Deal, DealStage, Lead, Source
from leads.selectors import lead_owner_choices

from . import board as selectors
from .views import workspace_view


class BoardFilterForm(forms.Form):
    """The board's filters: owner (for who sees every lead), source, campaign."""

    owner = OwnerChoiceField(required=False, queryset=None, empty_label="Any owner")
    source = forms.ModelChoiceField(required=False, queryset=Source.objects.order_by("name"), empty_label="Any source")
    campaign = forms.ModelChoiceField(required=False, queryset=Campaign.objects.order_by("name"),
                                      empty_label="Any campaign")

    def __init__(self, *args, access, **kwargs):
        super().__init__(*args, **kwargs)
        if access.sees_all:
            self.fields["owner"].queryset = lead_owner_choices()
        else:
            del self.fields["owner"]
        for bound in self.fields.values():
            bound.widget.attrs["class"] = "form-select form-select-sm"


def _filters(request, access):
    form = BoardFilterForm(request.GET or None, access=access)
    return form, (form.cleaned_data if form.is_valid() else {})


def _query(request) -> str:
    query = request.GET.copy()
    for name in ("after", "column"):
        query.pop(name, None)
    return query.urlencode()


def _move_targets():
    lead_targets = [(status, pipeline.label(status)) for status in (*selectors.LEAD_COLUMNS, *selectors.END_TARGETS)]
    return lead_targets, list(DealStage.objects.filter(is_active=True).order_by("position", "pk"))


@require_GET
@workspace_view
def board(request, *, access):
    form, filters = _filters(request, access)
    lead_targets, deal_stages = _move_targets()
    context = {
        "form": form, "columns": selectors.board(access=access, filters=filters), "query": _query(request),
        "lead_targets": lead_targets, "deal_stages": deal_stages, "end_targets": selectors.END_TARGETS,
        "ended": sorted(pipeline.ENDED_STATUSES), "nav": "board",
    }
    return render(request, "workspace/board.html", context)


@require_GET
@workspace_view
def board_column(request, key, *, access):
    """The next page of one column's cards (htmx swaps them in for the "Load more" button; without JS, a page)."""
    _, filters = _filters(request, access)
    cursor = selectors.parse_cursor(request.GET.get("after", ""))
    kind, _, ident = key.partition("-")
    if kind == "lead" and ident in selectors.LEAD_COLUMNS:
        leads = selectors.board_leads(access=access, filters=filters)
        cards, next_cursor = selectors.lead_cards(leads=leads, status=ident, cursor=cursor)
        column = selectors.Column(key=key, title=pipeline.label(ident), kind="lead", stage=ident)
    elif kind == "deal" and ident.isdigit():
        stage = get_object_or_404(DealStage, pk=int(ident), is_active=True)
        deals = selectors.board_deals(access=access, filters=filters)
        cards, next_cursor = selectors.deal_cards(deals=deals, stage=stage, cursor=cursor)
        column = selectors.Column(key=key, title=stage.name, kind="deal", stage=stage)
    else:
        raise Http404("No such column on the board.")
    column.cards, column.next_cursor = cards, next_cursor
    lead_targets, deal_stages = _move_targets()
    context = {"column": column, "query": _query(request), "lead_targets": lead_targets, "deal_stages": deal_stages,
               "ended": sorted(pipeline.ENDED_STATUSES), "nav": "board"}
    template = "workspace/partials/board_cards.html" if request.htmx else "workspace/board_column.html"
    return render(request, template, context)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _answer(request, *, ok: bool, message: str, status: int = 200):
    if _wants_json(request):
        return JsonResponse({"ok": ok, "message": message}, status=200 if ok else status)
    (messages.success if ok else messages.error)(request, message)
    back = request.POST.get("back", "")
    return redirect(back if back.startswith("/board/") else reverse("workspace:board"))


def _refusal(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@require_POST
@workspace_view
def board_lead_move(request, pk, *, access):
    """Move a lead card to another stage through the stage service."""
    lead = Lead.objects.live().filter(pk=pk).select_related("owner").first()
    if lead is None or not access.can_see(lead):
        return _answer(request, ok=False, message="No such lead: it may have been archived or given to someone else.",
                       status=404)
    to_status = request.POST.get("to_status", "")
    if to_status.startswith("deal-"):
        return _answer(request, ok=False, status=400, message=(
            f"{lead} has no deal on the board: open a deal on the lead page first."))
    if to_status not in pipeline.LeadStatus.values:
        return _answer(request, ok=False, status=400, message="Choose a stage to move the lead to.")
    if to_status == lead.status:
        return _answer(request, ok=True, message=f"{lead} is already in {pipeline.label(to_status)}.")
    try:
        lead_services.lead_change_stage(lead=lead, to_status=to_status, by=request.user,
                                        reason=request.POST.get("reason", "").strip()[:300])
    except PermissionDenied as exc:
        return _answer(request, ok=False, status=403,
                       message=str(exc) or f"{lead} is another rep's lead: only its owner or a manager moves it.")
    except ValidationError as exc:
        return _answer(request, ok=False, status=400, message=f"{lead} not moved: {_refusal(exc)}")
    return _answer(request, ok=True, message=f"{lead} moved to {pipeline.label(to_status)}.")


@require_POST
@workspace_view
def board_deal_move(request, pk, *, access):
    """Move a deal card to another deal stage through the deal stage service."""
    deal = Deal.objects.select_related("lead", "stage").filter(pk=pk).first()
    if deal is None or not access.can_see(deal.lead):
        return _answer(request, ok=False, status=404, message="No such deal.")
    target = request.POST.get("to_status", "")
    ident = target.removeprefix("deal-")
    stage = DealStage.objects.filter(pk=int(ident)).first() if ident.isdigit() else None
    if stage is None:
        return _answer(request, ok=False, status=400,
                       message="A deal moves among the deal stages only: choose one of them.")
    if stage.pk == deal.stage_id:
        return _answer(request, ok=True, message=f"The deal is already in “{stage.name}”.")
    try:
        deal_change_stage(deal=deal, stage=stage, by=request.user)
    except PermissionDenied as exc:
        return _answer(request, ok=False, status=403,
                       message=str(exc) or "Only the lead's owner or a manager moves its deal.")
    except ValidationError as exc:
        return _answer(request, ok=False, status=400, message=f"Deal not moved: {_refusal(exc)}")
    return _answer(request, ok=True, message=f"{deal.lead}'s deal moved to “{stage.name}”.")
