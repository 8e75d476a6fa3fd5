"""Managers subscribe endpoints and read the delivery log in the admin; every write goes through outbound.services.

Only managers see any of it (core.policy.may_manage_webhooks): the secrets
sign what the CRM sends, and the log holds what it sent.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.pagination import BoundedCountPaginator
from core.policy import may_manage_webhooks

from . import selectors, services
from .event_types import PUBLIC_TYPES, TEST_TYPE, public_type_choices
from .models import Delivery, Endpoint


class ManagersOnly:
    """Every admin permission is the policy's answer: managers only."""

    def has_module_permission(self, request):
        return may_manage_webhooks(request.user)

    def has_view_permission(self, request, obj=None):
        return may_manage_webhooks(request.user)

    def has_add_permission(self, request):
        return may_manage_webhooks(request.user)

    def has_change_permission(self, request, obj=None):
        return may_manage_webhooks(request.user)

    def has_delete_permission(self, request, obj=None):
        return may_manage_webhooks(request.user)


class EndpointForm(forms.ModelForm):
    """Parses and shows errors; the rules are outbound.services.endpoint_check's."""

    url = forms.URLField(max_length=2000, assume_scheme="https", help_text=Endpoint._meta.get_field("url").help_text)
    event_types = forms.MultipleChoiceField(choices=public_type_choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Endpoint
        fields = ("url", "description", "event_types")

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            services.endpoint_check(self.instance)
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, problems)


@admin.register(Endpoint)
class EndpointAdmin(ManagersOnly, admin.ModelAdmin):
    form = EndpointForm
    list_display = ("url", "description", "subscribed", "state", "waiting", "given_up", "delivery_log")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    readonly_fields = ("state", "signing_secret", "failing_since", "created_by", "created_at", "delivery_log")
    fieldsets = (
        (None, {"fields": ("url", "description", "event_types")}),
        ("Signing and state", {"fields": ("signing_secret", "state", "failing_since", "created_by", "created_at",
                                          "delivery_log")}),
    )
    actions = ("send_test", "rotate_secret", "pause", "resume")

    def get_queryset(self, request):
        return selectors.endpoint_list().select_related("created_by")

    @admin.display(description="event types")
    def subscribed(self, obj):
        return ", ".join(obj.event_types)

    @admin.display(description="state")
    def state(self, obj):
        if obj.is_active:
            return "active"
        return f"paused {obj.paused_at:%Y-%m-%d %H:%M}: {obj.paused_reason}" if obj.paused_at else "paused"

    @admin.display(description="waiting")
    def waiting(self, obj):
        return obj.waiting

    @admin.display(description="given up")
    def given_up(self, obj):
        return obj.given_up

    @admin.display(description="signing secret")
    def signing_secret(self, obj):
        if obj.pk is None:
            return "Made when the endpoint is saved."
        previous = ""
        if obj.previous_secret and obj.previous_secret_expires_at:
            previous = format_html("<br>Previous secret, still signing until {}: <code>{}</code>",
                                   f"{obj.previous_secret_expires_at:%Y-%m-%d %H:%M %Z}", obj.previous_secret)
        return format_html("<code>{}</code>{}", obj.secret, previous)

    @admin.display(description="delivery log")
    def delivery_log(self, obj):
        if obj.pk is None:
            return "—"
        url = reverse("admin:outbound_delivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">Deliveries</a>', url)

    def save_model(self, request, obj, form, change):
        services.endpoint_save(endpoint=obj, by=request.user)

    def _each(self, request, queryset, action, done):
        for endpoint in queryset:
            try:
                action(endpoint=endpoint, by=request.user)
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{endpoint}: {' '.join(getattr(exc, 'messages', [str(exc)]))}",
                                  messages.ERROR)
                return
        self.message_user(request, done, messages.SUCCESS)

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        self._each(request, queryset, services.endpoint_send_test,
                   "Test event queued: see the delivery log in a few seconds.")

    @admin.action(description="Rotate the signing secret (the old one keeps signing for a day)")
    def rotate_secret(self, request, queryset):
        self._each(request, queryset, services.endpoint_rotate_secret,
                   "New secret made; messages carry a signature with each secret until the old one expires.")

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._each(request, queryset, services.endpoint_pause, "Paused: deliveries wait until it is resumed.")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._each(request, queryset, services.endpoint_resume, "Resumed: waiting deliveries go out now.")


class EventTypeFilter(admin.SimpleListFilter):
    """By event type, from the list of public types: no scan of the deliveries for their distinct types."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in (*PUBLIC_TYPES, TEST_TYPE)]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(Delivery)
class DeliveryAdmin(ManagersOnly, admin.ModelAdmin):
    """The delivery log: each event sent to each endpoint, its tries and the receiver's answers."""

    list_display = ("created_at", "endpoint", "event_type", "message_id", "status", "attempts", "last_status_code",
                    "updated_at", "next_attempt_at")
    list_filter = ("status", EventTypeFilter, "endpoint")
    list_select_related = ("endpoint",)
    search_fields = ("=message_id",)
    paginator = BoundedCountPaginator
    show_full_result_count = False
    actions = ("resend",)
    fields = ("endpoint", "event_type", "event_id", "message_id", "status", "attempts", "next_attempt_at",
              "last_status_code", "last_error", "created_at", "succeeded_at", "payload_shown", "tries")
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.delivery_list()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read only; resend is an action

    def has_delete_permission(self, request, obj=None):
        return False  # the log stays

    def has_resend_permission(self, request):
        return may_manage_webhooks(request.user)

    @admin.display(description="body")
    def payload_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False))

    @admin.display(description="tries (newest first)")
    def tries(self, obj):
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td>"
                "<td><pre>{}</pre></td></tr>",
            ((f"{a.started_at:%Y-%m-%d %H:%M:%S}", a.response_status or "—", a.duration_ms, a.error,
              json.dumps(a.request_headers, indent=1), a.request_body[:2000], a.response_excerpt)
             for a in selectors.attempt_list(delivery=obj)[:50]),
        )
        if not rows:
            return "Not tried yet."
        return format_html(
            "<table><tr><th>time</th><th>response</th><th>duration</th><th>error</th><th>request headers</th>"
            "<th>request body</th><th>response body (start)</th></tr>{}</table>", rows)

    @admin.action(description="Resend (same webhook-id)", permissions=["resend"])
    def resend(self, request, queryset):
        resent, problems = 0, []
        for delivery in queryset:
            try:
                services.delivery_resend(delivery=delivery, by=request.user)
                resent += 1
            except (ValidationError, PermissionDenied) as exc:
                problems.append(f"{delivery.message_id}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
        if resent:
            self.message_user(request, f"{resent} queued to be sent again with the same webhook-id.", messages.SUCCESS)
        for problem in problems[:10]:
            self.message_user(request, problem, messages.ERROR)
