"""The Undo that goes with "Task … done" and "Task … snoozed until …": what to post to put the task back.

A message carries it in its extra tags (the messages framework keeps only text), and the message's
template turns it back into a form; the services check everything again when it is posted.
"""

from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from django.urls import reverse

_TAG = "undo?"


def undo_of_task(task, *, what: str, snoozed_to: datetime | None = None) -> dict:
    """{"url", "fields"}: what the Undo of `what` ("done" or "snooze") posts."""
    fields = {"undo": what}
    if snoozed_to is not None:
        fields["snoozed_to"] = snoozed_to.isoformat()
    return {"url": reverse("workspace:task_undo", args=[task.pk]), "task": task.pk, "fields": fields}


def undo_tags(undo: dict) -> str:
    return _TAG + urlencode({"task": undo["task"], **undo["fields"]})


def undo_from_tags(tags: str) -> dict | None:
    if not (tags or "").startswith(_TAG):
        return None
    fields = dict(parse_qsl(tags[len(_TAG):]))
    task = fields.pop("task", "")
    if not task.isdigit():
        return None
    return {"url": reverse("workspace:task_undo", args=[int(task)]), "task": int(task), "fields": fields}
