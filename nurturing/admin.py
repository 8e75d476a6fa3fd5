"""Marketers run campaigns here: sequences and steps, previews, test sends, enrolling leads.

Also extends the lead admin (from leads/, which knows nothing of nurturing)
with each lead's deliveries and an "enroll in a sequence" action.
"""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdminMixin
from core.pagination import BoundedCountPaginator
from core.people import person_name
from core.policy import access_for
from leads.admin.lead import LeadAdmin
from leads.admin.records import LeadRecordAdmin, lead_link
from leads.models import Lead

from . import content_services, previews, services
from .admin_audiences import AudienceLiveCountMixin
from .admin_privacy import PersonPrivacyAdminMixin
from .admin_reports import LeadEmailEventsMixin, SequenceReportMixin
from .admin_retargeting import AudienceRetargetingMixin
from .admin_variants import StepTestMixin
from .audience_enrollment import audience_enroll_plan, audience_enroll_start
from .audiences import audience_count_and_sample
from .content import block_html, block_text
from .content_library import library_block
from .models import (
    Audience,
    ContentBlock,
    Delivery,
    EmailEvent,
    Enrollment,
    Sequence,
    Step,
    StepVariant,
    Suppression,
    Trigger,
)
from .rendering import MERGE_FIELDS
from .sandbox import ALLOWED_FILTERS, ALLOWED_TAGS
from .versions import sequence_version_rows


class StepForm(forms.ModelForm):
    class Meta:
        model = Step
        fields = (
            "position", "kind", "delay", "send_days", "window_start", "window_end",
            "subject_template", "text_template", "html_template", "stage_action", "is_active",
            "condition", "condition_resource", "click_link_contains", "click_stage_action", "click_creates_call_task",
        )
        widgets = {
            "text_template": forms.Textarea(attrs={"rows": 6, "cols": 80}),
            "html_template": forms.Textarea(attrs={"rows": 4, "cols": 80}),
            "subject_template": forms.TextInput(attrs={"size": 80}),
        }

    def clean(self):
        cleaned = super().clean()
        step = Step(**{name: cleaned.get(name) for name in self.Meta.fields if name in cleaned})
        step.subject_template = step.subject_template or ""
        step.text_template = step.text_template or ""
        step.html_template = step.html_template or ""
        try:
            services.step_check(step)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class SequenceForm(forms.ModelForm):
    """Shows by the field why the sender cannot be chosen (the rule is the service's)."""

    by = None  # the user saving: set by SequenceAdmin.get_form

    class Meta:
        model = Sequence
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if "sender" in self.fields:
            try:
                services.sequence_sender_check(sequence=self.instance, sender=cleaned.get("sender"), by=self.by)
            except ValidationError as exc:
                self.add_error("sender", exc.message_dict["sender"])
        return cleaned


class TriggerInline(admin.TabularInline):
    model = Trigger
    extra = 0
    fields = ("kind", "form_slug", "resource", "stage", "objection_category", "score", "tag", "is_active")
    autocomplete_fields = ("tag",)
    verbose_name = "trigger"
    verbose_name_plural = "triggers: enroll leads in this sequence when…"


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    extra = 0
    ordering = ("position",)
    description = (
        "Merge fields: " + "; ".join(f"{{{{ {name} }}}} — {what}" for name, what in MERGE_FIELDS.items())
        + ". Tags: " + ", ".join(ALLOWED_TAGS) + ". Filters: " + ", ".join(ALLOWED_FILTERS) + "."
        + ' Social proof from the content library: {% content "case_study" %} (or "testimonial", "review") writes the'
        + ' best block for the lead; {% content "case_study" for "objection" %} first answers its open objection;'
        + ' add default "…" for leads without one.'
    )

    def has_delete_permission(self, request, obj=None):
        # A used step stays (switch it off instead); the database refuses anyway.
        return obj is None or not Delivery.objects.filter(step__sequence=obj).exists()


@admin.register(Sequence)
class SequenceAdmin(StepTestMixin, SequenceReportMixin, admin.ModelAdmin):
    form = SequenceForm
    list_display = ("name", "status", "goal_stage", "target_persona", "sender", "daily_cap_per_sender")
    list_filter = ("status", "goal_stage")
    search_fields = ("name", "goal")
    inlines = (StepInline, TriggerInline)
    readonly_fields = ("status", "version", "step_counts", "step_tools")
    fields = ("name", "goal", "target_persona", "goal_stage", "sender", "daily_cap_per_sender", "pause_company_on_reply",
              "in_other_sequence", "requires_consent", "status", "version", "step_counts", "step_tools")
    actions = ("activate", "pause", "archive")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)  # a class of its own, made for this request
        form.by = request.user
        return form

    def save_model(self, request, obj, form, change):
        services.sequence_save(sequence=obj, by=request.user)

    @admin.display(description="deliveries per step")
    def step_counts(self, obj):
        if obj.pk is None:
            return "—"
        counts = {}
        for step_id, status, n in Delivery.objects.filter(step__sequence=obj).values_list("step_id", "status").annotate(n=Count("id")).order_by():
            counts.setdefault(step_id, {})[status] = n
        statuses = [s for s in Delivery.Status if s != Delivery.Status.SENDING]
        header = format_html_join("", "<th>{}</th>", ((s.label,) for s in statuses))
        rows = format_html_join(
            "",
            "<tr><td>{}</td>{}</tr>",
            (
                (f"Step {step.position}" + ("" if step.is_active else " (off)"), format_html_join("", "<td>{}</td>", ((counts.get(step.pk, {}).get(s, 0),) for s in statuses)))
                for step in obj.steps.order_by("position")
            ),
        )
        return format_html('<table class="step-counts"><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>', header, rows)

    @admin.display(description="version")
    def version(self, obj):
        latest = obj.versions.order_by("-number").first() if obj.pk else None
        if latest is None:
            return "None yet: activating the sequence keeps its steps as version 1; each change after is a new version."
        return format_html('Version {} of {} · <a href="{}">all versions and what changed</a>', latest.number,
                           date_format(timezone.localtime(latest.created_at), "DATETIME_FORMAT"),
                           reverse("admin:nurturing_sequence_versions", args=[obj.pk]))

    def versions_view(self, request, sequence_id):
        sequence = get_object_or_404(Sequence, pk=sequence_id)
        if not self.has_view_permission(request, sequence):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": f"Versions of {sequence}",
                   "sequence": sequence, "rows": sequence_version_rows(sequence)}
        return TemplateResponse(request, "admin/nurturing/sequence_versions.html", context)

    @admin.display(description="preview and test")
    def step_tools(self, obj):
        if obj.pk is None:
            return "Save the sequence to preview its steps."
        steps = list(obj.steps.order_by("position"))
        previews = format_html_join(
            " ",
            '<a class="button" href="{}">Preview step {}</a>',
            ((reverse("admin:nurturing_step_preview", args=[step.pk]), step.position) for step in steps),
        )
        tests = format_html_join(
            " ", '<a class="button" href="{}">A/B test of step {}</a>',
            ((reverse("admin:nurturing_step_test", args=[step.pk]), step.position)
             for step in steps if step.kind == Step.Kind.EMAIL),
        )
        return format_html("{}<br>{}", previews, tests) if tests else previews

    @admin.action(description="Activate selected sequences", permissions=["change"])
    def activate(self, request, queryset):
        for sequence in queryset:
            try:
                services.sequence_activate(sequence=sequence, by=request.user)
                self.message_user(request, f"{sequence} is active.", messages.SUCCESS)
            except ValidationError as exc:
                self.message_user(request, f"{sequence} was not activated: {' '.join(exc.messages)}", messages.ERROR)

    @admin.action(description="Pause selected sequences", permissions=["change"])
    def pause(self, request, queryset):
        paused = 0
        for sequence in queryset:
            try:
                services.sequence_pause(sequence=sequence, by=request.user)
                paused += 1
            except ValidationError as exc:
                self.message_user(request, f"{sequence} was not paused: {' '.join(exc.messages)}", messages.ERROR)
        if paused:
            self.message_user(request, f"{paused} sequence(s) paused: their due emails wait.", messages.SUCCESS)

    @admin.action(description="Archive selected sequences (their leads leave them)", permissions=["change"])
    def archive(self, request, queryset):
        for sequence in queryset.exclude(status=Sequence.Status.ARCHIVED):
            left = services.sequence_archive(sequence=sequence, by=request.user)
            self.message_user(request, f"{sequence} is archived; {left} lead(s) left it.", messages.SUCCESS)

    def save_formset(self, request, form, formset, change):
        if formset.model is Trigger:
            services.triggers_save(triggers=formset.save(commit=False), deleted=formset.deleted_objects, by=request.user)
            return None
        if formset.model is not Step:
            return super().save_formset(request, form, formset, change)
        steps = formset.save(commit=False)
        services.steps_save(sequence=form.instance, steps=steps, deleted=formset.deleted_objects, by=request.user)
        formset.save_m2m()

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("step/<int:step_id>/preview/", view(self.preview_view), name="nurturing_step_preview"),
                path("<int:sequence_id>/versions/", view(self.versions_view), name="nurturing_sequence_versions"),
                *super().get_urls()]

    # The email's HTML is shown in a sandboxed frame (no scripts run in it), which
    # takes this page's Content-Security-Policy: let it keep its inline styles
    # and remote images, as a mail client shows them. Scripts stay 'self' only.
    @csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["https:"]})
    def preview_view(self, request, step_id):
        step = get_object_or_404(Step.objects.select_related("sequence"), pk=step_id)
        if not self.has_view_permission(request, step.sequence):
            raise PermissionDenied
        chosen = (request.POST.get("variant") or request.GET.get("variant") or "").strip()
        variant = get_object_or_404(StepVariant, pk=int(chosen), step=step) if chosen.isdigit() else None
        asked = (request.POST.get("lead") or request.GET.get("lead") or "").strip()
        leads = Lead.objects.select_related("company", "owner", "campaign")
        matches = []
        if asked.isdigit():
            matches = list(leads.filter(pk=int(asked)))
        elif asked:  # a name or an email address, or part of one
            words = Q()
            for word in asked.split()[:4]:
                words &= Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
            matches = list(leads.filter(words, archived_at__isnull=True).order_by("last_name", "first_name", "pk")[:10])
        lead = matches[0] if matches else None
        if lead is None and not asked:
            lead = leads.filter(archived_at__isnull=True).exclude(email="").first()
        rendered, problem, empty, missing = None, None, [], []
        if lead is not None:
            try:
                merge = previews.preview_context(step=step, lead=lead)
                rendered = previews.step_preview(step=step, lead=lead, context=merge, variant=variant)
                empty = previews.empty_fields(step=step, context=merge, variant=variant)
                missing = previews.missing_blocks(step=step, context=merge)
            except Exception as exc:  # shown to the marketer, who is fixing the template
                problem = str(exc)
        if request.method == "POST" and lead is not None:
            if not self.has_change_permission(request, step.sequence):
                raise PermissionDenied
            try:
                previews.step_send_test(step=step, lead=lead, to_email=request.user.email, by=request.user,
                                        variant=variant)
                self.message_user(request, f"Test sent to {request.user.email}.", messages.SUCCESS)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(f"{request.path}?lead={lead.pk}" + (f"&variant={variant.pk}" if variant else ""))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Preview: {step}" + (f", variant {variant.label}" if variant else ""),
            "step": step,
            "variant": variant,
            "lead": lead,
            "asked": asked,
            "matches": matches if len(matches) > 1 else [],
            "rendered": rendered,
            "problem": problem,
            "empty_here": empty,
            "empty_across": previews.empty_field_counts(step=step, variant=variant),
            "missing_here": missing,
            "missing_across": previews.missing_block_counts(step=step),
        }
        return TemplateResponse(request, "admin/nurturing/step_preview.html", context)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, LeadRecordAdmin):
    """Why did (or didn't) a lead get an email: the log, read only."""

    list_display = ("due_at", "status", "lead_column", "sequence_column", "step_position", "variant_label", "to_email",
                    "sent_at", "reason")
    list_select_related = ("enrollment__lead", "enrollment__sequence", "step", "variant")
    list_filter = ("status", "enrollment__sequence")
    search_fields = ("to_email", "message_id")

    @admin.display(description="lead")
    def lead_column(self, obj):
        return lead_link(obj.enrollment.lead)

    @admin.display(description="sequence")
    def sequence_column(self, obj):
        return obj.enrollment.sequence

    @admin.display(description="step")
    def step_position(self, obj):
        return obj.step.position

    @admin.display(description="A/B variant")
    def variant_label(self, obj):
        return obj.variant.label if obj.variant is not None else "—"


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("lead", "sequence", "status", "enrolled_at", "finished_at", "exit_reason")
    list_select_related = ("lead", "sequence")
    list_filter = ("status", "sequence")
    raw_id_fields = ("lead",)
    readonly_fields = ("lead", "sequence", "status", "enrolled_at", "enrolled_by", "finished_at", "exit_reason")
    paginator = BoundedCountPaginator
    show_full_result_count = False
    actions = ("exit_selected",)

    def has_add_permission(self, request):
        return False  # Enroll from the lead list (action), through the service.

    @admin.action(description="Take selected leads out of their sequence", permissions=["change"])
    def exit_selected(self, request, queryset):
        for enrollment in queryset.filter(status__in=services.LIVE_ENROLLMENT):
            services.enrollment_exit(enrollment=enrollment, reason=f"removed by {person_name(request.user)}", by=request.user)
        self.message_user(request, "Done: nothing more is sent to them from those sequences.", messages.SUCCESS)


class SuppressionForm(forms.ModelForm):
    """The address is required and checked here, so a blank or already suppressed one is an error by the field."""

    class Meta:
        model = Suppression
        fields = ("email", "reason", "source")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "email" in self.fields:  # absent (read only) for an erased row
            self.fields["email"].required = True
            self.fields["email"].error_messages["required"] = "Enter the address to suppress."

    def clean_email(self):
        try:
            return services.suppression_address_check(self.cleaned_data.get("email"), exclude_pk=self.instance.pk)
        except ValidationError as exc:
            raise ValidationError(exc.error_dict["email"]) from None


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("email", "reason", "source", "created_at")
    list_filter = ("reason",)
    search_fields = ("email",)
    readonly_fields = ("created_at", "created_by")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and not obj.email:
            return ("email", *fields)  # erased: only the reason and source can change
        return fields

    def save_model(self, request, obj, form, change):
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data}
            services.suppression_update(suppression=obj, by=request.user, **fields)
            return
        created = services.suppression_add(email=obj.email, reason=obj.reason, source=obj.source or "admin", by=request.user)
        obj.pk, obj._state.adding = created.pk, False


@admin.register(Audience)
class AudienceAdmin(AudienceRetargetingMixin, AudienceLiveCountMixin, admin.ModelAdmin):
    """Marketers save audiences by rules, see how many leads each holds now and who (as they edit the rules too),
    and enroll them."""

    # No count per row: each is a query over the leads; the audience's page shows its count and a sample.
    list_display = ("name", "stage", "source", "campaign", "persona", "created_at")
    search_fields = ("name",)
    readonly_fields = ("members", "enrollments", "ad_platforms")
    fieldsets = (
        (None, {"fields": ("name", "members", "enrollments", "ad_platforms")}),
        ("Where they came from", {"fields": ("source", "utm_medium", "campaign", "resource", "form_slug")}),
        ("Who they are", {"fields": ("persona", "country", "owner", "stage", ("score_min", "score_max"), "tag")}),
        ("What they did, and when", {"fields": ("engaged_within_days", "clicked_link_contains", "meetings", "inactive_for_days")}),
    )

    def save_model(self, request, obj, form, change):
        services.audience_save(audience=obj, by=request.user)

    @admin.display(description="leads now")
    def members(self, obj):
        if obj.pk is None:
            return self.live_count_box("Save the audience to see how many leads it holds and who.")
        count, sample = audience_count_and_sample(obj)
        return self.live_count_box(format_html(
            '<strong id="audience-count">{}</strong> lead{} · <a class="button" href="{}">Enroll them in a sequence</a>'
            '<ul id="audience-sample">{}</ul>', count, "" if count == 1 else "s",
            reverse("admin:nurturing_audience_enroll", args=[obj.pk]),
            format_html_join("", "<li>{} &lt;{}&gt; · {}</li>", ((lead, lead.email, lead.get_status_display())
                                                              for lead in sample)),
        ))

    @admin.display(description="enrolled in sequences")
    def enrollments(self, obj):
        jobs = list(obj.enrollments.select_related("sequence", "started_by")[:5]) if obj.pk else []
        if not jobs:
            return "Not enrolled in a sequence from here yet."
        return format_html(
            '<table id="audience-enrollments"><thead><tr><th>Sequence</th><th>Started</th><th>Progress</th>'
            '<th>Enrolled</th><th>Skipped</th><th>Status</th></tr></thead><tbody>{}</tbody></table>'
            '<p class="help"><a href="">Refresh</a> to see the progress.</p>',
            format_html_join("", '<tr><td>{}</td><td>{}</td><td><progress max="100" value="{}">{}%</progress> {} of {}'
                             '</td><td>{}</td><td>{}</td><td>{}</td></tr>', (
                (job.sequence, date_format(timezone.localtime(job.started_at), "DATETIME_FORMAT"), job.percent,
                 job.percent, job.done, job.total, job.enrolled,
                 "; ".join(f"{count}: {why}" for why, count in sorted(job.skipped.items(), key=lambda kv: -kv[1]))
                 or "—", job.get_status_display() + (f": {job.error}" if job.error else ""))
                for job in jobs)),
        )

    def get_urls(self):
        return [path("<int:audience_id>/enroll/", self.admin_site.admin_view(self.enroll_view),
                     name="nurturing_audience_enroll"), *self.retargeting_urls(), *super().get_urls()]

    def enroll_view(self, request, audience_id):
        """Choose the sequence, see the plan for the audience's leads now, then enroll them."""
        audience = get_object_or_404(Audience, pk=audience_id)
        if not access_for(request.user).builds_sequences:
            raise PermissionDenied
        form = EnrollForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "audience": audience, "form": form,
                   "title": f"Enroll “{audience}” in a sequence"}
        if request.method == "POST" and form.is_valid():
            sequence = form.cleaned_data["sequence"]
            if "apply" in request.POST:
                try:
                    job = audience_enroll_start(audience=audience, sequence=sequence, by=request.user)
                except ValidationError as exc:
                    self.message_user(request, " ".join(exc.messages), messages.ERROR)
                else:
                    self.message_user(request, f"Enrolling the {job.total:,} lead(s) of “{audience}” in {sequence} in "
                                               "the background: the progress is below.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:nurturing_audience_change", args=[audience.pk]))
            context |= {"sequence": sequence, "plan": audience_enroll_plan(audience=audience, sequence=sequence),
                        "in_background": True}
            return TemplateResponse(request, "admin/nurturing/enroll_preview.html", context)
        return TemplateResponse(request, "admin/nurturing/audience_enroll.html", context)


# --- The lead admin, with nurturing -------------------------------------------------------


class EnrollForm(forms.Form):
    sequence = forms.ModelChoiceField(queryset=Sequence.objects.filter(status=Sequence.Status.ACTIVE), label="Sequence")


class NurturingLeadAdmin(PersonPrivacyAdminMixin, LeadEmailEventsMixin, LeadAdmin):
    actions = (*LeadAdmin.actions, "enroll_in_sequence")
    readonly_fields = (*LeadAdmin.readonly_fields, "deliveries", "email_events")
    fieldsets = (*LeadAdmin.fieldsets, ("Nurturing", {"fields": ("deliveries", "email_events"), "description": "Every email of every sequence for this lead, and why it went or did not; then what the lead (or a machine) did with them."}))

    @admin.display(description="deliveries")
    def deliveries(self, obj):
        if obj.pk is None:
            return "—"
        rows = [
            (
                d.enrollment.sequence.name,
                d.step.position,
                d.get_status_display(),
                date_format(timezone.localtime(d.sent_at or d.due_at), "DATETIME_FORMAT"),
                d.subject,
                d.reason,
            )
            for d in Delivery.objects.filter(enrollment__lead=obj)
            .select_related("enrollment__sequence", "step")
            .order_by("-due_at", "-id")[:30]
        ]
        if not rows:
            return "Not in any sequence yet."
        return format_html(
            '<table class="lead-deliveries"><tbody>{}</tbody></table>',
            format_html_join("", "<tr><td>{} · step {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    def has_enroll_permission(self, request) -> bool:
        """Marketers and managers enroll leads from the list (the service checks each lead again)."""
        return access_for(request.user).builds_sequences

    @admin.action(description="Enroll selected leads in a sequence", permissions=["enroll"])
    def enroll_in_sequence(self, request, queryset):
        """Choose the sequence, see who would be enrolled and who skipped and why, then enroll."""
        form = EnrollForm(request.POST if "apply" in request.POST or "preview" in request.POST else None)
        leads = list(queryset[:1001])
        if len(leads) > 1000:
            self.message_user(request, "Select at most 1,000 leads at a time: narrow the filter.", messages.ERROR)
            return None
        if "apply" in request.POST and form.is_valid():
            enrolled, refused = services.enroll_many(leads=leads, sequence=form.cleaned_data["sequence"], by=request.user)
            self.message_user(request, f"{enrolled} lead(s) enrolled in {form.cleaned_data['sequence']}.", messages.SUCCESS)
            if refused:
                more = f" …and {len(refused) - 10} more." if len(refused) > 10 else ""
                self.message_user(request, f"{len(refused)} not enrolled: " + " | ".join(refused[:10]) + more, messages.WARNING)
            return None
        if "preview" in request.POST and form.is_valid():
            sequence = form.cleaned_data["sequence"]
            context = {
                **self.admin_site.each_context(request), "opts": self.opts, "title": f"Enroll in {sequence}",
                "sequence": sequence, "plan": services.enrollment_plan(leads=leads, sequence=sequence),
                "action": "enroll_in_sequence", "select_across": request.POST.get("select_across", "0"),
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            }
            return TemplateResponse(request, "admin/nurturing/enroll_preview.html", context)
        return self._action_page(
            request, queryset, action="enroll_in_sequence", title="Enroll leads in a sequence", form=form,
            submit="Show who will be enrolled", step="preview",
            intro="Next you see who would be enrolled and who skipped and why, before anything is written.",
        )


admin.site.unregister(Lead)
admin.site.register(Lead, NurturingLeadAdmin)


# --- Engagement events (read-only: they come from providers, links and reps) -------------------------------


@admin.register(EmailEvent)
class EmailEventAdmin(ReadOnlyAdminMixin, LeadRecordAdmin):
    list_display = ("occurred_at", "kind", "bounce", "is_machine", "recipient", "provider", "lead_column", "short_actions")
    list_filter = ("kind", "is_machine", "provider", "bounce")
    search_fields = ("recipient", "message_id")
    list_select_related = ("lead",)

    @admin.display(description="what it did")
    def short_actions(self, obj):
        return obj.actions[:120]


# --- The content library ------------------------------------------------------------------------


class ContentBlockForm(forms.ModelForm):
    """Shows by the field why a block cannot be saved (the rules are the service's)."""

    class Meta:
        model = ContentBlock
        fields = ("kind", "title", "body", "attribution_name", "attribution_role", "attribution_company", "link_url",
                  "rating", "topics", "personas", "objection_category", "is_active")
        widgets = {"body": forms.Textarea(attrs={"rows": 6, "cols": 80}), "topics": forms.TextInput(attrs={"size": 80})}

    def _post_clean(self):
        super()._post_clean()
        try:
            content_services.content_block_check(self.instance)
        except ValidationError as exc:
            # A field the form already refused keeps its own message.
            fresh = {field: errors for field, errors in exc.message_dict.items() if field not in self.errors}
            if fresh:
                self._update_errors(ValidationError(fresh))


@admin.register(ContentBlock)
class ContentBlockAdmin(admin.ModelAdmin):
    """Testimonials, case studies and reviews that steps put into emails with {% content "…" %}."""

    form = ContentBlockForm
    list_display = ("title", "kind", "topics", "persona_names", "objection_category", "is_active", "updated_at")
    list_filter = ("kind", "is_active", "objection_category", "personas")
    search_fields = ("title", "body", "attribution_name", "attribution_company", "topics")
    filter_horizontal = ("personas",)
    readonly_fields = ("preview", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("kind", "title", "body", "rating", "link_url", "is_active")}),
        ("Who said it", {"fields": ("attribution_name", "attribution_role", "attribution_company")}),
        ("Which leads get it", {"fields": ("personas", "topics", "objection_category"), "description": (
            'A step writes the best block for each lead: {% content "case_study" %} (or "testimonial", "review"); '
            '{% content "case_study" for "objection" %} first takes one that answers the lead\'s latest open '
            "objection. Then one for both the lead's persona and topic, then its persona, then its topic, then "
            "one for anyone; between equals the newest.")}),
        ("As it appears in an email", {"fields": ("preview", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("personas")

    @admin.display(description="personas")
    def persona_names(self, obj):
        return ", ".join(p.name for p in obj.personas.all()) or "anyone"

    @admin.display(description="preview")
    def preview(self, obj):
        if obj.pk is None:
            return "Save the block to see it as an email shows it."
        block = library_block(obj)
        # block_html escapes every text of the block: it holds no markup a marketer typed.
        return format_html('<div id="content-block-html">{}</div><pre id="content-block-text" class="pre-wrap">{}</pre>',
                           block_html(block), block_text(block))

    def save_model(self, request, obj, form, change):
        content_services.content_block_save(block=obj, by=request.user)
