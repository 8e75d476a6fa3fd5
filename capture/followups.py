"""What follows a capture, read from the event log (a reader with its own cursor), never called by the capture.

For each `form.submitted` event of a capture form, once each (FollowupDone):
- owner: a lead without an owner gets one: the first assignment rule that
  matches where it came from (source, campaign, persona, country), else the
  form's rule (one rep, or round robin among the active sales reps);
- speed_to_lead: a demo request puts a call task, due within the hour, on the
  owner's Today;
- enroll: a new submitter is enrolled in the form's sequence;
- resource_email: the resource's link is emailed to the person.
And for each `lead.stage_changed` to Customer: the lead's website visitors
count as a customer's from then on.

A step that fails for a reason that will not pass (the sequence is paused, the
lead has no email) is logged and marked done; a crash leaves the cursor where
it was, and each step is done once however often the event is read.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.events import EventType, cursor_advance, cursor_position, events_after
from core.policy import access_for
from core.roles import Role
from leads import services as lead_services
from leads.models import Lead, LeadTouch
from leads.pipeline import LeadStatus
from nurturing import services as nurturing_services
from traffic.models import VisitorKind
from traffic.services import visitors_mark

from .models import AssignmentRule, CaptureForm, FollowupDone, RoundRobin

log = logging.getLogger(__name__)
CURSOR = "capture.followups"
SPEED_TO_LEAD_KINDS = {"demo-request", "trial-signup", "contact-request"}


def _once(event_id: int, action: str) -> bool:
    """True the first time (event, action) is claimed; the claim commits with the step's own writes."""
    try:
        with transaction.atomic():
            FollowupDone.objects.create(event_id=event_id, action=action)
    except IntegrityError:
        return False
    return True


def _next_rep(form: CaptureForm):
    """Round robin: the active sales rep after the one who got the form's last lead, by id."""
    reps = list(
        get_user_model().objects.filter(is_active=True, groups__name=Role.SALES_REP).order_by("pk").distinct()
    )
    if not reps:
        return None
    turn, _ = RoundRobin.objects.select_for_update().get_or_create(form=form)
    after = [rep for rep in reps if turn.last_owner_id is None or rep.pk > turn.last_owner_id]
    chosen = after[0] if after else reps[0]
    turn.last_owner_id = chosen.pk
    turn.save(update_fields=["last_owner_id"])
    return chosen


def _rule_owner(form, lead):
    """The owner the first matching assignment rule names (the form's rules, then those for every form), or None."""
    touch = LeadTouch.objects.filter(lead=lead, kind=LeadTouch.Kind.LAST).first()
    facts = {
        "utm_source": touch.utm_source if touch else "", "utm_campaign": touch.utm_campaign if touch else "",
        "persona_id": lead.persona_id, "country": lead.company.country if lead.company_id else "",
    }
    rules = AssignmentRule.objects.filter(Q(form=form) | Q(form__isnull=True)).select_related("owner")
    for rule in sorted(rules, key=lambda r: (r.form_id is None, r.position, r.pk)):
        if rule.matches(**facts) and access_for(rule.owner).owns_leads:
            return rule.owner
    return None


def _owner(event, form, lead):
    if lead.owner_id:
        return
    owner = _rule_owner(form, lead)
    if owner is None and form.owner_rule == CaptureForm.OwnerRule.POOL:
        return
    owner = owner or (form.owner if form.owner_rule == CaptureForm.OwnerRule.FIXED else _next_rep(form))
    if owner is None:
        log.warning("Form %s: no rep to give lead %s to; it stays in the pool", form.slug, lead.pk)
        return
    lead_services.lead_assign_owner(leads=[lead], owner=owner)
    lead.refresh_from_db(fields=["owner"])


def _speed_to_lead(event, form, lead):
    if event.payload.get("kind") not in SPEED_TO_LEAD_KINDS or lead.owner_id is None:
        return
    lead_services.task_create(
        assignee=lead.owner, lead=lead, title=f"Call {lead} back: {form.name}"[:200],
        due_at=event.occurred_at + timezone.timedelta(hours=1), allow_past_due=True,
        notes="Speed to lead: a request answered within the hour converts far more often.",
    )


def _enroll(event, form, lead):
    if form.sequence_id is None or not event.payload.get("created"):
        return
    nurturing_services.enrollment_create(lead=lead, sequence=form.sequence)


def _resource_email(event, form, lead):
    resource = form.resource
    if resource is None or not resource.url or not lead.email:
        return
    EmailMessage(
        subject=f"Your copy: {resource.name}",
        body=f"Hello{(' ' + lead.first_name) if lead.first_name else ''},\n\n"
             f"Thank you for your interest. Here is {resource.name}:\n{resource.url}\n",
        from_email=settings.DEFAULT_FROM_EMAIL, to=[lead.email],
    ).send()


STEPS = (("owner", _owner), ("speed_to_lead", _speed_to_lead), ("enroll", _enroll), ("resource_email", _resource_email))


def _submitted(event):
    form_id = event.payload.get("capture_form")
    if not form_id:
        return
    form = CaptureForm.objects.select_related("resource", "sequence", "owner").filter(pk=form_id).first()
    lead = Lead.objects.select_related("owner", "company").filter(pk=event.lead_id).first()
    if form is None or lead is None:
        return
    for action, step in STEPS:
        with transaction.atomic():
            if not _once(event.pk, action):
                continue
            try:
                with transaction.atomic():
                    step(event, form, lead)
            except ValidationError as exc:
                log.warning("Form %s, lead %s: %s not done: %s", form.slug, lead.pk, action, " ".join(exc.messages))


def _stage_changed(event):
    if event.payload.get("to") == LeadStatus.CUSTOMER and event.lead_id:
        visitors_mark(lead_id=event.lead_id, kind=VisitorKind.CUSTOMER)


def followups_run(*, limit: int = 500) -> int:
    """Read the events after this reader's cursor and do what follows each; returns how many were read."""
    events = events_after(cursor_position(CURSOR), limit=limit,
                          types=[EventType.FORM_SUBMITTED, EventType.STAGE_CHANGED])
    for event in events:
        if event.type == EventType.FORM_SUBMITTED:
            _submitted(event)
        else:
            _stage_changed(event)
        cursor_advance(CURSOR, event.pk)
    return len(events)
