"""A/B tests in the admin: marketers add and change a step's variants, read each variant's results and pick the
winner.

The sequence admin edits steps in inlines, which cannot hold inlines of their own, so variants have their own admin
(filtered by sequence and step, opened from the step's test page); the test page is mixed into SequenceAdmin
(admin/nurturing/sequence/step/<id>/test/). Both ask the variant permissions (marketers and managers have them,
reps do not); every change goes through nurturing.variants.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from . import variants as variant_services
from .models import Step, StepVariant
from .rendering import MERGE_FIELDS, step_content
from .variant_results import DEFAULT_METRIC, METRICS, MIN_SENT, SIGNIFICANCE, step_test_results


class StepVariantForm(forms.ModelForm):
    """Shows the service's refusals by the field (the rules are in `variants.variant_check`)."""

    class Meta:
        model = StepVariant
        fields = ("step", "subject_template", "text_template", "html_template", "weight", "is_active")
        widgets = {
            "subject_template": forms.TextInput(attrs={"size": 80}),
            "text_template": forms.Textarea(attrs={"rows": 6, "cols": 80}),
            "html_template": forms.Textarea(attrs={"rows": 4, "cols": 80}),
        }

    def clean(self):
        cleaned = super().clean()
        variant = self.instance
        for name in self.Meta.fields:
            if name in cleaned and name in self.fields:
                setattr(variant, name, cleaned[name] if cleaned[name] is not None else "")
        if variant.step_id is None:
            return cleaned
        label = variant.label
        if variant.pk is None:
            variant.label = "new"  # the service letters it; checked as a challenger (anything but A is)
        try:
            variant_services.variant_check(variant)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        finally:
            variant.label = label
        return cleaned


def _may(request, action: str) -> bool:
    return request.user.has_perm(f"nurturing.{action}_stepvariant")


@admin.register(StepVariant)
class StepVariantAdmin(admin.ModelAdmin):
    form = StepVariantForm
    list_display = ("__str__", "label", "weight", "is_active", "subject_template", "test_link")
    list_filter = ("is_active", "step__sequence")
    list_select_related = ("step__sequence",)
    search_fields = ("step__sequence__name", "subject_template")
    readonly_fields = ("label",)
    actions = ("switch_off",)
    description = "Merge fields: " + "; ".join(f"{{{{ {name} }}}} — {what}" for name, what in MERGE_FIELDS.items())

    def get_fieldsets(self, request, obj=None):
        return ((None, {"fields": ("step", "label", "subject_template", "text_template", "html_template", "weight",
                                   "is_active"),
                        "description": "A blank subject is the step's. Bodies go together: give a plain-text body (and HTML, "
                                       "if you want one) to replace the step's, or leave both blank to keep the "
                                       "step's. " + self.description}),)

    def get_readonly_fields(self, request, obj=None):
        return ("step", "label") if obj is not None else ("label",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "step":
            kwargs["queryset"] = Step.objects.filter(kind=Step.Kind.EMAIL).select_related("sequence")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # switched off instead: its leads and results stay

    def save_model(self, request, obj, form, change):
        variant_services.variant_save(variant=obj, by=request.user)

    def _to_test(self, obj):
        return HttpResponseRedirect(reverse("admin:nurturing_step_test", args=[obj.step_id]))

    def response_add(self, request, obj, post_url_continue=None):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"Variant {obj.label} saved.", messages.SUCCESS)
        return self._to_test(obj)

    def response_change(self, request, obj):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_change(request, obj)
        self.message_user(request, f"Variant {obj.label} saved.", messages.SUCCESS)
        return self._to_test(obj)

    @admin.display(description="test")
    def test_link(self, obj):
        return format_html('<a href="{}">Results</a>', reverse("admin:nurturing_step_test", args=[obj.step_id]))

    @admin.action(description="Switch off selected variants (no new lead gets them)", permissions=["change"])
    def switch_off(self, request, queryset):
        for variant in queryset.select_related("step"):
            try:
                variant_services.variant_switch_off(variant=variant, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{variant} stays on: {' '.join(exc.messages)}", messages.ERROR)


class StepTestMixin:
    """Adds admin/nurturing/sequence/step/<id>/test/: a step's A/B test, its results, and "Pick as winner"."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("step/<int:step_id>/test/", view(self.step_test_view), name="nurturing_step_test"),
                *super().get_urls()]

    def step_test_view(self, request, step_id):
        step = get_object_or_404(Step.objects.select_related("sequence", "winner"), pk=step_id)
        if not _may(request, "view"):
            raise PermissionDenied
        if request.method == "POST":
            if not _may(request, "change"):
                raise PermissionDenied
            variant = get_object_or_404(StepVariant, pk=request.POST.get("winner") or 0, step=step)
            try:
                variant_services.variant_pick_winner(variant=variant, by=request.user)
                self.message_user(request, f"Variant {variant.label} is the winner: every lead that reaches "
                                           f"step {step.position} from now on gets it.", messages.SUCCESS)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.path)
        metric = request.GET.get("metric") if request.GET.get("metric") in METRICS else DEFAULT_METRIC
        results = step_test_results(step=step, metric=metric)
        active_weight = sum(row.variant.weight for row in results.rows if row.variant.is_active)
        for row in results.rows:
            row.share = round(100 * row.variant.weight / active_weight) if row.variant.is_active and active_weight else 0
            row.subject = step_content(step, row.variant).subject_template
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"A/B test: {step}",
            "step": step,
            "results": results,
            "metrics": METRICS.items(),
            "min_sent": MIN_SENT,
            "significance": SIGNIFICANCE,
            "may_change": _may(request, "change") and step.kind == Step.Kind.EMAIL,
            "add_url": reverse("admin:nurturing_stepvariant_add") + f"?step={step.pk}",
        }
        return TemplateResponse(request, "admin/nurturing/step_test.html", context)
