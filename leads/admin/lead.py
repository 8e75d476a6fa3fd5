"""The managers' pipeline review: the lead changelist, the lead page, the pipeline summary.

Every stage move, conversion, assignment and logged activity goes through
`leads.services`; the status field is never edited directly here.
"""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from core.events import EventType, actor_label, payload_label
from core.models import DomainEvent
from core.pagination import BoundedCountPaginator
from core.people import person_name
from core.policy import access_for

from .. import exports, pipeline, selectors, services, tags
from ..forms import AssignOwnerForm, ConvertForm, LeadForm, MergeLeadsForm, StageMoveForm, TagForm, add_service_errors
from ..models import Deal, Lead
from ..money import money_format
from .exporting import ListExportAdmin

# The lead page shows this many of the lead's latest events; the rest are a link away.
AUDIT_TRAIL_ROWS = 25

# Stage moves from the changelist run one service call per lead; beyond this
# many, narrow the filter (or script it) instead of holding the page.
BULK_STAGE_MOVE_LIMIT = 1000


def status_badge_html(status: str):
    """The status as a coloured badge (colours in crm/static/crm/admin.css)."""
    return format_html('<span class="lead-status lead-status-{}">{}</span>', status, pipeline.label(status))


def _filter_by_owner(leads, value: str):
    """The leads of the user with this id, or the unassigned pool for "none".

    Raises ValidationError for anything else (a word, an id past the column's
    range), which the database would otherwise be asked about and fail on.
    """
    if value == "none":
        return leads.filter(owner__isnull=True)
    id_field = Lead._meta.get_field("owner").target_field
    owner_id = id_field.to_python(value)
    id_field.run_validators(owner_id)
    return leads.filter(owner_id=owner_id)


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        users = [(str(u.pk), person_name(u)) for u in selectors.lead_owner_choices()]
        return [("none", "Unassigned"), *users]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return _filter_by_owner(queryset, self.value())
        except ValidationError as exc:
            raise IncorrectLookupParameters(exc) from exc


class LeadChangeList(ChangeList):
    def get_filters(self, request):
        # Django turns a date drill-down it cannot read into its "invalid
        # filter" redirect, but only for a ValueError: a year of 10**23
        # overflows instead.
        try:
            return super().get_filters(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class LiveFilter(admin.SimpleListFilter):
    """Live leads by default; archived ones on request."""

    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("yes", "Archived"), ("all", "Live and archived")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Live",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(archived_at__isnull=True)


# What a lead's score is made of, in words, from the apps that compute it (the scoring app adds its breakdown):
# each a callable(lead) -> str. Registered from above, as signals are, so this app knows nothing of scoring.
SCORE_EXPLAINERS: list = []


@admin.register(Lead)
class LeadAdmin(ListExportAdmin, admin.ModelAdmin):
    form = LeadForm
    list_display = (
        "lead_name", "email", "company", "status_badge", "owner_name", "source", "campaign",
        "score", "created_at", "last_touch_at",
    )
    list_display_links = ("lead_name",)
    list_select_related = ("company", "owner", "source", "campaign")
    list_filter = (
        "status", OwnerFilter, "source", "campaign", "persona", "tags", ("created_at", admin.DateFieldListFilter),
        LiveFilter,
    )
    search_fields = ("search_text",)
    search_help_text = "Search by name, email, phone or company."
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 50
    # Only columns with an index behind them sort, so no sort scans the table.
    sortable_by = ("created_at", "last_touch_at", "score")
    ordering = ("-created_at", "-id")
    autocomplete_fields = ("company",)
    actions = ("assign_owner", "move_stage", "tag_leads", "merge_leads", "export_csv", "export_xlsx", "archive")
    export_spec = exports.LEADS
    readonly_fields = (
        "timeline", "audit_trail", "deals", "open_tasks", "stage", "score_explained", "tag_list", "stage_entered_at", "lost_reason", "created_at", "updated_at", "last_touch_at", "archived_at",
    )
    fieldsets = (
        ("Pipeline", {"fields": ("stage", "stage_entered_at", "lost_reason", "owner", "score_explained", "tag_list")}),
        ("Contact", {"fields": (("first_name", "last_name"), "email", "phone", "title", "company", "timezone",
                                ("linkedin_url", "x_url"))}),
        ("Attribution", {"fields": ("source", "campaign", "persona", ("utm_medium", "utm_content", "utm_term"))}),
        ("Consent", {"fields": ("consent_given_at", "consent_text", "consent_source")}),
        ("Record", {"fields": ("created_at", "updated_at", "last_touch_at", "archived_at")}),
        ("Deals and tasks", {"fields": ("deals", "open_tasks")}),
        ("Timeline", {"fields": ("timeline",), "description": "The latest 30 stage changes, calls, notes, meetings and objections."}),
        ("Audit trail", {
            "fields": ("audit_trail",), "classes": ("collapse",),
            "description": f"Who changed what, when: the latest {AUDIT_TRAIL_ROWS} events of the event log for this lead.",
        }),
    )

    # --- Columns ---------------------------------------------------------------

    @admin.display(description="lead", ordering="created_at")
    def lead_name(self, obj):
        return obj.full_name or obj.email or obj.phone

    @admin.display(description="owner")
    def owner_name(self, obj):
        return person_name(obj.owner) if obj.owner_id else "—"

    @admin.display(description="score")
    def score_explained(self, obj):
        why = "; ".join(filter(None, (explain(obj) for explain in SCORE_EXPLAINERS))) if obj.pk else ""
        return f"{obj.score} ({why})" if why else obj.score

    @admin.display(description="tags")
    def tag_list(self, obj):
        if obj.pk is None:
            return "—"
        rows = obj.lead_tags.select_related("tag", "added_by")
        return format_html_join(", ", '<span class="lead-tag" title="added {} by {}">{}</span>', (
            (date_format(timezone.localtime(row.added_at), "j M Y"),
             row.added_by.get_username() if row.added_by_id else "the system", row.tag.name) for row in rows
        )) or "—"

    @admin.display(description="status")
    def status_badge(self, obj):
        return status_badge_html(obj.status)

    @admin.display(description="latest")
    def timeline(self, obj):
        if obj.pk is None:
            return "—"
        rows = selectors.lead_timeline(lead=obj)
        if not rows:
            return "Nothing yet."
        body = format_html_join(
            "",
            '<tr class="timeline-{}"><td class="nowrap">{}</td><td><strong>{}</strong><br>{}</td><td>{}</td></tr>',
            (
                (row["kind"], date_format(timezone.localtime(row["at"]), "DATETIME_FORMAT"), row["title"], row["detail"], row["who"])
                for row in rows
            ),
        )
        return format_html('<table class="lead-timeline"><tbody>{}</tbody></table>', body)

    @admin.display(description="events")
    def audit_trail(self, obj):
        if obj.pk is None:
            return "—"
        events = list(
            DomainEvent.objects.filter(lead_id=obj.pk).select_related("actor_user").order_by("-id")[:AUDIT_TRAIL_ROWS]
        )
        if not events:
            return "Nothing recorded yet."
        body = format_html_join(
            "",
            "<tr><td class=\"nowrap\">{}</td><td><strong>{}</strong><br>{}</td><td>{}</td></tr>",
            (
                (date_format(timezone.localtime(e.occurred_at), "DATETIME_FORMAT"), EventType(e.type).label
                 if e.type in EventType.values else e.type, payload_label(e), actor_label(e))
                for e in events
            ),
        )
        everything = format_html(
            '<p><a href="{}?{}">The whole history in the event log</a></p>',
            reverse("admin:core_domainevent_changelist"), urlencode({"q": obj.pk}),
        )
        return format_html('<table class="lead-timeline"><tbody>{}</tbody></table>{}', body, everything)

    @admin.display(description="deals")
    def deals(self, obj):
        if obj.pk is None:
            return "—"
        rows = [
            (
                reverse("admin:leads_deal_change", args=[deal.pk]),
                deal.product or "Deal",
                money_format(deal.value, deal.currency),
                deal.get_status_display(),
                date_format(timezone.localtime(deal.created_at), "DATE_FORMAT"),
                deal.lost_reason,
            )
            for deal in obj.deals.order_by("-created_at", "-id")[:20]
        ]
        if not rows:
            return "No deals yet."
        return format_html(
            '<table class="lead-deals"><tbody>{}</tbody></table>',
            format_html_join("", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>opened {}</td><td>{}</td></tr>', rows),
        )

    @admin.display(description="open tasks")
    def open_tasks(self, obj):
        if obj.pk is None:
            return "—"
        add = format_html(
            '<a class="addlink" href="{}?lead={}">Add a task</a>', reverse("admin:leads_task_add"), obj.pk
        )
        rows = [
            (
                reverse("admin:leads_task_change", args=[task.pk]),
                task.title,
                person_name(task.assignee),
                date_format(timezone.localtime(task.due_at), "DATETIME_FORMAT"),
                " (overdue)" if task.is_overdue else "",
            )
            for task in obj.tasks.filter(completed_at__isnull=True).select_related("assignee").order_by("due_at", "id")[:20]
        ]
        if not rows:
            return format_html("None. {}", add)
        return format_html(
            '<table class="lead-tasks"><tbody>{}</tbody></table>{}',
            format_html_join("", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>due {}{}</td></tr>', rows),
            add,
        )

    @admin.display(description="stage")
    def stage(self, obj):
        if obj.pk is None:
            return "New (every lead starts here)"
        return format_html(
            '{} <div class="help">{}</div>', status_badge_html(obj.status), pipeline.describe_allowed_moves(obj.status)
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        lead = self.get_object(request, object_id)
        extra = {}
        if lead is not None and self.has_change_permission(request, lead):
            extra = {
                "move_stage_url": reverse("admin:leads_lead_move_stage", args=[lead.pk])
                if pipeline.allowed_moves(lead.status)
                else None,
                "convert_url": reverse("admin:leads_lead_convert", args=[lead.pk])
                if pipeline.is_move_allowed(lead.status, pipeline.LeadStatus.CUSTOMER)
                else None,
            }
        if lead is not None:
            query = f"?lead__id__exact={lead.pk}"
            extra["history_links"] = [
                ("All calls, notes and meetings", reverse("admin:leads_activity_changelist") + query),
                ("All objections", reverse("admin:leads_objection_changelist") + query),
                ("All stage changes", reverse("admin:leads_stagechange_changelist") + query),
                ("All tasks", reverse("admin:leads_task_changelist") + query),
                ("Merges", reverse("admin:leads_leadmerge_changelist") + f"?q={lead.pk}"),
            ]
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    # --- Search: one substring match on the indexed search text -------------

    def get_search_results(self, request, queryset, search_term):
        return selectors.lead_search(queryset, search_term), False

    # --- Saving through the services -------------------------------------------

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.cleaned_data if name in form.fields}
        if change:
            changed = {name: data[name] for name in form.changed_data if name in data}
            services.lead_update(lead=obj, by=request.user, **changed)
            return
        created = services.lead_create(by=request.user, **data)
        for field in Lead._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db

    # --- Extra pages ----------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("pipeline/", view(self.pipeline_view), name="leads_lead_pipeline"),
            path("<int:object_id>/move-stage/", view(self.move_stage_view), name="leads_lead_move_stage"),
            path("<int:object_id>/convert/", view(self.convert_view), name="leads_lead_convert"),
            *super().get_urls(),
        ]

    def _lead_for_change(self, request, object_id):
        lead = self.get_object(request, str(object_id))
        if lead is None:
            raise Http404("No lead with this id.")
        if not self.has_change_permission(request, lead):
            raise PermissionDenied
        return lead

    def _form_page(self, request, *, lead, title, form, submit, intro=""):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "lead": lead,
            "form": form,
            "submit_label": submit,
            "intro": intro,
            "status_badge": status_badge_html(lead.status),
        }
        return TemplateResponse(request, "admin/leads/lead/lead_form_page.html", context)

    def move_stage_view(self, request, object_id):
        lead = self._lead_for_change(request, object_id)
        form = StageMoveForm(request.POST or None, from_status=lead.status)
        if request.method == "POST" and form.is_valid():
            try:
                services.lead_change_stage(
                    lead=lead, to_status=form.cleaned_data["to_status"], reason=form.cleaned_data["reason"], by=request.user
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                self.message_user(request, f"{lead} moved to {pipeline.label(lead.status)}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[lead.pk]))
        return self._form_page(
            request,
            lead=lead,
            title=f"Move {lead} to another stage",
            form=form,
            submit="Move",
            intro=pipeline.describe_allowed_moves(lead.status),
        )

    def convert_view(self, request, object_id):
        lead = self._lead_for_change(request, object_id)
        open_deal = lead.deals.filter(status=Deal.Status.OPEN).order_by("-created_at", "-id").first()
        initial = {"currency": open_deal.currency if open_deal else services.settings.CRM_DEFAULT_CURRENCY}
        if open_deal:
            initial.update(deal_value=open_deal.value, product=open_deal.product, expected_close_on=open_deal.expected_close_on)
        form = ConvertForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                deal = services.lead_convert_to_customer(lead=lead, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                self.message_user(
                    request, f"{lead} is now a customer: deal won, {money_format(deal.value, deal.currency)}.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[lead.pk]))
        intro = "Records the won deal and makes the lead's company (or the person) a customer."
        if open_deal:
            intro += f" The open deal “{open_deal}” will be marked won."
        return self._form_page(request, lead=lead, title=f"Convert {lead} to a customer", form=form, submit="Convert", intro=intro)

    def pipeline_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        owner_id = request.GET.get("owner", "")
        leads = Lead.objects.live()
        if owner_id:
            try:
                leads = _filter_by_owner(leads, owner_id)
            except ValidationError:
                self.message_user(
                    request, f"There is no owner “{owner_id}”: showing everyone's leads. Choose an owner from the list.", messages.ERROR
                )
                return HttpResponseRedirect(reverse("admin:leads_lead_pipeline"))
        changelist = reverse("admin:leads_lead_changelist")
        rows = selectors.pipeline_summary(leads=leads)
        for row in rows:
            query = {"status__exact": row["status"]}
            if owner_id:
                query["owner"] = owner_id
            row["link"] = f"{changelist}?{urlencode(query)}"
            row["badge"] = status_badge_html(row["status"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Pipeline",
            "rows": rows,
            "total": sum(row["leads"] for row in rows),
            "owners": selectors.lead_owner_choices(),
            "owner_id": owner_id,
        }
        return TemplateResponse(request, "admin/leads/lead/pipeline.html", context)

    def get_changelist(self, request, **kwargs):
        return LeadChangeList

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "pipeline_url": reverse("admin:leads_lead_pipeline")}
        return super().changelist_view(request, extra_context)

    # --- Actions ------------------------------------------------------------------

    def _action_page(self, request, queryset, *, action, title, form, submit, intro, step="apply"):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "submit_label": submit,
            "intro": intro,
            "action": action,
            "step": step,
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "sample": list(queryset.select_related(None).only("id", "first_name", "last_name", "email", "phone")[:10]),
            "count_label": _count_label(queryset),
        }
        return TemplateResponse(request, "admin/leads/lead/action_form.html", context)

    @admin.action(description="Assign owner to selected leads", permissions=["change"])
    def assign_owner(self, request, queryset):
        form = AssignOwnerForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            owner = form.cleaned_data["owner"]
            try:
                changed = services.lead_assign_owner(leads=queryset, owner=owner, by=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                who = person_name(owner) if owner else "the unassigned pool"
                self.message_user(request, f"{changed} lead(s) assigned to {who}.", messages.SUCCESS)
                return None
        return self._action_page(
            request, queryset, action="assign_owner", title="Assign owner", form=form, submit="Assign",
            intro="The selected leads go to this rep. Leads they already own are left as they are.",
        )

    @admin.action(description="Move selected leads to another stage", permissions=["change"])
    def move_stage(self, request, queryset):
        form = StageMoveForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            ids = list(queryset.values_list("pk", flat=True)[: BULK_STAGE_MOVE_LIMIT + 1])
            if len(ids) > BULK_STAGE_MOVE_LIMIT:
                self.message_user(
                    request,
                    f"More than {BULK_STAGE_MOVE_LIMIT:,} leads are selected. Narrow the filter and move them in batches.",
                    messages.ERROR,
                )
                return None
            if self._move_many(request, form, ids, form.cleaned_data["to_status"], form.cleaned_data["reason"]):
                return None
        return self._action_page(
            request, queryset, action="move_stage", title="Move leads to another stage", form=form, submit="Move",
            intro="Each lead moves only if the pipeline allows it from its current stage; the others are listed.",
        )

    def _move_many(self, request, form, ids, to_status, reason) -> bool:
        try:
            result = services.lead_change_stage_many(lead_ids=ids, to_status=to_status, reason=reason, by=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
            return False
        moved = result.moved
        refused = [f"{lead} (#{lead.pk}): {' '.join(reasons)}" for lead, reasons in result.refused]
        if moved:
            self.message_user(request, f"{moved} lead(s) moved to {pipeline.label(to_status)}.", messages.SUCCESS)
        if refused:
            shown = refused[:10]
            more = f" …and {len(refused) - 10} more." if len(refused) > 10 else ""
            self.message_user(
                request, f"{len(refused)} lead(s) not moved. " + " | ".join(shown) + more, messages.ERROR
            )
        return True

    def has_tag_permission(self, request):
        # Managers and marketers (their roles' permission); the service asks about each lead again.
        return request.user.has_perm("leads.add_leadtag")

    @admin.action(description="Tag selected leads", permissions=["tag"])
    def tag_leads(self, request, queryset):
        form = TagForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                added = tags.leads_tag_add(lead_ids=queryset.values_list("pk", flat=True), name=form.cleaned_data["tag"],
                                           by=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            except PermissionDenied as exc:
                self.message_user(request, f"No lead was tagged. {exc}", messages.ERROR)
                return None
            else:
                self.message_user(request, f"{added} lead(s) tagged “{tags.tag_name_clean(form.cleaned_data['tag'])}”; "
                                           "those that had the tag already are left as they were.", messages.SUCCESS)
                return None
        return self._action_page(
            request, queryset, action="tag_leads", title="Tag leads", form=form, submit="Tag",
            intro="The selected leads get this tag (a new tag is made if no tag has that name in any case).",
        )

    def has_merge_permission(self, request):
        return access_for(request.user).is_manager

    # Offered to managers only (the policy's rule); the service asks again.
    @admin.action(description="Merge two selected leads", permissions=["merge"])
    def merge_leads(self, request, queryset):
        leads = list(queryset.select_related("owner").order_by("pk")[:3])
        if len(leads) != 2:
            self.message_user(
                request, "Select exactly two leads to merge: the person's two rows, one to keep and one to merge into it.",
                messages.ERROR,
            )
            return None
        form = MergeLeadsForm(request.POST if "apply" in request.POST else None, leads=leads)
        if "apply" in request.POST and form.is_valid():
            keep, other = form.chosen()
            try:
                record = services.lead_merge(keep=keep, merge=other, by=request.user)
            except (ValidationError, PermissionDenied) as exc:
                reasons = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                self.message_user(request, f"Nothing was merged. {' '.join(reasons)}", messages.ERROR)
                return None
            self.message_user(
                request,
                format_html(
                    '{} (#{}) merged into {} (#{}). <a href="{}">Undo</a> from the record of merges.',
                    other, other.pk, keep, keep.pk, reverse("admin:leads_leadmerge_change", args=[record.pk]),
                ),
                messages.SUCCESS,
            )
            return None
        return self._action_page(
            request, queryset, action="merge_leads", title="Merge two leads", form=form, submit="Merge",
            intro="Choose the lead to keep. The other lead's stage history, calls, notes, meetings, objections, tasks, "
                  "deals, form submissions, sequences, emails and events move to it; its blank fields take the other's "
                  "values (a value it has is kept); its stage stays, and so does its owner if it has one. The other lead is "
                  "archived.",
        )

    def _export_selected(self, request, queryset, file_format):
        try:
            export = exports.list_export(
                spec=exports.LEADS, rows=queryset, by=request.user, file_format=file_format,
                filters=request.GET.urlencode(), ticked=request.POST.get("select_across") != "1",
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return None
        return export.as_response()

    # Offered only to who may export (ListExportAdmin.has_export_permission); a forged
    # POST of it is refused by the admin ("No action selected.") and, behind that, by the service.
    @admin.action(description="Export selected leads as CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        return self._export_selected(request, queryset, "csv")

    @admin.action(description="Export selected leads as XLSX", permissions=["export"])
    def export_xlsx(self, request, queryset):
        return self._export_selected(request, queryset, "xlsx")

    @admin.action(description="Archive selected leads", permissions=["change"])
    def archive(self, request, queryset):
        count = services.lead_archive(leads=queryset, by=request.user)
        self.message_user(request, f"{count} lead(s) archived. Their history is kept.", messages.SUCCESS)


def _count_label(queryset) -> str:
    paginator = BoundedCountPaginator(queryset, 1)
    prefix = "about " if paginator.is_estimated else ""
    return f"{prefix}{paginator.count:,}"

