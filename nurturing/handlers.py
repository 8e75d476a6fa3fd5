"""Reactions to the lead domain's signals (connected in NurturingConfig.ready)."""

from django.contrib.auth import get_user_model

from core.people import person_name
from leads import pipeline
from leads.models import Activity

from .models import EmailEvent, Enrollment
from .services import LIVE_ENROLLMENT, enrollment_exit, lead_exit_all, past_goal


def stop_sequences_on_stage_change(sender, *, lead_id, from_status, to_status, **kwargs):
    """A lead that converted or ended leaves every sequence; one that reached a goal leaves that sequence."""
    if to_status in pipeline.CLOSED_STATUSES:
        lead_exit_all(lead_id=lead_id, reason=f"the lead became {pipeline.label(to_status)}")
        return
    for enrollment in Enrollment.objects.filter(lead_id=lead_id, status__in=LIVE_ENROLLMENT).select_related("sequence"):
        if past_goal(to_status, enrollment.sequence.goal_stage):
            enrollment_exit(enrollment=enrollment, reason=f"the lead reached {pipeline.label(to_status)}, the sequence's goal")


def stop_sequences_on_meeting(sender, *, lead_id, activity_id, kind, author_id=None, **kwargs):
    """A meeting logged by a rep takes the lead out of every sequence: the conversation is human now."""
    if kind != Activity.Kind.MEETING:
        return
    author = get_user_model().objects.filter(pk=author_id).first() if author_id else None
    lead_exit_all(lead_id=lead_id, reason=f"Meeting logged by {person_name(author) or 'a rep'} (activity #{activity_id})")


def move_rows_on_merge(sender, *, keep, merge, by=None, moved, **kwargs):
    """Two leads merged (leads.signals.leads_merging): the merged lead's enrollments and email events go to the kept lead.

    A lead is in a sequence at most once at a time: where both leads are live
    in the same sequence, the kept lead's enrollment goes on and the merged
    lead's ends ("merged into lead #N") and stays with it; the others move,
    with their deliveries. Ids go into `moved` for the undo.
    """
    in_already = set(
        Enrollment.objects.filter(lead_id=keep.pk, status__in=LIVE_ENROLLMENT).values_list("sequence_id", flat=True)
    )
    moving, ending = [], []
    for enrollment in Enrollment.objects.filter(lead_id=merge.pk).order_by("pk"):
        clash = enrollment.status in LIVE_ENROLLMENT and enrollment.sequence_id in in_already
        (ending if clash else moving).append(enrollment)
    for enrollment in ending:
        enrollment_exit(enrollment=enrollment, reason=f"merged into lead #{keep.pk}", by=by)
    Enrollment.objects.filter(pk__in=[e.pk for e in moving]).update(lead_id=keep.pk)
    events = list(EmailEvent.objects.filter(lead_id=merge.pk).order_by("pk").values_list("pk", flat=True))
    EmailEvent.objects.filter(pk__in=events).update(lead_id=keep.pk)
    for label, ids in (
        ("nurturing.enrollment", [e.pk for e in moving]),
        ("nurturing.enrollment.ended", [e.pk for e in ending]),
        ("nurturing.emailevent", events),
    ):
        if ids:
            moved[label] = ids


def move_rows_back_on_unmerge(sender, *, keep, merged, moved, **kwargs):
    """A merge undone (leads.signals.leads_unmerging): the enrollments and email events it moved go back, if still on
    the kept lead. Enrollments it ended stay ended (see leads.services.lead_merge_undo)."""
    for model, label in ((Enrollment, "nurturing.enrollment"), (EmailEvent, "nurturing.emailevent")):
        model.objects.filter(pk__in=moved.get(label, []), lead_id=keep.pk).update(lead_id=merged.pk)
