"""The content library as a batch of emails reads it: loaded once for the batch, only when one of its steps
writes a block, and handed to each lead's rendering (nurturing.content)."""

from dataclasses import dataclass, field

from django.template.base import Lexer, TokenType

from leads.models import Objection

from .content import CONTENT_KEY, LeadContent, LibraryBlock, topic_key
from .models import ContentBlock


def _attribution(name: str, role: str, company: str) -> str:
    return ", ".join(part for part in (name, role, company) if part)


def content_library() -> tuple[LibraryBlock, ...]:
    """The active blocks, newest first, with their personas (one query)."""
    rows = (
        ContentBlock.objects.filter(is_active=True).order_by("-created_at", "-id")
        .values_list("pk", "kind", "title", "body", "attribution_name", "attribution_role", "attribution_company",
                     "link_url", "rating", "topics", "objection_category", "created_at", "personas__id")
    )
    found: dict[int, dict] = {}
    for (pk, kind, title, body, name, role, company, link_url, rating, topics, objection, created_at,
         persona_id) in rows:
        block = found.setdefault(pk, {
            "id": pk, "kind": kind, "title": title, "body": body,
            "attribution": _attribution(name, role, company),
            "link_url": link_url, "rating": rating, "objection": objection, "created_at": created_at,
            "topics": frozenset(topic_key(t) for t in topics.split(",") if t.strip()), "persona_ids": set(),
        })
        if persona_id is not None:
            block["persona_ids"].add(persona_id)
    return tuple(LibraryBlock(**{**block, "persona_ids": frozenset(block["persona_ids"])}) for block in found.values())


def open_objections(lead_ids) -> dict[int, str]:
    """Per lead, the category of its latest objection not yet resolved (one query)."""
    found: dict[int, str] = {}
    rows = (Objection.objects.filter(lead_id__in=lead_ids, is_resolved=False)
            .order_by("lead_id", "-created_at", "-id").values_list("lead_id", "category"))
    for lead_id, category in rows:
        found.setdefault(lead_id, category)
    return found


def content_needs(sources) -> tuple[bool, bool]:
    """Whether these templates write a content block, and whether one asks for the lead's objection.

    Read from the tags' words, without compiling: a tag inside a comment counts too (a query for nothing).
    """
    blocks = objections = False
    for source in sources:
        if "content" not in (source or ""):
            continue
        for token in Lexer(source).tokenize():
            words = token.contents.split() if token.token_type == TokenType.BLOCK else []
            if words[:1] == ["content"]:
                blocks = True
                objections = objections or "objection" in token.contents
    return blocks, objections


def step_sources(step) -> tuple[str, str, str]:
    return step.subject_template, step.text_template, step.html_template


@dataclass
class BatchContent:
    """The library and the leads' open objections for a batch, read once (nothing when its steps write no block)."""

    blocks: tuple = ()
    objections: dict = field(default_factory=dict)

    @classmethod
    def load(cls, *, steps, lead_ids) -> "BatchContent":
        wants_blocks, wants_objections = content_needs(source for step in steps for source in step_sources(step))
        if not wants_blocks:
            return cls()
        return cls(blocks=content_library(), objections=open_objections(lead_ids) if wants_objections else {})

    def lead_content(self, *, lead_id: int, persona_id: int | None, topic: str) -> LeadContent:
        return LeadContent(blocks=self.blocks, persona_id=persona_id, topic=topic,
                           objection=self.objections.get(lead_id, ""))

    def add_to(self, context: dict, *, lead) -> dict:
        """The lead's merge context with what its content tags choose from (under a key no template can name)."""
        context[CONTENT_KEY] = self.lead_content(lead_id=lead.pk, persona_id=lead.persona_id,
                                                 topic=context["resource"]["topic"])
        return context


def library_block(block: ContentBlock) -> LibraryBlock:
    """A saved block as a rendering uses it (for its preview in the admin)."""
    return LibraryBlock(
        id=block.pk, kind=block.kind, title=block.title, body=block.body,
        attribution=_attribution(block.attribution_name, block.attribution_role, block.attribution_company),
        link_url=block.link_url, rating=block.rating, objection=block.objection_category, created_at=block.created_at,
        topics=frozenset(topic_key(t) for t in block.topic_list), is_active=block.is_active,
        persona_ids=frozenset(p.pk for p in block.personas.all()) if block.pk else frozenset(),
    )
