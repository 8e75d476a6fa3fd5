"""Admin for the records around leads: accounts, attribution, deals, customers, work items."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from core.admin import DomainEventAdmin, ReadOnlyAdminMixin
from core.models import DomainEvent
from core.pagination import BoundedCountPaginator
from core.people import person_name
from core.policy import access_for

from .. import campaigns, exports, selectors, services, tags
from ..deals import deal_change_stage, deal_stage_save
from ..forms import AmountField, add_service_errors
from ..models import (
    Activity,
    Campaign,
    CampaignSpend,
    Company,
    Conversion,
    ConversionKind,
    Customer,
    Deal,
    DealStage,
    FormSubmission,
    LeadExport,
    LeadMerge,
    Objection,
    Persona,
    Resource,
    Source,
    StageChange,
    Tag,
    Task,
)
from .exporting import ListExportAdmin
from .lead import status_badge_html


def lead_link(lead):
    if lead is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("admin:leads_lead_change", args=[lead.pk]), lead)


class LeadRecordAdmin(admin.ModelAdmin):
    """Records that belong to a lead: big tables (so counts are bounded), each row linked to its lead."""

    paginator = BoundedCountPaginator
    show_full_result_count = False

    @admin.display(description="lead")
    def lead_column(self, obj):
        return lead_link(obj.lead)


class CompanyForm(forms.ModelForm):
    """The admin's company form: a duplicate name or domain is shown by its field, as the service refuses it."""

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            changed = {name: cleaned.get(name) for name in ("name", "domain") if name in self.changed_data}
            if "domain" in changed:
                changed["domain"] = services.company_domain_normalize(changed["domain"] or "")
            try:
                services.company_check(**changed, exclude_pk=self.instance.pk)
            except ValidationError as exc:
                add_service_errors(self, exc)
        return cleaned


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    form = CompanyForm
    list_display = ("name", "domain", "industry", "size", "country")
    search_fields = ("name", "domain")
    list_filter = ("industry", "size")
    paginator = BoundedCountPaginator
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            services.company_update(company=obj, by=request.user, **fields)
            return
        company = services.company_create(by=request.user, **fields)
        obj.pk, obj._state.adding = company.pk, False


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "medium")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ("name", "role")
    search_fields = ("name", "role", "interests")


class CampaignSpendFormSet(forms.BaseInlineFormSet):
    """The campaign's spend rows, edited together: periods that overlap one another are refused here, before
    anything is saved (the service checks each row against the stored ones again)."""

    def clean(self):
        super().clean()
        periods = [
            (form.cleaned_data.get("period_start"), form.cleaned_data.get("period_end"))
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        try:
            campaigns.spend_periods_check(periods)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class CampaignSpendInline(admin.TabularInline):
    model = CampaignSpend
    formset = CampaignSpendFormSet
    extra = 1
    fields = ("period_start", "period_end", "amount", "currency")


class CampaignForm(forms.ModelForm):
    """The campaign's rules are the service's: shown next to the fields before anything is saved."""

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            values = {name: cleaned.get(name) for name in ("name", "slug", "source", "medium", "persona", "starts_on", "ends_on")}
            try:
                campaigns.campaign_check(**values, exclude_pk=self.instance.pk)
            except ValidationError as exc:
                add_service_errors(self, exc)
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "slug", "source", "medium", "persona", "starts_on", "ends_on")
    list_select_related = ("source", "persona")
    list_filter = ("source", "medium", "persona")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (CampaignSpendInline,)

    def save_model(self, request, obj, form, change):
        if change:
            campaigns.campaign_update(campaign=obj, by=request.user,
                                      **{name: form.cleaned_data[name] for name in form.changed_data})
            return
        created = campaigns.campaign_create(by=request.user, **{
            name: form.cleaned_data.get(name) for name in ("name", "slug", "source", "medium", "persona", "starts_on", "ends_on")
        })
        obj.pk, obj._state.adding = created.pk, False

    def delete_model(self, request, obj):
        campaigns.campaign_delete(campaign=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for campaign in queryset:
                campaigns.campaign_delete(campaign=campaign, by=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not CampaignSpend:
            return super().save_formset(request, form, formset, change)
        spends = formset.save(commit=False)
        # Deleted rows first: a period moved onto a deleted row's days is then free.
        for spend in formset.deleted_objects:
            campaigns.spend_delete(spend=spend, by=request.user)
        for spend_form in formset.forms:
            spend = spend_form.instance
            if spend not in spends:
                continue
            fields = {name: spend_form.cleaned_data[name] for name in ("period_start", "period_end", "amount", "currency")}
            if spend.pk is None:
                saved = campaigns.spend_record(campaign=form.instance, by=request.user, **fields)
                spend.pk, spend._state.adding = saved.pk, False
            else:
                campaigns.spend_update(spend=spend, by=request.user,
                                       **{name: fields[name] for name in spend_form.changed_data if name in fields})


class DealForm(forms.ModelForm):
    """The admin's deal form: a change is checked by the service's rules before it is saved; an open deal can be
    moved to another stage (through the deal stage service, with a note)."""

    move_to_stage = forms.ModelChoiceField(
        queryset=DealStage.objects.filter(is_active=True), required=False, label="Move to stage",
        help_text="Leave empty to keep the deal where it is.")
    stage_note = forms.CharField(required=False, max_length=300, label="Why (kept in the stage history)")

    _STAGE_FIELDS = ("move_to_stage", "stage_note")

    class Meta:
        field_classes = {"value": AmountField}

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None and not self.errors:
            stored = Deal.objects.get(pk=self.instance.pk)
            try:
                services.deal_update_check(stored, **{name: cleaned[name] for name in self.changed_data
                                                      if name in cleaned and name not in self._STAGE_FIELDS})
            except ValidationError as exc:
                add_service_errors(self, exc)
        return cleaned


@admin.register(DealStage)
class DealStageAdmin(admin.ModelAdmin):
    """Managers set the stages open deals go through and each one's win probability (the forecast's weight)."""

    list_display = ("name", "position", "probability", "is_active")
    list_editable = ("position", "probability", "is_active")
    fields = ("name", "position", "probability", "is_active")

    def has_delete_permission(self, request, obj=None):
        return False  # deals keep the stages they went through: switch a stage off instead

    def save_model(self, request, obj, form, change):
        try:
            deal_stage_save(stage=obj, by=request.user)
        except ValidationError as exc:
            # list_editable saves row by row: say which row, and keep the others.
            self.message_user(request, f"{obj.name}: {' '.join(exc.messages)}", messages.ERROR)


@admin.register(Deal)
class DealAdmin(ListExportAdmin, LeadRecordAdmin):
    form = DealForm
    export_spec = exports.DEALS
    change_list_template = "admin/export_change_list.html"
    list_display = ("__str__", "lead_column", "owner", "value", "currency", "status", "stage", "created_at",
                    "expected_close_on", "closed_at")
    list_select_related = ("lead", "owner", "stage")
    list_filter = ("status", "stage", "currency", ("created_at", admin.DateFieldListFilter))

    search_fields = ("product", "lead__search_text")
    raw_id_fields = ("lead",)
    actions = ("mark_lost",)
    readonly_fields = ("status", "stage", "stage_entered_at", "stage_history", "customer", "closed_at", "lost_reason")

    @admin.display(description="stage history")
    def stage_history(self, obj):
        changes = list(obj.stage_changes.select_related("from_stage", "to_stage", "changed_by")[:30]) if obj.pk else []
        if not changes:
            return "—"
        return format_html(
            '<table id="deal-stage-history"><tbody>{}</tbody></table>',
            format_html_join("", "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (date_format(timezone.localtime(c.changed_at), "DATETIME_FORMAT"), c.from_stage.name if c.from_stage
                 else "opened", c.to_stage.name, f"after {c.time_in_from_stage.days} d" if c.time_in_from_stage else "",
                 person_name(c.changed_by), c.note)
                for c in changes)))

    def get_readonly_fields(self, request, obj=None):
        # A deal's money and lead are fixed once it is closed; history stays true.
        if obj is not None and obj.status != Deal.Status.OPEN:
            return (*self.readonly_fields, "lead", "value", "currency", "product", "created_at", "owner")
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None or obj.status != Deal.Status.OPEN:  # a new deal opens in the first stage; a closed one stays
            fields = [name for name in fields if name not in DealForm._STAGE_FIELDS]
        return fields

    def save_model(self, request, obj, form, change):
        if change:
            services.deal_update(deal=obj, by=request.user, **{name: form.cleaned_data[name] for name in form.changed_data
                                                               if name not in DealForm._STAGE_FIELDS})
            stage = form.cleaned_data.get("move_to_stage")
            if stage is not None and stage.pk != obj.stage_id:
                try:
                    deal_change_stage(deal=obj, stage=stage, by=request.user, note=form.cleaned_data.get("stage_note", ""))
                except ValidationError as exc:
                    self.message_user(request, f"Not moved: {' '.join(exc.messages)}", messages.ERROR)
            return
        deal = services.deal_open(
            lead=form.cleaned_data["lead"],
            value=form.cleaned_data["value"],
            currency=form.cleaned_data["currency"],
            product=form.cleaned_data.get("product", ""),
            expected_close_on=form.cleaned_data.get("expected_close_on"),
            by=request.user,
        )
        obj.pk, obj._state.adding = deal.pk, False

    @admin.action(description="Mark selected open deals as lost (reason: lost in review)", permissions=["change"])
    def mark_lost(self, request, queryset):
        done = 0
        for deal in queryset.filter(status=Deal.Status.OPEN):
            try:
                services.deal_mark_lost(deal=deal, reason="Lost in pipeline review", by=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{deal}: {' '.join(exc.messages)}", messages.ERROR)
        self.message_user(request, f"{done} deal(s) marked lost.", messages.SUCCESS)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "primary_lead_column", "became_customer_at")
    list_select_related = ("company", "primary_lead")
    search_fields = ("name",)
    readonly_fields = ("became_customer_at",)
    raw_id_fields = ("primary_lead", "company")
    paginator = BoundedCountPaginator
    show_full_result_count = False

    @admin.display(description="first contact")
    def primary_lead_column(self, obj):
        return lead_link(obj.primary_lead)


class TaskForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = ("lead", "title", "assignee", "due_at", "completed_at", "notes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "assignee" in self.fields:
            self.fields["assignee"].queryset = selectors.lead_owner_choices()

    def clean_due_at(self):
        due_at = self.cleaned_data.get("due_at")
        if due_at and self.instance.pk is None and due_at < timezone.now():
            raise ValidationError("The due time is in the past: choose a time from now on.")
        return due_at


@admin.register(Task)
class TaskAdmin(LeadRecordAdmin):
    form = TaskForm
    list_display = ("title", "lead_column", "assignee", "due_at", "completed_at")
    list_select_related = ("lead", "assignee")
    list_filter = (("completed_at", admin.EmptyFieldListFilter), ("due_at", admin.DateFieldListFilter), "assignee")
    raw_id_fields = ("lead",)

    def save_model(self, request, obj, form, change):
        if change:
            services.task_update(task=obj, by=request.user, **{name: form.cleaned_data[name] for name in form.changed_data})
            return
        task = services.task_create(
            lead=obj.lead, assignee=obj.assignee, title=obj.title, due_at=obj.due_at, notes=obj.notes, by=request.user
        )
        obj.pk, obj._state.adding = task.pk, False


@admin.register(Objection)
class ObjectionAdmin(LeadRecordAdmin):
    """Managers review objections across leads: what stops deals, and how reps answer."""

    list_display = ("category", "lead_column", "stage", "short_words", "is_resolved", "raised_by", "created_at")
    list_select_related = ("lead", "raised_by")
    list_filter = ("category", "stage", "is_resolved", ("created_at", admin.DateFieldListFilter))
    search_fields = ("lead_words", "response")
    readonly_fields = ("lead", "activity", "stage", "raised_by", "created_at", "resolved_at")

    def has_add_permission(self, request):
        return False  # Logged on the lead, where the conversation is.

    @admin.display(description="the lead's words")
    def short_words(self, obj):
        return obj.lead_words if len(obj.lead_words) <= 80 else obj.lead_words[:77] + "…"


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdminMixin, LeadRecordAdmin):
    """The stage history across all leads: read only, as history is."""

    list_display = ("changed_at", "lead_column", "from_status", "to_status", "changed_by_label", "reason", "time_in_from_stage")
    list_select_related = ("lead", "changed_by")
    list_filter = ("to_status", "from_status", ("changed_at", admin.DateFieldListFilter))


@admin.register(Activity)
class ActivityAdmin(LeadRecordAdmin):
    list_display = ("occurred_at", "kind", "lead_column", "author", "outcome", "duration_seconds")
    list_select_related = ("lead", "author")
    list_filter = ("kind", "outcome", ("occurred_at", admin.DateFieldListFilter))
    readonly_fields = ("lead", "author", "created_at")

    def has_add_permission(self, request):
        return False  # Logged on the lead, through the services.


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Tags are made by tagging a lead, or here ahead of their use (for a trigger); a tag is not renamed."""

    list_display = ("name", "created_at")
    search_fields = ("name", "key")
    fields = ("name",)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        created = tags.tag_create(name=obj.name, by=request.user)  # the form asked the same question first
        obj.pk, obj.key, obj._state.adding = created.pk, created.key, False

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class TagForm(form):
            def clean_name(self):
                name = self.cleaned_data["name"]
                existing = tags.tag_for_name(name)
                if existing is not None:
                    raise ValidationError(f"The tag “{existing.name}” exists already (tags match in any case).")
                return name

        return TagForm


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "funnel", "topic", "slug", "url")
    list_filter = ("kind", "funnel")
    search_fields = ("name", "slug", "topic")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(ConversionKind)
class ConversionKindAdmin(admin.ModelAdmin):
    """Marketers add the kinds of conversion their forms count (a webinar signup, a template download...)."""

    list_display = ("name", "slug", "is_macro")
    prepopulated_fields = {"slug": ("name",)}

    def has_delete_permission(self, request, obj=None):
        return False  # conversions keep their kind: rename it instead


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdminMixin, LeadRecordAdmin):
    list_display = ("occurred_at", "kind", "lead_column", "visitor_id", "resource")
    list_filter = ("kind", "kind__is_macro")
    list_select_related = ("lead", "kind", "resource")
    raw_id_fields = ("lead",)


@admin.register(FormSubmission)
class FormSubmissionAdmin(ReadOnlyAdminMixin, LeadRecordAdmin):
    list_display = ("submitted_at", "form_name", "resource", "lead_column", "utm_source", "utm_campaign", "consent_given")
    list_filter = ("resource", "consent_given", "utm_source")
    search_fields = ("form_name", "lead__search_text")
    list_select_related = ("lead", "resource")
    raw_id_fields = ("lead",)



# The event log's admin is core's; it is registered here, where exports are recorded (core stands below leads).
@admin.register(DomainEvent)
class EventLogAdmin(ListExportAdmin, DomainEventAdmin):
    export_spec = exports.EVENTS
    change_list_template = "admin/export_change_list.html"


@admin.register(LeadExport)
class LeadExportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every export of leads' personal data: read only, as a log is."""

    list_display = ("exported_at", "exported_by", "kind", "file_format", "row_count", "what")
    list_select_related = ("exported_by",)
    list_filter = (("exported_at", admin.DateFieldListFilter), "kind", "exported_by")
    fields = ("exported_at", "exported_by", "kind", "file_format", "row_count", "filters", "lead_ids")
    paginator = BoundedCountPaginator
    show_full_result_count = False

    @admin.display(description="leads")
    def what(self, obj):
        if obj.kind == LeadExport.Kind.PERSON:
            return "one person: lead rows " + ", ".join(f"#{pk}" for pk in obj.lead_ids)
        if obj.lead_ids:
            return f"{len(obj.lead_ids)} ticked: " + ", ".join(f"#{pk}" for pk in obj.lead_ids[:10]) + (" …" if len(obj.lead_ids) > 10 else "")
        rows = {LeadExport.Kind.DEAL_LIST: "deal", LeadExport.Kind.EVENT_LIST: "event"}.get(obj.kind, "lead")
        return f"every {rows} matching: {obj.filters or 'no filter'}"


@admin.register(LeadMerge)
class LeadMergeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every merge of two leads: read only, as a log is. A manager undoes a standing merge from here."""

    list_display = ("merged_at", "merged_column", "keep_column", "merged_by", "moved_summary", "state")
    list_select_related = ("keep", "merged", "merged_by", "undone_by")
    list_filter = (("merged_at", admin.DateFieldListFilter), ("undone_at", admin.EmptyFieldListFilter))
    search_fields = ("=keep__id", "=merged__id")
    search_help_text = "A lead's id: the merges it was kept in or merged by."
    fields = readonly_fields = (
        "merged_column", "keep_column", "merged_by", "merged_at", "moved", "filled", "events_moved", "state",
    )
    actions = ("undo",)
    paginator = BoundedCountPaginator
    show_full_result_count = False

    @admin.display(description="merged lead")
    def merged_column(self, obj):
        return format_html("#{} {}", obj.merged_id, lead_link(obj.merged))

    @admin.display(description="into")
    def keep_column(self, obj):
        return format_html("#{} {}", obj.keep_id, lead_link(obj.keep))

    @admin.display(description="moved")
    def moved_summary(self, obj):
        return ", ".join(f"{label}: {len(ids)}" for label, ids in obj.moved.items()) or "nothing"

    @admin.display(description="state")
    def state(self, obj):
        if obj.undone_at is not None:
            who = obj.undone_by.get_username() if obj.undone_by_id else "the system"
            return f"Undone {timezone.localtime(obj.undone_at):%Y-%m-%d %H:%M} by {who}"
        return format_html('Standing. <a href="{}">Undo this merge</a>', reverse("admin:leads_leadmerge_undo", args=[obj.pk]))

    def has_undo_permission(self, request):
        return access_for(request.user).is_manager

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:object_id>/undo/", view(self.undo_view), name="leads_leadmerge_undo"), *super().get_urls()]

    def _undo(self, request, record) -> bool:
        try:
            lead = services.lead_merge_undo(merge=record, by=request.user)
        except (ValidationError, PermissionDenied) as exc:
            reasons = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            self.message_user(request, f"{record}: not undone. {' '.join(reasons)}", messages.ERROR)
            return False
        self.message_user(request, f"Merge undone: {lead} (#{lead.pk}) is a live lead again.", messages.SUCCESS)
        return True

    @admin.action(description="Undo the selected merges", permissions=["undo"])
    def undo(self, request, queryset):
        # The latest first: a lead merged twice comes apart in the order it was put together.
        for record in queryset.order_by("-merged_at", "-pk"):
            self._undo(request, record)

    def undo_view(self, request, object_id):
        if not self.has_undo_permission(request):
            raise PermissionDenied
        record = self.get_object(request, str(object_id))
        if record is None:
            raise Http404("No merge with this id.")
        if request.method == "POST":
            self._undo(request, record)
            return HttpResponseRedirect(reverse("admin:leads_leadmerge_change", args=[record.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Undo the merge of lead #{record.merged_id} into lead #{record.keep_id}",
            "lead": record.keep,
            "form": forms.Form(),
            "submit_label": "Undo this merge",
            "intro": "The rows and events the merge moved go back to the merged lead, which is live again; what was "
                     "added to the kept lead since stays with it, and so do deals won or lost on it since.",
            "status_badge": status_badge_html(record.keep.status),
        }
        return TemplateResponse(request, "admin/leads/lead/lead_form_page.html", context)
