"""Leads that need attention now: stuck (in their stage longer than that stage usually takes) and cold (nobody
called, met or emailed them for CRM_COLD_AFTER_DAYS days), by owner."""

from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from operator import or_

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Value
from django.utils import timezone

from core.people import person_name
from leads.pipeline import LeadStatus
from workspace.selectors import cold_condition

from ..ranges import DateRange, Slice
from .pipeline import OPEN_FUNNEL, open_leads
from .sales import time_in_stage


@dataclass(frozen=True)
class StuckRow:
    status: str
    label: str
    usual_days: float | None  # the p90 of the stays in this stage that ended in the range
    stuck: int  # open leads in the stage for longer than that now


def stuck_since(p90_days: float):
    return timezone.now() - timedelta(days=p90_days)


def stuck_leads(date_range: DateRange, part: Slice, status: str):
    """Open leads in `status` for longer than the p90 of the stays in it that ended in the range (none when no
    stay ended in the range: there is no usual time to compare with)."""
    usual = {row.status: row.spread.p90_days for row in time_in_stage(date_range, part)}.get(status)
    if usual is None:
        return open_leads(part).none()
    return open_leads(part).filter(status=status, stage_entered_at__lt=stuck_since(usual))


def _usual_days(date_range: DateRange, part: Slice, stays) -> dict[str, float | None]:
    return {row.status: row.spread.p90_days for row in (stays or time_in_stage(date_range, part))}


def _stuck_condition(usual: dict[str, float | None]) -> Q | None:
    conditions = [Q(status=status, stage_entered_at__lt=stuck_since(usual[status]))
                  for status in OPEN_FUNNEL if usual.get(status) is not None]
    return reduce(or_, conditions) if conditions else None


@dataclass(frozen=True)
class OpenCount:
    status: str
    owner_id: int | None
    open: int
    cold: int
    stuck: int


def open_lead_counts(date_range: DateRange, part: Slice, *, stays=None) -> list[OpenCount]:
    """Open leads now by stage and owner: how many, how many are cold and how many stuck (as in `stuck_by_stage`).
    One read of the open leads that the stuck leads and the cold leads each add up their own way. `stays`: `sales.time_in_stage` for the same range and slice, if already read."""
    stuck = _stuck_condition(_usual_days(date_range, part, stays))
    rows = open_leads(part).order_by().values_list("status", "owner").annotate(
        open=Count("pk"), cold=Count("pk", filter=cold_condition()),
        stuck=Count("pk", filter=stuck) if stuck is not None else Value(0),
    )
    return [OpenCount(*row) for row in rows]


def stuck_by_stage(date_range: DateRange, part: Slice, *, stays=None,
                   counts: list[OpenCount] | None = None) -> list[StuckRow]:
    """Stuck leads: open leads now in a stage for longer than the 90th percentile of the time leads spent in
    that stage (stays that ended in the range), per stage. `stays`: `sales.time_in_stage` for the same range and
    slice, and `counts`: `open_lead_counts`, where already read."""
    usual = _usual_days(date_range, part, stays)
    stuck: dict[str, int] = {}
    for row in open_lead_counts(date_range, part, stays=stays) if counts is None else counts:
        stuck[row.status] = stuck.get(row.status, 0) + row.stuck
    return [StuckRow(status, LeadStatus(status).label, usual.get(status), stuck.get(status, 0))
            for status in OPEN_FUNNEL]


def cold_leads(part: Slice, *, unassigned: bool = False):
    """The open leads counted as cold in `cold_by_owner` (only the unassigned pool's with `unassigned`)."""
    leads = open_leads(part).filter(cold_condition())
    return leads.filter(owner__isnull=True) if unassigned else leads


@dataclass(frozen=True)
class ColdRow:
    owner_id: int | None
    owner: str
    cold: int
    open: int


def cold_by_owner(part: Slice, *, counts: list[OpenCount] | None = None) -> list[ColdRow]:
    """Cold leads by owner: open leads nobody called, met or emailed for CRM_COLD_AFTER_DAYS days (never touched:
    counted from creation), beside each owner's open leads. The unassigned pool is a row of its own. `counts`:
    `open_lead_counts` (for any range: cold does not depend on it), where already read."""
    if counts is None:
        rows = list(open_leads(part).order_by().values_list("owner")
                    .annotate(cold=Count("pk", filter=cold_condition()), open=Count("pk")))
    else:
        by_owner: dict[int | None, tuple[int, int]] = {}
        for row in counts:
            cold, total = by_owner.get(row.owner_id, (0, 0))
            by_owner[row.owner_id] = (cold + row.cold, total + row.open)
        rows = [(owner, cold, total) for owner, (cold, total) in by_owner.items()]
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=[owner for owner, _, _ in rows if owner])}
    result = [
        ColdRow(owner, person_name(users[owner]) if owner else "Unassigned",
                cold, total)
        for owner, cold, total in rows
    ]
    return sorted(result, key=lambda row: (-row.cold, row.owner))
