"""The website's traffic in the admin: read only. People and bots side by side, each row with its kind."""

from django.contrib import admin

from core.admin import ReadOnlyAdminMixin
from core.pagination import BoundedCountPaginator

from .models import PageView, TrafficDaily, Visitor


@admin.register(TrafficDaily)
class TrafficDailyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per day, source, medium, campaign, landing page and kind: views, visitors, visits (landings)."""

    list_display = ("day", "kind", "utm_source", "utm_medium", "utm_campaign", "landing_path", "visitors", "landings", "views")
    list_filter = ("kind", "day", "utm_source", "utm_medium")
    search_fields = ("utm_campaign", "landing_path")
    date_hierarchy = "day"
    ordering = ("-day", "kind", "-visitors")


@admin.register(PageView)
class PageViewAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "kind", "path", "utm_source", "utm_campaign", "device", "bot_reason", "lead_id")
    list_filter = ("kind", "device", "is_landing", "has_js")
    search_fields = ("=visitor_id", "=lead_id")
    search_help_text = "A visitor id or a lead's id."
    ordering = ("-received_at",)
    paginator = BoundedCountPaginator
    show_full_result_count = False


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("visitor_id", "first_seen_at", "kind", "lead_id")
    list_filter = ("kind",)
    search_fields = ("=visitor_id", "=lead_id")
    paginator = BoundedCountPaginator
    show_full_result_count = False
