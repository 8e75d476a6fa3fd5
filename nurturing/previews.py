"""Previews and test sends of a step: rendered exactly as the dispatcher would, for a lead the marketer picks."""

import dataclasses
from dataclasses import dataclass
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template import TemplateSyntaxError

from leads.models import Lead

from . import rendering
from .compose import nurture_email, unsubscribe_token, unsubscribe_url, with_footer
from .content import CONTENT_KEY, content_uses
from .content_library import BatchContent, content_library, open_objections, step_sources
from .models import ContentBlock, Enrollment, Step
from .rendering import (
    CompiledStep,
    TemplateProblem,
    field_value,
    latest_resources,
    lead_context,
    merge_field_uses,
    step_content,
)
from .sandbox import ENGINE
from .services import email_is_suppressed

# A preview shows where the unsubscribe link goes, not a working link: it may be copied around.
_PREVIEW_UNSUBSCRIBE = "preview"


def preview_context(*, step: Step, lead: Lead, sender=None) -> dict:
    """The merge context the step would be rendered with for this lead (its sequence's sender, or its owner), with
    the content library if the step writes a block."""
    context = lead_context(lead, sender=sender or step.sequence.sender or lead.owner,
                           unsubscribe_url=unsubscribe_url(_PREVIEW_UNSUBSCRIBE))
    return BatchContent.load(steps=[step], lead_ids=[lead.pk]).add_to(context, lead=lead)


def step_preview(*, step: Step, lead: Lead, sender=None, context: dict | None = None, variant=None):
    """Render a step (or `variant` of its A/B test) for a lead exactly as it would be sent, footer included
    (nothing is sent or stored). `context`: `preview_context` for the same step and lead, if already made."""
    context = preview_context(step=step, lead=lead, sender=sender) if context is None else context
    return with_footer(CompiledStep(step_content(step, variant)).render(context), unsubscribe_url(_PREVIEW_UNSUBSCRIBE))


def step_send_test(*, step: Step, lead: Lead, to_email: str, by=None, variant=None) -> str:
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
        context = lead_context(lead, sender=by, unsubscribe_url=unsubscribe_url(token))
        rendered = CompiledStep(step_content(step, variant)).render(
            BatchContent.load(steps=[step], lead_ids=[lead.pk]).add_to(context, lead=lead))
    except TemplateProblem as exc:
        raise ValidationError({"step": [f"Not sent: {exc}"]}) from None
    rendered = dataclasses.replace(rendered, subject=f"[Test] {rendered.subject}")
    message_id = make_msgid(domain=settings.CRM_MESSAGE_ID_DOMAIN)
    message, _ = nurture_email(rendered=rendered, token=token, sender=by, to=to_email, message_id=message_id,
                               headers={"X-CRM-Test": "1"})
    message.send()
    return message_id


@dataclass(frozen=True)
class EmptyField:
    """A merge field a step writes out that would come out empty, with where it is used."""

    path: str
    lines: list[str]  # "subject", "text line 3", ...
    leads: int | None = None  # across the sequence's leads: how many (None: this lead)
    of: int | None = None


def _step_uses(step) -> dict[str, list[str]]:
    """Unguarded merge fields the step writes out -> where ("text line 3"); guarded ones (|default, {% if %}) are
    left out: the template already says what to write."""
    found: dict[str, list[str]] = {}
    for part, source in (("subject", step.subject_template), ("text", step.text_template),
                         ("HTML", step.html_template)):
        for use in merge_field_uses(source or ""):
            if not use.guarded:
                found.setdefault(use.path, []).append(f"{part} line {use.line}" if use.line else part)
    return found


def empty_fields(*, step: Step, context: dict, variant=None) -> list[EmptyField]:
    """The merge fields the step (or `variant` of its A/B test) writes out without a default that are empty in
    this lead's context."""
    return [EmptyField(path, lines) for path, lines in _step_uses(step_content(step, variant)).items()
            if field_value(context, path) in ("", None)]


# For the check across a sequence's leads: when each merge field is empty, as a condition on the lead. A field
# not here (the sender, the resource) is checked on the previewed lead only.
_EMPTY_WHEN = {
    "first_name": Q(first_name=""), "last_name": Q(last_name=""),
    "lead.first_name": Q(first_name=""), "lead.last_name": Q(last_name=""),
    "lead.full_name": Q(first_name="", last_name=""), "lead.email": Q(email=""), "lead.title": Q(title=""),
    "lead.phone": Q(phone=""),
    **{f"company.{name}": Q(company__isnull=True) | Q(**{f"company__{name}": ""})
       for name in ("name", "domain", "industry")},
    **{f"owner.{name}": Q(owner__isnull=True) | Q(**{f"owner__{name}": ""})
       for name in ("first_name", "last_name", "email")},
    "owner.full_name": Q(owner__isnull=True) | Q(owner__first_name="", owner__last_name=""),
    "campaign.name": Q(campaign__isnull=True) | Q(campaign__name=""),
}


def empty_field_counts(*, step: Step, variant=None) -> list[EmptyField]:
    """Across the leads enrolled in the step's sequence now (active or paused): for each merge field the step (or
    `variant` of its A/B test) writes out without a default, how many of them would get it empty. One count query
    per field."""
    enrolled = Lead.objects.filter(
        enrollments__sequence_id=step.sequence_id,
        enrollments__status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED],
    ).distinct()
    total = None
    found = []
    for path, lines in _step_uses(step_content(step, variant)).items():
        if path == "links.book_demo":
            if settings.CRM_BOOKING_URL:
                continue
            if rendering.book_demo_links is None:
                total = enrolled.count() if total is None else total
                empty = total
            else:
                empty = enrolled.filter(rendering.book_demo_links.empty_when()).count()
        elif path in _EMPTY_WHEN:
            empty = enrolled.filter(_EMPTY_WHEN[path]).count()
        else:
            continue
        if empty:
            total = enrolled.count() if total is None else total
            found.append(EmptyField(path, lines, empty, total))
    return found


# --- Content blocks that come out empty ----------------------------------------------------------


@dataclass(frozen=True)
class MissingBlock:
    """A content tag without a default that finds no block, with where it is used."""

    kind: str
    for_objection: bool
    lines: list[str]
    leads: int | None = None  # across the sequence's leads: how many get no block (None: this lead)
    of: int | None = None

    @property
    def label(self) -> str:
        return ContentBlock.Kind(self.kind).label.lower()

    @property
    def tag(self) -> str:
        asks = ' for "objection"' if self.for_objection else ""
        return f'{{% content "{self.kind}"{asks} %}}'


def _step_content_uses(step: Step) -> dict[tuple[str, bool], list[str]]:
    """The step's content tags without a default: (kind, for_objection) -> where ("HTML line 2")."""
    found: dict[tuple[str, bool], list[str]] = {}
    for part, source in zip(("subject", "text", "HTML"), step_sources(step), strict=True):
        if "content" not in (source or ""):
            continue
        try:
            nodelist = ENGINE.from_string(source).nodelist
        except TemplateSyntaxError:
            continue
        for use in content_uses(nodelist):
            if not use.has_default:
                found.setdefault((use.kind, use.for_objection), []).append(f"{part} line {use.line}" if use.line else part)
    return found


def missing_blocks(*, step: Step, context: dict) -> list[MissingBlock]:
    """The content tags of the step (without a default) that find no block for this lead (`preview_context`)."""
    content = context.get(CONTENT_KEY)
    if content is None:
        return []
    return [MissingBlock(kind, for_objection, lines)
            for (kind, for_objection), lines in _step_content_uses(step).items()
            if content.block(kind=kind, for_objection=for_objection) is None]


def missing_block_counts(*, step: Step) -> list[MissingBlock]:
    """Across the leads enrolled in the step's sequence now (active or paused): for each content tag without a
    default, how many of them would get no block. A few queries, whatever the number of leads."""
    uses = _step_content_uses(step)
    if not uses:
        return []
    enrolled = Lead.objects.filter(
        enrollments__sequence_id=step.sequence_id,
        enrollments__status__in=[Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED],
    ).distinct()
    leads = list(enrolled.values_list("pk", "persona_id"))
    if not leads:
        return []
    ids = enrolled.values("pk")
    resources = latest_resources(ids)
    batch = BatchContent(blocks=content_library(),
                         objections=open_objections(ids) if any(o for _, o in uses) else {})
    found = []
    for (kind, for_objection), lines in uses.items():
        empty = sum(
            1 for pk, persona_id in leads
            if batch.lead_content(lead_id=pk, persona_id=persona_id, topic=resources.get(pk, {}).get("topic", ""))
            .block(kind=kind, for_objection=for_objection) is None
        )
        if empty:
            found.append(MissingBlock(kind, for_objection, lines, empty, len(leads)))
    return found
