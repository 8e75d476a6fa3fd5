"""Reports in the admin: a sequence's engagement per step, and a lead's email events.

Mixed into SequenceAdmin and the lead admin (nurturing/admin.py), so each
admin keeps its own permissions: whoever may view a sequence may read its
report; the event timeline shows on the lead page beside its deliveries.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from .models import EmailEvent, Sequence
from .reports import sequence_report

LEAD_EVENTS_SHOWN = 30


class SequenceReportMixin:
    """Adds admin/nurturing/sequence/<id>/report/ and a link to it in the list."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:sequence_id>/report/", view(self.report_view), name="nurturing_sequence_report"),
            *super().get_urls(),
        ]

    def get_list_display(self, request):
        return (*super().get_list_display(request), "report_link")

    @admin.display(description="report")
    def report_link(self, obj):
        return format_html('<a href="{}">Report</a>', reverse("admin:nurturing_sequence_report", args=[obj.pk]))

    def report_view(self, request, sequence_id):
        sequence = get_object_or_404(Sequence, pk=sequence_id)
        if not self.has_view_permission(request, sequence):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Report: {sequence}",
            "sequence": sequence,
            "report": sequence_report(sequence=sequence),
        }
        return TemplateResponse(request, "admin/nurturing/sequence_report.html", context)


class LeadEmailEventsMixin:
    """The lead's latest email events, for the lead admin: one query."""

    @admin.display(description="email events")
    def email_events(self, obj):
        if obj.pk is None:
            return "—"
        events = (
            EmailEvent.objects.filter(lead=obj)
            .select_related("delivery__step__sequence")
            .order_by("-occurred_at", "-id")[:LEAD_EVENTS_SHOWN]
        )
        rows = [
            (
                f"emailevent-{event.kind}",
                date_format(timezone.localtime(event.occurred_at), "DATETIME_FORMAT"),
                event.get_kind_display() + (f" ({event.get_bounce_display().lower()})" if event.bounce else ""),
                f"machine: {event.machine_reason}" if event.is_machine else "person",
                _email_label(event),
                Truncator(event.url if event.kind == EmailEvent.Kind.CLICKED else event.description).chars(200),
                event.actions or "—",
            )
            for event in events
        ]
        if not rows:
            return "No email events yet."
        return format_html(
            '<table class="lead-email-events"><thead><tr><th>when</th><th>event</th><th>by</th><th>email</th>'
            "<th>link or detail</th><th>what it did</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "", '<tr class="{}"><td class="nowrap">{}</td><td>{}</td><td>{}</td><td>{}</td>'
                '<td class="break-all">{}</td><td>{}</td></tr>', rows
            ),
        )


def _email_label(event: EmailEvent) -> str:
    if event.delivery is None:
        return "—"
    return f"{event.delivery.step.sequence.name} · step {event.delivery.step.position}"
