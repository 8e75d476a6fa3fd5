"""The event types an endpoint can subscribe to, by their public names.

The public name of an event is its type in the event log (core.events.EventType),
with one exception: a stage change is `stage.changed` (the log says
`lead.stage_changed`). Events that concern the CRM itself rather than the
funnel (webhook endpoints paused, exports) are not offered.
"""

from core.events import EventType

# public name -> the event log's type, in the order the admin shows them.
PUBLIC_TYPES: dict[str, str] = {
    "lead.created": EventType.LEAD_CREATED,
    "lead.updated": EventType.LEAD_UPDATED,
    "lead.assigned": EventType.LEAD_ASSIGNED,
    "lead.claimed": EventType.LEAD_CLAIMED,
    "lead.archived": EventType.LEAD_ARCHIVED,
    "lead.merged": EventType.LEAD_MERGED,
    "lead.unmerged": EventType.LEAD_UNMERGED,
    "stage.changed": EventType.STAGE_CHANGED,
    "lead.tagged": EventType.LEAD_TAGGED,
    "lead.untagged": EventType.LEAD_UNTAGGED,
    "activity.logged": EventType.ACTIVITY_LOGGED,
    "objection.logged": EventType.OBJECTION_LOGGED,
    "objection.resolved": EventType.OBJECTION_RESOLVED,
    "task.created": EventType.TASK_CREATED,
    "task.done": EventType.TASK_DONE,
    "task.reopened": EventType.TASK_REOPENED,
    "deal.created": EventType.DEAL_CREATED,
    "deal.won": EventType.DEAL_WON,
    "deal.lost": EventType.DEAL_LOST,
    "deal.updated": EventType.DEAL_UPDATED,
    "deal.stage_changed": EventType.DEAL_STAGE_CHANGED,
    "form.submitted": EventType.FORM_SUBMITTED,
    "conversion.recorded": EventType.CONVERSION_RECORDED,
    "enrollment.started": EventType.ENROLLMENT_STARTED,
    "enrollment.exited": EventType.ENROLLMENT_EXITED,
    "email.sent": EventType.EMAIL_SENT,
    "email.delivered": EventType.EMAIL_DELIVERED,
    "email.opened": EventType.EMAIL_OPENED,
    "email.clicked": EventType.EMAIL_CLICKED,
    "email.replied": EventType.EMAIL_REPLIED,
    "email.bounced": EventType.EMAIL_BOUNCED,
    "email.unsubscribed": EventType.EMAIL_UNSUBSCRIBED,
    "person.erased": EventType.PERSON_ERASED,
}
PUBLIC_NAME = {internal: public for public, internal in PUBLIC_TYPES.items()}

# The type of the message "Send test event" sends; it has no row in the event log.
TEST_TYPE = "webhook.test"


def public_type_choices() -> list[tuple[str, str]]:
    return [(public, f"{public} — {EventType(internal).label}") for public, internal in PUBLIC_TYPES.items()]
