"""The scoring page (rules, thresholds, a preview of a change, rescoring's progress) and each lead's breakdown
on its admin page."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from leads.admin.lead import SCORE_EXPLAINERS

from .forms import RuleFormSet, ScoringSettingsForm
from .models import RescoreJob, ScoringRule, ScoringSettings
from .selectors import score_breakdown
from .services import scoring_preview, scoring_save


@admin.register(ScoringSettings)
class ScoringAdmin(admin.ModelAdmin):
    """One page, no list: the settings row and the rules edited together, as one change."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:scoring_scoringsettings_changelist")

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_change = self.has_change_permission(request) and request.user.has_perm("scoring.change_scoringrule")
        settings = ScoringSettings.current()
        rules = ScoringRule.objects.select_related("persona", "source", "resource").order_by("kind", "pk")
        form = ScoringSettingsForm(instance=settings)
        formset = RuleFormSet(queryset=rules)
        preview = None
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            form = ScoringSettingsForm(request.POST, instance=settings)
            formset = RuleFormSet(request.POST, queryset=rules)
            if form.is_valid() and formset.is_valid():
                deleted = [f.instance for f in formset.deleted_forms if f.instance.pk]
                kept = [f.instance for f in formset.forms
                        if f not in formset.deleted_forms and (f.instance.pk or f.has_changed())]
                try:
                    if "preview" in request.POST:
                        preview = scoring_preview(rules=kept, settings=form.instance)
                    else:
                        job = scoring_save(rules=kept, deleted=deleted, settings=form.instance, by=request.user)
                        messages.success(request, f"Scoring saved. Rescoring {job.total:,} leads in the background: "
                                                  "the progress is below.")
                        return redirect("admin:scoring_scoringsettings_changelist")
                except ValidationError as exc:
                    form.add_error(None, exc)
        context = {
            **self.admin_site.each_context(request), "title": "Scoring", "opts": self.model._meta,
            "form": form, "formset": formset, "preview": preview, "can_change": can_change,
            "jobs": RescoreJob.objects.select_related("started_by")[:5],
            "kinds": ScoringRule.Kind, **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/scoring/scoring.html", context)


def _breakdown(lead) -> str:
    return score_breakdown(lead_id=lead.pk)["text"]


# The lead's admin page shows the score with its breakdown ("50 (+20 persona Founder, +30 …)").
if _breakdown not in SCORE_EXPLAINERS:
    SCORE_EXPLAINERS.append(_breakdown)
