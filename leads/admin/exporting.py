"""Admin lists that export: "Export all matching (CSV / XLSX)" takes the changelist's filters and search as shown."""

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect, QueryDict
from django.urls import path, reverse

from core.roles import user_can_export_personal_data

from .. import exports

# Changelist parameters that page the list or flag an error: not filters, not passed on.
_NOT_FILTERS = ("p", "e")


class ListExportAdmin:
    """Mix into a ModelAdmin (before it) with `export_spec`: its list gets export links, for who may export."""

    export_spec: exports.ListSpec

    def has_export_permission(self, request):
        return user_can_export_personal_data(request.user)

    def _export_url_name(self):
        return f"{self.opts.app_label}_{self.opts.model_name}_export"

    def get_urls(self):
        view = self.admin_site.admin_view(self.export_list_view)
        return [path("export/<slug:file_format>/", view, name=self._export_url_name()), *super().get_urls()]

    @staticmethod
    def _filters(request) -> str:
        query = request.GET.copy()
        for name in _NOT_FILTERS:
            query.pop(name, None)
        return query.urlencode()

    def changelist_view(self, request, extra_context=None):
        if self.has_export_permission(request):
            query = f"?{self._filters(request)}" if self._filters(request) else ""
            links = [
                (fmt.upper(), reverse(f"admin:{self._export_url_name()}", kwargs={"file_format": fmt}) + query)
                for fmt in exports.FORMATS
            ]
            extra_context = {**(extra_context or {}), "export_links": links}
        return super().changelist_view(request, extra_context)

    def export_list_view(self, request, file_format):
        """Every row the changelist shows for these filters and this search, in its order: not just one page."""
        if file_format not in exports.FORMATS:
            raise Http404("Export as csv or xlsx.")
        if not (self.has_view_or_change_permission(request) and self.has_export_permission(request)):
            raise PermissionDenied
        # The list as it is filtered, whichever page of it was open when the link was followed.
        request.GET = QueryDict(self._filters(request))
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("These filters cannot be read: go back to the list and pick them again.")
        filters = self._filters(request)
        try:
            export = exports.list_export(
                spec=self.export_spec, rows=changelist.queryset, by=request.user, file_format=file_format,
                filters=filters,
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            changelist_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
            return HttpResponseRedirect(changelist_url + (f"?{filters}" if filters else ""))
        return export.as_response()
