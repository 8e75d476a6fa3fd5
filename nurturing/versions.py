"""What changed between two versions of a sequence, as lines a marketer reads: each step's settings and templates
written out, then a line diff."""

from difflib import unified_diff

from django.db.models import Count, Q

from .models import Delivery

_LABELS = {
    "kind": "kind", "is_active": "on", "delay": "wait before", "send_days": "send days (Monday = 0)",
    "window_start": "send from", "window_end": "send until", "condition": "only if",
    "condition_resource_id": "resource (id)", "stage_action": "stage move when sent",
    "click_link_contains": "on a click of a link containing", "click_stage_action": "stage move on that click",
    "click_creates_call_task": "call task on that click",
}
_TEMPLATES = (("subject_template", "subject"), ("text_template", "plain text"), ("html_template", "HTML"))


def version_lines(steps: list[dict]) -> list[str]:
    """A version's steps as text, one setting per line and each template line by line."""
    lines = []
    for step in steps:
        lines.append(f"Step {step.get('position')}")
        for name, label in _LABELS.items():
            if name in step and step[name] not in (None, ""):
                lines.append(f"  {label}: {step[name]}")
        lines.extend(_template_lines(step, indent="  "))
        for variant in step.get("variants") or ():
            share = f"weight {variant.get('weight')}" + ("" if variant.get("is_active") else ", off")
            lines.append(f"  A/B variant {variant.get('label')} ({share})")
            lines.extend(_template_lines(variant, indent="    "))
        if step.get("winner"):
            lines.append(f"  A/B winner: {step['winner']} (every lead gets it)")
    return lines


def _template_lines(templates: dict, *, indent: str) -> list[str]:
    lines = []
    for name, label in _TEMPLATES:
        text = templates.get(name) or ""
        if text:
            lines.append(f"{indent}{label}:")
            lines.extend(f"{indent}  | {line}" for line in text.splitlines())
    return lines


def versions_diff(older: list[dict], newer: list[dict]) -> list[tuple[str, str]]:
    """(kind, line) of what changed from `older` to `newer`: kind "added", "removed", "same" (context) or "at"
    (where in the sequence); everything is "added" for a first version."""
    rows = []
    for line in unified_diff(version_lines(older), version_lines(newer), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            rows.append(("at", "…"))
        elif line.startswith("+"):
            rows.append(("added", line[1:]))
        elif line.startswith("-"):
            rows.append(("removed", line[1:]))
        else:
            rows.append(("same", line[1:]))
    return rows


def sequence_version_rows(sequence) -> list[tuple]:
    """(version, what changed from the one before, emails sent from it) for each version of the sequence, newest
    first: two queries."""
    versions = list(sequence.versions.select_related("created_by")
                    .annotate(sent=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SENT)))
                    .order_by("-number"))
    return [(version, versions_diff(older.steps if older else [], version.steps), version.sent)
            for version, older in zip(versions, [*versions[1:], None], strict=True)]
