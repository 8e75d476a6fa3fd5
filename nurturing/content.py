"""Social proof in emails: which block of the content library a lead gets, and the `{% content %}` tag that writes it.

    {% content "case_study" %}                      the best case study for the lead
    {% content "testimonial" default "…" %}         …or this text when none fits
    {% content "case_study" for "objection" %}      first one that answers the lead's latest open objection

The library reaches a template only through this tag. It sits in the render
context under a key that is not a string (CONTENT_KEY), which no variable,
loop or `with` of a template can name: a template writes the one block chosen
for its lead and can never list the library. Bodies are plain text: in the
HTML part every character is escaped, nothing a marketer typed is marked safe.
"""

from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches

from django.template import TemplateSyntaxError
from django.template.base import Node
from django.utils.html import conditional_escape, format_html, linebreaks
from django.utils.safestring import mark_safe

from .models import ContentBlock

KINDS = tuple(ContentBlock.Kind.values)
_USAGE = ('write it as {% content "case_study" %}, {% content "case_study" for "objection" %} '
          'or {% content "testimonial" default "…" %}')
_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class LibraryBlock:
    """A block as a rendering uses it: loaded once for a batch (nurturing.content_library), shared by its leads."""

    id: int
    kind: str
    title: str
    body: str = ""
    attribution: str = ""  # "Ana Ruiz, Head of Sales, Acme"
    link_url: str = ""
    rating: int | None = None
    topics: frozenset = frozenset()  # lower case; empty: any topic
    persona_ids: frozenset = frozenset()  # empty: any persona
    objection: str = ""  # an Objection.Category value, or ""
    created_at: datetime | None = None
    is_active: bool = True


def topic_key(topic: str | None) -> str:
    """Topics match whatever their case and surrounding spaces ("Forecasting " is "forecasting")."""
    return (topic or "").strip().lower()


def _rank(block: LibraryBlock, *, persona_id, topic: str, objection: str):
    """How well the block fits the lead (higher is better), or None when it is not for this lead.

    A block's personas and topics say whom it is for: a block for CFOs never goes to a CTO, a block about
    forecasting never to a lead who came for pipeline tips. Among the blocks a lead may get, the one that
    answers its open objection comes first, then the most specific one.
    """
    if block.persona_ids and persona_id not in block.persona_ids:
        return None
    if block.topics and topic not in block.topics:
        return None
    has_persona, has_topic = bool(block.persona_ids), bool(block.topics)
    answers = bool(objection) and block.objection == objection
    # Between equals the newest (a block not saved yet, without a date, counts as the oldest).
    newest = (block.created_at is not None, block.created_at or datetime.min, block.id or 0)
    return (answers, has_persona and has_topic, has_persona, has_topic, *newest)


def content_block_for(blocks, *, kind: str, persona_id: int | None, topic: str | None,
                      objection: str | None) -> LibraryBlock | None:
    """The active block of `kind` that fits the lead best, or None.

    Order: one that answers `objection` (the lead's latest open objection, when the template asks for it), then
    one for both the lead's persona and its topic, then for its persona, then for its topic, then one for
    anyone; between equals, the newest.
    """
    topic, objection = topic_key(topic), objection or ""
    best, best_rank = None, None
    for block in blocks:
        if block.kind != kind or not block.is_active:
            continue
        rank = _rank(block, persona_id=persona_id, topic=topic, objection=objection)
        if rank is not None and (best_rank is None or rank > best_rank):
            best, best_rank = block, rank
    return best


# --- Writing a block --------------------------------------------------------------------


def _stars(rating: int) -> str:
    return "★" * rating + "☆" * (5 - rating)


def _safe_link(url: str) -> str:
    """The link if it is a web address (saved blocks are checked; this keeps an old or edited row from giving a
    `javascript:` link)."""
    return url if url.lower().startswith(_SCHEMES) else ""


def _link_label(block: LibraryBlock) -> str:
    return "Read the case study" if block.kind == ContentBlock.Kind.CASE_STUDY else "Read more"


def block_text(block: LibraryBlock) -> str:
    """The block in a plain-text email."""
    lines = []
    if block.kind != ContentBlock.Kind.TESTIMONIAL and block.title:
        lines.append(block.title)
    if block.rating:
        lines.append(_stars(block.rating))
    if block.body:
        lines.append(f"“{block.body.strip()}”" if block.kind == ContentBlock.Kind.TESTIMONIAL else block.body.strip())
    if block.attribution:
        lines.append(f"— {block.attribution}")
    link = _safe_link(block.link_url)
    if link:
        lines.append(f"{_link_label(block)}: {link}")
    return "\n".join(lines)


def block_html(block: LibraryBlock) -> str:
    """The block in an HTML email: every text escaped, paragraphs kept."""
    parts = []
    if block.kind != ContentBlock.Kind.TESTIMONIAL and block.title:
        parts.append(format_html("<p><strong>{}</strong></p>", block.title))
    if block.rating:
        parts.append(format_html('<p aria-label="{} out of 5">{}</p>', block.rating, _stars(block.rating)))
    if block.body:
        parts.append(linebreaks(block.body.strip(), autoescape=True))
    if block.attribution:
        parts.append(format_html("<p>— {}</p>", block.attribution))
    link = _safe_link(block.link_url)
    if link:
        parts.append(format_html('<p><a href="{}">{}</a></p>', link, _link_label(block)))
    # Each part is escaped above (format_html, linebreaks with autoescape): joining them adds no markup of the user's.
    return format_html('<blockquote class="content-{}">{}</blockquote>', block.kind, mark_safe("".join(parts)))


# --- The tag ----------------------------------------------------------------------------


class _ContentKey:
    """The render context's key for the lead's content (not a string: no template can name it)."""

    def __repr__(self):
        return "CONTENT_KEY"


CONTENT_KEY = _ContentKey()


@dataclass(frozen=True)
class LeadContent:
    """What the tag needs to choose for one lead: the batch's library, the lead's persona, topic and latest open
    objection category ("" for none)."""

    blocks: tuple
    persona_id: int | None
    topic: str
    objection: str = ""

    def block(self, *, kind: str, for_objection: bool) -> LibraryBlock | None:
        return content_block_for(self.blocks, kind=kind, persona_id=self.persona_id, topic=self.topic,
                                 objection=self.objection if for_objection else None)


class ContentNotLoaded(RuntimeError):
    """A step with a content tag rendered without the library in its context: a caller forgot to add it."""


class ContentNode(Node):
    child_nodelists = ()

    def __init__(self, *, kind: str, for_objection: bool, default: str):
        self.kind, self.for_objection, self.default = kind, for_objection, default

    def render(self, context):
        content = context.get(CONTENT_KEY)
        if content is None:
            raise ContentNotLoaded("The content library was not loaded for this email.")
        block = content.block(kind=self.kind, for_objection=self.for_objection)
        if block is None:
            return conditional_escape(self.default) if context.autoescape else self.default
        return block_html(block) if context.autoescape else block_text(block)


def _quoted(bit: str) -> str | None:
    if len(bit) >= 2 and bit[0] == bit[-1] and bit[0] in "\"'":
        return bit[1:-1]
    return None


def content_tag(parser, token):
    """`{% content "<kind>" [for "objection"] [default "<text>"] %}`: kinds are checked here, when the step is saved."""
    bits = token.split_contents()[1:]
    kind = _quoted(bits.pop(0)) if bits else None
    if kind is None:
        raise TemplateSyntaxError(f"“{{% content %}}” needs the kind of block in quotes ({_USAGE})")
    if kind not in KINDS:
        close = get_close_matches(kind, KINDS, n=1, cutoff=0.6)
        hint = f"did you mean “{close[0]}”? " if close else ""
        raise TemplateSyntaxError(f"unknown kind of content block “{kind}” ({hint}kinds: {', '.join(KINDS)})")
    for_objection, default = False, ""
    while bits:
        word = bits.pop(0)
        value = bits.pop(0) if bits else ""
        if word == "for" and (_quoted(value) or value) == "objection" and not for_objection:
            for_objection = True
        elif word == "default" and _quoted(value) is not None:
            default = _quoted(value)
        else:
            raise TemplateSyntaxError(f"“{{% content %}}” does not understand “{word} {value}”".rstrip() + f" ({_USAGE})")
    return ContentNode(kind=kind, for_objection=for_objection, default=default)


@dataclass(frozen=True)
class ContentUse:
    """A content tag in a template: its kind, whether it answers objections, line, and whether it has a default."""

    kind: str
    for_objection: bool
    line: int | None
    has_default: bool


def content_uses(nodelist) -> list[ContentUse]:
    """The content tags of a compiled template, in order (inside ifs and loops too)."""
    found = []
    for node in nodelist:
        if isinstance(node, ContentNode):
            found.append(ContentUse(node.kind, node.for_objection, node.token.lineno if node.token else None,
                                    bool(node.default)))
            continue
        branches = [branch for _, branch in node.conditions_nodelists] if hasattr(node, "conditions_nodelists") else [
            getattr(node, attr, None) for attr in node.child_nodelists]
        for branch in branches:
            if branch:
                found.extend(content_uses(branch))
    return found
