"""Two lead rows of one person made one, and the merge undone: `lead_merge`, `lead_merge_undo`.

Callers reach them through `leads.services`, like every other write. What a
merge does, and what its undo does not take back, is in each docstring; the
`LeadMerge` row records it by ids, so the undo moves exactly those rows.

The other apps' rows that point at a lead (nurturing's enrollments and email
events, ...) are moved by those apps, on the `leads.signals.leads_merging` and
`leads_unmerging` signals sent inside the transaction: this app does not know
their tables.
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from core.batches import batched
from core.events import Actor, EventType, event_record
from core.models import DomainEvent
from core.people import person_name
from core.policy import access_for, check_may_merge_leads

from .models import (
    Activity,
    Conversion,
    Customer,
    Deal,
    FormSubmission,
    Lead,
    LeadMerge,
    LeadTag,
    LeadTouch,
    Objection,
    StageChange,
    Task,
)
from .pipeline import LeadStatus
from .reach import refresh_reached
from .selectors import lead_duplicate_of
from .signals import leads_merging, leads_unmerging

# The lead's own rows: each follows the person to the kept lead.
_LEAD_ROWS = (StageChange, Activity, Objection, Task, Deal, FormSubmission, Conversion)

# The kept lead takes the merged lead's value of these where its own is blank; a value it has is never overwritten.
_FILLED = (
    "first_name", "last_name", "email", "phone", "title", "company", "source", "campaign", "persona",
    "utm_medium", "utm_content", "utm_term", "timezone", "owner",
)
# Consent goes whole (when, the wording, where), and only to a lead with no consent of its own.
_CONSENT = ("consent_given_at", "consent_text", "consent_source")


def _attname(name: str) -> str:
    return Lead._meta.get_field(name).attname


def _stored(value):
    """A field's value as the merge record keeps it (JSON): ids for foreign keys, ISO text for times."""
    return value.isoformat() if isinstance(value, datetime) else value


def _loaded(name: str, value):
    if value is not None and isinstance(Lead._meta.get_field(name), models.DateTimeField):
        return parse_datetime(value)
    return value


def _lock_pair(first_pk: int, second_pk: int) -> tuple[Lead, Lead]:
    """Both leads, re-read under row locks taken in id order: two merges of the same pair queue up, never deadlock."""
    rows = {lead.pk: lead for lead in Lead.objects.select_for_update().filter(pk__in=[first_pk, second_pk]).order_by("pk")}
    missing = {first_pk, second_pk} - set(rows)
    if missing:
        raise Lead.DoesNotExist(f"No lead #{min(missing)}.")
    return rows[first_pk], rows[second_pk]


def _move(model, ids: list[int], *, field: str, to_id: int, only_from: int | None = None) -> None:
    """Point the rows `ids` of `model` at lead `to_id` (those still at `only_from`, when given)."""
    column = f"{field}_id"
    for chunk in batched(ids, 1000):
        rows = model.objects.filter(pk__in=chunk)
        if only_from is not None:
            rows = rows.filter(**{column: only_from})
        rows.update(**{column: to_id})


def _ids_the_kept_lead_lacks(model, *, key: str, gone_id: int, kept_id: int) -> list[int]:
    """The merged lead's rows of `model` whose `key` (a touch's kind, a tag) no row of the kept lead has."""
    theirs = model.objects.filter(lead_id=kept_id).values(key)
    return list(model.objects.filter(lead_id=gone_id).exclude(**{f"{key}__in": theirs}).order_by("pk")
                .values_list("pk", flat=True))


def _ids_of(model, *, field: str, lead_id: int) -> list[int]:
    return list(model.objects.filter(**{f"{field}_id": lead_id}).order_by("pk").values_list("pk", flat=True))


def _is_manager(user) -> bool:
    return user is not None and access_for(user).is_manager


def _standing_merge_of(lead: Lead) -> LeadMerge | None:
    """The merge that archived this lead, while it stands."""
    return LeadMerge.objects.filter(merged=lead, undone_at__isnull=True).first()


def _not_live(lead: Lead) -> str | None:
    if lead.erased_at is not None:
        return f"Lead #{lead.pk} was erased."
    if lead.archived_at is not None:
        standing = _standing_merge_of(lead)
        if standing is not None:
            return f"Lead #{lead.pk} is already merged into lead #{standing.keep_id}."
        return f"Lead #{lead.pk} is archived."
    return None


def _owner_label(lead: Lead) -> str:
    return person_name(lead.owner)


def _merge_refusal(keep: Lead, merge: Lead, by) -> dict:
    errors = {}
    for field, lead in (("keep", keep), ("merge", merge)):
        problem = _not_live(lead)
        if problem:
            errors[field] = [f"{problem} Only two live leads can be merged."]
    if errors:
        return errors
    # Only managers merge (the policy), and a manager may merge two reps' leads: the kept lead keeps its
    # owner. The system (a dedupe job, by=None) may not decide between two reps.
    if keep.owner_id and merge.owner_id and keep.owner_id != merge.owner_id and not _is_manager(by):
        errors["merge"] = [
            f"The leads belong to two reps ({_owner_label(keep)} and {_owner_label(merge)}): "
            "a manager merges them, choosing whose lead it stays."
        ]
    if merge.status == LeadStatus.CUSTOMER and keep.status != LeadStatus.CUSTOMER:
        errors["keep"] = [
            f"Lead #{merge.pk} is a customer and lead #{keep.pk} is not: keep the customer, "
            "so the won deals stay with a customer's lead."
        ]
    people = Customer.objects.filter(company__isnull=True, primary_lead__in=[keep.pk, merge.pk])
    if people.count() == 2:
        errors["merge"] = [
            "Both leads are customers in their own name: one person would be two customers. "
            "The leads stay apart."
        ]
    return errors


def _fill(keep: Lead, merge: Lead) -> dict:
    """Give `keep` (in memory) the merged lead's values where its own are blank; returns {field: keep's value before}."""
    filled = {}
    for name in _FILLED:
        attname = _attname(name)
        if getattr(keep, attname) in (None, "") and getattr(merge, attname) not in (None, ""):
            filled[name] = _stored(getattr(keep, attname))
            setattr(keep, attname, getattr(merge, attname))
    if keep.consent_given_at is None and merge.consent_given_at is not None:
        for name in _CONSENT:
            filled[name] = _stored(getattr(keep, name))
            setattr(keep, name, getattr(merge, name))
    # The last touch is the later of the two: the person was touched then, whichever row recorded it.
    if merge.last_touch_at is not None and (keep.last_touch_at is None or keep.last_touch_at < merge.last_touch_at):
        filled["last_touch_at"] = _stored(keep.last_touch_at)
        keep.last_touch_at = merge.last_touch_at
    return filled


def _save_fields(lead: Lead, names, now) -> None:
    lead.search_text = lead.build_search_text()
    values = {_attname(name): getattr(lead, _attname(name)) for name in names}
    Lead.objects.filter(pk=lead.pk).update(**values, search_text=lead.search_text, updated_at=now)


def lead_merge(*, keep: Lead, merge: Lead, by) -> LeadMerge:
    """Make two lead rows of one person one: `merge`'s history moves to `keep`, and `merge` is archived.

    Guarantees, in one transaction with both leads locked (in id order):
    - only a manager (or the system, `by=None`) merges; two live leads, not
      erased, not the same; a customer is never merged into a lead that is not
      one; two customers in their own name are not merged; the system does
      not merge two reps' leads (a manager may: the kept lead keeps its owner,
      and the merged lead's owner's open tasks on it go to that owner);
    - every row that points at `merge` points at `keep`: stage changes,
      activities, objections, tasks, deals, customers (as first contact), form
      submissions, the tags `keep` lacks, and through `leads.signals.leads_merging` the other apps'
      rows; then `merge`'s events in the log, with their ids recorded;
    - `keep`'s blank fields take `merge`'s values (contact, company,
      attribution, time zone, owner; consent as a whole when `keep` has none;
      the later last touch); a value `keep` has is never overwritten;
    - `keep`'s status stays as it is (a stage moves only through the stage
      service; the merged lead's stage history joins `keep`'s);
    - `merge` is archived (its address may then be `keep`'s), the `LeadMerge`
      row records what moved and what was filled, and a `lead.merged` event is
      appended on `keep`.
    Lead exports keep the ids they exported: they record what left the CRM then.
    """
    check_may_merge_leads(by)
    if keep.pk == merge.pk:
        raise ValidationError({"merge": ["A lead cannot be merged into itself: choose two different leads."]})
    with transaction.atomic():
        kept, gone = _lock_pair(keep.pk, merge.pk)
        errors = _merge_refusal(kept, gone, by)
        if errors:
            raise ValidationError(errors)
        now = timezone.now()
        # Archived first, so its address no longer counts among the live leads' and the kept lead may take it.
        Lead.objects.filter(pk=gone.pk).update(archived_at=now, updated_at=now)
        gone.archived_at = now
        filled = _fill(kept, gone)
        if filled:
            _save_fields(kept, filled, now)

        moved = {}
        for model in _LEAD_ROWS:
            ids = _ids_of(model, field="lead", lead_id=gone.pk)
            _move(model, ids, field="lead", to_id=kept.pk)
            if ids:
                moved[model._meta.label_lower] = ids
        open_deals = list(
            Deal.objects.filter(pk__in=moved.get("leads.deal", []), status=Deal.Status.OPEN).values_list("pk", flat=True)
        )
        if open_deals:
            moved["leads.deal.open"] = open_deals
        # A touch of a kind the kept lead has none of (its first, its last) moves; the kept lead's own stay. So does
        # each tag the kept lead lacks, with who added it and when (a tag both have stays on the merged lead).
        for model, key in ((LeadTouch, "kind"), (LeadTag, "tag_id")):
            ids = _ids_the_kept_lead_lacks(model, key=key, gone_id=gone.pk, kept_id=kept.pk)
            _move(model, ids, field="lead", to_id=kept.pk)
            if ids:
                moved[model._meta.label_lower] = ids
        customers = _ids_of(Customer, field="primary_lead", lead_id=gone.pk)
        _move(Customer, customers, field="primary_lead", to_id=kept.pk)
        if customers:
            moved["leads.customer"] = customers
        if gone.owner_id and kept.owner_id and kept.owner_id != gone.owner_id:
            # As when a lead changes hands (lead_assign_owner): open follow-ups go to whoever works it now.
            handed = list(
                Task.objects.filter(pk__in=moved.get("leads.task", []), completed_at__isnull=True, assignee_id=gone.owner_id)
                .values_list("pk", flat=True)
            )
            Task.objects.filter(pk__in=handed).update(assignee_id=kept.owner_id)
            if handed:
                moved["leads.task.assignee"] = handed

        # The other apps move their rows (and may write events on either lead, which then move below).
        leads_merging.send(sender=Lead, keep=kept, merge=gone, by=by, moved=moved)

        refresh_reached([kept.pk, gone.pk])
        events_moved = _ids_of(DomainEvent, field="lead", lead_id=gone.pk)
        _move(DomainEvent, events_moved, field="lead", to_id=kept.pk)
        record = LeadMerge.objects.create(
            keep=kept, merged=gone, merged_by=by, merged_at=now, moved=moved, filled=filled, events_moved=events_moved,
        )
        event_record(
            EventType.LEAD_MERGED, actor=Actor.of(by), lead_id=kept.pk, subject=record, at=now,
            payload={"merged": gone.pk, "filled": sorted(filled)},
        )
    keep.refresh_from_db()
    merge.refresh_from_db()
    return record


def _undo_refusal(record: LeadMerge, keep: Lead, merged: Lead) -> dict:
    if record.undone_at is not None:
        who = record.undone_by.get_username() if record.undone_by_id else "the system"
        when = date_format(timezone.localtime(record.undone_at), "DATETIME_FORMAT")
        return {"merge": [f"This merge was already undone ({when}, by {who})."]}
    errors = {}
    if keep.erased_at is not None:
        errors["keep"] = [f"Lead #{keep.pk} was erased since the merge: there is nothing to take back from it."]
    elif keep.archived_at is not None:
        standing = _standing_merge_of(keep)
        errors["keep"] = [
            f"Lead #{keep.pk} was merged into lead #{standing.keep_id} since: undo that merge first."
            if standing is not None
            else f"Lead #{keep.pk} was archived since: the merge can no longer be undone."
        ]
    if merged.erased_at is not None:
        errors["merged"] = [f"Lead #{merged.pk} was erased since the merge: it cannot come back."]
    elif merged.archived_at is None:
        errors["merged"] = [f"Lead #{merged.pk} is live already."]
    return errors


def _restore(keep: Lead, merged: Lead, filled: dict) -> list[str]:
    """Give `keep` (in memory) its values from before the merge where it still holds what the merge gave it."""
    restored = []
    for name, before in filled.items():
        attname = _attname(name)
        if getattr(keep, attname) == getattr(merged, attname):
            setattr(keep, attname, _loaded(name, before))
            restored.append(name)
    if not keep.email and not keep.phone.strip():
        # The kept lead's own phone or address was cleared since: it keeps the one it took, so it stays reachable
        # (and the merged lead's address, if that is it, then refuses the undo below).
        for name in ("email", "phone"):
            if name in restored:
                setattr(keep, name, getattr(merged, name))
                restored.remove(name)
    return restored


def lead_merge_undo(*, merge: LeadMerge, by) -> Lead:
    """Take a merge back: the merged lead is live again with what was moved from it. Returns that lead.

    Guarantees, in one transaction with the merge record and both leads locked:
    - only a manager (or the system) undoes; a merge is undone once; not when
      the kept lead was archived or erased since (a later merge of it is
      undone first), nor when the merged lead was erased;
    - every row the merge recorded goes back if it is still on the kept lead
      (here and through `leads.signals.leads_unmerging`), and so do the events
      it moved; rows added to the kept lead since stay with it, and so do the
      moved deals that were open then and were won or lost on it since (they
      are part of its stage now; the `lead.unmerged` event lists them);
    - a field the merge filled goes back to the kept lead's earlier value only
      if it still holds the merged lead's value (an edit since is kept);
    - the merged lead is live again with its address; if another live lead
      has that address now, nothing is undone (ValidationError on `merged`);
    - neither lead's status changes; the merge is marked undone and a
      `lead.unmerged` event is appended on the kept lead.
    Open tasks the merge handed to the kept lead's owner go back to the
    merged lead's owner if they are still open and with the kept lead's owner.
    The merged lead's enrollments that the merge ended stay ended: resuming
    them would send emails that were due while it was merged.
    """
    check_may_merge_leads(by)
    with transaction.atomic():
        record = LeadMerge.objects.select_for_update().get(pk=merge.pk)
        kept, gone = _lock_pair(record.keep_id, record.merged_id)
        errors = _undo_refusal(record, kept, gone)
        if errors:
            raise ValidationError(errors)
        now = timezone.now()

        restored = _restore(kept, gone, record.filled)
        if restored:
            _save_fields(kept, restored, now)
        if gone.email:
            # Asked after the kept lead gave back an address it took, before the merged lead is live again.
            other = lead_duplicate_of(email=gone.email, exclude_pk=gone.pk)
            if other is not None:
                # Raised inside the transaction: the kept lead's restored fields roll back with it.
                raise ValidationError({"merged": [
                    f"Lead #{other.pk} ({other}) has lead #{gone.pk}'s email address now, and two live leads cannot "
                    "share one: change or archive that lead first, then undo the merge."
                ]})
        Lead.objects.filter(pk=gone.pk).update(archived_at=None, updated_at=now)
        gone.archived_at = None

        moved = record.moved
        closed_since = list(
            Deal.objects.filter(pk__in=moved.get("leads.deal.open", []), lead_id=kept.pk)
            .exclude(status=Deal.Status.OPEN).values_list("pk", flat=True)
        )
        for model in (*_LEAD_ROWS, LeadTouch, LeadTag):
            ids = moved.get(model._meta.label_lower, [])
            if model is Deal:
                ids = sorted(set(ids) - set(closed_since))
            _move(model, ids, field="lead", to_id=gone.pk, only_from=kept.pk)
        _move(Customer, moved.get("leads.customer", []), field="primary_lead", to_id=gone.pk, only_from=kept.pk)
        if gone.owner_id and kept.owner_id:
            Task.objects.filter(
                pk__in=moved.get("leads.task.assignee", []), lead_id=gone.pk, completed_at__isnull=True,
                assignee_id=kept.owner_id,
            ).update(assignee_id=gone.owner_id)

        leads_unmerging.send(sender=Lead, keep=kept, merged=gone, by=by, moved=moved)

        refresh_reached([kept.pk, gone.pk])
        _move(DomainEvent, record.events_moved, field="lead", to_id=gone.pk, only_from=kept.pk)
        record.undone_at, record.undone_by = now, by
        record.save(update_fields=["undone_at", "undone_by"])
        payload = {"merged": gone.pk, "restored": sorted(restored)}
        if closed_since:
            payload["deals_kept"] = closed_since
        event_record(EventType.LEAD_UNMERGED, actor=Actor.of(by), lead_id=kept.pk, subject=record, at=now, payload=payload)
    merge.undone_at, merge.undone_by = record.undone_at, record.undone_by
    gone.refresh_from_db()
    return gone
