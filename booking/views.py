"""The public booking pages, the booker's signed links and the reps' calendar feeds.

Each only parses the request and shows the answer; booking.services holds the rules.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from capture.captcha import captcha, captcha_allow
from capture.services import CaptureContext, fill_token
from core.http import client_address
from leads.models import Lead

from . import ics
from .availability import UnknownTimeZone, time_zones, zone
from .emails import rebook_url
from .models import BookingPage, Meeting
from .services import (
    BookingRefused,
    calendar_by_feed_token,
    meeting_book,
    meeting_cancel,
    meeting_reschedule,
    page_slots,
    slot_check,
)
from .tokens import BadLink, lead_from_token, lead_token, manage_meeting_id, manage_token

STAMP = "%Y%m%dT%H%M%SZ"
CONTROL = ("csrfmiddlewaretoken", "crm_token", "crm_hp", "crm_visitor", "crm_page", "crm_landing", "crm_referrer",
           "tz", "t", "starts")
DAYS_SHOWN = 7


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def _moment(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, STAMP).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _page(slug) -> BookingPage:
    page = BookingPage.objects.select_related("form").filter(slug=slug, is_active=True).first()
    if page is None:
        raise Http404("No such booking page, or it is closed.")
    return page


def _time_zone(request, fallback: str) -> tuple[str, str]:
    """The visitor's time zone (the browser's, sent by booking.js, or chosen) and a message when it is unknown."""
    asked = (request.POST.get("tz") if request.method == "POST" else None) or request.GET.get("tz", "")
    if not asked:
        return fallback, ""
    try:
        zone(asked)
    except UnknownTimeZone as exc:
        return fallback, f"{exc} Times are shown in {fallback}."
    return asked, ""


def _lead(request) -> tuple[Lead | None, str, str]:
    """The lead of a signed booking link (?t=), the token, and a message when the link is bad."""
    token = (request.POST.get("t") if request.method == "POST" else None) or request.GET.get("t", "")
    if not token:
        return None, "", ""
    try:
        lead_id = lead_from_token(token)
    except BadLink as exc:
        return None, "", str(exc)
    lead = Lead.objects.live().select_related("owner", "company").filter(pk=lead_id).first()
    if lead is None:
        return None, "", "This booking link is no longer valid: fill in your details below."
    return lead, token, ""


def _fallback_zone(page) -> str:
    calendar = page.reps.filter(booking_calendar__isnull=False).values_list("booking_calendar__time_zone", flat=True).first()
    return calendar or "UTC"


def _days(slots, tz) -> list[tuple[date, list]]:
    days = defaultdict(list)
    for slot in slots:
        local = slot.starts_at.astimezone(tz)
        days[local.date()].append((local, stamp(slot.starts_at)))
    return sorted(days.items())


def _query(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def _render(request, template: str, context: dict, tz_name: str, *, status: int = 200):
    """The page with every time in the visitor's time zone (the templates' date filters read the current one)."""
    with timezone.override(zone(tz_name)):
        return render(request, template, context, status=status)


def _masked(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}…@{domain}" if domain else ""


@require_GET
def page(request, slug):
    """/book/<slug>/: a week of free slots in the visitor's time zone."""
    booking_page = _page(slug)
    lead, token, link_error = _lead(request)
    tz_name, tz_error = _time_zone(request, _fallback_zone(booking_page))
    tz = zone(tz_name)
    now = timezone.now()
    today = now.astimezone(tz).date()
    try:  # from today up to a year ahead (a far date is no page's, and would overflow the week's arithmetic)
        first = min(max(date.fromisoformat(request.GET.get("from", "")), today), today + timedelta(days=366))
    except ValueError:
        first = today
    start = max(datetime.combine(first, datetime.min.time()).replace(tzinfo=tz).astimezone(UTC), now)
    slots = page_slots(booking_page, start=start, days=DAYS_SHOWN, lead=lead, now=now)
    context = {
        "page": booking_page, "days": _days(slots, tz), "tz": tz_name, "tz_error": tz_error, "link_error": link_error,
        "lead": lead, "t": token, "zones": time_zones(), "first": first,
        "earlier": _query(tz=tz_name, t=token, **{"from": (first - timedelta(days=DAYS_SHOWN)).isoformat()})
        if first > today else "",
        "later": _query(tz=tz_name, t=token, **{"from": (first + timedelta(days=DAYS_SHOWN)).isoformat()}),
        "keep": _query(tz=tz_name, t=token),
    }
    return _render(request, "booking/page.html", context, tz_name)


@require_GET
def for_lead(request, token):
    """A lead's link from a nurture email: the booking page its owner books on (else the team's), knowing who
    it is."""
    try:
        lead_id = lead_from_token(token)
    except BadLink:
        lead_id = None
    lead = Lead.objects.live().filter(pk=lead_id).first() if lead_id else None
    pages = BookingPage.objects.filter(is_active=True)
    chosen = None
    if lead is not None and lead.owner_id:
        chosen = pages.filter(reps=lead.owner_id).order_by("-is_default", "pk").first()
    chosen = chosen or pages.filter(is_default=True).first()
    if chosen is None:
        raise Http404("There is no booking page at the moment: reply to our email and we will find a time.")
    query = _query(t=lead_token(lead.pk) if lead is not None else "")
    return HttpResponseRedirect(reverse("booking:page", args=[chosen.slug]) + (f"?{query}" if query else ""))


def _slot_page(request, booking_page, starts_at, *, lead, token, tz_name, tz_error="", errors=None,
               alternatives=(), status=200, data=None):
    errors = errors or {}
    tz = zone(tz_name)
    names = {spec["name"] for spec in booking_page.form.fields} | {"consent"}
    fields = [spec for spec in booking_page.form.fields if not (lead is not None and spec.get("maps_to"))]
    context = {
        "page": booking_page, "form": booking_page.form, "fields": fields, "starts_at": starts_at,
        "local": starts_at.astimezone(tz) if starts_at else None,
        "ends": (starts_at + timedelta(minutes=booking_page.duration_minutes)).astimezone(tz) if starts_at else None,
        "tz": tz_name, "tz_error": tz_error, "lead": lead, "t": token, "masked": _masked(lead.email) if lead else "",
        "errors": errors, "data": data or {}, "token": fill_token(booking_page.form),
        "general_errors": [message for name, message in errors.items() if name not in names],
        "alternatives": [(slot.starts_at.astimezone(tz), stamp(slot.starts_at)) for slot in alternatives],
        "keep": _query(tz=tz_name, t=token), "stamp": stamp(starts_at) if starts_at else "", "captcha": captcha(),
    }
    response = _render(request, "booking/slot.html", context, tz_name, status=status)
    if context["captcha"]:
        captcha_allow(response, context["captcha"])
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def slot(request, slug, when):
    """/book/<slug>/at/<UTC time>/: the booking form for one slot; posting it books."""
    booking_page = _page(slug)
    lead, token, _ = _lead(request)
    tz_name, tz_error = _time_zone(request, _fallback_zone(booking_page))
    starts_at = _moment(when)
    if starts_at is None:
        return _slot_page(request, booking_page, None, lead=lead, token=token, tz_name=tz_name, status=400,
                          errors={"slot": "That time could not be read: choose a time from the list."})
    if request.method == "GET":
        try:
            slot_check(booking_page, starts_at, lead=lead)
        except BookingRefused as refusal:
            return _slot_page(request, booking_page, starts_at, lead=lead, token=token, tz_name=tz_name,
                              tz_error=tz_error, errors=refusal.errors, alternatives=refusal.alternatives,
                              status=refusal.status if refusal.status != 400 else 422)
        return _slot_page(request, booking_page, starts_at, lead=lead, token=token, tz_name=tz_name, tz_error=tz_error)
    post = request.POST
    data = {k: v for k, v in post.items() if k not in CONTROL}
    context = CaptureContext(
        page_url=settings.CRM_SITE_URL + request.path, referrer=post.get("crm_referrer", ""),
        landing_page=post.get("crm_landing", ""), visitor_id=post.get("crm_visitor", "")[:40],
        address=client_address(request), hosted=True, fill_token=post.get("crm_token", ""),
        honeypot=post.get("crm_hp", ""), captcha=post.get(captcha()["field"], "") if captcha() else "",
    )
    try:
        booked = meeting_book(page=booking_page, starts_at=starts_at, time_zone=post.get("tz", ""), data=data,
                              context=context, lead=lead)
    except BookingRefused as refusal:
        response = _slot_page(request, booking_page, starts_at, lead=lead, token=token, tz_name=tz_name,
                              tz_error=tz_error, errors=refusal.errors, alternatives=refusal.alternatives,
                              status=refusal.status if refusal.status != 400 else 422, data=post)
        if refusal.retry_after:
            response["Retry-After"] = str(refusal.retry_after)
        return response
    if booked.meeting is None:  # held as suspected spam: thanked like anyone, and nothing booked
        return render(request, "booking/held.html", {"page": booking_page})
    return HttpResponseRedirect(reverse("booking:manage", args=[manage_token(booked.meeting)]) + "?"
                                + _query(booked="1", tz=booked.meeting.time_zone))


def _meeting(token) -> Meeting:
    meeting_id = manage_meeting_id(token)
    meeting = Meeting.objects.select_related("page", "rep", "lead").filter(pk=meeting_id).first()
    if meeting is None:
        raise BadLink("This meeting no longer exists. Book a new time on the booking page.")
    return meeting


def signed_meeting(view):
    """The view gets the meeting its signed link names; a forged, expired or stale link gets a page saying what
    to do (400), and nothing more."""

    @wraps(view)
    def wrapped(request, token):
        try:
            meeting = _meeting(token)
        except BadLink as exc:
            return render(request, "booking/bad_link.html", {"message": str(exc)}, status=400)
        return view(request, token, meeting)

    return wrapped


@never_cache
@require_http_methods(["GET", "POST"])
@signed_meeting
def manage(request, token, meeting):
    """The booker's page of their meeting (their signed link): see it, add it to a calendar, cancel it."""
    errors = {}
    if request.method == "POST":
        try:
            meeting_cancel(meeting=meeting, reason=request.POST.get("reason", ""))
        except BookingRefused as refusal:
            errors = refusal.errors
        else:
            return HttpResponseRedirect(reverse("booking:manage", args=[token]) + "?" + _query(tz=meeting.time_zone))
    tz_name, _ = _time_zone(request, meeting.time_zone)
    tz = zone(tz_name)
    return _render(request, "booking/manage.html", {
        "meeting": meeting, "token": token, "local": meeting.starts_at.astimezone(tz),
        "ends": meeting.ends_at.astimezone(tz), "tz": tz_name, "errors": errors,
        "booked": request.GET.get("booked") == "1", "rebook": rebook_url(meeting, absolute=False),
        "changeable": meeting.status == Meeting.Status.BOOKED and meeting.starts_at > timezone.now(),
    }, tz_name, status=410 if errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
@signed_meeting
def reschedule(request, token, meeting):
    """The booker picks another time with the same rep (their signed link)."""
    tz_name, tz_error = _time_zone(request, meeting.time_zone)
    tz = zone(tz_name)
    errors, alternatives = {}, []
    if request.method == "POST":
        starts_at = _moment(request.POST.get("starts", ""))
        if starts_at is None:
            errors = {"slot": "That time could not be read: choose a time from the list."}
        else:
            try:
                meeting_reschedule(meeting=meeting, starts_at=starts_at, time_zone=request.POST.get("tz", ""))
            except BookingRefused as refusal:
                errors, alternatives = refusal.errors, refusal.alternatives
            else:
                return HttpResponseRedirect(reverse("booking:manage", args=[token]) + "?" + _query(tz=tz_name))
    now = timezone.now()
    changeable = meeting.status == Meeting.Status.BOOKED and meeting.starts_at > now
    slots = page_slots(meeting.page, start=now, days=14, rep_ids=[meeting.rep_id], now=now,
                       exclude_meeting=meeting) if changeable else []
    return _render(request, "booking/reschedule.html", {
        "meeting": meeting, "token": token, "tz": tz_name, "tz_error": tz_error, "zones": time_zones(),
        "days": _days([s for s in slots if s.starts_at != meeting.starts_at], tz), "errors": errors,
        "alternatives": [(s.starts_at.astimezone(tz), stamp(s.starts_at)) for s in alternatives],
        "changeable": changeable, "local": meeting.starts_at.astimezone(tz),
    }, tz_name, status=409 if errors else 200)


@require_GET
@signed_meeting
def invite(request, token, meeting):
    """The meeting's invitation as a file, for any calendar."""
    response = HttpResponse(ics.invitation(meeting), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="meeting.ics"'
    return response


@never_cache
@require_GET
def feed(request, token):
    """A rep's private calendar feed of their booked meetings (the last 30 days and all ahead)."""
    calendar = calendar_by_feed_token(token)
    if calendar is None:
        raise Http404("No such calendar feed, or it was stopped.")
    meetings = (Meeting.objects.filter(rep_id=calendar.rep_id, status=Meeting.Status.BOOKED,
                                       starts_at__gte=timezone.now() - timedelta(days=30))
                .select_related("page", "rep", "lead").order_by("starts_at")[:2000])
    name = f"Booked meetings: {calendar.rep.get_full_name() or calendar.rep.get_username()}"
    return HttpResponse(ics.feed(meetings, name=name), content_type="text/calendar; charset=utf-8")
