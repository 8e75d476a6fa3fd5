"""A step's settings as words a marketer reads: waits, send days, conditions and click actions."""

from datetime import timedelta

from django import template

from leads import pipeline
from nurturing.models import Step

register = template.Library()

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _plural(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


@register.filter
def wait_words(delay: timedelta | None) -> str:
    """'2 days 4 hours'; 'no wait' for none."""
    if not delay:
        return "no wait"
    seconds = int(delay.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [_plural(n, word) for n, word in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n]
    return " ".join(parts) or "less than a minute"


@register.simple_tag
def delay_sentence(step: Step, first: bool) -> str:
    """'2 days 4 hours after the previous step' (after enrolling, for the first step)."""
    after = "after enrolling" if first else "after the previous step"
    if not step.delay:
        return f"right {after}"
    return f"{wait_words(step.delay)} {after}"


@register.filter
def weekdays(send_days: str) -> list[tuple[str, bool]]:
    """(name, sends that day) for Monday to Sunday."""
    return [(name, str(day) in (send_days or "")) for day, name in enumerate(WEEKDAY_NAMES)]


@register.filter
def condition_sentence(step: Step) -> str:
    """When the step is sent: '' for always."""
    if step.condition == Step.Condition.NO_REPLY:
        return "only if no earlier email of this sequence got a reply"
    if step.condition == Step.Condition.HUMAN_CLICK:
        return "only if a person clicked a link in an earlier email of this sequence"
    if step.condition == Step.Condition.DOWNLOADED:
        resource = step.condition_resource if step.condition_resource_id else None
        return f"only if the lead downloaded “{resource}”" if resource else "only if the lead downloaded the resource (choose it)"
    return ""


@register.filter
def click_sentence(step: Step) -> str:
    """What a person's click on a given link does: '' when nothing."""
    actions = []
    if step.click_stage_action:
        actions.append(f"move the lead to {pipeline.label(step.click_stage_action)}")
    if step.click_creates_call_task:
        actions.append("create a call task for the lead's rep")
    if not actions:
        return ""
    link = step.click_link_contains.strip() or "(say which link)"
    return f"When a person clicks a link containing “{link}”: {' and '.join(actions)}."


@register.filter
def sent_sentence(step: Step) -> str:
    """What sending the step does to the lead's stage: '' when nothing."""
    if step.stage_action:
        return f"When sent, move the lead to {pipeline.label(step.stage_action)}."
    return ""


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key, ())
