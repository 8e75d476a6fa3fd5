"""Scoring's writes: refreshing leads' scores (and what crossing a threshold does), saving the rules, and
rescoring every lead in the background after a change.

Every score comes from `scores_refresh`: after an event for one lead, in the rescoring job for thousands, in
the nightly decay pass. A score that rises across the MQL (or SQL) threshold moves the lead through the stage
service with the breakdown as the reason, and gives its owner a task; it rises across a threshold once: a rep
who sends an MQL back to nurturing is not overruled while its score stays where it was. A score that rises
across the threshold of an active "score crossed" trigger (nurturing.models.Trigger) is recorded too
(`lead.score_crossed`), for the trigger to read; only the MQL and SQL thresholds move stages.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.events import Actor, EventType, event_record
from core.policy import check_may_set_scoring
from leads import pipeline
from leads.models import Lead
from leads.pipeline import LeadStatus
from leads.services import lead_stage_action, task_create
from nurturing.models import Sequence, Trigger

from .facts import facts_for
from .models import LeadScore, RescoreJob, ScoringRule, ScoringSettings
from .rules import breakdown_text, score_compute

log = logging.getLogger(__name__)
K = ScoringRule.Kind
SCORING = Actor.system("scoring")
RESCORE_BATCH = 2000


# The rules and settings, read once per process and kept for a few seconds: scoring one event must not read them
# each time (it runs for every open, click and page view of a known lead). A change saved in this process clears
# them at once (scoring/apps.py: the models' post_save and post_delete); other processes see it within
# RULES_TTL_S, and the rescoring job a change starts reads them fresh.
RULES_TTL_S = 10.0
_cached: dict = {}


def rules_forget(**kwargs) -> None:
    _cached.clear()


def rules_active() -> list[ScoringRule]:
    return list(ScoringRule.objects.filter(is_active=True).select_related("persona", "source", "resource"))


def _rules_and_settings() -> tuple[list[ScoringRule], ScoringSettings]:
    _fresh()
    return _cached["rules"], _cached["settings"]


def _fresh() -> None:
    if _cached.get("until", 0) < time.monotonic():
        _cached.update(rules=rules_active(), settings=ScoringSettings.current(), trigger_scores=_trigger_scores(),
                       until=time.monotonic() + RULES_TTL_S)


def _trigger_scores() -> list[int]:
    """The thresholds of the active score triggers of sequences not archived."""
    return list(Trigger.objects.filter(kind=Trigger.Kind.SCORE_CROSSED, is_active=True, score__gt=0)
                .exclude(sequence__status=Sequence.Status.ARCHIVED).values_list("score", flat=True).distinct())


@dataclass(frozen=True)
class Refreshed:
    scored: int
    changed: int
    moved: int


def _thresholds(settings: ScoringSettings) -> list[tuple[int, str | None]]:
    """(threshold, the stage it moves to or None), highest first: the MQL and SQL thresholds, and those of the
    active score triggers of sequences not archived (which move no stage; a trigger at the MQL threshold shares
    its crossing)."""
    found = {settings.mql_threshold: LeadStatus.MQL}
    if settings.sql_threshold:
        found[settings.sql_threshold] = LeadStatus.SQL
    _fresh()
    for score in _cached["trigger_scores"]:
        found.setdefault(score, None)
    return sorted(found.items(), reverse=True)


def scores_refresh(
    *, lead_ids, rules: list[ScoringRule] | None = None, settings: ScoringSettings | None = None,
    now: datetime | None = None, moves: bool = True,
) -> Refreshed:
    """Compute the leads' scores and store those that changed (`Lead.score` and its breakdown, in one
    transaction); then act on each threshold a score rose across (unless `moves` is False: scores given to
    leads that had none, as when scoring is first set up on a database). Safe to run twice: a second run finds
    nothing changed."""
    now = now or timezone.now()
    if rules is None or settings is None:
        cached_rules, cached_settings = _rules_and_settings()
        rules, settings = cached_rules if rules is None else rules, settings or cached_settings
    facts = facts_for(lead_ids, rules, now=now, half_life_days=settings.half_life_days)
    if not facts:
        return Refreshed(0, 0, 0)
    rows, totals, crossed = [], [], []
    thresholds = _thresholds(settings)
    for pk, lead_facts in facts.items():
        score = score_compute(lead_facts, rules, now=now, half_life_days=settings.half_life_days)
        lines = score.lines_as_dicts()
        old = lead_facts.stored_total
        if score.total == old and lead_facts.stored_lines == lines:
            continue
        rows.append(LeadScore(lead_id=pk, total=score.total, fit=score.fit, engagement=score.engagement,
                              lines=lines, computed_at=now))
        if score.total != old:
            totals.append(Lead(pk=pk, score=score.total))
            passed = [(threshold, stage) for threshold, stage in thresholds if old < threshold <= score.total]
            if passed and moves:
                crossed.append((pk, old, score.total, lines, passed))
    if not rows:
        return Refreshed(scored=len(facts), changed=0, moved=0)
    with transaction.atomic():
        LeadScore.objects.bulk_create(rows, update_conflicts=True, unique_fields=["lead"],
                                      update_fields=["total", "fit", "engagement", "lines", "computed_at"])
        _totals_write(totals)
    moved = 0
    for pk, old, new, lines, passed in crossed:
        moved += _threshold_crossed(pk, old=old, new=new, lines=lines, passed=passed, settings=settings)
    return Refreshed(scored=len(facts), changed=len(rows), moved=moved)


def _totals_write(totals: list[Lead]) -> None:
    """Store the leads' new totals. One lead (an event's): a plain UPDATE. Many on PostgreSQL: one UPDATE ... FROM
    (VALUES ...) (bulk_update's CASE over 2,000 ids took 0.7 s of a batch's 0.9); elsewhere bulk_update."""
    if len(totals) == 1:
        Lead.objects.filter(pk=totals[0].pk).update(score=totals[0].score)
    elif totals and connection.vendor == "postgresql":
        table = Lead._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS l SET score = v.score FROM (VALUES {', '.join(['(%s::bigint, %s::integer)'] * len(totals))}) "
                f"AS v(id, score) WHERE l.id = v.id", [value for lead in totals for value in (lead.pk, lead.score)])
    elif totals:
        Lead.objects.bulk_update(totals, ["score"], batch_size=500)


def _threshold_crossed(lead_id: int, *, old: int, new: int, lines, passed, settings: ScoringSettings) -> int:
    """Record each crossing; move the lead to the highest stage it crossed into when the pipeline allows that from
    where it is (an automation never moves a lead back or sideways); give the owner a task. Returns 1 if moved."""
    moving = [(threshold, stage) for threshold, stage in passed if stage is not None]
    with transaction.atomic():
        lead = Lead.objects.filter(pk=lead_id, archived_at__isnull=True, erased_at__isnull=True).first()
        if lead is None:
            return 0
        for value, _ in passed:
            event_record(EventType.SCORE_CROSSED, actor=SCORING, lead_id=lead_id,
                         payload={"from": old, "to": new, "threshold": value})
        if not moving:
            return 0
        threshold, stage = moving[0]
        why = f"Score {new} reached the {pipeline.label(stage)} threshold of {threshold}: {breakdown_text(lines)}"
        change = lead_stage_action(lead=lead, to_status=stage, actor="scoring", reason=why, source=SCORING)
        if change is None:
            return 0
        if settings.creates_task and lead.owner_id:
            try:
                with transaction.atomic():
                    task_create(assignee=lead.owner, lead=lead, due_at=change.changed_at,
                                title=f"Follow up: scored {new}, now {pipeline.label(stage)}"[:200], notes=why)
            except ValidationError as exc:  # e.g. the owner's account was switched off: the move stands
                log.warning("Lead %s moved to %s by its score; no task for its owner: %s", lead_id, stage, exc)
        return 1


# --- Rules ------------------------------------------------------------------------------------

_NEEDS = {
    K.PERSONA: ("persona", "Choose the persona this rule rewards."),
    K.SOURCE: ("source", "Choose the source this rule rewards."),
    K.TITLE: ("value", "Write the words a job title contains, e.g. founder."),
    K.COMPANY_SIZE: ("value", "Write the company size band, e.g. 11-50."),
    K.COUNTRY: ("value", "Write the country, as companies have it, e.g. Germany."),
    K.PAGE_VIEW: ("value", "Write the page's path, e.g. /pricing."),
}


def rule_check(rule: ScoringRule) -> None:
    """What a rule needs for its kind, or a ValidationError saying what to add."""
    errors = {}
    try:
        rule.full_clean(exclude=["persona", "source", "resource"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    need = _NEEDS.get(rule.kind)
    if need and not (getattr(rule, f"{need[0]}_id", None) if need[0] != "value" else rule.value.strip()):
        errors.setdefault(need[0], []).append(need[1])
    if rule.kind == K.PAGE_VIEW and rule.value.strip() and not rule.value.strip().startswith("/"):
        errors.setdefault("value", []).append("A page's path starts with /, e.g. /pricing (not the full address).")
    if rule.kind in ScoringRule.FIT_KINDS and rule.max_times != 1:
        rule.max_times = 1  # a lead is a persona once
    if rule.points == 0:
        errors.setdefault("points", []).append("Give the rule points (up to 100, or down to -100 for a poor fit).")
    if errors:
        raise ValidationError(errors)


def scoring_save(*, rules, deleted=(), settings: ScoringSettings, by=None) -> RescoreJob:
    """Save the rules (new and changed ones in `rules`, removed ones in `deleted`) and the settings, all or
    nothing, and start rescoring every lead under them (`RescoreJob`; an earlier job still running stops)."""
    check_may_set_scoring(by)
    for rule in rules:
        rule_check(rule)
    settings.full_clean()
    if settings.sql_threshold is not None and settings.sql_threshold <= settings.mql_threshold:
        raise ValidationError({"sql_threshold": [
            f"The SQL threshold must be above the MQL threshold ({settings.mql_threshold}), or empty."]})
    now = timezone.now()
    with transaction.atomic():
        for rule in deleted:
            if rule.pk:
                rule.delete()
        for rule in rules:
            rule.save()
        settings.updated_at, settings.updated_by = now, by
        if settings.pk is None and ScoringSettings.objects.exists():
            settings.pk = ScoringSettings.objects.order_by("pk").values_list("pk", flat=True).first()
        settings.save()
        event_record(EventType.SCORING_CHANGED, actor=Actor.of(by), payload={
            "rules": [str(rule) for rule in ScoringRule.objects.filter(is_active=True)],
            "mql": settings.mql_threshold, "sql": settings.sql_threshold, "half_life_days": settings.half_life_days,
        })
        return rescore_start(by=by, reason="rules changed")


def rescore_start(*, by=None, reason: str) -> RescoreJob:
    """Start rescoring every lead (the running job, if any, is superseded); the work starts once this commits."""
    from .tasks import rescore  # the task module calls this one's services

    with transaction.atomic():
        RescoreJob.objects.filter(status=RescoreJob.Status.RUNNING).update(
            status=RescoreJob.Status.SUPERSEDED, finished_at=timezone.now())
        job = RescoreJob.objects.create(reason=reason, total=Lead.objects.count(), started_by=by)
        transaction.on_commit(lambda: rescore.delay(job.pk))
        return job


def rescore_step(*, job_id: int, batch_size: int = RESCORE_BATCH, now: datetime | None = None) -> bool:
    """Rescore the next batch of the job's leads (in id order); returns whether there is more to do. A job that
    is no longer running (superseded, done) does nothing."""
    job = RescoreJob.objects.filter(pk=job_id, status=RescoreJob.Status.RUNNING).first()
    if job is None:
        return False
    ids = list(Lead.objects.filter(pk__gt=job.last_lead_id).order_by("pk").values_list("pk", flat=True)[:batch_size])
    if not ids:
        RescoreJob.objects.filter(pk=job.pk, status=RescoreJob.Status.RUNNING).update(
            status=RescoreJob.Status.DONE, finished_at=timezone.now())
        return False
    result = scores_refresh(lead_ids=ids, now=now)
    # Progress only moves forward from where this batch started: a step run twice counts once.
    RescoreJob.objects.filter(pk=job.pk, last_lead_id=job.last_lead_id).update(
        last_lead_id=ids[-1], done=F("done") + len(ids), changed=F("changed") + result.changed,
        moved=F("moved") + result.moved)
    return True


def rescore_fail(*, job_id: int, error: str) -> None:
    RescoreJob.objects.filter(pk=job_id, status=RescoreJob.Status.RUNNING).update(
        status=RescoreJob.Status.FAILED, error=error[:2000], finished_at=timezone.now())


def decay_refresh(*, now: datetime | None = None, batch_size: int = RESCORE_BATCH) -> int:
    """Rescore the leads whose engagement points are still decaying (the nightly pass); returns how many."""
    now = now or timezone.now()
    rules, settings = rules_active(), ScoringSettings.current()
    if not settings.half_life_days:
        return 0
    after, done = 0, 0
    while True:
        ids = list(LeadScore.objects.filter(lead_id__gt=after).exclude(engagement=0).order_by("lead_id")
                   .values_list("lead_id", flat=True)[:batch_size])
        if not ids:
            return done
        scores_refresh(lead_ids=ids, rules=rules, settings=settings, now=now)
        after, done = ids[-1], done + len(ids)


# --- Preview ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    leads: int
    sampled: int
    would_reach_mql: int
    would_reach_sql: int
    would_change: int
    average_before: float
    average_after: float

    @property
    def is_sample(self) -> bool:
        return self.sampled < self.leads

    def _estimate(self, count: int) -> int:
        return round(count * self.leads / self.sampled) if self.sampled else 0

    @property
    def estimate_mql(self) -> int:
        return self._estimate(self.would_reach_mql)

    @property
    def estimate_sql(self) -> int:
        return self._estimate(self.would_reach_sql)


PREVIEW_SAMPLE = 20_000


def scoring_preview(*, rules, settings: ScoringSettings, sample: int = PREVIEW_SAMPLE,
                    now: datetime | None = None) -> Preview:
    """What unsaved rules and settings would do, without writing: how many leads would rise to the MQL (and SQL)
    threshold from a stage that moves there. Exact up to `sample` open leads; past that, over every n-th lead."""
    now = now or timezone.now()
    for rule in rules:
        rule_check(rule)
    leads = Lead.objects.filter(archived_at__isnull=True, erased_at__isnull=True)
    total = leads.count()
    step = max(1, -(-total // sample))
    if step > 1:
        # A fixed stride over ids: the same leads each time, spread over old and new.
        from django.db.models.functions import Mod

        leads = leads.alias(stride=Mod("pk", step)).filter(stride=0)
    before, after, change, mql, sql, sampled = 0, 0, 0, 0, 0, 0
    rows = list(leads.order_by("pk").values_list("pk", "score", "status")[:sample])
    for start in range(0, len(rows), RESCORE_BATCH):
        chunk = rows[start:start + RESCORE_BATCH]
        facts = facts_for([pk for pk, _, _ in chunk], rules, now=now, half_life_days=settings.half_life_days)
        for pk, old, status in chunk:
            if pk not in facts:
                continue
            new = score_compute(facts[pk], rules, now=now, half_life_days=settings.half_life_days).total
            sampled += 1
            before, after, change = before + old, after + new, change + (new != old)
            if settings.sql_threshold and old < settings.sql_threshold <= new and pipeline.is_move_allowed(status, LeadStatus.SQL):
                sql += 1
            elif old < settings.mql_threshold <= new and pipeline.is_move_allowed(status, LeadStatus.MQL):
                mql += 1
    return Preview(leads=total, sampled=sampled, would_reach_mql=mql, would_reach_sql=sql, would_change=change,
                   average_before=before / sampled if sampled else 0, average_after=after / sampled if sampled else 0)
