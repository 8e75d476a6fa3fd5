"""Booking: every rule of a booked meeting, whichever way it comes (the public page, a signed link, a rep's page).

- `meeting_book`: a slot on a page is booked for exactly one person: the reps'
  calendars are locked (in id order) and the slot read again under the lock;
  the database refuses a second booking of a rep's slot as the last guard. The
  person comes in through the capture service (dedupe, attribution, consent,
  spam defence) in the same transaction, so a refused slot leaves nothing
  behind, and a capture held as spam books nothing.
- A booking logs a Meeting on the lead (which ends its sequences), gives an
  unowned lead to the rep, moves the lead to the page's stage through the stage
  service, and emails both sides an invitation once the transaction commits.
- Reschedule and cancel through the booker's signed link; the reminder before
  the meeting goes out once; the rep marks it held or no-show, and a no-show
  can be enrolled in the page's follow-up sequence.
"""

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from capture.services import CaptureContext, CaptureRefused, capture_submit
from core.events import Actor, EventType, event_record
from core.policy import access_for, check_may_work
from core.ratelimit import RateLimit, hit
from leads import services as lead_services
from leads.models import Activity, Lead
from nurturing import services as nurturing_services
from nurturing.services import feed_token_hash

from .availability import Slot, UnknownTimeZone, calendars_for, free_slots, zone
from .models import BookingPage, Calendar, DayOff, Meeting, WorkingHours

log = logging.getLogger(__name__)
ALTERNATIVES = 3


class BookingRefused(Exception):
    """Nothing was booked: `errors` say why by field ("" for the booking as a whole); `alternatives` are the next
    free slots to offer instead."""

    def __init__(self, errors: dict[str, str], *, status: int = 400, alternatives: list | None = None,
                 retry_after: int = 0):
        super().__init__("; ".join(errors.values()))
        self.errors, self.status, self.alternatives, self.retry_after = errors, status, alternatives or [], retry_after


@dataclass
class Booked:
    meeting: Meeting | None = None
    held_as_spam: bool = False  # the capture was quarantined: nothing booked, the booker is told nothing more
    messages: list = field(default_factory=list)


# --- Reading a page's slots ----------------------------------------------------------------------


def page_reps(page: BookingPage, *, lead: Lead | None = None) -> list[int]:
    """The reps a page books with: the lead's owner alone when the owner is on the page."""
    reps = list(page.reps.values_list("pk", flat=True))
    if lead is not None and lead.owner_id in reps:
        return [lead.owner_id]
    return reps


def page_slots(page: BookingPage, *, start: datetime, days: int = 7, lead: Lead | None = None,
               now: datetime | None = None, exclude_meeting=None, rep_ids=None) -> list[Slot]:
    now = now or timezone.now()
    end = start + timedelta(days=days)
    calendars = calendars_for(rep_ids if rep_ids is not None else page_reps(page, lead=lead),
                              minutes=page.duration_minutes, start=start, end=end)
    return free_slots(calendars, minutes=page.duration_minutes, start=start, end=end, now=now,
                      exclude_meeting=exclude_meeting)


def _slot_refusal(page, calendars, starts_at: datetime, now: datetime, *, exclude_meeting=None) -> Slot | BookingRefused:
    """The slot at `starts_at` with its free reps, or why it cannot be booked (with the next free slots)."""
    if not calendars:
        return BookingRefused({"": "Nobody takes bookings on this page at the moment."}, status=409)
    day = timedelta(days=1)

    def alternatives():
        after = max(starts_at, now)
        return free_slots(calendars, minutes=page.duration_minutes, start=after, end=after + timedelta(days=14),
                          now=now, exclude_meeting=exclude_meeting)[:ALTERNATIVES]

    if starts_at <= now:
        return BookingRefused({"slot": "That time has passed: choose a time from the list."},
                              alternatives=alternatives())
    if starts_at < now + timedelta(minutes=min(c.notice_minutes for c in calendars)):
        return BookingRefused({"slot": "That time is too soon to prepare for: choose a later time."},
                              alternatives=alternatives())
    if starts_at >= now + timedelta(days=max(c.horizon_days for c in calendars)):
        return BookingRefused({"slot": "That time is too far ahead to book yet: choose an earlier time."},
                              alternatives=alternatives())
    found = free_slots(calendars, minutes=page.duration_minutes, start=starts_at - day, end=starts_at + day, now=now,
                       exclude_meeting=exclude_meeting)
    for slot in found:
        if slot.starts_at == starts_at:
            return slot
    grid = free_slots(calendars, minutes=page.duration_minutes, start=starts_at - day, end=starts_at + day, now=now,
                      with_bookings=False)
    if any(slot.starts_at == starts_at for slot in grid):
        return BookingRefused({"slot": "Sorry, that time was just taken. Choose another time."}, status=409,
                              alternatives=alternatives())
    return BookingRefused({"slot": "That time is outside the hours this page offers: choose a time from the list."},
                          alternatives=alternatives())


def slot_check(page, starts_at: datetime, *, lead: Lead | None = None, now: datetime | None = None) -> Slot:
    """The free slot at `starts_at` on the page (raises BookingRefused saying why not)."""
    now = now or timezone.now()
    calendars = calendars_for(page_reps(page, lead=lead), minutes=page.duration_minutes,
                              start=starts_at - timedelta(days=1), end=starts_at + timedelta(days=1))
    found = _slot_refusal(page, calendars, starts_at, now)
    if isinstance(found, BookingRefused):
        raise found
    return found


# --- Booking -------------------------------------------------------------------------------------


def _locked_free_reps(page, rep_ids, starts_at, now, *, exclude_meeting=None) -> Slot:
    """Lock the reps' calendars (id order: two bookings never wait on each other crosswise) and read the slot
    again under the locks: what another booking took a moment ago is seen now."""
    list(Calendar.objects.select_for_update().filter(rep_id__in=rep_ids).order_by("pk").values_list("pk", flat=True))
    calendars = calendars_for(rep_ids, minutes=page.duration_minutes, start=starts_at - timedelta(days=1),
                              end=starts_at + timedelta(days=1))
    found = _slot_refusal(page, calendars, starts_at, now, exclude_meeting=exclude_meeting)
    if isinstance(found, BookingRefused):
        raise found
    return found


def _choose_rep(slot: Slot, lead: Lead):
    """The lead's owner when free then; else round robin: the free rep booked longest ago (never first)."""
    if lead.owner_id in slot.reps:
        return lead.owner_id
    calendars = Calendar.objects.filter(rep_id__in=slot.reps).order_by(F("last_booked_at").asc(nulls_first=True), "pk")
    return calendars.values_list("rep_id", flat=True)[0]


def _lead_data(page: BookingPage, lead: Lead, data: dict) -> dict:
    """A known lead's booking (from their signed link): the form's lead fields come from the lead, never retyped."""
    filled = dict(data)
    for spec in page.form.fields:
        if spec.get("maps_to") and spec["maps_to"] != "company":
            filled[spec["name"]] = getattr(lead, spec["maps_to"], "") or ""
        elif spec.get("maps_to") == "company" and lead.company_id:
            filled[spec["name"]] = lead.company.name
    return filled


def _timeline_text(meeting: Meeting, page: BookingPage) -> str:
    local = meeting.starts_at.astimezone(zone(meeting.time_zone))
    text = (f"Booked on “{page.title}” for {local:%a %-d %b %Y %H:%M} ({meeting.time_zone}), "
            f"{page.duration_minutes} minutes")
    if meeting.meeting_url:
        text += f". Link: {meeting.meeting_url}"
    answers = "; ".join(f"{k}: {v}" for k, v in meeting.answers.items() if v not in ("", None, False))
    return text + (f". Answers: {answers}" if answers else "")


def meeting_book(*, page: BookingPage, starts_at: datetime, time_zone: str, data: dict, context: CaptureContext,
                 lead: Lead | None = None, now: datetime | None = None, notify: bool = True) -> Booked:
    """Book the slot at `starts_at` (UTC) on `page` for the person in `data` (the page's form fields), or for
    `lead` (their signed link). Raises BookingRefused (nothing written) or returns the meeting.

    Guarantees: one booking per rep and slot, whatever arrives at once (calendar locks, then a unique index);
    the slot is one the page offers now (hours, days off, buffers, notice, horizon, daily maximum); the time zone
    is a real one; at most CRM_BOOKING_PER_ADDRESS_PER_HOUR bookings from one address; the capture, the
    meeting, its timeline entry, the owner and the stage move commit together or not at all.
    """
    now = now or timezone.now()
    if not page.is_active:
        raise BookingRefused({"": "This booking page is closed."}, status=404)
    try:
        zone(time_zone)
    except UnknownTimeZone as exc:
        raise BookingRefused({"time_zone": str(exc)}) from None
    if context.address:
        decision = hit(RateLimit("booking-address", settings.CRM_BOOKING_PER_ADDRESS_PER_HOUR, 3600), context.address)
        if not decision.allowed:
            raise BookingRefused({"": "Too many bookings from here: wait a little and try again."}, status=429,
                                 retry_after=decision.retry_after_seconds)
    rep_ids = page_reps(page, lead=lead)
    slot_check(page, starts_at, lead=lead, now=now)  # refuse a bad slot before any lock or capture
    if lead is not None:
        data = _lead_data(page, lead, data)
    try:
        with transaction.atomic():
            slot = _locked_free_reps(page, rep_ids, starts_at, now)
            captured = capture_submit(page.form, data, context, at_once=True)
            if captured.quarantined:
                return Booked(held_as_spam=True)
            person = Lead.objects.select_related("owner", "company").get(pk=captured.lead.pk)
            return Booked(meeting=_meeting_create(page=page, slot=slot, lead=person, time_zone=time_zone,
                                                  answers=_answers(page, data), now=now, notify=notify))
    except CaptureRefused as refusal:
        raise BookingRefused(refusal.errors, status=refusal.status, retry_after=refusal.retry_after) from None
    except IntegrityError as exc:
        # Another booking of this rep's slot committed between our read and our write (the unique index).
        calendars = calendars_for(rep_ids, minutes=page.duration_minutes, start=starts_at - timedelta(days=1),
                                  end=starts_at + timedelta(days=14))
        refusal = _slot_refusal(page, calendars, starts_at, now)
        if isinstance(refusal, BookingRefused):
            raise refusal from None
        raise BookingRefused({"slot": "Sorry, that time was just taken. Choose another time."}, status=409,
                             alternatives=[s for s in page_slots(page, start=starts_at, days=14, lead=lead, now=now)
                                           if s.starts_at != starts_at][:ALTERNATIVES]) from exc


def _answers(page: BookingPage, data: dict) -> dict:
    return {spec.get("label") or spec["name"]: data.get(spec["name"], "")
            for spec in page.form.fields if not spec.get("maps_to")}


def _meeting_create(*, page, slot: Slot, lead: Lead, time_zone: str, answers: dict, now: datetime,
                    notify: bool) -> Meeting:
    rep_id = _choose_rep(slot, lead)
    calendar = Calendar.objects.select_related("rep").get(rep_id=rep_id)
    rep = calendar.rep
    with transaction.atomic():  # a savepoint: the unique index's refusal leaves the outer transaction usable
        meeting = Meeting.objects.create(
            page=page, rep=rep, lead=lead, starts_at=slot.starts_at, ends_at=slot.ends_at, time_zone=time_zone,
            meeting_url=calendar.meeting_url, answers=answers, booked_at=now,
        )
    Calendar.objects.filter(pk=calendar.pk).update(last_booked_at=now)
    if lead.owner_id is None and access_for(rep).owns_leads:
        lead_services.lead_assign_owner(leads=[lead], owner=rep)
        lead.owner = rep
    # The Meeting on the timeline is logged now (the booking is the touch); it ends the lead's sequences.
    author = rep if access_for(rep).can_work(lead) else None
    activity = lead_services.activity_log_meeting(
        lead=lead, by=author, occurred_at=now, body=_timeline_text(meeting, page),
        duration_seconds=page.duration_minutes * 60,
    )
    Meeting.objects.filter(pk=meeting.pk).update(activity=activity)
    meeting.activity = activity
    event_record(EventType.MEETING_BOOKED, actor=Actor.system(f"booking page {page.slug}"), lead_id=lead.pk,
                 subject=meeting, at=now, payload=_payload(meeting))
    if page.move_to_status:
        lead_services.lead_stage_action(
            lead=lead, to_status=page.move_to_status, actor=f"booking page {page.slug}",
            reason=f"Booked a meeting on “{page.title}”", source=Actor.system(f"booking page {page.slug}"),
        )
    _after_commit(meeting, "booked", notify=notify)
    return meeting


def _payload(meeting: Meeting) -> dict:
    return {"meeting": meeting.pk, "page": meeting.page_id, "rep": meeting.rep_id,
            "starts_at": meeting.starts_at.isoformat(), "ends_at": meeting.ends_at.isoformat()}


def _after_commit(meeting: Meeting, what: str, *, notify: bool = True) -> None:
    """Record what changed; its emails go out once the transaction commits (or, should the broker be down
    then, from the beat's sweep: `emails_unsent`). `notify` False: no email for this change (demo data)."""
    from . import tasks

    now = timezone.now()
    Meeting.objects.filter(pk=meeting.pk).update(last_change=what, changed_at=now,
                                                  emails_sent_for=None if notify else meeting.sequence)
    meeting.last_change, meeting.changed_at = what, now
    if notify:
        meeting_id = meeting.pk
        transaction.on_commit(lambda: tasks.meeting_emails.delay(meeting_id), robust=True)


def emails_claim(meeting_id: int) -> Meeting | None:
    """Take a meeting's latest change for sending its emails: once per revision, whoever asks at once."""
    with transaction.atomic():
        meeting = Meeting.objects.select_for_update().filter(pk=meeting_id).first()
        if meeting is None or meeting.emails_sent_for == meeting.sequence:
            return None
        meeting.emails_sent_for = meeting.sequence
        meeting.save(update_fields=["emails_sent_for"])
    return meeting


def emails_release(meeting: Meeting) -> None:
    """The emails could not be sent: the change is left for the next try (the task's retry, or the sweep)."""
    Meeting.objects.filter(pk=meeting.pk, emails_sent_for=meeting.sequence).update(emails_sent_for=None)


def emails_unsent(*, now: datetime | None = None, older_than_seconds: int = 120, limit: int = 100) -> list[int]:
    """Meetings whose latest change's emails have not gone out for a while (the broker was down at the time)."""
    now = now or timezone.now()
    return list(Meeting.objects.filter(emails_sent_for__isnull=True,
                                       changed_at__lte=now - timedelta(seconds=older_than_seconds))
                .order_by("changed_at").values_list("pk", flat=True)[:limit])


# --- The booker's signed link --------------------------------------------------------------------


def _live(meeting: Meeting, now: datetime) -> None:
    if meeting.status == Meeting.Status.CANCELLED:
        raise BookingRefused({"": "This meeting was cancelled. Book a new time on the booking page."}, status=410)
    if meeting.status != Meeting.Status.BOOKED or meeting.starts_at <= now:
        raise BookingRefused({"": "This meeting has already started or passed: it can no longer be changed."},
                             status=410)


def meeting_reschedule(*, meeting: Meeting, starts_at: datetime, time_zone: str, now: datetime | None = None) -> Meeting:
    """Move a booked meeting to another free slot of the same rep (the booker's signed link). The invitation is
    sent again as a new revision of the same event; the reminder goes out again before the new time."""
    now = now or timezone.now()
    try:
        zone(time_zone)
    except UnknownTimeZone as exc:
        raise BookingRefused({"time_zone": str(exc)}) from None
    page = meeting.page
    with transaction.atomic():
        locked = Meeting.objects.select_for_update().get(pk=meeting.pk)
        _live(locked, now)
        slot = _locked_free_reps(page, [locked.rep_id], starts_at, now, exclude_meeting=locked)
        before = locked.starts_at
        locked.starts_at, locked.ends_at, locked.time_zone = slot.starts_at, slot.ends_at, time_zone
        locked.sequence += 1
        locked.reminder_sent_at = None
        try:
            with transaction.atomic():
                locked.save(update_fields=["starts_at", "ends_at", "time_zone", "sequence", "reminder_sent_at"])
        except IntegrityError:
            raise BookingRefused({"slot": "Sorry, that time was just taken. Choose another time."}, status=409) from None
        if locked.activity_id:
            Activity.objects.filter(pk=locked.activity_id).update(body=_timeline_text(locked, page) + " (rescheduled)")
        event_record(EventType.MEETING_RESCHEDULED, actor=Actor.system("booking link"), lead_id=locked.lead_id,
                     subject=locked, at=now, payload={**_payload(locked), "was": before.isoformat()})
        _after_commit(locked, "rescheduled")
    return locked


def meeting_cancel(*, meeting: Meeting, reason: str = "", by=None, now: datetime | None = None) -> Meeting:
    """Cancel a booked meeting (the booker's link, or whoever works the lead): its slot is free again at once."""
    now = now or timezone.now()
    if by is not None:
        check_may_work(by, meeting.lead)
    with transaction.atomic():
        locked = Meeting.objects.select_for_update().get(pk=meeting.pk)
        _live(locked, now)
        locked.status = Meeting.Status.CANCELLED
        locked.cancelled_at, locked.cancel_reason = now, reason.strip()[:300]
        locked.sequence += 1
        locked.save(update_fields=["status", "cancelled_at", "cancel_reason", "sequence"])
        who = "the booker" if by is None else (by.get_full_name() or by.get_username())
        if locked.activity_id:  # the timeline's Meeting says so (it stays: the booking was a touch)
            Activity.objects.filter(pk=locked.activity_id).update(
                body=f"Cancelled by {who}" + (f" ({locked.cancel_reason})" if locked.cancel_reason else "") + ". "
                     + _timeline_text(locked, locked.page))
        event_record(EventType.MEETING_CANCELLED, actor=Actor.of(by, label="booking link"), lead_id=locked.lead_id,
                     subject=locked, at=now, payload={**_payload(locked), "reason": locked.cancel_reason})
        _after_commit(locked, "cancelled")
    return locked


# --- After the meeting ---------------------------------------------------------------------------

OUTCOMES = {"held": Meeting.Status.HELD, "no_show": Meeting.Status.NO_SHOW}


@dataclass
class Marked:
    meeting: Meeting
    enrolled: bool = False
    not_enrolled: str = ""  # why the no-show was not enrolled in the page's follow-up sequence


def meeting_mark(*, meeting: Meeting, outcome: str, by, now: datetime | None = None) -> Marked:
    """The rep (or whoever works the lead) says the meeting was held or the lead did not come. A no-show is
    enrolled in the page's follow-up sequence when it has one and the lead may be (the reason when not)."""
    now = now or timezone.now()
    if outcome not in OUTCOMES:
        raise ValidationError({"outcome": ["Say whether the meeting was held or the lead did not show."]})
    if not (by is not None and (meeting.rep_id == by.pk or access_for(by).can_work(meeting.lead))):
        raise PermissionDenied("Only the rep of the meeting, or who works the lead, can say how it went.")
    with transaction.atomic():
        locked = (Meeting.objects.select_for_update(of=("self",)).select_related("page__no_show_sequence", "lead")
                  .get(pk=meeting.pk))
        if locked.status == Meeting.Status.CANCELLED:
            raise ValidationError("This meeting was cancelled.")
        if locked.starts_at > now:
            raise ValidationError("This meeting has not started yet: say how it went once it has.")
        locked.status, locked.marked_at, locked.marked_by = OUTCOMES[outcome], now, by
        locked.save(update_fields=["status", "marked_at", "marked_by"])
        event_record(EventType.MEETING_HELD if outcome == "held" else EventType.MEETING_NO_SHOW, actor=Actor.of(by),
                     lead_id=locked.lead_id, subject=locked, at=now, payload=_payload(locked))
        marked = Marked(meeting=locked)
        sequence = locked.page.no_show_sequence
        if outcome == "no_show" and sequence is not None:
            refusal = nurturing_services.enrollment_refusal(lead=locked.lead, sequence=sequence)
            if refusal:
                marked.not_enrolled = refusal
            else:
                nurturing_services.enrollment_create(lead=locked.lead, sequence=sequence)
                marked.enrolled = True
    return marked


def reminders_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Claim the booked meetings whose reminder is due (each page's time before the start) and not yet sent:
    each claimed once, whatever ticks at once. Returns the claimed meetings' ids."""
    now = now or timezone.now()
    horizon = now + timedelta(minutes=settings.CRM_BOOKING_REMINDER_MAX_MINUTES)
    candidates = (Meeting.objects.filter(status=Meeting.Status.BOOKED, reminder_sent_at__isnull=True,
                                         starts_at__gt=now, starts_at__lte=horizon)
                  .select_related("page").order_by("starts_at")[:limit])
    claimed = []
    for meeting in candidates:
        if meeting.starts_at - timedelta(minutes=meeting.page.reminder_minutes) > now:
            continue
        if Meeting.objects.filter(pk=meeting.pk, reminder_sent_at__isnull=True,
                                  status=Meeting.Status.BOOKED).update(reminder_sent_at=now):
            claimed.append(meeting.pk)
    return claimed


# --- A rep's availability and calendar feed --------------------------------------------------------


def calendar_for(rep) -> Calendar:
    """The rep's calendar, made with the usual week (Monday to Friday, 9 to 17 in the site's zone) the first time."""
    calendar, created = Calendar.objects.get_or_create(rep=rep, defaults={"time_zone": settings.TIME_ZONE,
                                                                          "meeting_minutes": [30]})
    if created:
        WorkingHours.objects.bulk_create(WorkingHours(calendar=calendar, weekday=day) for day in range(5))
    return calendar


def calendar_save(*, calendar: Calendar, by, hours: dict[int, list[tuple]], days_off: list, **fields) -> Calendar:
    """Save a rep's availability all at once (refused whole, by field, when any part is wrong): `hours` per
    weekday a list of (starts, ends); `days_off` dates. Only the rep, or a manager, changes it."""
    if by is None or not (by.pk == calendar.rep_id or access_for(by).sees_all):
        raise PermissionDenied("Only the rep, or a manager, can change these hours.")
    errors = {}
    if "time_zone" in fields:
        try:
            zone(fields["time_zone"])
        except UnknownTimeZone as exc:
            errors["time_zone"] = [str(exc)]
    minutes = fields.get("meeting_minutes", calendar.meeting_minutes)
    if not isinstance(minutes, list) or not all(isinstance(m, int) and 5 <= m <= 480 for m in minutes):
        errors["meeting_minutes"] = ["Give meeting lengths in minutes between 5 and 480, e.g. 30, 45."]
    for day, blocks in hours.items():
        spans = sorted(blocks)
        for starts, ends in spans:
            if ends <= starts:
                errors[f"hours_{day}"] = [f"{WorkingHours.Weekday(day).label}: the hours end after they start."]
        if any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1)):
            errors[f"hours_{day}"] = [f"{WorkingHours.Weekday(day).label}: the hours overlap."]
    if errors:
        raise ValidationError(errors)
    for name, value in fields.items():
        setattr(calendar, name, value)
    try:
        calendar.full_clean(exclude=["rep"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    with transaction.atomic():
        calendar.save()
        calendar.hours.all().delete()
        WorkingHours.objects.bulk_create(WorkingHours(calendar=calendar, weekday=day, starts=s, ends=e)
                                         for day, blocks in hours.items() for s, e in blocks)
        calendar.days_off.all().delete()
        DayOff.objects.bulk_create(DayOff(calendar=calendar, date=d) for d in sorted(set(days_off)))
    return calendar


def meeting_feed_create(*, calendar: Calendar, by) -> str:
    """A new private feed address of the rep's booked meetings (any earlier one stops working). Returns the
    token, shown once: only its hash is kept."""
    if by is None or by.pk != calendar.rep_id:
        raise PermissionDenied("Only the rep makes their own calendar feed.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Calendar.objects.filter(pk=calendar.pk).update(feed_token_hash=feed_token_hash(token))
        event_record(EventType.MEETING_FEED_CREATED, actor=Actor.of(by), subject=calendar, payload={})
    calendar.feed_token_hash = feed_token_hash(token)
    return token


def meeting_feed_revoke(*, calendar: Calendar, by) -> None:
    if by is None or not (by.pk == calendar.rep_id or access_for(by).sees_all):
        raise PermissionDenied("Only the rep, or a manager, can stop this feed.")
    with transaction.atomic():
        if Calendar.objects.filter(pk=calendar.pk).exclude(feed_token_hash="").update(feed_token_hash=""):
            event_record(EventType.MEETING_FEED_REVOKED, actor=Actor.of(by), subject=calendar, payload={})
    calendar.feed_token_hash = ""


def calendar_by_feed_token(token: str) -> Calendar | None:
    if not token or len(token) > 100:
        return None
    return Calendar.objects.select_related("rep").filter(feed_token_hash=feed_token_hash(token)).first()
