"""The rep's booked meetings: mark them held or no-show, and set the availability the booking pages offer."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from booking import services as booking_services
from booking.models import BookingPage, Meeting
from leads.forms import add_service_errors

from .availability_forms import AvailabilityForm
from .views import _back, workspace_view


@require_POST
@workspace_view
def meeting_mark(request, pk, outcome, *, access):
    meeting = get_object_or_404(Meeting.objects.select_related("lead", "page"), pk=pk)
    if not (meeting.rep_id == request.user.pk or access.can_see(meeting.lead)):
        raise PermissionDenied("This is not your meeting.")
    try:
        marked = booking_services.meeting_mark(meeting=meeting, outcome=outcome, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(request, reverse("workspace:today"))
    text = f"{meeting.lead}: {marked.meeting.get_status_display().lower()}."
    if marked.enrolled:
        text += f" Enrolled in “{meeting.page.no_show_sequence.name}”."
    elif marked.not_enrolled:
        text += f" Not enrolled in the follow-up sequence: {marked.not_enrolled}"
    messages.success(request, text)
    return _back(request, reverse("workspace:today"))


@require_http_methods(["GET", "POST"])
@workspace_view
def availability(request, *, access):
    """The rep's hours, days off and meeting rules for the booking pages; their private calendar feed."""
    if not access.owns_leads:
        raise PermissionDenied("Booking availability is for the reps who take meetings.")
    calendar = booking_services.calendar_for(request.user)
    feed_token = ""
    status = 200
    if request.method == "POST" and request.POST.get("feed") == "new":
        feed_token = booking_services.meeting_feed_create(calendar=calendar, by=request.user)
        form = AvailabilityForm(initial=AvailabilityForm.initial_for(calendar))
    elif request.method == "POST" and request.POST.get("feed") == "stop":
        booking_services.meeting_feed_revoke(calendar=calendar, by=request.user)
        messages.success(request, "The calendar feed is stopped: its address no longer works.")
        return redirect("workspace:availability")
    elif request.method == "POST":
        form = AvailabilityForm(request.POST)
        if form.is_valid():
            try:
                booking_services.calendar_save(calendar=calendar, by=request.user, **form.service_arguments())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Availability saved: the booking pages offer these times now.")
                return redirect("workspace:availability")
        status = 422
    else:
        form = AvailabilityForm(initial=AvailabilityForm.initial_for(calendar))
    pages = BookingPage.objects.filter(reps=request.user, is_active=True).order_by("title")
    return render(request, "workspace/availability.html", {
        "form": form, "calendar": calendar, "pages": pages, "feed_token": feed_token,
        "days": [form[f"hours_{day}"] for day in range(7)], "nav": "today",
    }, status=status)
