from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent(value) -> str:
    """A fraction as a percentage with one decimal; nothing to divide by shows as an en dash, never as 0 %."""
    if value is None:
        return "–"
    return f"{floatformat(value * 100, 1)} %"


@register.filter
def days(value) -> str:
    if value is None:
        return "–"
    return f"{floatformat(value, 1)} d"


@register.filter
def bar_width(count, whole) -> int:
    """A funnel bar's width in the SVG's 0-200 units, relative to the first step; at least 1 unit when not 0."""
    if not whole or not count:
        return 0
    return max(round(200 * count / whole), 1)


@register.filter
def heat(share) -> str:
    """The heat map class of a share: heat-0 (none) to heat-5 (80 % or more)."""
    if not share:
        return "heat-0"
    return f"heat-{min(int(share * 5) + 1, 5)}"


@register.filter
def money(value) -> str:
    """An amount with two decimals and thousands separators (12,500.00), whatever the database returned."""
    if value is None:
        return "–"
    return f"{Decimal(value):,.2f}"


@register.filter
def label_of(labels: dict, value) -> str:
    """The label of a stored value (a category, a stage), or the value itself when it has none (a source, a product)."""
    return labels.get(value, value)
