"""Reading what scoring needs to know about leads: a fixed number of queries per batch of leads, whatever its
size, reading only the kinds of actions some rule rewards, and only as far back as they still count."""

import json
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from leads.models import Company, FormSubmission, Lead
from nurturing.models import EmailEvent
from traffic.models import PageView, VisitorKind

from .models import LeadScore, ScoringRule
from .rules import HORIZON_HALF_LIVES, Action, Facts

K = ScoringRule.Kind
_EMAIL_KINDS = {EmailEvent.Kind.OPENED: K.EMAIL_OPEN, EmailEvent.Kind.CLICKED: K.EMAIL_CLICK,
                EmailEvent.Kind.REPLIED: K.EMAIL_REPLY}


def horizon(*, now: datetime, half_life_days: int) -> datetime | None:
    """The oldest action that can still count (None: all of them, when nothing decays)."""
    return now - timedelta(days=HORIZON_HALF_LIVES * half_life_days) if half_life_days else None


def page_paths(rules) -> list[str]:
    """The pages some page rule rewards, each without its trailing slash ("" for a rule on every page)."""
    return sorted({rule.value.strip().rstrip("/") for rule in rules if rule.is_active and rule.kind == K.PAGE_VIEW})


def _like_prefix(path: str) -> str:
    return path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def _when(value) -> datetime:
    """A datetime read by a raw query: PostgreSQL gives it aware, SQLite as text in UTC."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _lines(value) -> list:
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value


# Raw SQL, not the ORM: scoring one event reads these for one lead on every open, click and page view of a known
# lead, and building the ORM's queries took longer than running them (about 3 ms of 6).
def facts_for(lead_ids, rules, *, now: datetime, half_life_days: int) -> dict[int, Facts]:
    """Each lead's facts, with its score as stored (leads that do not exist are left out)."""
    lead_ids = list(lead_ids)
    if not lead_ids:
        return {}
    kinds = {rule.kind for rule in rules if rule.is_active}
    ids = _placeholders(lead_ids)
    facts = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.id, l.persona_id, l.source_id, l.title, c.size, c.country, l.score, s.lines "
            f"FROM {Lead._meta.db_table} l LEFT JOIN {Company._meta.db_table} c ON c.id = l.company_id "
            f"LEFT JOIN {LeadScore._meta.db_table} s ON s.lead_id = l.id WHERE l.id IN ({ids})", lead_ids)
        for pk, persona, source, title, size, country, score, lines in cursor.fetchall():
            facts[pk] = Facts(persona_id=persona, source_id=source, title=title, company_size=size or "",
                              country=country or "", stored_total=score, stored_lines=_lines(lines))
        if not facts:
            return facts
        since = horizon(now=now, half_life_days=half_life_days)
        branches, params = _action_queries(rules, kinds, ids, lead_ids, since)
        if branches:
            # One round trip for every kind of action the rules reward.
            cursor.execute(" UNION ALL ".join(branches), params)
            for lead_id, kind, at, detail, resource_id in cursor.fetchall():
                if lead_id in facts:
                    facts[lead_id].actions.append(Action(_ACTION_KINDS.get(kind, kind), _when(at), detail or "",
                                                         resource_id))
    return facts


# The action kinds the query below tags its rows with -> the rules' kinds.
_ACTION_KINDS = {**_EMAIL_KINDS, "page": K.PAGE_VIEW, "form": K.FORM}


def _action_queries(rules, kinds, ids: str, lead_ids: list, since) -> tuple[list[str], list]:
    """The SELECTs of the leads' actions that some rule rewards, each giving (lead, kind, when, detail,
    resource), and their parameters."""
    since_sql = [connection.ops.adapt_datetimefield_value(since)] if since else []
    branches, params = [], []
    email_kinds = [email_kind for email_kind, rule_kind in _EMAIL_KINDS.items() if rule_kind in kinds]
    if email_kinds:
        branches.append(
            f"SELECT lead_id, kind, occurred_at, url, CAST(NULL AS bigint) FROM {EmailEvent._meta.db_table} "
            f"WHERE lead_id IN ({ids}) AND kind IN ({_placeholders(email_kinds)}) AND is_machine = %s"
            + (" AND occurred_at >= %s" if since else ""))
        params += [*lead_ids, *email_kinds, False, *since_sql]
    paths = page_paths(rules)
    if paths:
        matches = " OR ".join("path = %s OR path LIKE %s ESCAPE '\\'" for _ in paths)
        branches.append(
            f"SELECT lead_id, 'page', received_at, path, CAST(NULL AS bigint) FROM {PageView._meta.db_table} "
            f"WHERE lead_id IN ({ids}) AND kind = %s AND ({matches})" + (" AND received_at >= %s" if since else ""))
        params += [*lead_ids, VisitorKind.HUMAN, *(x for path in paths for x in (path or "/", _like_prefix(path))),
                   *since_sql]
    if kinds & {K.FORM, K.DOWNLOAD}:
        branches.append(
            f"SELECT lead_id, 'form', submitted_at, form_slug, resource_id FROM {FormSubmission._meta.db_table} "
            f"WHERE lead_id IN ({ids})" + (" AND submitted_at >= %s" if since else ""))
        params += [*lead_ids, *since_sql]
    return branches, params
