"""Tags on leads: adding and removing them, one lead at a time or many at once.

A tag is matched in any case and spacing ("VIP", " vip "): `tag_key` is what two names share when they are the
same tag. Adding a tag the lead already has changes nothing and records nothing, so "a tag was added" (the
event `lead.tagged`, which triggers and webhooks read) happens once per lead and tag until it is removed.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.batches import batched
from core.events import Actor, EventType, event_record, events_record
from core.policy import access_for, check_may_make_tags, check_may_tag

from .models import Lead, LeadTag, Tag

TAG_MAX_LENGTH = Tag._meta.get_field("name").max_length


def tag_name_clean(name) -> str:
    """The name with its spaces collapsed, or a ValidationError (keyed "tag") saying what to write instead."""
    cleaned = " ".join(str(name or "").split())
    if not cleaned:
        raise ValidationError({"tag": ["Write the tag, e.g. webinar-2026."]})
    if len(cleaned) > TAG_MAX_LENGTH:
        raise ValidationError({"tag": [f"A tag is at most {TAG_MAX_LENGTH} characters (this one has {len(cleaned)})."]})
    return cleaned


def tag_key(name: str) -> str:
    # Cut to the column: casefolding may lengthen a name ("ß" -> "ss").
    return " ".join(str(name or "").split()).casefold()[:TAG_MAX_LENGTH]


def tag_for_name(name: str) -> Tag | None:
    """The existing tag of that name, in any case and spacing."""
    return Tag.objects.filter(key=tag_key(name)).first()


def _tag_get_or_create(name: str, *, by=None) -> Tag:
    cleaned = tag_name_clean(name)
    key = tag_key(cleaned)
    tag = Tag.objects.filter(key=key).first()
    if tag is not None:
        return tag
    try:
        with transaction.atomic():
            tag = Tag.objects.create(name=cleaned, key=key)
            event_record(EventType.TAG_CREATED, actor=Actor.of(by), subject=tag, payload={"name": tag.name})
            return tag
    except IntegrityError:  # made by another request a moment ago
        return Tag.objects.get(key=key)


def tag_create(*, name: str, by=None) -> Tag:
    """Make a tag before any lead has it (for a trigger or an audience to wait for it): marketers and managers.
    A tag of that name in any case is refused, naming it."""
    check_may_make_tags(by)
    existing = tag_for_name(tag_name_clean(name))
    if existing is not None:
        raise ValidationError({"name": [f"The tag “{existing.name}” exists already (tags match in any case)."]})
    return _tag_get_or_create(name, by=by)


def _payload(tag: Tag) -> dict:
    return {"tag": tag.pk, "name": tag.name}


def lead_tag_add(*, lead: Lead, name: str, by=None) -> LeadTag:
    """Put the tag `name` on the lead (making the tag if it is new). Guarantees: `by` may tag this lead (its
    owner, a marketer, a manager); one `lead.tagged` event with who and when; a tag the lead has already is
    left as it was (no second event) and its LeadTag is returned."""
    check_may_tag(by, lead)
    with transaction.atomic():
        tag = _tag_get_or_create(name, by=by)
        existing = LeadTag.objects.filter(lead=lead, tag=tag).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                lead_tag = LeadTag.objects.create(lead=lead, tag=tag, added_at=timezone.now(), added_by=by)
        except IntegrityError:  # the same tag added twice at once: the first one counts
            return LeadTag.objects.get(lead=lead, tag=tag)
        event_record(EventType.LEAD_TAGGED, actor=Actor.of(by), lead_id=lead.pk, subject=tag, payload=_payload(tag))
        return lead_tag


def lead_tag_remove(*, lead: Lead, name: str, by=None) -> bool:
    """Take the tag `name` off the lead; returns whether it had it (no event when it did not). The tag stays for
    other leads, audiences and triggers."""
    check_may_tag(by, lead)
    tag = tag_for_name(name)
    if tag is None:
        return False
    with transaction.atomic():
        deleted, _ = LeadTag.objects.filter(lead=lead, tag=tag).delete()
        if not deleted:
            return False
        event_record(EventType.LEAD_UNTAGGED, actor=Actor.of(by), lead_id=lead.pk, subject=tag, payload=_payload(tag))
        return True


def leads_tag_add(*, lead_ids, name: str, by=None, batch_size: int = 1000) -> int:
    """Put the tag on many leads at once (the admin's list), in batches; returns how many got it. Leads that
    have it already are left alone. All or nothing: if `by` may not tag one of the leads, none is tagged."""
    ids = sorted(set(lead_ids))
    if by is not None and not access_for(by).tags_every_lead:  # a rep: asked about each lead
        for chunk in batched(ids, batch_size):
            for lead in Lead.objects.filter(pk__in=chunk).only("pk", "owner_id"):
                check_may_tag(by, lead)
    now, added = timezone.now(), 0
    with transaction.atomic():
        tag = _tag_get_or_create(name, by=by)
        for chunk in batched(ids, batch_size):
            have = set(LeadTag.objects.filter(tag=tag, lead_id__in=chunk).values_list("lead_id", flat=True))
            new = list(Lead.objects.filter(pk__in=[pk for pk in chunk if pk not in have]).values_list("pk", flat=True))
            LeadTag.objects.bulk_create([LeadTag(lead_id=pk, tag=tag, added_at=now, added_by=by) for pk in new])
            events_record(EventType.LEAD_TAGGED, actor=Actor.of(by), lead_ids=new, payload=_payload(tag), at=now)
            added += len(new)
    return added
