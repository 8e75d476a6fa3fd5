"""The pipeline board's pages: the board, a column's next page, and the moves.

A move is a form POST: a card's "Move…" page without JavaScript; with it, the
board's Move dialog or a drag, which post the same fields with fetch. With
`Accept: application/json` the answer is JSON with a message for people (4xx
when refused, nothing changed); otherwise a redirect back to the board with the
message.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from core.people import person_name
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


LEAD_TARGETS = [(status, pipeline.label(status)) for status in (*selectors.LEAD_COLUMNS, *selectors.END_TARGETS)]


def _back_query(request) -> str:
    """`back=<the board, as filtered>` for the cards' Move… links: the move page without JavaScript returns there."""
    query = _query(request)
    return urlencode({"back": reverse("workspace:board") + (f"?{query}" if query else "")})


def _back(request) -> str:
    back = request.POST.get("back", "") or request.GET.get("back", "")
    return back if back.startswith("/board/") else reverse("workspace:board")


_PLACEHOLDER = 2147483647


def _url_pattern(name: str) -> str:
    """The URL of `name` for any primary key, as a format string: reversed once per page, not once per card."""
    return reverse(name, args=[_PLACEHOLDER]).replace(str(_PLACEHOLDER), "{}")


def _dress(cards, kind: str) -> None:
    """What each card shows, worked out here rather than by template filters (the board draws some 180 cards):
    `url` (its lead's page, at the deal for a deal card), `move_url` (its Move… page), `name`, `owner_name`,
    `in_stage` ("3 days in stage") and `next_task` ("Send the quote · 2 Dec 09:00", or "")."""
    lead_page = _url_pattern("workspace:lead_detail")
    move = _url_pattern("workspace:board_deal_move" if kind == "deal" else "workspace:board_lead_move")
    now = timezone.now()
    for card in cards:
        lead = card.lead if kind == "deal" else card
        card.url = lead_page.format(lead.pk) + (f"#deal-{card.pk}" if kind == "deal" else "")
        card.move_url = move.format(card.pk)
        card.name = lead.full_name or lead.email or lead.phone
        card.owner_name = person_name(lead.owner) or "Unassigned"
        card.in_stage = selectors.days_in_stage(card.stage_entered_at, now=now)
        card.next_task = (f"{card.next_task_title} · {date_format(timezone.localtime(card.next_task_due), 'j M H:i')}"
                          if card.next_task_title else "")


@require_GET
@workspace_view
def board(request, *, access):
    form, filters = _filters(request, access)
    stages = selectors.deal_stages()
    columns = selectors.board(access=access, filters=filters, stages=stages)
    for column in columns:
        _dress(column.cards, column.kind)
    context = {
        "form": form, "columns": columns,
        "query": _query(request), "back_query": _back_query(request),
        "lead_targets": LEAD_TARGETS, "deal_stages": stages, "end_targets": selectors.END_TARGETS,
        "ended": sorted(pipeline.ENDED_STATUSES), "nav": "board",
    }
    return render(request, "workspace/board.html", context)


@require_GET
@workspace_view
def board_heads(request, *, access):
    """Every column's head ("12 leads", "3 deals · 12,000 EUR") under the board's filters, as JSON: the board
    redraws them after a move, so counts and deal totals follow it (and other people's moves)."""
    _, filters = _filters(request, access)
    stages = selectors.deal_stages()
    counts = selectors.lead_counts(access=access, filters=filters)
    columns = [selectors.Column(key=f"lead-{status}", title="", kind="lead", count=counts.get(status, 0))
               for status in selectors.LEAD_COLUMNS]
    counts, totals = selectors.deal_counts_and_totals(selectors.board_deals(access=access, filters=filters), stages)
    columns += [selectors.Column(key=f"deal-{stage.pk}", title="", kind="deal", count=counts.get(stage.pk, 0),
                                 totals=totals.get(stage.pk, [])) for stage in stages]
    return JsonResponse({"columns": {column.key: column.summary for column in columns}})


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
    _dress(cards, kind)
    context = {"column": column, "query": _query(request), "back_query": _back_query(request), "nav": "board"}
    template = "workspace/partials/board_cards.html" if request.htmx else "workspace/board_column.html"
    return render(request, template, context)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _answer(request, *, ok: bool, message: str, status: int = 200):
    if _wants_json(request):
        return JsonResponse({"ok": ok, "message": message}, status=200 if ok else status)
    (messages.success if ok else messages.error)(request, message)
    return redirect(_back(request))


def _refusal(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _move_page(request, *, card: str, action: str, targets: list, reason: bool):
    """The Move… page of a card without JavaScript (with it, the board's dialog asks the same)."""
    return render(request, "workspace/board_move.html", {
        "card": card, "action": action, "targets": targets, "reason": reason, "back": _back(request), "nav": "board",
    })


@require_http_methods(["GET", "POST"])
@workspace_view
def board_lead_move(request, pk, *, access):
    """Move a lead card to another stage through the stage service (GET: the form asking where to)."""
    lead = Lead.objects.live().filter(pk=pk).select_related("owner").first()
    if lead is None or not access.can_see(lead):
        if request.method == "GET":
            raise Http404("No such lead: it may have been archived or given to someone else.")
        return _answer(request, ok=False, message="No such lead: it may have been archived or given to someone else.",
                       status=404)
    if request.method == "GET":
        return _move_page(request, card=str(lead), action=request.path, reason=True,
                          targets=[(value, label) for value, label in LEAD_TARGETS if value != lead.status])
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


@require_http_methods(["GET", "POST"])
@workspace_view
def board_deal_move(request, pk, *, access):
    """Move a deal card to another deal stage through the deal stage service (GET: the form asking where to)."""
    deal = Deal.objects.select_related("lead", "stage").filter(pk=pk).first()
    if deal is None or not access.can_see(deal.lead):
        if request.method == "GET":
            raise Http404("No such deal.")
        return _answer(request, ok=False, status=404, message="No such deal.")
    if request.method == "GET":
        return _move_page(request, card=f"the deal of {deal.lead}", action=request.path, reason=False,
                          targets=[(f"deal-{stage.pk}", stage.name) for stage in selectors.deal_stages()
                                   if stage.pk != deal.stage_id])
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
