"""Reactions to the lead domain's signals (connected in NurturingConfig.ready)."""

from django.contrib.auth import get_user_model

from leads import pipeline
from leads.models import Activity

from .models import Enrollment
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
    who = get_user_model().objects.filter(pk=author_id).values_list("username", flat=True).first() if author_id else None
    lead_exit_all(lead_id=lead_id, reason=f"Meeting logged by {who or 'a rep'} (activity #{activity_id})")
