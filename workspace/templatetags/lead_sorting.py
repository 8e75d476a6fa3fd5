from django import template
from django.utils.html import format_html

from workspace.sorting import sort_header

register = template.Library()

_ARROWS = {"ascending": " ▲", "descending": " ▼", "none": ""}


@register.simple_tag(takes_context=True)
def sortable_th(context, column: str, label: str, css: str = ""):
    """A column header that sorts the Leads list by `column` (aria-sort says how it is sorted now)."""
    header = sort_header(context["request"].GET, column)
    return format_html(
        '<th scope="col" class="{}" aria-sort="{}"><a class="sort-link" href="{}" data-sort="{}">{}{}</a></th>',
        css, header.aria_sort, header.href, column, label, _ARROWS[header.aria_sort],
    )
