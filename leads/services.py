"""Every write with a rule behind it.

The admin, the reps' pages, the API and the Celery tasks all call these
functions; none of them writes a lead's status, an activity that touches a
lead, or a deal by hand. Each service validates first and raises
`django.core.exceptions.ValidationError` (keyed by field) with a message a
person can act on; each writes inside one transaction, so a failure leaves
nothing half-written.
"""

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.batches import batched
from core.emails import normalize_email
from core.events import Actor, EventType, event_record, events_record
from core.models import ActorKind, DomainEvent
from core.people import person_name
from core.policy import (
    access_for,
    check_may_change_companies,
    check_may_change_task,
    check_may_give_task,
    check_may_manage_leads,
    check_may_move,
    check_may_record_conversions,
    check_may_work,
)

from . import pipeline
from .deals import deal_stage_start
from .merging import lead_merge, lead_merge_undo  # noqa: F401  (merging lives in its own module; called from here)
from .models import (
    Activity,
    Company,
    Conversion,
    ConversionKind,
    Customer,
    Deal,
    FormSubmission,
    Lead,
    LeadTouch,
    Objection,
    Resource,
    StageChange,
    Task,
    Touch,
)
from .money import amount_in_digits, money_format
from .pipeline import LeadStatus
from .reach import reached_on_move
from .selectors import lead_duplicate_of
from .signals import activity_logged, lead_stage_changed, send_after_commit


class StageMoveError(ValidationError):
    """A stage move that the pipeline does not allow, or that lacks what it needs."""


# Clocks disagree a little between machines: this far ahead still counts as now.
_CLOCK_SKEW = timedelta(minutes=5)


def _when(at: datetime | None, *, field: str = "at", not_before: datetime | None = None, since: str = "") -> datetime:
    """The time an event happened: now by default; a given time must be past, and not before `not_before`.

    Recording history after the fact (an import, a call logged the next day)
    passes `at`; nothing can be dated in the future. What it follows may have
    been dated a little ahead (within the clock skew): then "now" is that
    time, so a history never runs backwards.
    """
    now = timezone.now()
    if at is None:
        return now if not_before is None else max(now, not_before)
    if at > now + _CLOCK_SKEW:
        raise ValidationError({field: ["That time is in the future: record what has happened, with a time up to now."]})
    if not_before is not None and at < not_before:
        raise ValidationError({field: [f"That time is before {since or 'what it follows'} ({not_before:%Y-%m-%d %H:%M})."]})
    return at


# --- Leads ----------------------------------------------------------------------

_LEAD_FIELDS = frozenset(
    f.name for f in Lead._meta.get_fields() if getattr(f, "editable", False) and not f.auto_created
) - {"id"}


def _lead_validate(lead: Lead):
    lead.email = normalize_email(lead.email)
    errors = {}
    try:
        # Constraints are checked below with a friendlier message, and again by
        # the database, which has the last word on a race.
        lead.full_clean(validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not lead.email and not lead.phone.strip() and not lead.external_ref:
        errors.setdefault("email", []).append(
            "Give an email address or a phone number, so the lead can be contacted."
        )
    if lead.email and "email" not in errors and lead.archived_at is None:
        other = lead_duplicate_of(email=lead.email, exclude_pk=lead.pk)
        if other is not None:
            errors["email"] = [
                f"Another lead already has this email address: {other} (lead #{other.pk}). "
                "Open that lead instead of creating a duplicate."
            ]
    if errors:
        raise ValidationError(errors)


def _lead_save(lead: Lead):
    """Save after validation, turning the database's duplicate check into the same error."""
    lead.search_text = lead.build_search_text()
    # An update writes only the editable fields: a stage move that committed
    # meanwhile is never overwritten with a stale status.
    update_fields = None if lead._state.adding else [*_LEAD_FIELDS, "search_text", "updated_at"]
    try:
        with transaction.atomic():
            lead.save(update_fields=update_fields)
    except IntegrityError as exc:
        if "lead_email_unique_among_live" in str(exc) or "UNIQUE" in str(exc).upper():
            raise ValidationError({"email": ["Another lead already has this email address."]}) from exc
        raise


@transaction.atomic
def lead_create(*, by=None, actor: str = "", reason: str = "", made_by: Actor | None = None, **fields) -> Lead:
    """Create a lead in the New stage and record its entry into the pipeline.

    Guarantees: the email is stored lower-cased and no other live lead has it;
    the lead has an email or a phone; the first StageChange (— → New) exists;
    a user gives a new lead to someone else only if they may assign leads
    (managers), and only to someone who can own leads.
    `made_by` names what made it when no user did (a form, an import) in the event log.
    """
    unknown = set(fields) - _LEAD_FIELDS - {"created_at"}
    if unknown:
        raise TypeError(f"lead_create() got unknown fields: {', '.join(sorted(unknown))}")
    owner = fields.get("owner")
    if by is not None and owner is not None:
        if owner.pk != by.pk:
            check_may_manage_leads(by)  # giving a lead to someone else is assigning it
        if not access_for(owner).owns_leads:
            raise ValidationError(
                {"owner": [f"{owner.get_username()} cannot own leads: choose an active sales rep or manager."]}
            )
    lead = Lead(**fields)
    lead.created_at = _when(fields.get("created_at"), field="created_at")
    lead.stage_entered_at = lead.created_at
    lead.status = LeadStatus.NEW
    _lead_validate(lead)
    _lead_save(lead)
    StageChange.objects.create(
        lead=lead,
        from_status="",
        to_status=LeadStatus.NEW,
        changed_at=lead.created_at,
        changed_by=by,
        actor=actor,
        reason=reason or "Lead created",
    )
    event_record(
        EventType.LEAD_CREATED, actor=made_by if made_by is not None and by is None else Actor.of(by, label=actor),
        lead_id=lead.pk, at=lead.created_at,
        payload={"source": lead.source_id, "campaign": lead.campaign_id, "owner": lead.owner_id},
    )
    return lead


@transaction.atomic
def lead_update(*, lead: Lead, by=None, **fields) -> Lead:
    """Change a lead's contact and attribution details (never its stage: see lead_change_stage)."""
    forbidden = set(fields) & {"status", "stage_entered_at", "lost_reason", "archived_at", "last_touch_at"}
    if forbidden:
        raise TypeError(f"lead_update() cannot change {', '.join(sorted(forbidden))}; use the stage services")
    unknown = set(fields) - _LEAD_FIELDS
    if unknown:
        raise TypeError(f"lead_update() got unknown fields: {', '.join(sorted(unknown))}")
    check_may_work(by, lead)
    for name, value in fields.items():
        setattr(lead, name, value)
    _lead_validate(lead)
    _lead_save(lead)
    # Which fields, not their values: the log keeps no personal data.
    event_record(EventType.LEAD_UPDATED, actor=Actor.of(by), lead_id=lead.pk, payload={"fields": sorted(fields)})
    return lead


def lead_assign_owner(*, leads, owner, by=None) -> int:
    """Give leads to a rep (owner=None puts them back in the unassigned pool). Returns how many changed."""
    check_may_manage_leads(by)
    if owner is not None and not access_for(owner).owns_leads:
        raise ValidationError(
            {"owner": [f"{owner.get_username()} cannot own leads: choose an active sales rep or manager."]}
        )
    targets = _leads_queryset(leads)
    targets = targets.exclude(owner=owner) if owner is not None else targets.filter(owner__isnull=False)
    with transaction.atomic():
        ids = list(targets.select_for_update().order_by("pk").values_list("pk", flat=True))
        now = timezone.now()
        for chunk in batched(ids, 1000):
            if owner is not None:
                # The previous owner's open follow-ups on these leads go with them to the new owner.
                Task.objects.filter(lead__in=chunk, completed_at__isnull=True, assignee=F("lead__owner")).update(assignee=owner)
            Lead.objects.filter(pk__in=chunk).update(owner=owner, updated_at=now)
        events_record(EventType.LEAD_ASSIGNED, actor=Actor.of(by), lead_ids=ids, payload={"owner": getattr(owner, "pk", None)})
        return len(ids)


@transaction.atomic
def lead_claim(*, lead: Lead, by) -> Lead:
    """Take a lead from the unassigned pool. Two reps claiming at once: the first wins, the second is told who."""
    if not access_for(by).owns_leads:
        raise ValidationError({"owner": [f"{by.get_username()} cannot own leads: only active sales reps and managers can."]})
    locked = Lead.objects.select_for_update().only("owner").get(pk=lead.pk)
    if locked.owner_id == by.pk:
        raise ValidationError("You already own this lead.")
    if locked.owner_id is not None:
        raise ValidationError(f"{person_name(locked.owner)} claimed this lead first.")
    lead.owner = by
    Lead.objects.filter(pk=lead.pk).update(owner=by, updated_at=timezone.now())
    event_record(EventType.LEAD_CLAIMED, actor=Actor.of(by), lead_id=lead.pk, payload={"owner": by.pk})
    return lead


def _leads_queryset(leads):
    """Leads given as a queryset (kept lazy: it may be a million rows) or as instances."""
    if hasattr(leads, "values"):
        return Lead.objects.filter(pk__in=leads.values("pk"))
    return Lead.objects.filter(pk__in=[lead.pk for lead in leads])


def lead_archive(*, leads, by=None) -> int:
    """Take leads out of the live set; their email may then be used by a new lead. History is kept."""
    check_may_manage_leads(by)
    now = timezone.now()
    with transaction.atomic():
        live = _leads_queryset(leads).filter(archived_at__isnull=True)
        ids = list(live.select_for_update().order_by("pk").values_list("pk", flat=True))
        for chunk in batched(ids, 1000):
            Lead.objects.filter(pk__in=chunk).update(archived_at=now, updated_at=now)
        events_record(EventType.LEAD_ARCHIVED, actor=Actor.of(by), lead_ids=ids, at=now)
        return len(ids)


def lead_touch(*, lead: Lead, at: datetime) -> None:
    """Record a touch (call, meeting, email) at `at`, keeping last_touch_at the latest one."""
    Lead.objects.filter(pk=lead.pk).filter(Q(last_touch_at__isnull=True) | Q(last_touch_at__lt=at)).update(
        last_touch_at=at
    )
    if lead.last_touch_at is None or lead.last_touch_at < at:
        lead.last_touch_at = at


# --- The pipeline -------------------------------------------------------------------

# The services that move a lead (here and under "Deals and customers") open
# their transaction with `with transaction.atomic():`, not the decorator: mutation
# testing (`make mutation`) skips decorated functions, and these are the ones
# it must reach. The two forms behave the same.


def _check_move(lead: Lead, to_status: str, reason: str):
    if to_status not in LeadStatus.values:
        raise StageMoveError(
            {"to_status": [f"{to_status!r} is not a stage. {pipeline.describe_allowed_moves(lead.status)}"]}
        )
    if to_status == lead.status:
        raise StageMoveError(
            {"to_status": [f"The lead is already {pipeline.label(to_status)}. {pipeline.describe_allowed_moves(lead.status)}"]}
        )
    if not pipeline.is_move_allowed(lead.status, to_status):
        raise StageMoveError(
            {
                "to_status": [
                    f"A lead cannot move from {pipeline.label(lead.status)} to {pipeline.label(to_status)}. "
                    f"{pipeline.describe_allowed_moves(lead.status)}"
                ]
            }
        )
    if to_status in pipeline.ENDED_STATUSES and not reason.strip():
        raise StageMoveError(
            {"reason": [f"Say why the lead is {pipeline.label(to_status).lower()}: a reason is required."]}
        )


def _move(
    *, lead: Lead, to_status: str, by, actor: str, reason: str, at: datetime | None, source: Actor | None = None
) -> StageChange:
    """Move a lead that the caller has locked and checked. Writes the history row."""
    now = _when(at, not_before=lead.stage_entered_at, since="the lead entered its current stage")
    from_status = lead.status
    by_sequence = source is not None and source.kind == ActorKind.SEQUENCE
    change = StageChange.objects.create(
        lead=lead,
        from_status=from_status,
        to_status=to_status,
        changed_at=now,
        changed_by=by,
        actor=actor,
        source_sequence_id=source.ref.get("sequence") if by_sequence else None,
        source_step_id=source.ref.get("step") if by_sequence else None,
        reason=reason.strip(),
        time_in_from_stage=now - lead.stage_entered_at,
    )
    lead.status = to_status
    lead.stage_entered_at = now
    lead.lost_reason = reason.strip() if to_status in pipeline.ENDED_STATUSES else ""
    reached = reached_on_move(to_status, now)
    Lead.objects.filter(pk=lead.pk).update(
        status=lead.status, stage_entered_at=now, lost_reason=lead.lost_reason, updated_at=timezone.now(), **reached
    )
    for field in reached:
        if getattr(lead, field) is None:
            setattr(lead, field, now)
    event_record(
        EventType.STAGE_CHANGED, actor=source or Actor.of(by, label=actor), lead_id=lead.pk, subject=change, at=now,
        payload={"from": from_status, "to": to_status},
    )
    send_after_commit(
        lead_stage_changed, "lead_stage_changed",
        sender=Lead, lead_id=lead.pk, from_status=from_status, to_status=to_status, stage_change_id=change.pk,
    )
    return change


def _lock(lead: Lead) -> Lead:
    """Re-read the lead under a row lock, so two moves of the same lead queue up."""
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    # Keep the caller's instance in step with the database.
    lead.status, lead.stage_entered_at = locked.status, locked.stage_entered_at
    lead.lost_reason, lead.owner_id = locked.lost_reason, locked.owner_id
    return lead


def lead_change_stage(
    *, lead: Lead, to_status: str, by=None, actor: str = "", reason: str = "", at: datetime | None = None,
    source: Actor | None = None,
) -> StageChange:
    """Move a lead to another stage of the pipeline.

    Guarantees: the move is one of `pipeline.ALLOWED_MOVES` from the lead's
    current status (read under a row lock); Lost and Disqualified carry a
    reason; a StageChange row records from, to, when, who (a user or, for
    automation, `actor`, with `source` naming a sequence and step by id), why
    and the time spent in the stage left;
    `leads.signals.lead_stage_changed` is sent once the transaction commits.
    Customer is reached only through `lead_convert_to_customer`, which records
    the won deal.
    """
    with transaction.atomic():
        _lock(lead)
        check_may_move(by, lead, to_status)
        _check_move(lead, to_status, reason)
        if to_status in pipeline.NEEDS_CONVERSION:
            raise StageMoveError(
                {"to_status": ["A lead becomes a customer by converting it, which records the won deal and its value."]}
            )
        return _move(lead=lead, to_status=to_status, by=by, actor=actor, reason=reason, at=at, source=source)


def lead_stage_action(*, lead: Lead, to_status: str, actor: str, reason: str, source: Actor) -> StageChange | None:
    """An automation's move (a sequence step's stage action, a click's): made when the pipeline allows it from
    the lead's stage at this moment (read under the row lock), else nothing (None). Automations move a lead
    along; they never move it back or sideways, and a lead already there stays.

    Raises what `lead_change_stage` raises for a move the pipeline allows but refuses otherwise (Customer
    needs a conversion).
    """
    with transaction.atomic():
        _lock(lead)
        if lead.status == to_status or not pipeline.is_move_allowed(lead.status, to_status):
            return None
        return lead_change_stage(lead=lead, to_status=to_status, actor=actor, reason=reason, source=source)


@dataclasses.dataclass(frozen=True)
class StageMoves:
    moved: int
    refused: list  # (lead, the reasons) for each lead that could not move


def lead_change_stage_many(*, lead_ids, to_status: str, by=None, reason: str = "") -> StageMoves:
    """Move many leads to one stage, each in its own transaction; a lead the pipeline does not let move is listed.

    What holds for every lead (a stage that exists and is reached by a move, a
    reason for Lost and Disqualified) is checked first: then nothing moves.
    """
    errors = {}
    if to_status not in LeadStatus.values or to_status in pipeline.NEEDS_CONVERSION:
        errors["to_status"] = [f"{to_status!r} is not a stage leads can be moved to together."]
    elif to_status in pipeline.ENDED_STATUSES and not reason.strip():
        errors["reason"] = [f"Say why the leads are {pipeline.label(to_status).lower()}: a reason is required."]
    if errors:
        raise StageMoveError(errors)
    moved, refused = 0, []
    for lead in Lead.objects.filter(pk__in=list(lead_ids)).order_by("pk"):
        try:
            lead_change_stage(lead=lead, to_status=to_status, reason=reason, by=by)
        except ValidationError as exc:
            refused.append((lead, exc.messages))
        except PermissionDenied as exc:
            refused.append((lead, [str(exc)]))
        else:
            moved += 1
    return StageMoves(moved=moved, refused=refused)


# --- Activities -------------------------------------------------------------------


def _activity_create(*, lead: Lead, by, occurred_at: datetime | None = None, **fields) -> Activity:
    check_may_work(by, lead)
    occurred_at = _when(occurred_at, field="occurred_at")
    activity = Activity(lead=lead, author=by, occurred_at=occurred_at, **fields)
    try:
        activity.full_clean()
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    activity.save()
    event_record(
        EventType.ACTIVITY_LOGGED, actor=Actor.of(by), lead_id=lead.pk, subject=activity, at=activity.occurred_at,
        payload={"kind": activity.kind},
    )
    if activity.kind in Activity.TOUCHES:
        lead_touch(lead=lead, at=activity.occurred_at)
    send_after_commit(
        activity_logged, "activity_logged",
        sender=Activity, lead_id=lead.pk, activity_id=activity.pk, kind=activity.kind, author_id=getattr(by, "pk", None),
    )
    return activity


@transaction.atomic
def activity_log_call(
    *,
    lead: Lead,
    by,
    direction: str,
    outcome: str,
    duration_seconds: int | None = None,
    body: str = "",
    occurred_at: datetime | None = None,
    follow_up_title: str = "",
    follow_up_due_at: datetime | None = None,
) -> Activity:
    """Log a call. It touches the lead; the first call to a New lead moves it to Contacted.

    With `follow_up_title` (the next step), a task due at `follow_up_due_at` is
    created for the caller in the same transaction: both are saved or neither.
    """
    errors = {}
    if not outcome:
        errors["outcome"] = ["Choose the call's outcome."]
    if not direction:
        errors["direction"] = ["Choose whether the call was outbound or inbound."]
    if duration_seconds is not None and duration_seconds < 0:
        errors["duration_seconds"] = ["A call cannot last a negative time."]
    if follow_up_due_at is not None and not follow_up_title.strip():
        errors["follow_up_title"] = ["Say what the next step is, or clear its due time."]
    if follow_up_title.strip() and follow_up_due_at is None:
        errors["follow_up_due_at"] = ["Choose when the next step is due."]
    elif follow_up_due_at is not None and follow_up_due_at < timezone.now():
        errors["follow_up_due_at"] = ["The next step is due in the past: choose a time from now on."]
    if errors:
        raise ValidationError(errors)
    activity = _activity_create(
        lead=lead,
        by=by,
        kind=Activity.Kind.CALL,
        direction=direction,
        outcome=outcome,
        duration_seconds=duration_seconds,
        body=body,
        occurred_at=occurred_at,
    )
    _lock(lead)
    if lead.status == LeadStatus.NEW:
        # Dated when the call happened (a call logged late still dates the move right).
        moved_at = max(activity.occurred_at, lead.stage_entered_at)
        _move(lead=lead, to_status=LeadStatus.CONTACTED, by=by, actor="", reason="First call logged", at=moved_at)
    if follow_up_title.strip():
        task_create(assignee=by, title=follow_up_title, due_at=follow_up_due_at, lead=lead, by=by)
    return activity


@transaction.atomic
def activity_add_note(*, lead: Lead, by, body: str, occurred_at: datetime | None = None) -> Activity:
    if not body.strip():
        raise ValidationError({"body": ["Write the note before saving it."]})
    return _activity_create(lead=lead, by=by, kind=Activity.Kind.NOTE, body=body, occurred_at=occurred_at)


@transaction.atomic
def activity_log_meeting(
    *, lead: Lead, by, occurred_at: datetime, body: str = "", duration_seconds: int | None = None
) -> Activity:
    if duration_seconds is not None and duration_seconds < 0:
        raise ValidationError({"duration_seconds": ["A meeting cannot last a negative time."]})
    return _activity_create(
        lead=lead,
        by=by,
        kind=Activity.Kind.MEETING,
        occurred_at=occurred_at,
        body=body,
        duration_seconds=duration_seconds,
    )


@transaction.atomic
def activity_log_social(
    *, lead: Lead, by, channel: str, social_action: str, body: str = "", occurred_at: datetime | None = None
) -> Activity:
    """Log a social touch (a LinkedIn message, a comment, a connection accepted): it touches the lead, so a lead
    worked on a social network is not "gone cold", and it shows on the timeline."""
    errors = {}
    if channel not in Activity.Channel.values:
        errors["channel"] = ["Choose the network: " + ", ".join(Activity.Channel.labels) + "."]
    if social_action not in Activity.SocialAction.values:
        errors["social_action"] = ["Choose what happened: " + ", ".join(Activity.SocialAction.labels).lower() + "."]
    if errors:
        raise ValidationError(errors)
    return _activity_create(lead=lead, by=by, kind=Activity.Kind.SOCIAL, channel=channel,
                            social_action=social_action, body=body, occurred_at=occurred_at)


@transaction.atomic
def objection_log(
    *,
    lead: Lead,
    by,
    category: str,
    lead_words: str,
    response: str = "",
    is_resolved: bool = False,
    activity: Activity | None = None,
    at: datetime | None = None,
) -> Objection:
    """Record an objection in the lead's words, with our answer if we gave one (required to mark it resolved)."""
    check_may_work(by, lead)
    if is_resolved and not response.strip():
        raise ValidationError({"response": ["Say how you answered it before marking it resolved."]})
    now = _when(at)
    objection = Objection(
        lead=lead,
        activity=activity,
        category=category,
        stage=lead.status if at is None else _status_at(lead, now),
        lead_words=lead_words.strip(),
        response=response.strip(),
        is_resolved=is_resolved,
        resolved_at=now if is_resolved else None,
        raised_by=by,
        created_at=now,
    )
    try:
        objection.full_clean()
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    if activity is not None and activity.lead_id != lead.pk:
        raise ValidationError({"activity": ["That call or meeting belongs to another lead."]})
    objection.save()
    event_record(
        EventType.OBJECTION_LOGGED, actor=Actor.of(by), lead_id=lead.pk, subject=objection, at=now,
        payload={"category": objection.category, "resolved": objection.is_resolved},
    )
    return objection


def _status_at(lead: Lead, when: datetime) -> str:
    """The stage the lead's history says it was in at `when` ("" if nothing was recorded by then)."""
    return (
        StageChange.objects.filter(lead=lead, changed_at__lte=when).order_by("-changed_at", "-pk")
        .values_list("to_status", flat=True).first()
    ) or ""


@transaction.atomic
def objection_resolve(*, objection: Objection, response: str = "", by=None, at: datetime | None = None) -> Objection:
    check_may_work(by, objection.lead)
    if response.strip():
        objection.response = response.strip()
    if not objection.response:
        raise ValidationError({"response": ["Say how the objection was answered before marking it resolved."]})
    objection.is_resolved = True
    objection.resolved_at = _when(at, not_before=objection.created_at, since="the objection was raised")
    objection.save(update_fields=["response", "is_resolved", "resolved_at"])
    event_record(
        EventType.OBJECTION_RESOLVED, actor=Actor.of(by), lead_id=objection.lead_id, subject=objection,
        at=objection.resolved_at,
    )
    return objection


# --- Tasks -----------------------------------------------------------------------


def _task_field_errors(**fields) -> dict:
    """What is wrong with the task fields given (title, due_at, assignee), by field: the rules of every task write."""
    errors = {}
    if "title" in fields and not (fields["title"] or "").strip():
        errors["title"] = ["Say what has to be done."]
    if "due_at" in fields and fields["due_at"] is None:
        errors["due_at"] = ["Choose when the task is due."]
    if "assignee" in fields and (fields["assignee"] is None or not fields["assignee"].is_active):
        errors["assignee"] = ["Choose an active user to do the task."]
    return errors


def task_create(
    *,
    assignee,
    title: str,
    due_at: datetime,
    lead: Lead | None = None,
    notes: str = "",
    by=None,
    allow_past_due: bool = False,
    at: datetime | None = None,
) -> Task:
    """Schedule a follow-up. A due time in the past is refused unless the caller records history
    (`allow_past_due`, with `at` the time the task was created)."""
    check_may_give_task(by, assignee=assignee, lead=lead)
    errors = _task_field_errors(title=title, due_at=due_at, assignee=assignee)
    if "due_at" not in errors and not allow_past_due and due_at < timezone.now():
        errors["due_at"] = ["The due time is in the past: choose a time from now on."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        task = Task.objects.create(
            lead=lead,
            assignee=assignee,
            title=title.strip(),
            notes=notes,
            due_at=due_at,
            created_by=by,
            created_at=_when(at),
        )
        event_record(
            EventType.TASK_CREATED, actor=Actor.of(by), lead_id=getattr(lead, "pk", None), subject=task, at=task.created_at,
            payload={"assignee": assignee.pk, "due_at": due_at.isoformat()},
        )
        return task


def task_snooze(*, task: Task, until: datetime, by=None) -> Task:
    """Move an open task's due time to later (`until`, from now on). The event keeps the due time before, for
    `task_snooze_undo`."""
    check_may_change_task(by, task)
    if task.completed_at is not None:
        raise ValidationError("This task is already done: there is nothing to snooze.")
    if until is None or until <= timezone.now():
        raise ValidationError({"due_at": ["Snooze to a time from now on."]})
    with transaction.atomic():
        before = Task.objects.select_for_update().filter(pk=task.pk, completed_at__isnull=True).values_list(
            "due_at", flat=True).first()
        if before is not None:
            Task.objects.filter(pk=task.pk).update(due_at=until)
            event_record(
                EventType.TASK_SNOOZED, actor=Actor.of(by), lead_id=task.lead_id, subject=task,
                payload={"due_at": until.isoformat(), "from": before.isoformat()},
            )
    task.due_at = until
    return task


def task_complete(*, task: Task, by=None, at: datetime | None = None) -> Task:
    """Mark a task done (once: completing it again keeps the first time)."""
    check_may_change_task(by, task)
    if task.completed_at is None:
        task.completed_at = at or timezone.now()
        with transaction.atomic():
            if Task.objects.filter(pk=task.pk, completed_at__isnull=True).update(completed_at=task.completed_at):
                event_record(EventType.TASK_DONE, actor=Actor.of(by), lead_id=task.lead_id, subject=task, at=task.completed_at)
    return task


# How long after Done or Snooze the message's Undo still works: long enough to notice a wrong click, short
# enough that an undo never reverses what has been built on since.
TASK_UNDO_WINDOW = timedelta(minutes=10)


def _too_late_to_undo(what: str, since: datetime) -> ValidationError:
    minutes = int(TASK_UNDO_WINDOW.total_seconds() // 60)
    return ValidationError(
        f"The task was {what} more than {minutes} minutes ago ({timezone.localtime(since):%H:%M}): "
        "it is too late to undo; change the task instead."
    )


def task_reopen(*, task: Task, by=None) -> Task:
    """Undo a Done: the task is open again, due when it was, if it was done within TASK_UNDO_WINDOW.

    Only who may change the task (its assignee, a manager). Recorded as task.reopened.
    """
    check_may_change_task(by, task)
    with transaction.atomic():
        done_at = Task.objects.select_for_update().filter(pk=task.pk).values_list("completed_at", flat=True).get()
        if done_at is None:
            raise ValidationError("This task is not done: there is nothing to undo.")
        if done_at < timezone.now() - TASK_UNDO_WINDOW:
            raise _too_late_to_undo("done", done_at)
        Task.objects.filter(pk=task.pk).update(completed_at=None)
        event_record(EventType.TASK_REOPENED, actor=Actor.of(by), lead_id=task.lead_id, subject=task,
                     payload={"completed_at": done_at.isoformat()})
    task.completed_at = None
    return task


def task_snooze_undo(*, task: Task, snoozed_to: datetime, by=None) -> Task:
    """Undo the snooze that moved the task to `snoozed_to`: it is due again when it was before (from the
    task.snoozed event), if that was within TASK_UNDO_WINDOW and the task has not changed since.

    Only who may change the task (its assignee, a manager). Recorded as task.snooze_undone.
    """
    check_may_change_task(by, task)
    with transaction.atomic():
        stored = Task.objects.select_for_update().only("due_at", "completed_at").get(pk=task.pk)
        if stored.completed_at is not None:
            raise ValidationError("This task is done since: there is no snooze to undo.")
        if stored.due_at != snoozed_to:
            raise ValidationError("The task's due time has changed since that snooze: there is nothing to undo.")
        # The task's own events are read by its lead (an index), or for a task without one among the events
        # of no lead; the one wanted is the newest.
        snooze = (
            DomainEvent.objects.filter(lead_id=task.lead_id, type=EventType.TASK_SNOOZED, subject_type="task",
                                       subject_id=task.pk)
            .order_by("-id").only("recorded_at", "payload").first()
        )
        if snooze is None or "from" not in snooze.payload or datetime.fromisoformat(snooze.payload["due_at"]) != snoozed_to:
            raise ValidationError("This task was not snoozed to that time: there is nothing to undo.")
        if snooze.recorded_at < timezone.now() - TASK_UNDO_WINDOW:
            raise _too_late_to_undo("snoozed", snooze.recorded_at)
        before = datetime.fromisoformat(snooze.payload["from"])
        Task.objects.filter(pk=task.pk).update(due_at=before)
        event_record(EventType.TASK_SNOOZE_UNDONE, actor=Actor.of(by), lead_id=task.lead_id, subject=task,
                     payload={"due_at": before.isoformat(), "from": snoozed_to.isoformat()})
    task.due_at = before
    return task


_TASK_EDITABLE = frozenset({"lead", "title", "assignee", "due_at", "completed_at", "notes"})


def task_update(*, task: Task, by=None, **fields) -> Task:
    """Change a task (the admin's edit form, the API). Marking it done here is the same as `task_complete`.

    Only its assignee or a manager changes it; giving it to someone else is a manager's call.
    """
    unknown = set(fields) - _TASK_EDITABLE
    if unknown:
        raise TypeError(f"task_update() got unknown fields: {', '.join(sorted(unknown))}")
    check_may_change_task(by, task)
    if "lead" in fields or "assignee" in fields:
        # Moving it to another lead, or giving it to someone else, is scheduling it anew.
        check_may_give_task(by, assignee=fields.get("assignee"), lead=fields.get("lead"))
    errors = _task_field_errors(**{name: fields[name] for name in ("title", "due_at", "assignee") if name in fields})
    if errors:
        raise ValidationError(errors)
    if "title" in fields:
        fields["title"] = fields["title"].strip()
    with transaction.atomic():
        was_done = Task.objects.select_for_update().filter(pk=task.pk).values_list("completed_at", flat=True).get()
        for name, value in fields.items():
            setattr(task, name, value)
        task.save(update_fields=sorted(fields) or None)
        reopened = "completed_at" in fields and task.completed_at is None and was_done is not None
        if set(fields) - {"completed_at"} or reopened:
            event_record(EventType.TASK_UPDATED, actor=Actor.of(by), lead_id=task.lead_id, subject=task,
                         payload={"fields": sorted(fields)})
        if task.completed_at is not None and was_done is None:
            event_record(EventType.TASK_DONE, actor=Actor.of(by), lead_id=task.lead_id, subject=task, at=task.completed_at)
    return task


# --- Deals and customers ----------------------------------------------------------


def _clean_money(value, field: str) -> Decimal:
    if value is None or value == "":
        raise ValidationError({field: ["Enter the deal value (0 or more)."]})
    try:
        amount = amount_in_digits(value)  # never "1e3", "NaN" or "Infinity": see leads.money
    except ValueError as exc:
        raise ValidationError({field: [str(exc)]}) from None
    if amount < 0:
        raise ValidationError({field: ["A deal value cannot be negative."]})
    if amount.as_tuple().exponent < -2:
        raise ValidationError({field: ["Use at most two decimal places."]})
    limit = Decimal("1e10")  # pragma: no mutate: its mutant, "1E10", is the same number
    if amount >= limit:
        raise ValidationError({field: ["That amount is too large: at most 9,999,999,999.99."]})
    return amount


def _clean_currency(currency: str | None) -> str:
    currency = (currency or settings.CRM_DEFAULT_CURRENCY).strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError({"currency": ["Use a three-letter ISO 4217 currency code, such as EUR or USD."]})
    return currency


def _deal_created(deal: Deal, *, by) -> None:
    event_record(
        EventType.DEAL_CREATED, actor=Actor.of(by), lead_id=deal.lead_id, subject=deal, at=deal.created_at,
        payload={"value": str(deal.value), "currency": deal.currency},
    )


def deal_open(
    *,
    lead: Lead,
    value,
    currency: str | None = None,
    product: str = "",
    expected_close_on=None,
    next_step: str = "",
    by=None,
    at: datetime | None = None,
) -> Deal:
    """Open a deal (an opportunity) for a lead and move the lead to Opportunity if it was before it.

    A customer may get further deals (upsell) without changing stage; a lost or
    disqualified lead must be reopened first.
    """
    with transaction.atomic():
        amount = _clean_money(value, "value")
        currency = _clean_currency(currency)
        _lock(lead)
        check_may_work(by, lead)
        if lead.status in pipeline.ENDED_STATUSES:
            raise StageMoveError(
                {"lead": [f"The lead is {pipeline.label(lead.status).lower()}: reopen it before opening a deal."]}
            )
        moves = lead.status in pipeline.OPEN_STATUSES and lead.status != LeadStatus.OPPORTUNITY
        # The deal is opened when the lead moves to Opportunity: not before it entered the stage it leaves.
        created_at = _when(at, not_before=lead.stage_entered_at if moves else None,
                           since="the lead entered its current stage")
        deal = Deal.objects.create(
            lead=lead,
            created_at=created_at,
            owner=lead.owner or by,
            product=product,
            value=amount,
            currency=currency,
            expected_close_on=expected_close_on,
            next_step=(next_step or "").strip(),
        )
        _deal_created(deal, by=by)
        deal_stage_start(deal=deal, by=by)
        if moves:
            _move(
                lead=lead,
                to_status=LeadStatus.OPPORTUNITY,
                by=by,
                actor="",
                reason=f"Deal opened: {deal}",
                at=deal.created_at,
            )
        return deal


_DEAL_TERMS = frozenset({"lead", "value", "currency", "product", "created_at", "owner", "expected_close_on",
                         "next_step"})


def deal_update_check(stored: Deal, **fields) -> None:
    """The rules of `deal_update` for a deal as stored (forms call it to show the refusal by its field)."""
    fixed = set(fields) - {"expected_close_on"}
    if stored.status != Deal.Status.OPEN and fixed:
        raise ValidationError(
            f"The deal is already {stored.get_status_display().lower()}: its {', '.join(sorted(fixed))} stay as recorded."
        )
    new_lead = fields.get("lead")
    if new_lead is not None and new_lead.pk != stored.lead_id and new_lead.status in pipeline.ENDED_STATUSES:
        raise ValidationError(
            {"lead": [f"That lead is {pipeline.label(new_lead.status).lower()}: reopen it before giving it a deal."]}
        )


def deal_update(*, deal: Deal, by=None, **fields) -> Deal:
    """Change an open deal's terms. A won or lost deal is history: only its expected close date may change.

    Only who may work the deal's lead (its owner, a manager) changes it.
    """
    unknown = set(fields) - _DEAL_TERMS
    if unknown:
        raise TypeError(f"deal_update() got unknown fields: {', '.join(sorted(unknown))}")
    if "value" in fields:
        fields["value"] = _clean_money(fields["value"], "value")
    if "currency" in fields:
        fields["currency"] = _clean_currency(fields["currency"])
    with transaction.atomic():
        stored = Deal.objects.select_for_update().select_related("lead").get(pk=deal.pk)
        check_may_work(by, stored.lead)
        deal_update_check(stored, **fields)
        for name, value in fields.items():
            setattr(deal, name, value)
        if fields:
            deal.save(update_fields=sorted(fields))
            event_record(EventType.DEAL_UPDATED, actor=Actor.of(by), lead_id=deal.lead_id, subject=deal,
                         payload={"fields": sorted(fields)})
    return deal


def _customer_for(lead: Lead, now) -> Customer:
    if lead.company_id:
        customer, _ = Customer.objects.get_or_create(
            company_id=lead.company_id,
            defaults={"name": lead.company.name, "primary_lead": lead, "became_customer_at": now},
        )
        return customer
    customer, _ = Customer.objects.get_or_create(
        company=None,
        primary_lead=lead,
        defaults={"name": str(lead), "became_customer_at": now},
    )
    return customer


def lead_convert_to_customer(
    *,
    lead: Lead,
    deal_value,
    currency: str | None = None,
    product: str = "",
    expected_close_on=None,
    by=None,
    at: datetime | None = None,
) -> Deal:
    """Convert a lead into a customer with a won deal.

    Guarantees: the value is present and not negative; the lead is open and
    may move to Customer; the lead's company (or, without one, the person)
    becomes a Customer, reusing an existing one; the lead's open deal is won
    (the latest, if several), or a won deal is created; the lead moves to
    Customer with a StageChange, dated not before the lead entered its stage nor
    before the deal won was opened. On any error nothing is written.
    """
    with transaction.atomic():
        amount = _clean_money(deal_value, "deal_value")
        currency = _clean_currency(currency)
        _lock(lead)
        check_may_work(by, lead)
        if lead.status == LeadStatus.CUSTOMER:
            raise StageMoveError({"lead": ["This lead is already a customer."]})
        _check_move(
            lead,
            LeadStatus.CUSTOMER,
            # The reason is read only for moves that end a lead: any value is the same here (not mutated).
            reason="",  # pragma: no mutate
        )
        deal = lead.deals.select_for_update().filter(status=Deal.Status.OPEN).order_by("-created_at", "-id").first()
        # Won when the lead moves to Customer: not before it entered its stage, nor before the deal was opened.
        if deal is not None and deal.created_at > lead.stage_entered_at:
            now = _when(at, not_before=deal.created_at, since="the deal was opened")
        else:
            now = _when(at, not_before=lead.stage_entered_at, since="the lead entered its current stage")
        customer = _customer_for(lead, now)
        if deal is None:
            deal = Deal(lead=lead, owner=lead.owner or by, created_at=now)
        deal.customer = customer
        deal.value = amount
        deal.currency = currency
        if product:
            deal.product = product
        if expected_close_on:
            deal.expected_close_on = expected_close_on
        deal.status = Deal.Status.WON
        deal.closed_at = now
        created = deal.pk is None
        deal.save()
        if created:
            _deal_created(deal, by=by)
        event_record(
            EventType.DEAL_WON, actor=Actor.of(by), lead_id=lead.pk, subject=deal, at=now,
            payload={"value": str(amount), "currency": currency, "customer": customer.pk},
        )
        _move(
            lead=lead,
            to_status=LeadStatus.CUSTOMER,
            by=by,
            actor="",
            reason=f"Converted: deal #{deal.pk} won, {money_format(amount, currency)}",
            at=now,
        )
        return deal


def deal_mark_lost(*, deal: Deal, reason: str, by=None, at: datetime | None = None) -> Deal:
    """Close an open deal as lost. When it was the lead's last open deal, the lead is lost too.

    The deal passed in (and its `lead`, if loaded) are updated in place.
    """
    with transaction.atomic():
        if not reason.strip():
            raise ValidationError({"lost_reason": ["Say why the deal was lost."]})
        # Locks in one order everywhere: the lead, then its deals.
        lead = _lock(deal.lead)
        check_may_work(by, lead)
        stored = Deal.objects.select_for_update().get(pk=deal.pk)
        if stored.status != Deal.Status.OPEN:
            raise ValidationError({"status": [f"The deal is already {stored.get_status_display().lower()}."]})
        deal.status = Deal.Status.LOST
        deal.closed_at = _when(at, not_before=stored.created_at, since="the deal was opened")
        deal.lost_reason = reason.strip()
        Deal.objects.filter(pk=deal.pk).update(status=deal.status, closed_at=deal.closed_at, lost_reason=deal.lost_reason)
        event_record(EventType.DEAL_LOST, actor=Actor.of(by), lead_id=lead.pk, subject=deal, at=deal.closed_at)
        if lead.status == LeadStatus.OPPORTUNITY and not lead.deals.filter(status=Deal.Status.OPEN).exists():
            moved_at = max(deal.closed_at, lead.stage_entered_at)
            _move(lead=lead, to_status=LeadStatus.LOST, by=by, actor="", reason=f"Deal lost: {reason.strip()}", at=moved_at)
        return deal


def company_for_name(name: str) -> Company | None:
    """The company called `name` (any case), made when there is none yet; None for a blank name."""
    name = (name or "").strip()[:200]
    if not name:
        return None
    company = Company.objects.filter(name__iexact=name).order_by("pk").first()
    if company is None:
        company = Company(name=name)
        company.full_clean()
        company.save()
    return company


def company_domain_normalize(domain: str) -> str:
    """A web domain as companies store it (the API, the admin and imports alike): lower-cased, without scheme,
    "www.", path or port ("https://www.Example.com/about" is "example.com"), so that two spellings of one
    domain are the same company."""
    domain = (domain or "").strip().lower()
    domain = domain.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    domain = domain.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    return domain.removeprefix("www.")


def company_check(*, name: str | None = None, domain: str | None = None, exclude_pk=None) -> None:
    """The duplicate rule of every company write: one company per name (any case) and per web domain.

    A second row for the same account would split its leads, deals and customer between two records;
    the error names the one that exists, to use instead. Only the values given are checked, so an
    edit of another field never trips over duplicates made before the rule.
    """
    others = Company.objects.exclude(pk=exclude_pk) if exclude_pk is not None else Company.objects.all()
    errors = {}
    if name is not None and name.strip():
        same = others.filter(name__iexact=name.strip()).order_by("pk").first()
        if same is not None:
            errors["name"] = [f"A company is already called {same.name} (company #{same.pk}): use that one."]
    if domain:
        same = others.filter(domain__iexact=domain).order_by("pk").first()
        if same is not None:
            errors["domain"] = [f"{same.name} (company #{same.pk}) already has the domain {domain}: use that one."]
    if errors:
        raise ValidationError(errors)


_COMPANY_FIELDS = frozenset({"name", "domain", "industry", "size", "country"})


def _company_clean(company: Company, fields: dict) -> None:
    unknown = set(fields) - _COMPANY_FIELDS
    if unknown:
        raise TypeError(f"unknown company fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(company, name, value.strip() if isinstance(value, str) else value)
    if "domain" in fields:
        company.domain = company_domain_normalize(company.domain)
    try:
        company.full_clean()
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    company_check(
        name=company.name if "name" in fields else None,
        domain=company.domain if "domain" in fields else None,
        exclude_pk=company.pk,
    )


@transaction.atomic
def company_create(*, by=None, **fields) -> Company:
    """Create a company (an account). Guarantees: a name; no other company of that name (any case) or web
    domain (stored bare: "example.com"); only sales reps and managers create them."""
    check_may_change_companies(by)
    company = Company()
    _company_clean(company, {"name": "", **fields})
    company.save()
    event_record(EventType.COMPANY_CREATED, actor=Actor.of(by), subject=company, at=company.created_at,
                 payload={"fields": sorted(fields)})
    return company


@transaction.atomic
def company_update(*, company: Company, by=None, **fields) -> Company:
    """Change a company (with the duplicate rule of `company_check`); its leads' search text follows a rename."""
    check_may_change_companies(by)
    old_name = Company.objects.filter(pk=company.pk).values_list("name", flat=True).first() if company.pk else None
    _company_clean(company, fields)
    company.save()
    event_record(EventType.COMPANY_UPDATED, actor=Actor.of(by), subject=company, payload={"fields": sorted(fields)})
    if old_name is not None and old_name != company.name:
        for lead in Lead.objects.filter(company=company).select_related("company").iterator(chunk_size=2000):
            Lead.objects.filter(pk=lead.pk).update(search_text=lead.build_search_text())
    return company


# --- Form submissions ---------------------------------------------------------------


def form_submission_record(
    *, lead: Lead, form_name: str, resource: Resource | None = None, page_url: str = "", data: dict | None = None,
    at: datetime | None = None, form_slug: str = "", visitor_id: str = "", touch: dict | None = None,
    consent: dict | None = None, source: Actor | None = None, payload: dict | None = None, capture_id=None,
) -> FormSubmission:
    """Record a form the lead sent (a download, a sign-up). Sequences can wait for a given resource.

    `touch`: the visit it came from (Touch.TOUCH_FIELDS); `consent`: {"text", "version", "given"} as shown and
    answered; `payload`: more for the form.submitted event (what follows a capture reads it there).
    """
    if not form_name.strip():
        raise ValidationError({"form_name": ["Name the form (e.g. “Pricing guide download”)."]})
    consent = consent or {}
    submission = FormSubmission(
        lead=lead, resource=resource, form_name=form_name.strip(), page_url=page_url[:1000], data=data or {},
        submitted_at=_when(at), form_slug=form_slug, visitor_id=visitor_id,
        consent_text=consent.get("text", ""), consent_version=consent.get("version", ""),
        consent_given=bool(consent.get("given")), capture_id=capture_id,
        **{field: value for field, value in (touch or {}).items() if field in Touch.TOUCH_FIELDS},
    )
    try:
        submission.full_clean()
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    with transaction.atomic():
        submission.save()
        event_record(
            EventType.FORM_SUBMITTED, actor=source or Actor(ActorKind.FORM), lead_id=lead.pk,
            subject=submission, at=submission.submitted_at,
            payload={"resource": submission.resource_id, **({"form": form_slug} if form_slug else {}), **(payload or {})},
        )
    return submission


def lead_touch_record(*, lead: Lead, touch: dict, at: datetime) -> None:
    """The visit behind a capture: the lead's first touch if it has none yet, and always its last touch."""
    fields = {field: value for field, value in touch.items() if field in Touch.TOUCH_FIELDS}
    fields.setdefault("touched_at", at)
    with transaction.atomic():
        LeadTouch.objects.get_or_create(lead=lead, kind=LeadTouch.Kind.FIRST, defaults=fields)
        LeadTouch.objects.update_or_create(lead=lead, kind=LeadTouch.Kind.LAST, defaults=fields)


def lead_consent_record(*, lead: Lead, text: str, source_label: str, at: datetime) -> Lead:
    """The lead agreed to `text` (the exact wording shown) at `at`, where `source_label` says (form and version)."""
    if not text.strip():
        raise ValidationError({"consent_text": ["Keep the exact wording the person agreed to."]})
    Lead.objects.filter(pk=lead.pk).update(
        consent_given_at=at, consent_text=text, consent_source=source_label[:200], updated_at=timezone.now()
    )
    lead.consent_given_at, lead.consent_text, lead.consent_source = at, text, source_label[:200]
    return lead


def conversions_attach(*, visitor_id: str, lead: Lead) -> int:
    """The visitor became `lead`: its conversions made before (anonymous) are the lead's. Returns how many."""
    if not visitor_id:
        return 0
    return Conversion.objects.filter(visitor_id=visitor_id, lead__isnull=True).update(lead=lead)


def conversion_record(
    *, kind: str, lead: Lead | None = None, visitor_id: str = "", submission: FormSubmission | None = None,
    resource: Resource | None = None, value: Decimal | None = None, at: datetime | None = None,
    source: Actor | None = None, by=None,
) -> Conversion:
    """Record a conversion of the kind with slug `kind` (micro or macro) on a lead, or on an anonymous visitor.

    `by`: a user recording it by hand (the API): they must be the lead's owner, a marketer or a manager, and
    the event names them. `at` (`occurred_at`) cannot be in the future.
    """
    if by is not None:
        if lead is None:
            raise ValidationError({"lead": ["Name the lead the conversion is on."]})
        check_may_record_conversions(by, lead)
    conversion_kind = ConversionKind.objects.filter(slug=kind).first()
    if conversion_kind is None:
        raise ValidationError({"kind": [f"There is no conversion kind {kind!r}: add it in the admin first."]})
    if lead is None and not visitor_id:
        raise ValidationError("A conversion belongs to a lead or to a visitor.")
    with transaction.atomic():
        conversion = Conversion.objects.create(
            kind=conversion_kind, lead=lead, visitor_id=visitor_id, submission=submission, resource=resource,
            value=value, occurred_at=_when(at, field="occurred_at"),
        )
        actor = Actor.of(by) if by is not None else source or Actor(ActorKind.SYSTEM)
        event_record(
            EventType.CONVERSION_RECORDED, actor=actor, lead_id=getattr(lead, "pk", None), subject=conversion, at=conversion.occurred_at,
            payload={"kind": kind, "macro": conversion_kind.is_macro, "resource": getattr(resource, "pk", None)},
        )
    return conversion
