"""Small pieces the reps' pages share: status colours, inline SVG icons (no icon font to download), and amounts,
people and moments written for people."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from core.people import person_name
from core.policy import access_for, may_view_reports
from leads.money import money_format

from .. import display
from ..undo import undo_from_tags

register = template.Library()

STATUS_CLASSES = {
    "new": "text-bg-secondary",
    "contacted": "text-bg-info",
    "nurturing": "text-bg-primary",
    "mql": "text-bg-warning",
    "sql": "text-bg-warning",
    "opportunity": "text-bg-success",
    "customer": "text-bg-success",
    "lost": "text-bg-dark",
    "disqualified": "text-bg-dark",
}

# 16x16 outline paths, drawn for this app.
ICONS = {
    "call": "M3 2h3l1.5 3.5-2 1.2a8 8 0 0 0 3.8 3.8l1.2-2L14 10v3a1 1 0 0 1-1 1A11 11 0 0 1 2 3a1 1 0 0 1 1-1z",
    "note": "M3 2h7l3 3v9H3zM10 2v3h3M5 8h6M5 11h6",
    "meeting": "M2 4h12v10H2zM2 7h12M5 2v3M11 2v3",
    "objection": "M2 3h12v8H7l-3 3v-3H2zM8 5v3M8 9.5v.5",
    "stage": "M2 8h10M9 5l3 3-3 3",
    "email": "M2 4h12v8H2zM2 4l6 5 6-5",
    "task": "M3 3h10v10H3zM5.5 8l2 2 3-4",
    "customer": "M8 2l1.8 3.7 4 .6-2.9 2.8.7 4L8 11.2 4.4 13.1l.7-4L2.2 6.3l4-.6z",
    "created": "M8 3v10M3 8h10",
    "social": "M5 8a1.5 1.5 0 1 1-3 0 1.5 1.5 0 0 1 3 0zM14 4a1.5 1.5 0 1 1-3 0 1.5 1.5 0 0 1 3 0zM14 12a1.5 1.5 0 1 1-3 0 1.5 1.5 0 0 1 3 0zM4.8 7.2l6.4-2.4M4.8 8.8l6.4 2.4",
}


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status, "text-bg-light")


@register.simple_tag
def icon(name: str, label: str = ""):
    path = ICONS.get(name, ICONS["note"])
    aria = format_html(' role="img" aria-label="{}"', label) if label else mark_safe(' aria-hidden="true"')
    return format_html(
        '<svg class="icon" width="16" height="16" viewBox="0 0 16 16" fill="none" stroke="currentColor" '
        'stroke-width="1.4" stroke-linecap="round" stroke-linejoin="round"{}><path d="{}"/></svg>',
        aria,
        path,
    )


@register.filter
def sees_reports(user) -> bool:
    """Whether the nav offers Reports: managers, and marketers (who see the marketing ones)."""
    return may_view_reports(user, "funnel") or may_view_reports(user, "sales")


@register.filter
def builds_sequences(user) -> bool:
    """Whether the nav offers Sequences (the marketers' pages): marketers and managers."""
    return access_for(user).builds_sequences


@register.filter
def money(amount, currency: str = "") -> str:
    """{{ deal.value|money:deal.currency }}: "12,500.50 EUR"."""
    return money_format(amount, currency)


@register.filter
def person(user) -> str:
    """{{ lead.owner|person }}: "Tom Becker" (the username when there is no name; "" for nobody)."""
    return person_name(user)


@register.filter
def moment(value) -> str:
    """{{ row.at|moment }}: "3 Mar 2026, 14:05", in the account's time zone."""
    return display.moment(value)


@register.filter
def undo_of(message):
    """The Undo a message offers (workspace.undo), or None."""
    return undo_from_tags(getattr(message, "extra_tags", ""))
