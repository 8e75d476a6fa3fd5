"""The pipeline board's small pieces."""

from django import template
from django.utils import timezone

register = template.Library()


@register.simple_tag
def days_in_stage(entered_at) -> str:
    """“3 days in stage” from when the card entered its column (“today” on the first day)."""
    if entered_at is None:
        return "in stage"
    days = max(0, (timezone.now() - entered_at).days)
    if days == 0:
        return "entered today"
    return f"{days} day{'s' if days != 1 else ''} in stage"
