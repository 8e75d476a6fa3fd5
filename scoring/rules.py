"""What a lead's score is, from what it is and what it did: pure functions over plain facts, so the score of
one lead after an event and of a million after a rule change are the same computation.

Fit rules add their points once when they match. Engagement rules add their points for each of the lead's
latest matching actions (up to the rule's `max_times`), each decayed by its age: points × 0.5^(age /
half-life). The breakdown lists each rule's undecayed points and one "decay" line, so its lines add up to the
total exactly.
"""

from dataclasses import dataclass, field
from datetime import datetime

from .models import ScoringRule

K = ScoringRule.Kind

# Actions older than this many half-lives are worth under 0.1% of their points: not read at all.
HORIZON_HALF_LIVES = 10


@dataclass(frozen=True)
class Action:
    """One thing a person did: `kind` is an engagement rule's kind; `detail` the link clicked, the page's path
    or the form's slug."""

    kind: str
    at: datetime
    detail: str = ""
    resource_id: int | None = None


@dataclass
class Facts:
    persona_id: int | None = None
    source_id: int | None = None
    title: str = ""
    company_size: str = ""
    country: str = ""
    actions: list[Action] = field(default_factory=list)
    # The score as stored now, to write only what changed.
    stored_total: int = 0
    stored_lines: list = field(default_factory=list)


@dataclass(frozen=True)
class Line:
    label: str
    points: int
    times: int = 1

    def as_dict(self) -> dict:
        return {"label": self.label, "points": self.points, "times": self.times}


@dataclass(frozen=True)
class Score:
    total: int
    fit: int
    engagement: int
    lines: tuple[Line, ...]

    def lines_as_dicts(self) -> list[dict]:
        return [line.as_dict() for line in self.lines]


def page_matches(rule_path: str, path: str) -> bool:
    """"/pricing" matches /pricing, /pricing/ and /pricing/teams, not /pricing-old."""
    base = rule_path.rstrip("/")
    return path == base or path.startswith(base + "/") or (not base and path.startswith("/"))


def _fit_matches(rule: ScoringRule, facts: Facts) -> bool:
    value = rule.value.strip().casefold()
    if rule.kind == K.PERSONA:
        return facts.persona_id is not None and facts.persona_id == rule.persona_id
    if rule.kind == K.SOURCE:
        return facts.source_id is not None and facts.source_id == rule.source_id
    if rule.kind == K.TITLE:
        return bool(value) and value in facts.title.casefold()
    if rule.kind == K.COMPANY_SIZE:
        return bool(value) and value == facts.company_size.strip().casefold()
    if rule.kind == K.COUNTRY:
        return bool(value) and value == facts.country.strip().casefold()
    return False


def action_matches(rule: ScoringRule, action: Action) -> bool:
    if rule.kind == K.DOWNLOAD:
        return action.kind == K.FORM and action.resource_id is not None and (
            rule.resource_id is None or rule.resource_id == action.resource_id)
    if action.kind != rule.kind:
        return False
    value = rule.value.strip()
    if rule.kind == K.EMAIL_CLICK:
        return not value or value.casefold() in action.detail.casefold()
    if rule.kind == K.PAGE_VIEW:
        return page_matches(value, action.detail)
    if rule.kind == K.FORM:
        return not value or value == action.detail
    return True  # an open, a reply


def _decayed(points: int, at: datetime, *, now: datetime, half_life_days: int) -> float:
    if not half_life_days:
        return float(points)
    age_days = max(0.0, (now - at).total_seconds() / 86400)
    return points * 0.5 ** (age_days / half_life_days)


def score_compute(facts: Facts, rules, *, now: datetime, half_life_days: int) -> Score:
    """The lead's score under `rules` (active ones only) at `now`."""
    lines, fit, raw, decayed = [], 0, 0, 0.0
    newest_first = sorted(facts.actions, key=lambda action: action.at, reverse=True)
    for rule in sorted(rules, key=lambda rule: not rule.is_fit):  # who the lead is, then what it did
        if not rule.is_active:
            continue
        if rule.is_fit:
            if _fit_matches(rule, facts):
                fit += rule.points
                lines.append(Line(rule.label, rule.points))
            continue
        counted = [action for action in newest_first if action.at <= now and action_matches(rule, action)]
        counted = counted[:rule.max_times]
        if counted:
            raw += rule.points * len(counted)
            decayed += sum(_decayed(rule.points, action.at, now=now, half_life_days=half_life_days)
                           for action in counted)
            lines.append(Line(rule.label, rule.points * len(counted), len(counted)))
    engagement = round(decayed)
    if engagement != raw:
        lines.append(Line("decay", engagement - raw))
    return Score(total=fit + engagement, fit=fit, engagement=engagement, lines=tuple(lines))


def breakdown_text(lines) -> str:
    """"+20 persona Founder, +30 page /pricing ×2, −10 decay" (lines as stored: dicts)."""
    parts = []
    for line in lines:
        sign = "+" if line["points"] >= 0 else "−"
        times = f" ×{line['times']}" if line.get("times", 1) > 1 else ""
        parts.append(f"{sign}{abs(line['points'])} {line['label']}{times}")
    return ", ".join(parts) or "no rule matches"
