"""Writes of the nurturing engine: sequences, enrollments, suppressions.

Sending itself lives in nurturing.dispatch (claim, send, record), previews
and test sends in nurturing.previews; the rules checked before every send
are here (`delivery_stop_reason`).
"""

import collections
import dataclasses
import hashlib
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.formats import date_format

from core.emails import normalize_email
from core.events import Actor, EventType, event_record, events_record_each
from core.models import ActorKind
from core.people import person_name
from core.policy import check_may_build_sequences, check_may_manage_enrollments
from leads import pipeline
from leads.models import Lead
from leads.pipeline import LeadStatus

from .address_hash import current_key, email_hash, email_hashes, hash_keys, hashes_rewrite, key_id
from .content_library import content_needs
from .models import AudienceFeed, Delivery, Enrollment, Sequence, SequenceVersion, Step, StepVariant, Suppression, WebhookNonce
from .rendering import TemplateProblem, check_template
from .schedule import lead_zone, next_send_time

LIVE_ENROLLMENT = (Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED)


# --- Suppression ------------------------------------------------------------------


def email_is_suppressed(email: str) -> bool:
    return Suppression.objects.for_address(email).exists()


def suppression_add(
    *, email: str = "", address_hash: str = "", reason: str = Suppression.Reason.MANUAL, source: str = "", by=None
) -> Suppression:
    """Suppress an address at once (given as is, or as its keyed hash): every pending delivery to it is skipped.

    An address already suppressed keeps its suppression, whichever hash key it was stored under.
    """
    email = normalize_email(email)
    if not email and not address_hash:
        raise ValidationError({"email": ["Enter the address to suppress."]})
    existing = Suppression.objects.for_address(email).first() if email else None
    if existing is not None:
        return existing
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            email_hash=email_hash(email) if email else address_hash,
            defaults={"email": email, "reason": reason, "source": source[:200], "created_by": by},
        )
        if created:
            event_record(EventType.SUPPRESSION_ADDED, actor=Actor.of(by), subject=suppression, payload={"reason": reason})
    return suppression


def suppression_address_check(email: str, *, exclude_pk: int | None = None) -> str:
    """The address normalised, or a ValidationError (by the field) if it is empty or suppressed by another row."""
    email = normalize_email(email)
    if not email:
        raise ValidationError({"email": [ValidationError("Enter the address to suppress.", code="required")]})
    existing = Suppression.objects.for_address(email)
    if exclude_pk is not None:
        existing = existing.exclude(pk=exclude_pk)
    existing = existing.first()
    if existing is not None:
        since = date_format(timezone.localtime(existing.created_at), "DATE_FORMAT")
        raise ValidationError({"email": [ValidationError(
            f"This address is already suppressed ({existing.get_reason_display()}, since {since}).", code="duplicate"
        )]})
    return email


def suppression_update(*, suppression: Suppression, by=None, **fields) -> Suppression:
    """Change a suppression's reason or source, or correct its address (not once the person is erased)."""
    unknown = set(fields) - {"email", "reason", "source"}
    if unknown:
        raise TypeError(f"suppression_update() got unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        stored = Suppression.objects.select_for_update().get(pk=suppression.pk)
        if "email" in fields:
            if not stored.email:
                raise ValidationError({"email": ["The person was erased: their address is kept only as a hash and cannot change."]})
            fields["email"] = suppression_address_check(fields["email"], exclude_pk=stored.pk)
        if "source" in fields:
            fields["source"] = (fields["source"] or "")[:200]
        for name, value in fields.items():
            setattr(suppression, name, value)
        suppression.save()
        event_record(EventType.SUPPRESSION_UPDATED, actor=Actor.of(by), subject=suppression, payload={"fields": sorted(fields)})
    return suppression


@dataclasses.dataclass(frozen=True)
class RehashReport:
    rehashed: int
    merged: int  # rows whose address was suppressed under the current key already: removed
    hash_only_by_key: dict  # key id -> rows kept only as a hash under that old key
    old_key_ids: frozenset  # the key ids of CRM_EMAIL_HASH_KEYS_OLD


@transaction.atomic
def suppressions_rehash(*, batch_size: int = 1000) -> RehashReport:
    """Rewrite under the current hash key every suppression that holds its address and was hashed under an old key.

    Rows kept only as a hash cannot be recomputed: they are counted by the key
    they were made with, and match only while it stays in CRM_EMAIL_HASH_KEYS_OLD.
    """
    stale = Suppression.objects.exclude(email_hash__startswith=f"{key_id(current_key())}:")
    rows = stale.exclude(email="").order_by("created_at", "pk").values_list("pk", "email")
    rehashed, merged = hashes_rewrite(Suppression.objects.all(), [(pk, email_hash(email)) for pk, email in rows], batch_size=batch_size)
    hash_only = collections.Counter(h.partition(":")[0] for h in stale.filter(email="").values_list("email_hash", flat=True))
    return RehashReport(
        rehashed=rehashed, merged=merged, hash_only_by_key=dict(hash_only),
        old_key_ids=frozenset(key_id(key) for key in hash_keys()[1:]),
    )


# --- Webhook replay guard ------------------------------------------------------------

# A signed webhook is accepted once (its token is kept), and only this long after it
# was signed: long enough for a provider's own retries (Mailgun retries for 8 hours).
REPLAY_WINDOW = timedelta(hours=8)
NONCES_KEPT = timedelta(hours=24)


def webhook_nonces_prune(*, now: datetime | None = None) -> int:
    """Forget signed tokens older than any call the replay window still accepts."""
    now = now or timezone.now()
    deleted, _ = WebhookNonce.objects.filter(seen_at__lt=now - NONCES_KEPT).delete()
    return deleted


# --- Sequences and steps --------------------------------------------------------


def step_check(step: Step) -> None:
    """Raise ValidationError (by field) if a step's templates or settings cannot be used."""
    errors = {}
    if step.kind == Step.Kind.EMAIL:
        if not step.subject_template.strip():
            errors["subject_template"] = ["An email step needs a subject."]
        if not step.text_template.strip() and not step.html_template.strip():
            errors["text_template"] = ["An email step needs a body (plain text, HTML or both)."]
    for field in ("subject_template", "text_template", "html_template"):
        source = getattr(step, field)
        if source.strip() and field not in errors:
            try:
                check_template(source, field=Step._meta.get_field(field).verbose_name)
            except TemplateProblem as exc:
                errors[field] = [str(exc)]
    if step.subject_template and "subject_template" not in errors and content_needs([step.subject_template])[0]:
        errors["subject_template"] = ['A content block goes in the body: take {% content "…" %} out of the subject.']
    if step.delay is not None and step.delay.total_seconds() < 0:
        errors["delay"] = ["The delay cannot be negative."]
    if step.stage_action and step.stage_action in pipeline.NEEDS_CONVERSION:
        errors["stage_action"] = ["A lead becomes a customer only by conversion, never by an email."]
    if step.condition == Step.Condition.DOWNLOADED and step.condition_resource_id is None and getattr(step, "condition_resource", None) is None:
        errors["condition_resource"] = ["Choose the resource the lead must have downloaded."]
    if step.click_stage_action and step.click_stage_action in pipeline.NEEDS_CONVERSION:
        errors["click_stage_action"] = ["A lead becomes a customer only by conversion, never by a click."]
    if (step.click_stage_action or step.click_creates_call_task) and not (step.click_link_contains or "").strip():
        errors["click_link_contains"] = ["Say which link triggers the click actions (text the link contains, e.g. /pricing)."]
    if errors:
        raise ValidationError(errors)


def sequence_sender_refusal(*, sender, by) -> str | None:
    """Why `by` may not make `sender` the sender of a sequence's emails, or None.

    Anyone may choose themselves; choosing another user needs the
    nurturing.send_as_others permission (managers have it). Either way the
    sender must be active and have an email address. No sender (each lead's
    owner sends) is always allowed.
    """
    if sender is None:
        return None
    name = person_name(sender)
    if sender.pk != getattr(by, "pk", None) and not (by is not None and by.has_perm("nurturing.send_as_others")):
        return f"You can choose only yourself as the sender: sending as {name} needs the permission to send as others (managers have it)."
    if not sender.is_active:
        return f"{name} is deactivated: choose an active user, or leave the sender empty to send as each lead's owner."
    if not sender.email:
        return f"{name} has no email address: add one to their user, or choose another sender."
    return None


def sequence_sender_check(*, sequence: Sequence, sender, by) -> None:
    """Raise ValidationError (on "sender") unless `by` may make `sender` the sender of `sequence`.

    A sender the sequence already has is not checked again: whoever edits a
    sequence a manager set up can change the rest and keep its sender.
    """
    if sequence.pk is not None and Sequence.objects.filter(pk=sequence.pk, sender=sender).exists():
        return
    refusal = sequence_sender_refusal(sender=sender, by=by)
    if refusal:
        raise ValidationError({"sender": [refusal]})


@transaction.atomic
def sequence_save(*, sequence: Sequence, by) -> Sequence:
    """Create or change a sequence. Guarantees: its sender, if chosen or changed now, is one `by` may send as."""
    check_may_build_sequences(by)
    sequence_sender_check(sequence=sequence, sender=sequence.sender, by=by)
    if sequence.pk is None:
        sequence.created_by = by
    sequence.save()
    return sequence


@transaction.atomic
def sequence_activate(*, sequence: Sequence, by=None) -> Sequence:
    """Start sending. Refused (nothing changes) unless every active step is usable."""
    check_may_build_sequences(by)
    if sequence.status == Sequence.Status.ARCHIVED:
        raise ValidationError({"status": ["The sequence is archived: make a new one (or copy its steps) instead."]})
    steps = list(sequence.steps.filter(is_active=True))
    if not steps:
        raise ValidationError({"status": ["Add at least one active step before activating the sequence."]})
    problems = []
    for step in steps:
        try:
            step_check(step)
        except ValidationError as exc:
            problems.extend(f"Step {step.position}: {message}" for message in exc.messages)
    if problems:
        raise ValidationError({"status": problems})
    sequence.status = Sequence.Status.ACTIVE
    sequence.save(update_fields=["status", "updated_at"])
    sequence_version_record(sequence=sequence, by=by)
    return sequence


def sequence_pause(*, sequence: Sequence, by=None) -> Sequence:
    """Hold every send of the sequence; due deliveries wait and go when it is active again."""
    check_may_build_sequences(by)
    if sequence.status == Sequence.Status.ARCHIVED:
        raise ValidationError({"status": ["The sequence is archived: it sends nothing more."]})
    sequence.status = Sequence.Status.PAUSED
    sequence.save(update_fields=["status", "updated_at"])
    return sequence


@transaction.atomic
def sequence_archive(*, sequence: Sequence, by=None) -> int:
    """Retire a sequence for good: every lead still in it leaves, nothing more is sent. Returns how many left.

    Its steps, deliveries and report stay; it can no longer be activated.
    """
    check_may_build_sequences(by)
    live = list(Enrollment.objects.filter(sequence=sequence, status__in=LIVE_ENROLLMENT).values_list("pk", flat=True))
    if live:
        now = timezone.now()
        Enrollment.objects.filter(pk__in=live).update(
            status=Enrollment.Status.EXITED, exit_reason="The sequence was archived", finished_at=now
        )
        _cancel_pending(live, "Exited: the sequence was archived")
        _exits_record(Enrollment.objects.filter(pk__in=live), actor=Actor.of(by), reason="The sequence was archived", at=now)
    sequence.status = Sequence.Status.ARCHIVED
    sequence.save(update_fields=["status", "updated_at"])
    return len(live)


@transaction.atomic
def step_delete(*, step: Step, by=None) -> None:
    """Remove a step no email was ever scheduled from (a used one is switched off instead: its history stays)."""
    check_may_build_sequences(by)
    if Delivery.objects.filter(step=step).exists():
        raise ValidationError("This step has been used: switch it off instead of deleting it, so its history stays.")
    step.delete()


@transaction.atomic
def step_save(*, step: Step, by=None) -> Step:
    """Create or change a step of a sequence. Guarantees: its templates and settings pass `step_check`; a live
    sequence's change is a new version (`sequence_version_record`)."""
    return steps_save(sequence=step.sequence, steps=[step], by=by)[0]


@transaction.atomic
def steps_save(*, sequence: Sequence, steps, deleted=(), by=None) -> list[Step]:
    """Save several steps of one sequence (and delete `deleted`, as `step_delete`) as one change: if the sequence
    is live, one new version for all of it."""
    check_may_build_sequences(by)
    steps = list(steps)
    for step in steps:
        if step.sequence_id != sequence.pk:
            raise ValidationError("Each step saved together belongs to the same sequence.")
        step_check(step)
        step.save()
    for step in deleted:
        step_delete(step=step, by=by)
    _steps_changed(sequence, by)
    return steps


def _positions_set(sequence: Sequence, steps: list[Step]) -> None:
    """Number `steps` (all of the sequence's, in their new order) 1, 2, 3…: first out of the way of every current
    position, then into place, so the (sequence, position) uniqueness holds after each row's write."""
    base = max([step.position for step in steps] + [0]) + 1
    for offset, step in enumerate(steps):
        Step.objects.filter(pk=step.pk).update(position=base + offset)
    for number, step in enumerate(steps, start=1):
        Step.objects.filter(pk=step.pk).update(position=number)
        step.position = number


def _steps_changed(sequence: Sequence, by) -> None:
    """A change to the steps is a change to the sequence (its last change shows it) and, when live, a new version."""
    Sequence.objects.filter(pk=sequence.pk).update(updated_at=timezone.now())
    if sequence.status in (Sequence.Status.ACTIVE, Sequence.Status.PAUSED):
        sequence_version_record(sequence=sequence, by=by)


@transaction.atomic
def steps_reorder(*, sequence: Sequence, order, by=None) -> list[Step]:
    """Put the sequence's steps in `order` (their ids, first to last) and number them 1, 2, 3…

    Guarantees: `order` names every step of the sequence exactly once and no other (else nothing changes); a live
    sequence's new order is a new version. Leads already in it go on from their current step to the next by the
    new order.
    """
    check_may_build_sequences(by)
    Sequence.objects.select_for_update().filter(pk=sequence.pk).first()  # two reorders at once go in turn
    steps = {step.pk: step for step in Step.objects.filter(sequence=sequence)}
    try:
        order = [int(step_id) for step_id in order]
    except (TypeError, ValueError):
        raise ValidationError("The new order must list the steps by their numbers (ids).") from None
    if len(order) != len(set(order)):
        raise ValidationError("The new order lists a step twice: list each step of the sequence once.")
    strangers = [step_id for step_id in order if step_id not in steps]
    if strangers:
        raise ValidationError(f"The new order lists steps that are not in “{sequence}”: reload the page and try again.")
    if len(order) != len(steps):
        raise ValidationError(f"The new order leaves out steps of “{sequence}”: list all {len(steps)} of them "
                              "(reload the page: someone may have added one).")
    ordered = [steps[step_id] for step_id in order]
    _positions_set(sequence, ordered)
    _steps_changed(sequence, by)
    return ordered


@transaction.atomic
def step_duplicate(*, step: Step, by=None) -> Step:
    """Copy a step (templates, timing, condition, click actions) to just after it; the copy is switched off when
    the original is. Guarantees: the copy passes `step_check`; the steps after it move down one; a live sequence's
    change is a new version."""
    check_may_build_sequences(by)
    sequence = step.sequence
    Sequence.objects.select_for_update().filter(pk=sequence.pk).first()
    ordered = list(Step.objects.filter(sequence=sequence).order_by("position"))
    original = next((s for s in ordered if s.pk == step.pk), None)
    if original is None:
        raise ValidationError("This step is no longer in its sequence: reload the page.")
    step_check(original)
    copy = Step.objects.get(pk=original.pk)
    copy.pk = None
    copy._state.adding = True
    copy.position = max(s.position for s in ordered) + 1
    copy.save()
    ordered.insert(ordered.index(original) + 1, copy)
    _positions_set(sequence, ordered)
    _steps_changed(sequence, by)
    return copy


@transaction.atomic
def step_switch(*, step: Step, is_active: bool, by=None) -> Step:
    """Switch a step on or off. Off: its due deliveries are skipped and leads go on to the next active step (its
    history stays). Guarantees: a step switched on passes `step_check`; an active sequence keeps at least one active
    step (pause it instead); a live sequence's change is a new version."""
    check_may_build_sequences(by)
    sequence = step.sequence
    Sequence.objects.select_for_update().filter(pk=sequence.pk).first()
    if is_active:
        step_check(step)
    elif (sequence.status == Sequence.Status.ACTIVE
          and not Step.objects.filter(sequence=sequence, is_active=True).exclude(pk=step.pk).exists()):
        raise ValidationError("This is the sequence's only active step: pause the sequence instead of switching it off.")
    Step.objects.filter(pk=step.pk).update(is_active=is_active)
    step.is_active = is_active
    _steps_changed(sequence, by)
    return step


@transaction.atomic
def triggers_save(*, triggers, deleted=(), by=None) -> None:
    """Create, change or delete a sequence's triggers (`nurturing.triggers` fires them). Guarantees: `by` builds
    sequences; each trigger names what it waits for (a resource, a stage, a kind of objection, a score threshold
    above 0, a tag)."""
    check_may_build_sequences(by)
    for trigger in triggers:
        try:
            trigger.full_clean()
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        trigger.save()
    for trigger in deleted:
        trigger.delete()


@transaction.atomic
def audience_save(*, audience, by=None):
    """Create or change a saved audience (marketers and managers)."""
    check_may_build_sequences(by)
    try:
        audience.full_clean()
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    if audience.pk is None:
        audience.created_by = by
    audience.save()
    return audience


def audience_feed_create(*, audience, platform: str, by=None):
    """A private feed address of the audience's customer-match file for one ad platform (marketers and managers).
    Returns (feed, token): the token is in the address and shown once; only its hash is kept."""
    check_may_build_sequences(by)
    if platform not in AudienceFeed.Platform.values:
        raise ValidationError({"platform": ["Choose Google Ads or Meta."]})
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        feed = AudienceFeed.objects.create(audience=audience, platform=platform, token_hash=feed_token_hash(token),
                                           created_by=by)
        event_record(EventType.AUDIENCE_FEED_CREATED, actor=Actor.of(by), subject=feed,
                     payload={"audience": audience.pk, "platform": platform})
    return feed, token


def feed_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audience_feed_revoke(*, feed, by=None):
    """Stop a feed: every later fetch of its address is refused."""
    check_may_build_sequences(by)
    with transaction.atomic():
        updated = AudienceFeed.objects.filter(pk=feed.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            event_record(EventType.AUDIENCE_FEED_REVOKED, actor=Actor.of(by), subject=feed,
                         payload={"audience": feed.audience_id, "platform": feed.platform})
    feed.refresh_from_db()
    return feed


def audience_export_record(*, audience, platform: str, by=None, feed=None):
    """The event log's record that an audience's customer-match file left the CRM (a download, or a feed's
    fetch, whose actor is the feed)."""
    actor = Actor.of(by) if feed is None else Actor(ActorKind.SYSTEM, ref={"audience_feed": feed.pk})
    if feed is not None:
        AudienceFeed.objects.filter(pk=feed.pk).update(last_fetched_at=timezone.now())
    return event_record(EventType.AUDIENCE_EXPORTED, actor=actor, subject=audience,
                        payload={"platform": platform, "via": "feed" if feed is not None else "download"})


# What a version keeps of each step: everything that shapes what is sent and when.
_VERSIONED_STEP_FIELDS = (
    "position", "kind", "is_active", "delay", "send_days", "window_start", "window_end", "condition",
    "condition_resource_id", "subject_template", "text_template", "html_template", "stage_action",
    "click_link_contains", "click_stage_action", "click_creates_call_task",
)


# And of each variant of a step's A/B test.
_VERSIONED_VARIANT_FIELDS = ("label", "subject_template", "text_template", "html_template", "weight", "is_active")


def sequence_snapshot(sequence: Sequence) -> list[dict]:
    """The sequence's steps now, as a version keeps them (JSON: durations and times as text). A step with an A/B
    test also keeps its variants and the winner's label (a step without one has neither key, as before tests)."""
    def plain(value):
        return value if value is None or isinstance(value, bool | int | str) else str(value)

    snapshot = []
    for step in (Step.objects.filter(sequence=sequence).select_related("winner").order_by("position")
                 .prefetch_related(Prefetch("variants", queryset=StepVariant.objects.order_by("label")))):
        kept = {name: plain(getattr(step, name)) for name in _VERSIONED_STEP_FIELDS}
        variants = step.variants.all()
        if variants:
            kept["variants"] = [{name: getattr(variant, name) for name in _VERSIONED_VARIANT_FIELDS} for variant in variants]
        if step.winner is not None:
            kept["winner"] = step.winner.label
        snapshot.append(kept)
    return snapshot


@transaction.atomic
def sequence_version_record(*, sequence: Sequence, by=None) -> SequenceVersion | None:
    """Keep the sequence's steps as a new version if they differ from its latest version (None if not)."""
    Sequence.objects.select_for_update().filter(pk=sequence.pk).first()  # two saves at once number in turn
    snapshot = sequence_snapshot(sequence)
    latest = SequenceVersion.objects.filter(sequence=sequence).order_by("-number").first()
    if latest is not None and latest.steps == snapshot:
        return None
    return SequenceVersion.objects.create(sequence=sequence, number=(latest.number + 1) if latest else 1,
                                          steps=snapshot, created_by=by)


# --- Enrollment ---------------------------------------------------------------------


def _first_step(sequence: Sequence) -> Step | None:
    return sequence.steps.filter(is_active=True).order_by("position").first()


def next_step_after(step: Step) -> Step | None:
    return (
        Step.objects.filter(sequence_id=step.sequence_id, is_active=True, position__gt=step.position)
        .order_by("position")
        .first()
    )


def delivery_due_at(*, step: Step, lead: Lead, after: datetime) -> datetime:
    """When a step may go: its delay after `after`, moved into the step's send window in the lead's zone."""
    return next_send_time(
        after + step.delay, zone=lead_zone(lead.timezone), days=step.send_days, start=step.window_start, end=step.window_end
    )


@dataclasses.dataclass(frozen=True)
class EnrollmentFacts:
    """What the enrollment rules need to know of many leads at once, read in three queries (not three per lead)."""

    suppressed: frozenset  # normalised addresses on the suppression list
    in_sequence: frozenset  # ids of leads live (active or paused) in this sequence
    others: dict  # lead id -> names of the other sequences it is live in


def suppressed_among(addresses) -> set[str]:
    """Which of these normalised addresses are on the suppression list now (one query, under every key's hash)."""
    by_hash = {digest: address for address in set(addresses) - {""} for digest in email_hashes(address)}
    return {by_hash[digest] for digest in
            Suppression.objects.filter(email_hash__in=by_hash).values_list("email_hash", flat=True)}


def enrollment_facts(*, leads, sequence: Sequence) -> EnrollmentFacts:
    leads = list(leads)
    ids = [lead.pk for lead in leads]
    suppressed = suppressed_among(normalize_email(lead.email) for lead in leads)
    in_sequence = Enrollment.objects.filter(lead_id__in=ids, sequence=sequence, status__in=LIVE_ENROLLMENT)
    return EnrollmentFacts(suppressed=frozenset(suppressed),
                           in_sequence=frozenset(in_sequence.values_list("lead_id", flat=True)),
                           others=_other_sequences(ids, sequence))


def enrollment_refusal(*, lead: Lead, sequence: Sequence, known: EnrollmentFacts | None = None) -> str | None:
    """Why this lead cannot be enrolled now, or None. `known`: `enrollment_facts` of the leads being checked
    together, if already read (else the lead's are read now)."""
    if sequence.status != Sequence.Status.ACTIVE:
        return f"the sequence is {sequence.get_status_display().lower()}: activate it first"
    if lead.archived_at is not None:
        return "the lead is archived"
    if not lead.email:
        return "the lead has no email address"
    if lead.status not in pipeline.OPEN_STATUSES:
        return f"the lead is {pipeline.label(lead.status).lower()}"
    if past_goal(lead.status, sequence.goal_stage):
        return f"the lead is already {pipeline.label(lead.status)}, the sequence's goal"
    if (normalize_email(lead.email) in known.suppressed) if known else email_is_suppressed(lead.email):
        return "the address is suppressed (unsubscribed, bounced or blocked)"
    if (lead.pk in known.in_sequence) if known else Enrollment.objects.filter(
            lead=lead, sequence=sequence, status__in=LIVE_ENROLLMENT).exists():
        return "the lead is already in this sequence"
    if sequence.requires_consent and lead.consent_given_at is None:
        return "no consent to be emailed is recorded for the lead (the sequence asks for it)"
    if sequence.in_other_sequence == Sequence.InOtherSequence.SKIP:
        names = (known.others if known else _other_sequences([lead.pk], sequence)).get(lead.pk)
        if names:
            return f"the lead is already in {_names(names)} (the sequence skips such leads)"
    return None


def _other_sequences(lead_ids, sequence: Sequence) -> dict[int, list[str]]:
    """Per lead, the names of the other sequences it is active or paused in (one query)."""
    found: dict[int, list[str]] = {}
    rows = (Enrollment.objects.filter(lead_id__in=lead_ids, status__in=LIVE_ENROLLMENT).exclude(sequence=sequence)
            .order_by("lead_id", "sequence__name").values_list("lead_id", "sequence__name"))
    for lead_id, name in rows:
        found.setdefault(lead_id, []).append(name)
    return found


def _names(names: list[str]) -> str:
    quoted = [f"“{name}”" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


@dataclasses.dataclass
class EnrollmentPlan:
    """What enrolling these leads in the sequence would do, before anything is written: how many leads in each
    group, and the first `SAMPLE` of each by name (all of them for a plan of fewer)."""

    SAMPLE = 50

    enroll: list = dataclasses.field(default_factory=list)  # leads enrolled as they are
    also_in: list = dataclasses.field(default_factory=list)  # (lead, other sequences): enrolled, and stay there too
    replace: list = dataclasses.field(default_factory=list)  # (lead, other sequences): those end, this one starts
    skipped: dict = dataclasses.field(default_factory=dict)  # why -> leads
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # group or why -> leads

    def add(self, group: str, item, *, why: str = "") -> None:
        rows = self.skipped.setdefault(why, []) if group == "skipped" else getattr(self, group)
        self.counts[why if group == "skipped" else group] += 1
        if len(rows) < self.SAMPLE:
            rows.append(item)

    @property
    def enrolled_count(self) -> int:
        return self.counts["enroll"] + self.counts["also_in"] + self.counts["replace"]

    @property
    def skipped_counts(self) -> list[tuple[str, int, list]]:
        """(why, how many, the first of them), the commonest reason first."""
        return sorted(((why, self.counts[why], leads) for why, leads in self.skipped.items()), key=lambda row: -row[1])


def enrollment_plan(*, leads, sequence: Sequence, into: EnrollmentPlan | None = None) -> EnrollmentPlan:
    """Who enrolling would enroll, who it would skip and why (the same rules as `enrollment_create`), and who is
    in another sequence and what happens to that (the sequence's rule: allow, skip or replace). The leads are
    checked together (`enrollment_facts`: a few queries for the lot); `into` adds them to a plan being made in
    batches."""
    leads = list(leads)
    known = enrollment_facts(leads=leads, sequence=sequence)
    plan = EnrollmentPlan() if into is None else into
    for lead in leads:
        refusal = enrollment_refusal(lead=lead, sequence=sequence, known=known)
        if refusal:
            plan.add("skipped", lead, why=refusal)
        elif lead.pk in known.others and sequence.in_other_sequence == Sequence.InOtherSequence.REPLACE:
            plan.add("replace", (lead, known.others[lead.pk]))
        elif lead.pk in known.others:
            plan.add("also_in", (lead, known.others[lead.pk]))
        else:
            plan.add("enroll", lead)
    return plan


def past_goal(status: str, goal_stage: str) -> bool:
    """True when a lead at `status` has reached or passed the sequence's goal stage."""
    if status not in pipeline.FUNNEL:
        return False
    return pipeline.FUNNEL.index(status) >= pipeline.FUNNEL.index(goal_stage)


@transaction.atomic
def enrollment_create(*, lead: Lead, sequence: Sequence, by=None, at: datetime | None = None) -> Enrollment:
    """Enroll a lead and schedule its first step.

    Guarantees: the sequence is active and has an active step; the lead is
    live, open, short of the goal stage, has an unsuppressed address and is
    not in the sequence already (the database enforces that too); it has
    recorded consent if the sequence asks for it; a lead in another sequence
    is enrolled too, skipped, or taken out of the other sequences first, by
    the sequence's rule; `by` may manage the lead's enrollments.
    """
    check_may_manage_enrollments(by, lead)
    refusal = enrollment_refusal(lead=lead, sequence=sequence)
    if refusal:
        raise ValidationError({"sequence": [f"{lead} cannot be enrolled: {refusal}."]})
    step = _first_step(sequence)
    if step is None:
        raise ValidationError({"sequence": ["The sequence has no active step."]})
    now = at or timezone.now()
    if sequence.in_other_sequence == Sequence.InOtherSequence.REPLACE:
        for other in (Enrollment.objects.filter(lead=lead, status__in=LIVE_ENROLLMENT).exclude(sequence=sequence)
                      .select_related("lead")):
            enrollment_exit(enrollment=other, reason=f"replaced by “{sequence.name}”", by=by)
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(lead=lead, sequence=sequence, enrolled_by=by, enrolled_at=now)
    except IntegrityError:
        raise ValidationError({"sequence": [f"{lead} is already in this sequence."]}) from None
    Delivery.objects.create(enrollment=enrollment, step=step, due_at=delivery_due_at(step=step, lead=lead, after=now))
    event_record(
        EventType.ENROLLMENT_STARTED, actor=Actor.of(by), lead_id=lead.pk, subject=enrollment, at=now,
        payload={"sequence": sequence.pk},
    )
    return enrollment


def enroll_many(*, leads, sequence: Sequence, by=None) -> tuple[int, list[str]]:
    """Enroll each lead that can be; return how many were, and why the others were not."""
    enrolled, refused = 0, []
    for lead in leads:
        try:
            enrollment_create(lead=lead, sequence=sequence, by=by)
            enrolled += 1
        except ValidationError as exc:
            refused.append(" ".join(exc.messages))
        except PermissionDenied as exc:
            refused.append(f"{lead}: {exc}")
    return enrolled, refused


def _exit_actor(event, by=None) -> Actor:
    """Who ended an enrollment: the user who removed the lead, the email event behind it (a reply, a bounce...),
    or the system."""
    if by is not None:
        return Actor.of(by)
    if event is not None:
        return Actor(ActorKind.EMAIL_EVENT, ref={"email_event": event.pk})
    return Actor(ActorKind.SYSTEM)


def _cancel_pending(enrollments, reason: str) -> int:
    return Delivery.objects.filter(enrollment__in=enrollments, status=Delivery.Status.SCHEDULED).update(
        status=Delivery.Status.SKIPPED, reason=reason[:500], updated_at=timezone.now()
    )


@transaction.atomic
def enrollment_exit(*, enrollment: Enrollment, reason: str, event=None, by=None) -> Enrollment:
    """Take a lead out of a sequence: nothing more is sent; the reason (and the event behind it) stay on the enrollment.

    `by`: the user removing the lead by hand (who must be allowed to manage its enrollments).
    """
    if by is not None:
        check_may_manage_enrollments(by, enrollment.lead)
    now = timezone.now()
    exited = Enrollment.objects.filter(pk=enrollment.pk, status__in=LIVE_ENROLLMENT).update(
        status=Enrollment.Status.EXITED, exit_reason=reason[:300], finished_at=now, exit_event=event
    )
    _cancel_pending([enrollment.pk], f"Exited: {reason}")
    enrollment.refresh_from_db()
    if exited:
        event_record(
            EventType.ENROLLMENT_EXITED, actor=_exit_actor(event, by), lead_id=enrollment.lead_id, subject=enrollment, at=now,
            payload={"sequence": enrollment.sequence_id, "reason": reason[:300]},
        )
    return enrollment


@transaction.atomic
def lead_exit_all(*, lead_id: int, reason: str, event=None) -> int:
    """Take a lead out of every sequence it is in (converted, lost, unsubscribed…). Returns how many."""
    live = Enrollment.objects.filter(lead_id=lead_id, status__in=LIVE_ENROLLMENT)
    ids = list(live.values_list("pk", flat=True))
    if not ids:
        return 0
    now = timezone.now()
    Enrollment.objects.filter(pk__in=ids).update(
        status=Enrollment.Status.EXITED, exit_reason=reason[:300], finished_at=now, exit_event=event
    )
    _cancel_pending(ids, f"Exited: {reason}")
    _exits_record(Enrollment.objects.filter(pk__in=ids), actor=_exit_actor(event), reason=reason, at=now)
    return len(ids)


def _exits_record(enrollments, *, actor: Actor, reason: str, at) -> None:
    events_record_each(EventType.ENROLLMENT_EXITED, actor=actor, at=at, rows=(
        {"lead_id": lead_id, "subject_type": "enrollment", "subject_id": pk,
         "payload": {"sequence": sequence_id, "reason": reason[:300]}}
        for pk, lead_id, sequence_id in enrollments.order_by("pk").values_list("pk", "lead_id", "sequence_id")
    ))


def _enrollment_switch(enrollment: Enrollment, *, by, from_status, to_status, event_type) -> Enrollment:
    check_may_manage_enrollments(by, enrollment.lead)
    with transaction.atomic():
        if Enrollment.objects.filter(pk=enrollment.pk, status=from_status).update(status=to_status):
            event_record(
                event_type, actor=Actor.of(by), lead_id=enrollment.lead_id, subject=enrollment,
                payload={"sequence": enrollment.sequence_id},
            )
    enrollment.refresh_from_db()
    return enrollment


def enrollment_live_check(*, enrollment: Enrollment, action: str) -> None:
    """Refuse to `action` (pause, resume, remove) an enrollment that has ended: it cannot start again (enroll the
    lead anew instead). Pausing a paused one, or resuming an active one, is no error: it is already so."""
    if enrollment.status not in LIVE_ENROLLMENT:
        raise ValidationError({"status": [
            f"This enrollment is {enrollment.get_status_display().lower()}: it cannot be {action}d. "
            "Enroll the lead again to start the sequence anew."
        ]})


def enrollment_pause(*, enrollment: Enrollment, by=None) -> Enrollment:
    """Hold this lead's emails from the sequence (due ones wait) until resumed; an enrollment not active is left as it is."""
    return _enrollment_switch(
        enrollment, by=by, from_status=Enrollment.Status.ACTIVE, to_status=Enrollment.Status.PAUSED,
        event_type=EventType.ENROLLMENT_PAUSED,
    )


def enrollment_resume(*, enrollment: Enrollment, by=None) -> Enrollment:
    """Let a paused enrollment send again; one not paused is left as it is."""
    return _enrollment_switch(
        enrollment, by=by, from_status=Enrollment.Status.PAUSED, to_status=Enrollment.Status.ACTIVE,
        event_type=EventType.ENROLLMENT_RESUMED,
    )


# --- The rules checked before every send ----------------------------------------------


def delivery_stop_reason(*, enrollment: Enrollment, sequence: Sequence, step: Step, lead: Lead, suppressed: bool) -> str | None:
    """Why this delivery must not go (it is skipped, and the lead leaves the sequence), or None."""
    if enrollment.status == Enrollment.Status.EXITED:
        return f"the lead left the sequence ({enrollment.exit_reason or 'exited'})"
    if enrollment.status == Enrollment.Status.COMPLETED:
        return "the sequence was already completed"
    if sequence.status == Sequence.Status.ARCHIVED:
        return "the sequence is archived"
    if not step.is_active:
        return "the step was switched off"
    if lead.archived_at is not None:
        return "the lead is archived"
    if lead.status == LeadStatus.CUSTOMER:
        return "the lead is a customer"
    if lead.status in pipeline.ENDED_STATUSES:
        return f"the lead is {pipeline.label(lead.status).lower()}"
    if past_goal(lead.status, sequence.goal_stage):
        return f"the lead reached {pipeline.label(lead.status)}, the sequence's goal"
    if step.kind == Step.Kind.EMAIL and not lead.email:
        return "the lead has no email address"
    if suppressed:
        return "the address is suppressed"
    return None


def delivery_wait_reason(*, enrollment: Enrollment, sequence: Sequence) -> str | None:
    """Why this delivery must wait (it stays scheduled), or None."""
    if sequence.status in (Sequence.Status.PAUSED, Sequence.Status.DRAFT):
        return "the sequence is paused"
    if enrollment.status == Enrollment.Status.PAUSED:
        return "the lead's enrollment is paused"
    return None
