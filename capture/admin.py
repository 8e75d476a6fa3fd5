"""Marketers build forms and review the quarantine in the admin; every write goes through capture.services."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from core.pagination import BoundedCountPaginator
from leads.models import Conversion, FormSubmission, Lead, LeadTouch
from nurturing.admin import NurturingLeadAdmin
from traffic.services import lead_page_views

from . import services
from .models import AssignmentRule, CaptureForm, Quarantine
from .snippet import embed_html

FIELDS_HELP = (
    'One object per field, e.g. [{"name": "email", "label": "Work email", "type": "email", "required": true, '
    '"maps_to": "email"}, {"name": "team_size", "label": "Team size", "type": "select", "choices": ["1-10", "11-50"]}]. '
    "type: text, email, tel, textarea, checkbox or select; maps_to: first_name, last_name, email, phone, title, "
    "company, or empty for a custom answer."
)


class CaptureFormForm(forms.ModelForm):
    """Parses and shows errors; the rules are capture.services.capture_form_check's."""

    fields = forms.JSONField(help_text=FIELDS_HELP, widget=forms.Textarea(attrs={"rows": 10, "cols": 100}))

    class Meta:
        model = CaptureForm
        exclude = ()

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            services.capture_form_check(self.instance)
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, problems)



@admin.register(CaptureForm)
class CaptureFormAdmin(admin.ModelAdmin):
    form = CaptureFormForm
    list_display = ("name", "slug", "conversion_kind", "is_active", "owner_rule", "sequence", "hosted_page")
    list_filter = ("is_active", "conversion_kind", "owner_rule")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("hosted_page", "embed_snippet")
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_active", "conversion_kind", "resource", "fields")}),
        ("Consent", {"fields": ("consent_text", "consent_version", "consent_required")}),
        ("After a submission", {"fields": ("thank_you_message", "thank_you_url", "owner_rule", "owner", "sequence")}),
        ("Where it is used", {"fields": ("allowed_sites", "hosted_page", "embed_snippet")}),
    )

    @admin.display(description="hosted page")
    def hosted_page(self, obj):
        if obj.pk is None:
            return "—"
        url = reverse("capture:hosted", args=[obj.slug])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description="HTML to paste into the website")
    def embed_snippet(self, obj):
        if obj.pk is None:
            return "Save the form first."
        return format_html('<textarea readonly rows="12" cols="100">{}</textarea>', embed_html(obj))

    def save_model(self, request, obj, form, change):
        services.capture_form_save(form=obj, by=request.user)

@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin):
    """Who gets captured leads by where they came from; the first matching rule wins, before the form's own rule."""

    list_display = ("position", "form", "utm_source", "utm_campaign", "persona", "country", "owner")
    list_display_links = ("position", "form")
    list_filter = ("form",)
    ordering = ("position", "id")


@admin.register(Quarantine)
class QuarantineAdmin(admin.ModelAdmin):
    """Submissions held back as suspected spam: release what a person sent, discard the rest."""

    list_display = ("received_at", "form", "reason", "what", "state")
    list_filter = ("form", ("released_at", admin.EmptyFieldListFilter), ("discarded_at", admin.EmptyFieldListFilter))
    readonly_fields = ("form", "received_at", "reason", "data_shown", "context_shown", "released_at", "released_by",
                       "released_lead_id", "discarded_at")
    exclude = ("data", "context")
    actions = ("release", "discard")
    paginator = BoundedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # discarded, not deleted: the record of what was held back stays

    @admin.display(description="sent")
    def what(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in list(obj.data.items())[:3])[:120]

    @admin.display(description="state")
    def state(self, obj):
        if obj.released_at:
            return "released"
        return "discarded" if obj.discarded_at else "held"

    @admin.display(description="what was sent")
    def data_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, ensure_ascii=False))

    @admin.display(description="where it came from")
    def context_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.context, indent=2, ensure_ascii=False))

    @admin.action(description="Release: it was a person (make or update the lead)", permissions=["change"])
    def release(self, request, queryset):
        released, problems = 0, []
        for item in queryset.filter(released_at__isnull=True, discarded_at__isnull=True):
            try:
                services.quarantine_release(quarantine=item, by=request.user)
                released += 1
            except (ValidationError, services.CaptureRefused, PermissionDenied) as exc:
                problems.append(f"#{item.pk}: {exc}")
        if released:
            self.message_user(request, f"{released} released.", messages.SUCCESS)
        for problem in problems[:10]:
            self.message_user(request, problem, messages.ERROR)

    @admin.action(description="Discard: it was spam", permissions=["change"])
    def discard(self, request, queryset):
        for item in queryset:
            services.quarantine_discard(quarantine=item, by=request.user)
        self.message_user(request, "Discarded: kept here, never made a lead.", messages.SUCCESS)


class CaptureLeadAdmin(NurturingLeadAdmin):
    """The lead page with the lead's journey: where it came from, what it sent, what it did on the website."""

    readonly_fields = (*NurturingLeadAdmin.readonly_fields, "journey")
    fieldsets = (
        *NurturingLeadAdmin.fieldsets,
        ("Journey", {"fields": ("journey",), "classes": ("collapse",),
                     "description": "First and last touch, form submissions and conversions, and the latest page views "
                                    "of the website, before and after the lead was captured."}),
    )

    @admin.display(description="journey")
    def journey(self, obj):
        if obj.pk is None:
            return "—"
        touches = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((t.get_kind_display(), t.utm_source or "(direct)", t.utm_medium, t.utm_campaign, t.landing_page)
             for t in LeadTouch.objects.filter(lead=obj).order_by("kind")),
        )
        submissions = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((_when(s.submitted_at), s.form_name, s.utm_source or "(direct)", "consent given" if s.consent_given else "")
             for s in FormSubmission.objects.filter(lead=obj).order_by("-submitted_at")[:20]),
        )
        conversions = format_html_join(
            "", "<tr><td>{}</td><td>{}</td></tr>",
            ((_when(c.occurred_at), c.kind.name) for c in Conversion.objects.filter(lead=obj).select_related("kind")[:20]),
        )
        views = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((_when(v.received_at), v.path, v.utm_source or "(direct)", v.get_kind_display())
             for v in lead_page_views(obj.pk, limit=30)),
        )
        return format_html(
            "<h4>Touches</h4><table>{}</table><h4>Form submissions</h4><table>{}</table>"
            "<h4>Conversions</h4><table>{}</table><h4>Page views (latest 30)</h4><table>{}</table>",
            touches or "—", submissions or "—", conversions or "—", views or "—",
        )


def _when(moment):
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


admin.site.unregister(Lead)
admin.site.register(Lead, CaptureLeadAdmin)
