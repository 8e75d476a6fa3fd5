"""Booking pages are set up in the admin by marketers and managers; managers see every meeting booked."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from .availability import UnknownTimeZone, zone
from .models import BookingPage, Calendar, DayOff, Meeting, WorkingHours


@admin.register(BookingPage)
class BookingPageAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "duration_minutes", "is_active", "is_default", "move_to_status", "public_page")
    list_filter = ("is_active", "is_default")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("reps",)
    autocomplete_fields = ("form",)
    readonly_fields = ("public_page",)
    fieldsets = (
        (None, {"fields": ("title", "slug", "public_page", "is_active", "is_default", "intro", "form", "reps")}),
        ("The meeting", {"fields": ("duration_minutes", "reminder_minutes")}),
        ("What follows", {"fields": ("move_to_status", "no_show_sequence")}),
    )

    @admin.display(description="Public page")
    def public_page(self, page):
        if not page.pk:
            return "—"
        url = reverse("booking:page", args=[page.slug])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0


class DayOffInline(admin.TabularInline):
    model = DayOff
    extra = 0


class CalendarForm(forms.ModelForm):
    class Meta:
        model = Calendar
        exclude = ("feed_token_hash", "last_booked_at")

    def clean_time_zone(self):
        try:
            zone(self.cleaned_data["time_zone"])
        except UnknownTimeZone as exc:
            raise ValidationError(str(exc)) from exc
        return self.cleaned_data["time_zone"]


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    form = CalendarForm
    list_display = ("rep", "time_zone", "meeting_minutes", "daily_max", "is_available")
    list_filter = ("is_available",)
    search_fields = ("rep__username", "rep__first_name", "rep__last_name")
    autocomplete_fields = ("rep",)
    inlines = (WorkingHoursInline, DayOffInline)


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ("starts_at", "lead", "rep", "page", "status", "reminder_sent_at")
    list_filter = ("status", "page", "rep")
    date_hierarchy = "starts_at"
    search_fields = ("lead__email", "lead__last_name")
    list_select_related = ("lead", "rep", "page")
    readonly_fields = [f.name for f in Meeting._meta.fields]

    def has_add_permission(self, request):
        return False  # booked on a page, through booking.services

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
