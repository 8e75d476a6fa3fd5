"""Writes of the content library (the blocks `{% content %}` puts into emails).

Beside nurturing.services, not in it: that module already holds the sequences' writes, and the library is a
concern of its own.
"""

from difflib import get_close_matches

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.policy import check_may_build_sequences
from leads.models import Resource

from .content import topic_key
from .models import ContentBlock

K = ContentBlock.Kind


def _topics(text: str) -> tuple[str, list[str]]:
    """The topics written the way the resources write them, once each, and the problems with them."""
    known = {}
    for topic in Resource.objects.exclude(topic="").values_list("topic", flat=True).distinct():
        known.setdefault(topic_key(topic), topic.strip())
    topics, problems = [], []
    for written in (t.strip() for t in (text or "").split(",")):
        if not written or topic_key(written) in {topic_key(t) for t in topics}:
            continue
        if topic_key(written) not in known:
            close = get_close_matches(topic_key(written), list(known), n=1, cutoff=0.6)
            hint = f" Did you mean “{known[close[0]]}”?" if close else ""
            listed = f" Topics of the resources: {', '.join(sorted(known.values()))}." if known else (
                " No resource has a topic yet: give your resources topics first.")
            problems.append(f"No resource has the topic “{written}”, so no lead would match it.{hint}{listed}")
            continue
        topics.append(known[topic_key(written)])
    return ", ".join(topics), problems


def content_block_check(block: ContentBlock) -> None:
    """Raise ValidationError (by field) if the block cannot be used as it is; writes its topics the resources' way."""
    errors: dict[str, list[str]] = {}
    try:
        block.full_clean(exclude=["personas"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if block.kind == K.TESTIMONIAL:
        if not block.body.strip():
            errors.setdefault("body", []).append("A testimonial needs the words of the customer: write them in the body.")
        if not block.attribution_name.strip():
            errors.setdefault("attribution_name", []).append("A testimonial needs who said it.")
    if block.kind == K.REVIEW:
        if block.rating is None or not 1 <= block.rating <= 5:
            errors.setdefault("rating", []).append("A review needs a rating from 1 to 5 stars.")
    elif block.rating is not None:
        errors.setdefault("rating", []).append("Only reviews have a rating: clear it, or make the block a review.")
    if block.link_url and not block.link_url.strip().lower().startswith(("http://", "https://")):
        errors.setdefault("link_url", []).append("The link must be a web address starting with http:// or https://.")
    block.topics, problems = _topics(block.topics)
    if problems:
        errors.setdefault("topics", []).extend(problems)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def content_block_save(*, block: ContentBlock, by=None) -> ContentBlock:
    """Create or change a block of the content library (marketers and managers); its personas are saved by the
    caller after it (a many-to-many needs the block's id). Nothing is written if the block cannot be used."""
    check_may_build_sequences(by)
    content_block_check(block)
    now = timezone.now()
    if block.pk is None:
        block.created_by, block.created_at = by, now
    block.updated_at = now
    block.save()
    return block
