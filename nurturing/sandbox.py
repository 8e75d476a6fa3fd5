"""The engine a step's templates run in: which tags and filters they have, and how far rendering may go.

A marketer's template is code that runs in the web process (previews, test
sends) and in the workers (every send). Its engine has no loaders and no tag
libraries, and as built-ins only the tags and filters an email needs (and our
`{% content %}`, which writes one block of the content library): anything
else (`{% debug %}`, `{% lorem %}`, `{% load %}`, `{% include %}`, `|safe`,
`|stringformat`…) does not compile, whether the template was saved before this
rule or after. The padding filters take a bounded width.

Rendering is bounded too, for templates whatever they hold: a part that grows
past CRM_NURTURE_RENDER_MAX_CHARS, or an email that takes longer than
CRM_NURTURE_RENDER_MAX_SECONDS, stops with RenderLimitExceeded. Every node of a
compiled template is wrapped to look at the clock and count what the leaves
write, and the context looks at the clock on each turn of a loop, so a loop
over a long text can neither hang a worker nor fill its memory. Django's own
classes are not changed: only templates compiled here are wrapped.
"""

import time
from dataclasses import dataclass

from django.template import Context, Engine, Library, defaultfilters, defaulttags
from django.template.base import Node, NodeList
from django.template.defaultfilters import stringfilter
from django.template.defaulttags import IfNode

from .content import content_tag

# What a marketer needs, and nothing that reads the server, loads code or repeats text.
DJANGO_TAGS = ("if", "for", "with", "firstof", "now", "comment", "spaceless")
# Ours: {% content "case_study" %} writes the lead's block of the content library (nurturing.content).
ALLOWED_TAGS = (*DJANGO_TAGS, "content")
# The words that open and close the parts of those tags.
TAG_PARTS = ("elif", "else", "endif", "empty", "endfor", "endwith", "endcomment", "endspaceless")
TEXT_FILTERS = (
    "default", "default_if_none", "capfirst", "title", "upper", "lower", "truncatechars", "truncatewords",
    "cut", "linebreaksbr", "urlencode", "yesno", "length", "date", "time",
)
PADDING_FILTERS = ("ljust", "rjust", "center")
ALLOWED_FILTERS = TEXT_FILTERS + PADDING_FILTERS
MAX_PADDING = 200


class TemplateProblem(ValueError):
    """A template that cannot be used, with a message that says where and what to fix."""


class RenderLimitExceeded(TemplateProblem):
    """Rendering grew past its size or ran past its time."""


def padding_width(name: str, arg, *, where: str = "") -> int:
    """The width a padding filter was given, refused past MAX_PADDING (`where`: " on line N", for the message)."""
    try:
        width = int(arg)
    except (TypeError, ValueError):
        raise TemplateProblem(f"“|{name}”{where} takes a width written as a number, e.g. |{name}:\"20\".") from None
    if width > MAX_PADDING:
        raise TemplateProblem(f"“|{name}”{where} pads to at most {MAX_PADDING} characters, not {width}: give a smaller width.")
    return width


def _padding(method: str):
    @stringfilter
    def pad(value, arg):
        return getattr(value, method)(padding_width(method, arg))

    return pad


register = Library()
register.tags.update({name: defaulttags.register.tags[name] for name in DJANGO_TAGS})
register.tag("content", content_tag)
register.filters.update({name: defaultfilters.register.filters[name] for name in TEXT_FILTERS})
for _name in PADDING_FILTERS:
    register.filter(_name, _padding(_name), is_safe=True)


class _SandboxEngine(Engine):
    default_builtins = []  # not Django's tags and filters: only this module's `register`


ENGINE = _SandboxEngine(debug=True, loaders=[], libraries={}, builtins=["nurturing.sandbox"], autoescape=True)


# --- Bounded rendering -------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """When rendering must have finished (one for all the parts of an email)."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(seconds=seconds, at=time.monotonic() + seconds)


class _Budget:
    def __init__(self, *, part: str, max_chars: int, deadline: Deadline):
        self.part, self.max_chars, self.chars_left, self.deadline = part, max_chars, max_chars, deadline
        # The line of the last node started: where rendering stopped. Every check runs after a
        # node has set it, so the empty case below is a guard no rendering reaches (not mutated).
        self.line = None  # pragma: no mutate

    def _where(self) -> str:
        return f" (stopped at line {self.line})" if self.line else ""  # pragma: no mutate

    def check_time(self):
        if time.monotonic() > self.deadline.at:
            raise RenderLimitExceeded(
                f"{self.part}: rendering took longer than {self.deadline.seconds:g} seconds{self._where()}. "
                "Take out the loop that repeats it, or make it shorter."
            )

    def spend(self, chars: int):
        self.chars_left -= chars
        if self.chars_left < 0:
            raise RenderLimitExceeded(
                f"{self.part}: longer than {self.max_chars:,} characters once rendered{self._where()}. "
                "Make it shorter, or take out the loop that repeats it."
            )


class _BudgetedContext(Context):
    """A context that looks at the clock on every turn of a loop (`for` sets its variables here), even an empty one."""

    def __init__(self, values, *, autoescape: bool, budget: _Budget):
        super().__init__(values, autoescape=autoescape)
        self.budget = budget

    def __setitem__(self, key, value):
        self.budget.check_time()
        super().__setitem__(key, value)

    def update(self, other_dict):
        self.budget.check_time()
        return super().update(other_dict)


class _Metered(Node):
    """A node of a sandboxed template: rendering it looks at the clock; what a leaf writes is counted."""

    child_nodelists = ()

    def __init__(self, node: Node):
        self.node, self.token, self.origin = node, node.token, node.origin
        self.line = node.token.lineno
        # Containers (if, for, with, spaceless) only join what their leaves wrote: counted once, at the leaves.
        self.is_leaf = not any(getattr(node, attr, None) is not None for attr in node.child_nodelists)

    def render_annotated(self, context):
        budget = context.budget
        budget.line = self.line
        budget.check_time()
        output = self.node.render_annotated(context)
        if self.is_leaf:
            budget.spend(len(output))
        return output


def _meter(nodelist: NodeList) -> None:
    for index, node in enumerate(nodelist):
        if isinstance(node, IfNode):
            children = [branch for _, branch in node.conditions_nodelists]
        else:
            children = [getattr(node, attr, None) for attr in node.child_nodelists]
        for child in children:
            if isinstance(child, NodeList):
                _meter(child)
        nodelist[index] = _Metered(node)


class SandboxTemplate:
    """A template compiled by ENGINE, rendered within bounds (its nodes are wrapped: give it a template of its own)."""

    def __init__(self, template, *, part: str):
        self.part, self.template = part, template
        _meter(template.nodelist)

    def render(self, values: dict, *, autoescape: bool, max_chars: int, deadline: Deadline) -> str:
        budget = _Budget(part=self.part, max_chars=max_chars, deadline=deadline)
        return self.template.render(_BudgetedContext(values, autoescape=autoescape, budget=budget))
