"""Previews and test sends of a step: rendered exactly as the dispatcher would, for a lead the marketer picks."""

import dataclasses
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import ValidationError

from leads.models import Lead

from .compose import nurture_email, unsubscribe_token, unsubscribe_url, with_footer
from .models import Step
from .rendering import CompiledStep, TemplateProblem, lead_context
from .services import email_is_suppressed


def step_preview(*, step: Step, lead: Lead, sender=None):
    """Render a step for a lead exactly as it would be sent, footer included (nothing is sent or stored)."""
    enrollment_sender = sender or step.sequence.sender or lead.owner
    # A preview shows where the link goes, not a working link: it may be copied around.
    url = unsubscribe_url("preview")
    return with_footer(CompiledStep(step).render(lead_context(lead, sender=enrollment_sender, unsubscribe_url=url)), url)


def step_send_test(*, step: Step, lead: Lead, to_email: str, by=None) -> str:
    """Send a step rendered for `lead` to `to_email` (the marketer), marked as a test.

    The suppression list applies here too: a suppressed address gets nothing.
    Returns the Message-ID.
    """
    if not to_email:
        raise ValidationError({"to_email": ["Your user has no email address: add one to receive tests."]})
    if email_is_suppressed(to_email):
        raise ValidationError({"to_email": [f"{to_email} is on the suppression list: no email goes to it, tests included."]})
    # The test carries working unsubscribe headers and link, but for the address it goes to
    # (the marketer's), never the lead's: trying them must not unsubscribe the lead.
    token = unsubscribe_token(lead_id=0, email=to_email)
    try:
        rendered = CompiledStep(step).render(lead_context(lead, sender=by, unsubscribe_url=unsubscribe_url(token)))
    except TemplateProblem as exc:
        raise ValidationError({"step": [f"Not sent: {exc}"]}) from None
    rendered = dataclasses.replace(rendered, subject=f"[Test] {rendered.subject}")
    message_id = make_msgid(domain=settings.CRM_MESSAGE_ID_DOMAIN)
    message, _ = nurture_email(rendered=rendered, token=token, sender=by, to=to_email, message_id=message_id,
                               headers={"X-CRM-Test": "1"})
    message.send()
    return message_id
