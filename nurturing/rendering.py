"""Personalization: step templates rendered with the Django template language.

Templates see a plain context of strings and dicts (never model objects, so a
template cannot call a method or walk to other records), in a sandboxed engine
that can neither load tag libraries nor read template files. Templates are
checked when saved: a syntax error or an unknown merge field is reported with
its line.
"""

from dataclasses import dataclass

from django.conf import settings
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, VariableNode
from django.template.defaulttags import ForNode, IfNode, WithNode

# The merge fields a template may use, and what each holds.
MERGE_FIELDS = {
    "first_name": "the lead's first name",
    "last_name": "the lead's last name",
    "lead": "lead.first_name, .last_name, .full_name, .email, .title, .phone",
    "company": "company.name, .domain, .industry",
    "owner": "owner.first_name, .last_name, .full_name, .email (the lead's rep)",
    "sender": "sender.full_name, .email (who the email comes from)",
    "campaign": "campaign.name (the campaign the lead came from)",
    "resource": "resource.title (what the lead downloaded or signed up for)",
    "links": "links.book_demo, links.unsubscribe",
}

# No loaders (no file can be included), no libraries beyond the built-in tags and filters.
ENGINE = Engine(debug=True, loaders=[("django.template.loaders.locmem.Loader", {})], libraries={}, autoescape=True)


class TemplateProblem(ValueError):
    """A template that cannot be used, with a message that says where and what to fix."""


def _names_used(nodelist, bound=frozenset()):
    """(name, line) of every variable a template reads that it does not bind itself."""
    for node in nodelist:
        line = getattr(getattr(node, "token", None), "lineno", None)
        expressions = []
        inner_bound = bound
        if isinstance(node, VariableNode):
            expressions.append(node.filter_expression)
        elif isinstance(node, ForNode):
            expressions.append(node.sequence)
            inner_bound = bound | set(node.loopvars) | {"forloop"}
        elif isinstance(node, IfNode):
            for condition, _ in node.conditions_nodelists:
                expressions.extend(_condition_expressions(condition))
        elif isinstance(node, WithNode):
            expressions.extend(node.extra_context.values())
            inner_bound = bound | set(node.extra_context)
        for expression in expressions:
            for name in _expression_names(expression):
                if name not in inner_bound:
                    yield name, line
        for attr in getattr(node, "child_nodelists", ()):
            children = getattr(node, attr, None)
            if children:
                yield from _names_used(children, inner_bound)
        if isinstance(node, IfNode):
            for _, children in node.conditions_nodelists:
                yield from _names_used(children, inner_bound)


def _condition_expressions(condition):
    if condition is None:
        return
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
    for side in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if side is not None and side is not condition:
            yield from _condition_expressions(side)


def _expression_names(expression: FilterExpression):
    variables = [expression.var, *(arg for _, args in expression.filters for lookup, arg in args if lookup)]
    for var in variables:
        lookups = getattr(var, "lookups", None)
        if lookups:
            yield lookups[0]


def check_template(source: str, *, field: str = "template") -> None:
    """Raise TemplateProblem if the template has a syntax error or reads an unknown merge field."""
    try:
        template = ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        line = getattr(exc, "template_debug", {}).get("line")
        where = f" on line {line}" if line else ""
        raise TemplateProblem(f"{field}: {exc}{where}.") from None
    for name, line in _names_used(template.nodelist):
        if name not in MERGE_FIELDS:
            where = f" on line {line}" if line else ""
            known = ", ".join(sorted(MERGE_FIELDS))
            raise TemplateProblem(f"{field}: unknown merge field “{name}”{where}. Known fields: {known}.")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class CompiledStep:
    """A step's templates compiled once, rendered for many leads (one batch)."""

    def __init__(self, step):
        self.subject = ENGINE.from_string(step.subject_template)
        self.text = ENGINE.from_string(step.text_template)
        self.html = ENGINE.from_string(step.html_template) if step.html_template.strip() else None

    def render(self, context: dict) -> RenderedEmail:
        plain = Context(context, autoescape=False)
        subject = " ".join(self.subject.render(plain).split())  # one line: no header injection
        text = self.text.render(plain)
        html = self.html.render(Context(context, autoescape=True)) if self.html else ""
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


def lead_context(lead, *, sender=None, unsubscribe_url: str = "") -> dict:
    """The plain merge context for one lead (its company, owner and campaign loaded with it)."""
    company = lead.company if lead.company_id else None
    campaign = lead.campaign if lead.campaign_id else None
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
        # Until sign-ups are recorded per resource, the campaign names what the lead came for.
        "resource": {"title": campaign.name if campaign else ""},
        "links": {"book_demo": settings.CRM_BOOKING_URL, "unsubscribe": unsubscribe_url},
    }


class StepRenderer:
    """Compiled steps for one batch, keyed by step id."""

    def __init__(self):
        self._compiled = {}

    def for_step(self, step) -> CompiledStep:
        compiled = self._compiled.get(step.pk)
        if compiled is None:
            compiled = self._compiled[step.pk] = CompiledStep(step)
        return compiled
