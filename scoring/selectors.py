from .models import LeadScore
from .rules import breakdown_text


def score_breakdown(*, lead_id: int) -> dict:
    """The lead's score lines as stored ("+20 persona Founder"), for its page: {"lines": [...], "text": ...}."""
    detail = LeadScore.objects.filter(lead_id=lead_id).values_list("lines", "computed_at").first()
    if detail is None:
        return {"lines": [], "text": "", "computed_at": None}
    lines, computed_at = detail
    return {"lines": lines, "text": breakdown_text(lines), "computed_at": computed_at}
