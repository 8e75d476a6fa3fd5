"""A person's data from the lead's admin page: export it (JSON) or erase the person. Managers only.

Mixed into NurturingLeadAdmin (nurturing/admin.py). Exporting asks the
permission policy (core.roles: `leads.export_lead`) and is recorded like every
export of personal data; erasing needs `leads.delete_lead`. Only the Manager
group (and superusers) have either; anyone else gets 403 on the page, GET and
POST alike. The views only check, parse and render: the work is in
nurturing.privacy.
"""

import json

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.roles import user_can_export_personal_data
from leads.models import Lead

from . import privacy

ERASE_PERMISSION = "leads.delete_lead"


class EraseConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label="I understand that this cannot be undone",
        error_messages={"required": "Tick the box to confirm: erasing cannot be undone."},
    )


class PersonPrivacyAdminMixin:
    """Adds "Export (JSON)" and "Erase person…" to the lead's page."""

    change_form_template = "admin/nurturing/lead_change_form.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/person/export/", view(self.person_export_view), name="leads_lead_person_export"),
            path("<int:object_id>/person/erase/", view(self.person_erase_view), name="leads_lead_person_erase"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {}
        pk = unquote(object_id)
        if str(pk).isdigit():
            if user_can_export_personal_data(request.user):
                extra["person_export_url"] = reverse("admin:leads_lead_person_export", args=[pk])
            if request.user.has_perm(ERASE_PERMISSION):
                extra["person_erase_url"] = reverse("admin:leads_lead_person_erase", args=[pk])
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    @staticmethod
    def _person_lead(object_id, *, allowed: bool) -> Lead:
        # The permission first: who may not use the page learns nothing about which leads exist.
        if not allowed:
            raise PermissionDenied
        lead = Lead.objects.filter(pk=object_id).first()
        if lead is None:
            raise Http404("No lead with this id.")
        return lead

    def person_export_view(self, request, object_id):
        lead = self._person_lead(object_id, allowed=user_can_export_personal_data(request.user))
        data = privacy.person_export_by(lead=lead, by=request.user)
        self.log_change(request, lead, "Exported everything stored about the person (JSON).")
        response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f"attachment; filename=person-{lead.pk}.json"
        response["Cache-Control"] = "no-store"
        return response

    def person_erase_view(self, request, object_id):
        lead = self._person_lead(object_id, allowed=request.user.has_perm(ERASE_PERMISSION))
        form = EraseConfirmForm(request.POST if request.method == "POST" else None)
        error = None
        if request.method == "POST" and form.is_valid():
            try:
                result = privacy.person_erase(lead=lead, by=request.user)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                self.log_change(request, lead, f"Erased the person (lead rows {', '.join(map(str, result.lead_ids))}).")
                deleted = ", ".join(f"{n} {label}" for label, n in result.deleted.items() if n) or "no other records"
                kept = " The address stays suppressed, as its hash only." if result.address_suppressed else ""
                self.message_user(
                    request,
                    f"Person erased: {len(result.lead_ids)} lead row(s) anonymised and archived; deleted {deleted}.{kept}",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[lead.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Erase {lead}",
            "lead": lead,
            "preview": privacy.person_erase_preview(lead=lead),
            "form": form,
            "error": error,
            "export_url": reverse("admin:leads_lead_person_export", args=[lead.pk]) if user_can_export_personal_data(request.user) else "",
        }
        return TemplateResponse(request, "admin/nurturing/erase_person.html", context)
