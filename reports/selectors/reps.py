"""Reps: each rep's work and results in the range, and the team's total. Managers see every rep; a rep sees only
their own row (on My numbers).

Per rep: calls they logged (and how many connected), objections they logged, meetings they logged, conversions
(leads they moved to customer) and deals won (deals they own, won in the range) with their value per currency.
The slice narrows to the leads these happened on (source, medium, campaign, persona, first landing page).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum

from core.people import person_name
from core.roles import Role
from leads.models import Activity, Deal, Objection, StageChange
from leads.pipeline import LeadStatus

from ..ranges import DateRange, Slice
from .common import counted_rows


@dataclass
class RepRow:
    user_id: int | None
    name: str
    calls: int = 0
    connects: int = 0
    objections: int = 0
    meetings: int = 0
    conversions: int = 0
    deals_won: int = 0
    won_value: dict[str, Decimal] = field(default_factory=dict)


def _leads(part: Slice, lead: str = "lead"):
    """The rows whose lead is counted and in the slice, without its owner (the reps' own rows are by author)."""
    return counted_rows(part.without_owner(), lead)


def _done_by(part: Slice, field: str) -> dict:
    """Done by the slice's owner when it names one (here the rep who did it), else by anyone (not the system)."""
    return {field: part.owner} if part.owner is not None else {f"{field}__isnull": False}


def calls(date_range: DateRange, part: Slice, *, connected: bool = False):
    """The calls logged in the range (connected ones only with `connected`): a rep's Calls and Connects."""
    rows = Activity.objects.filter(date_range.q("occurred_at"), _leads(part), kind=Activity.Kind.CALL,
                                   **_done_by(part, "author"))
    return rows.filter(outcome=Activity.CallOutcome.CONNECTED) if connected else rows


def meetings(date_range: DateRange, part: Slice):
    return Activity.objects.filter(date_range.q("occurred_at"), _leads(part), kind=Activity.Kind.MEETING,
                                   **_done_by(part, "author"))


def objections_logged(date_range: DateRange, part: Slice):
    return Objection.objects.filter(date_range.q("created_at"), _leads(part), **_done_by(part, "raised_by"))


def conversions(date_range: DateRange, part: Slice):
    """The moves to customer made in the range, by the rep who made them."""
    return StageChange.objects.filter(date_range.q("changed_at"), _leads(part), to_status=LeadStatus.CUSTOMER,
                                      **_done_by(part, "changed_by"))


def deals_won(date_range: DateRange, part: Slice):
    """The deals won in the range, by the rep who owns them."""
    return Deal.objects.filter(date_range.q("closed_at"), _leads(part), status=Deal.Status.WON,
                               **_done_by(part, "owner"))


def rep_rows(date_range: DateRange, part: Slice, *, only_user=None) -> tuple[list[RepRow], RepRow]:
    """The rows per rep (every active rep and manager, and anyone who did something in the range), and the team's
    total. `only_user` limits it to one person (a rep's own figures)."""
    users = get_user_model().objects.filter(
        Q(groups__name__in=[Role.SALES_REP, Role.MANAGER], is_active=True)
    ).distinct()
    if part.owner is not None:
        users = users.filter(pk=part.owner)
    if only_user is not None:
        users = users.filter(pk=only_user.pk)
    rows = {u.pk: RepRow(u.pk, person_name(u)) for u in users}

    def row(user_id):
        if user_id not in rows:
            if (part.owner is not None and user_id != part.owner) or (only_user is not None and user_id != only_user.pk):
                return None
            user = get_user_model().objects.filter(pk=user_id).first()
            rows[user_id] = RepRow(user_id, person_name(user) if user else "(deleted)")
        return rows[user_id]

    # The same rows as the drill-downs (calls, meetings, ... above), counted by rep.
    activities = (
        Activity.objects.filter(date_range.q("occurred_at"), _leads(part), **_done_by(part, "author"))
        .order_by().values_list("author")
        .annotate(calls=Count("pk", filter=Q(kind=Activity.Kind.CALL)),
                  connects=Count("pk", filter=Q(kind=Activity.Kind.CALL, outcome=Activity.CallOutcome.CONNECTED)),
                  meetings=Count("pk", filter=Q(kind=Activity.Kind.MEETING)))
    )
    for author, n_calls, connects, n_meetings in activities:
        if (target := row(author)) is not None:
            target.calls, target.connects, target.meetings = n_calls, connects, n_meetings
    for author, n in objections_logged(date_range, part).order_by().values_list("raised_by").annotate(n=Count("pk")):
        if (target := row(author)) is not None:
            target.objections = n
    for user_id, n in conversions(date_range, part).order_by().values_list("changed_by").annotate(n=Count("pk")):
        if (target := row(user_id)) is not None:
            target.conversions = n
    for owner, currency, n, value in (deals_won(date_range, part).order_by().values_list("owner", "currency")
                                      .annotate(n=Count("pk"), value=Sum("value"))):
        if (target := row(owner)) is not None:
            target.deals_won += n
            target.won_value[currency] = value
    ordered = sorted(rows.values(), key=lambda r: r.name.lower())
    team = RepRow(None, "Team")
    for r in ordered:
        for name in ("calls", "connects", "objections", "meetings", "conversions", "deals_won"):
            setattr(team, name, getattr(team, name) + getattr(r, name))
        for currency, value in r.won_value.items():
            team.won_value[currency] = team.won_value.get(currency, Decimal(0)) + value
    return ordered, team
