"""Imports in the admin: read only (managers and marketers); uploading and running go through the import pages."""

from django.contrib import admin

from core.policy import may_import_leads

from .models import LeadImport


@admin.register(LeadImport)
class LeadImportAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "target", "created_by", "created_at", "status", "rows_total", "created_count",
                    "updated_count", "skipped_count", "error_count"]
    list_filter = ["status", "target"]
    list_select_related = ["created_by"]
    readonly_fields = [f.name for f in LeadImport._meta.fields]

    def has_module_permission(self, request):
        return may_import_leads(request.user)

    def has_view_permission(self, request, obj=None):
        return may_import_leads(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
