"""The event log in the admin: read only, as a log is; managers read it."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .events import actor_label
from .pagination import BoundedCountPaginator


class ReadOnlyAdminMixin:
    """A log: nothing is added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Registered by leads.admin, which adds the export of the log (recorded as leads' exports are).
class DomainEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "occurred_at", "type", "lead", "subject", "actor", "payload")
    list_filter = ("type", "actor_kind")
    search_fields = ("=lead_id",)
    search_help_text = "A lead's id: its whole history."
    list_select_related = ("actor_user",)
    fields = ("id", "type", "occurred_at", "recorded_at", "lead_id", "subject_type", "subject_id",
              "actor_kind", "actor_user", "actor_ref", "payload")
    ordering = ("-id",)
    paginator = BoundedCountPaginator
    show_full_result_count = False

    @admin.display(description="lead", ordering="lead_id")
    def lead(self, obj):
        if obj.lead_id is None:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("admin:leads_lead_change", args=[obj.lead_id]), obj.lead_id)

    @admin.display(description="subject")
    def subject(self, obj):
        return f"{obj.subject_type} #{obj.subject_id}" if obj.subject_type else "—"

    @admin.display(description="by")
    def actor(self, obj):
        return actor_label(obj)
