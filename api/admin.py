"""Every user's API tokens for managers: list them and revoke any (no one sees a token's secret: it is not kept)."""

from django.contrib import admin, messages

from core.admin import ReadOnlyAdminMixin
from core.policy import access_for

from .models import ApiToken
from .services import api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "user", "shown_prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user", "revoked_by")
    fields = ("name", "user", "shown_prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at",
              "revoked_by")
    readonly_fields = fields
    actions = ["revoke"]

    def has_view_permission(self, request, obj=None):
        return access_for(request.user).is_manager

    def has_module_permission(self, request):
        return access_for(request.user).is_manager

    @admin.display(description="token")
    def shown_prefix(self, obj):
        return f"crm_{obj.prefix}_…"

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token, by=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
