"""Personalization: step templates rendered with the Django template language.

Templates see a plain context of strings and dicts (never model objects, so a
template cannot call a method or walk to other records), in a sandboxed engine
(nurturing.sandbox) with only the tags and filters an email needs, and bounded
rendering. Templates are checked when saved: a syntax error, a tag or filter
outside the sandbox, a loop that can only repeat text, or an unknown merge
field is reported with its line.
"""

import functools
import re
from dataclasses import dataclass
from difflib import get_close_matches
from typing import NamedTuple

from django.conf import settings
from django.template import TemplateSyntaxError
from django.template.base import FilterExpression, Lexer, Node, TokenType, Variable, VariableNode
from django.template.defaulttags import FirstOfNode, ForNode, IfNode, WithNode

from leads.models import FormSubmission

from .models import Delivery
from .sandbox import (
    ALLOWED_FILTERS,
    ALLOWED_TAGS,
    ENGINE,
    PADDING_FILTERS,
    TAG_PARTS,
    Deadline,
    RenderLimitExceeded,
    SandboxTemplate,
    TemplateProblem,
    padding_width,
)

# The merge fields a template may use, and what each holds.
MERGE_FIELDS = {
    "first_name": "the lead's first name",
    "last_name": "the lead's last name",
    "lead": "lead.first_name, .last_name, .full_name, .email, .title, .phone",
    "company": "company.name, .domain, .industry",
    "owner": "owner.first_name, .last_name, .full_name, .email (the lead's rep)",
    "sender": "sender.full_name, .email (who the email comes from)",
    "campaign": "campaign.name (the campaign the lead came from)",
    "resource": "resource.title, .topic, .funnel, .url (what the lead downloaded or signed up for)",
    "links": "links.book_demo, links.unsubscribe",
}
# What each merge field that holds several values has (lead_context builds exactly these; a test keeps them equal).
# The other merge fields are text.
MERGE_ATTRIBUTES = {
    "lead": ("first_name", "last_name", "full_name", "email", "title", "phone"),
    "company": ("name", "domain", "industry"),
    "owner": ("first_name", "last_name", "full_name", "email"),
    "sender": ("first_name", "last_name", "full_name", "email"),
    "campaign": ("name",),
    "resource": ("title", "topic", "funnel", "url"),
    "links": ("book_demo", "unsubscribe"),
}
# What a loop can go over on such a field: {% for key, value in lead.items %}.
_LOOPABLE = ("items", "keys", "values")
# A loop inside a loop is the most an email needs; each level multiplies the text.
MAX_LOOP_DEPTH = 2
SUBJECT_MAX_CHARS = Delivery._meta.get_field("subject").max_length

_WHY_NOT = {
    "load": "templates cannot load tag libraries",
    "include": "templates cannot read other templates: paste the text in",
    "extends": "templates cannot read other templates: paste the text in",
    "block": "templates cannot read other templates: paste the text in",
    "debug": "it would show the email's data instead of the text",
    "lorem": "write the placeholder text yourself",
    "autoescape": "HTML bodies always escape what leads typed",
    "safe": "HTML bodies always escape what leads typed",
}
_QUOTED = re.compile(r""""[^"\\]*(?:\\.[^"\\]*)*"|'[^'\\]*(?:\\.[^'\\]*)*'""")
_FILTER_NAME = re.compile(r"\|\s*(\w+)")


def _refused_name(source: str) -> tuple[str, str, int] | None:
    """The first tag or filter (kind, name, line) that the sandbox does not have, outside comments."""
    in_comment = False
    for token in Lexer(source).tokenize():
        if token.token_type not in (TokenType.BLOCK, TokenType.VAR):
            continue
        command = (token.contents.split() or [""])[0] if token.token_type == TokenType.BLOCK else ""
        if in_comment or command == "comment":
            in_comment = command != "endcomment"
            continue
        if command and command not in ALLOWED_TAGS and command not in TAG_PARTS:
            return "tag", command, token.lineno
        for name in _FILTER_NAME.findall(_QUOTED.sub('""', token.contents)):
            if name not in ALLOWED_FILTERS:
                return "filter", name, token.lineno
    return None


def _refusal(field: str, kind: str, name: str, line: int) -> str:
    shown = f"{{% {name} %}}" if kind == "tag" else f"|{name}"
    why = f" ({_WHY_NOT[name]})" if name in _WHY_NOT else ""
    usable = ", ".join(ALLOWED_TAGS if kind == "tag" else ALLOWED_FILTERS)
    return f"{field}: the {kind} “{shown}” on line {line} cannot be used in emails{why}. Remove it; the {kind}s you can use are: {usable}."


@dataclass(frozen=True)
class _Use:
    """A node of a template, the expressions it evaluates and the names the template binds around them."""

    node: Node
    line: int | None
    expressions: list
    bound: frozenset
    loops: int  # loops around the node, itself included


def _uses(nodelist, bound=frozenset(), loops=0):
    for node in nodelist:
        line = getattr(getattr(node, "token", None), "lineno", None)
        expressions, inner_bound, inner_loops = [], bound, loops
        if isinstance(node, VariableNode):
            expressions.append(node.filter_expression)
        elif isinstance(node, ForNode):
            expressions.append(node.sequence)
            inner_bound, inner_loops = bound | set(node.loopvars) | {"forloop"}, loops + 1
        elif isinstance(node, IfNode):
            for condition, _ in node.conditions_nodelists:
                expressions.extend(_condition_expressions(condition))
        elif isinstance(node, WithNode):
            expressions.extend(node.extra_context.values())
            inner_bound = bound | set(node.extra_context)
        elif isinstance(node, FirstOfNode):
            expressions.extend(node.vars)
        yield _Use(node=node, line=line, expressions=expressions, bound=bound, loops=inner_loops)
        if isinstance(node, IfNode):
            children = [branch for _, branch in node.conditions_nodelists]
        else:
            children = [getattr(node, attr, None) for attr in node.child_nodelists]
        for child in children:
            if child:
                yield from _uses(child, inner_bound, inner_loops)
        if getattr(node, "asvar", None):  # {% firstof … as x %}, {% now … as x %}: x is set from here on
            bound = bound | {node.asvar}


def _condition_expressions(condition):
    if condition is None:
        return
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
    for side in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if side is not None and side is not condition:
            yield from _condition_expressions(side)


def _literal(var):
    """(True, value) for a constant (a quoted text or a number), (False, None) for a lookup."""
    if isinstance(var, Variable):
        return (var.lookups is None, var.literal)
    return True, var


def _expression_lookups(expression: FilterExpression):
    """Each merge field path the expression reads, as its parts: ("company", "name")."""
    variables = [expression.var, *(arg for _, args in expression.filters for lookup, arg in args if lookup)]
    for var in variables:
        lookups = getattr(var, "lookups", None)
        if lookups:
            yield lookups


def _did_you_mean(name: str, known) -> str:
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" Did you mean “{close[0]}”?" if close else ""


def _field_problem(lookups: tuple, where: str) -> str | None:
    """What is wrong with a merge field path ("company.nmae", "frist_name", "first_name.upper"), if anything."""
    name, *attributes = lookups
    if name not in MERGE_FIELDS:
        return (f"unknown merge field “{name}”{where}.{_did_you_mean(name, MERGE_FIELDS)} "
                f"Known fields: {', '.join(sorted(MERGE_FIELDS))}.")
    if not attributes:
        return None
    has = MERGE_ATTRIBUTES.get(name)
    path = ".".join(lookups)
    if has is None:
        return f"“{name}” is text: “{path}”{where} reads nothing. Use {{{{ {name} }}}} (and a filter to change it)."
    if attributes[0] not in has and attributes[0] not in _LOOPABLE:
        return (f"unknown merge field “{path}”{where}.{_did_you_mean(attributes[0], has)} "
                f"{name} has: {', '.join(has)}.")
    if len(attributes) > 1:
        return (f"“{name}.{attributes[0]}” is text: “{path}”{where} reads nothing. "
                f"Use {{{{ {name}.{attributes[0]} }}}} (and a filter to change it).")
    return None


def _use_problem(use: _Use) -> str | None:
    where = f" on line {use.line}" if use.line else ""
    for expression in use.expressions:
        for lookups in _expression_lookups(expression):
            if lookups[0] in use.bound:
                continue
            problem = _field_problem(tuple(lookups), where)
            if problem:
                return problem
        for func, args in expression.filters:
            name = getattr(func, "_filter_name", "")
            if name in PADDING_FILTERS:
                is_constant, width = _literal(args[0][1]) if args else (True, None)
                try:
                    padding_width(name, width if is_constant else None, where=where)
                except TemplateProblem as exc:
                    return str(exc)
    if isinstance(use.node, ForNode):
        if _literal(use.node.sequence.var)[0]:
            return f"the loop{where} goes over a fixed text or number: a loop can only go over a merge field."
        if use.loops > MAX_LOOP_DEPTH:
            return f"a loop{where} is nested {use.loops} deep: put at most {MAX_LOOP_DEPTH} loops inside each other."
    return None


def _parse(source: str, field: str):
    """The template compiled in the sandbox; TemplateProblem for a tag or filter it lacks (by name) or a syntax error."""
    refused = _refused_name(source)
    if refused:
        raise TemplateProblem(_refusal(field, *refused))
    try:
        return ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        line = getattr(exc, "template_debug", {}).get("line")
        where = f" on line {line}" if line else ""
        raise TemplateProblem(f"{field}: {exc}{where}.") from None


def check_template(source: str, *, field: str = "template") -> None:
    """Raise TemplateProblem if the template cannot be used: its first problem, with its line and what to do."""
    for use in _uses(_parse(source, field).nodelist):
        problem = _use_problem(use)
        if problem:
            raise TemplateProblem(f"{field}: {problem}")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class StepContent(NamedTuple):
    """The templates an email is rendered from: a step's, or a variant's over them."""

    subject_template: str
    text_template: str
    html_template: str


def step_content(step, variant=None) -> StepContent:
    """The step's templates, with what the variant (of the step's A/B test) gives in their place: its subject, if
    it has one; its bodies, if it has either, both together (a plain-text body of B never goes out beside the HTML
    of A: a variant with a plain-text body and no HTML sends no HTML)."""
    if variant is None:
        return StepContent(step.subject_template, step.text_template, step.html_template)
    subject = variant.subject_template if variant.subject_template.strip() else step.subject_template
    if variant.text_template.strip() or variant.html_template.strip():
        return StepContent(subject, variant.text_template, variant.html_template)
    return StepContent(subject, step.text_template, step.html_template)


class CompiledStep:
    """A step's templates compiled once, rendered for many leads (one batch), each email within the render limits."""

    def __init__(self, step):
        # A template saved before a tag or filter was refused fails here, by name, as it does at save.
        self.subject = SandboxTemplate(_parse(step.subject_template, "subject"), part="subject")
        self.text = SandboxTemplate(_parse(step.text_template, "plain-text body"), part="plain-text body")
        self.html = SandboxTemplate(_parse(step.html_template, "HTML body"), part="HTML body") if step.html_template.strip() else None

    def render(self, context: dict) -> RenderedEmail:
        deadline = Deadline.after(settings.CRM_NURTURE_RENDER_MAX_SECONDS)
        limits = {"max_chars": settings.CRM_NURTURE_RENDER_MAX_CHARS, "deadline": deadline}
        subject = " ".join(self.subject.render(context, autoescape=False, **limits).split())  # one line: no header injection
        if len(subject) > SUBJECT_MAX_CHARS:
            raise RenderLimitExceeded(f"subject: longer than {SUBJECT_MAX_CHARS} characters once rendered. Make it shorter.")
        text = self.text.render(context, autoescape=False, **limits)
        html = self.html.render(context, autoescape=True, **limits) if self.html else ""
        return RenderedEmail(subject=subject, text=text, html=html)


def _person(user) -> dict:
    if user is None:
        return {"first_name": "", "last_name": "", "full_name": "", "email": ""}
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.get_full_name(),
        "email": user.email,
    }


def latest_resources(lead_ids) -> dict:
    """Per lead, the resource of its latest form submission that delivered one (one query for a batch)."""
    found = {}
    rows = (
        FormSubmission.objects.filter(lead_id__in=lead_ids, resource__isnull=False)
        .order_by("lead_id", "-submitted_at", "-id")
        .values_list("lead_id", "resource__name", "resource__topic", "resource__funnel", "resource__url")
    )
    for lead_id, name, topic, funnel, url in rows:
        found.setdefault(lead_id, {"title": name, "topic": topic, "funnel": funnel, "url": url})
    return found


def lead_context(lead, *, sender=None, unsubscribe_url: str = "", resource: dict | None = None) -> dict:
    """The plain merge context for one lead (its company, owner and campaign loaded with it).

    `resource`: what the lead last downloaded or signed up for (`latest_resources`); without it, read here.
    """
    company = lead.company if lead.company_id else None
    campaign = lead.campaign if lead.campaign_id else None
    if resource is None:
        resource = latest_resources([lead.pk]).get(lead.pk) if lead.pk else None
    return {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "lead": {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "full_name": lead.full_name,
            "email": lead.email,
            "title": lead.title,
            "phone": lead.phone,
        },
        "company": {
            "name": company.name if company else "",
            "domain": company.domain if company else "",
            "industry": company.industry if company else "",
        },
        "owner": _person(lead.owner if lead.owner_id else None),
        "sender": _person(sender),
        "campaign": {"name": campaign.name if campaign else ""},
        # What the lead last downloaded or signed up for (its topic lets a step pick what to say next);
        # without one, the campaign names what the lead came for.
        "resource": resource or {"title": campaign.name if campaign else "", "topic": "", "funnel": "", "url": ""},
        # The booking link is signed per lead (~0.2 ms): made only if the template shows it (the template
        # engine calls it when it looks the name up).
        "links": {"book_demo": functools.partial(book_demo_url, lead), "unsubscribe": unsubscribe_url},
    }


# Set by the booking app (above this one) when it is installed: the lead's signed link to its booking page
# (booking.links.BookDemoLinks: `url(lead)`, `empty_when()`). CRM_BOOKING_URL, when set, is used instead
# (a team that books elsewhere).
book_demo_links = None


def book_demo_url(lead) -> str:
    if settings.CRM_BOOKING_URL or book_demo_links is None:
        return settings.CRM_BOOKING_URL
    return book_demo_links.url(lead)


class StepRenderer:
    """Compiled steps for one batch, keyed by step id (and variant id, for a step's A/B test).

    A step that cannot be compiled, or that ran past a render limit, fails
    for the rest of the batch at once: one bad step does not spend the
    batch's time limit rendering it for every lead.
    """

    def __init__(self):
        self._compiled = {}

    def render(self, step, context: dict, variant=None) -> RenderedEmail:
        """The step (or its A/B test's `variant`) rendered with `context`."""
        key = (step.pk, variant.pk if variant is not None else None)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = CompiledStep(step_content(step, variant))
            except TemplateProblem as exc:
                compiled = exc
            self._compiled[key] = compiled
        if isinstance(compiled, TemplateProblem):
            raise TemplateProblem(str(compiled))
        try:
            return compiled.render(context)
        except RenderLimitExceeded as exc:
            self._compiled[key] = exc
            raise


@dataclass(frozen=True)
class FieldUse:
    """A merge field a template writes out: its path ("company.name"), line, and whether the template already
    says what to write when it is empty (a |default filter, or inside {% if %} on that field)."""

    path: str
    line: int | None
    guarded: bool


_DEFAULTS = {"default", "default_if_none"}


def merge_field_uses(source: str) -> list[FieldUse]:
    """The merge fields a template writes out, in order (not those it only tests or loops over)."""
    try:
        nodelist = ENGINE.from_string(source).nodelist
    except TemplateSyntaxError:
        return []
    return list(_written(nodelist, frozenset(), frozenset()))


def _written(nodelist, bound: frozenset, guards: frozenset):
    for node in nodelist:
        line = getattr(getattr(node, "token", None), "lineno", None)
        if isinstance(node, VariableNode):
            expression = node.filter_expression
            lookups = getattr(expression.var, "lookups", None)
            if lookups and lookups[0] not in bound and lookups[0] in MERGE_FIELDS:
                path = ".".join(lookups)
                defaulted = any(getattr(func, "_filter_name", "") in _DEFAULTS for func, _ in expression.filters)
                yield FieldUse(path, line, defaulted or path in guards)
            continue
        if isinstance(node, IfNode):  # a branch is guarded by what its own condition tests ({% else %}: nothing)
            for condition, branch in node.conditions_nodelists:
                tested = frozenset(".".join(lookups) for expression in _condition_expressions(condition)
                                   for lookups in _expression_lookups(expression))
                yield from _written(branch, bound, guards | tested)
            continue
        inner = bound
        if isinstance(node, ForNode):
            inner = bound | set(node.loopvars) | {"forloop"}
        elif isinstance(node, WithNode):
            inner = bound | set(node.extra_context)
        for attr in node.child_nodelists:
            child = getattr(node, attr, None)
            if child:
                yield from _written(child, inner, guards)


def field_value(context: dict, path: str):
    """The value of a merge field path in a lead's context ("" when it has none)."""
    value = context
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value() if callable(value) else value  # as the template engine does (a link made on demand)
