"""Scoring records a crossing of every active score trigger's threshold (for nurturing's triggers to read); only
the MQL and SQL thresholds move a lead's stage."""

from datetime import UTC, datetime

import pytest
import time_machine

from core.models import DomainEvent
from leads.models import Lead
from nurturing.models import Trigger
from scoring.models import ScoringRule
from scoring.services import scores_refresh
from tests.factories import LeadFactory, PersonaFactory, sequence_with_steps

K = ScoringRule.Kind
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def crossings(lead) -> list[tuple[int, int, int]]:
    rows = DomainEvent.objects.filter(type="lead.score_crossed", lead_id=lead.pk).order_by("id")
    return [(e.payload["from"], e.payload["to"], e.payload["threshold"]) for e in rows]


def test_a_score_rising_across_a_triggers_threshold_is_recorded_without_moving_the_stage(rep_user):
    founder = PersonaFactory(name="Founder")
    ScoringRule.objects.create(kind=K.PERSONA, persona=founder, points=10)
    Trigger.objects.create(sequence=sequence_with_steps(name="Warm"), kind=Trigger.Kind.SCORE_CROSSED, score=30)
    Trigger.objects.create(sequence=sequence_with_steps(name="Off"), kind=Trigger.Kind.SCORE_CROSSED, score=20,
                           is_active=False)
    lead = LeadFactory(owner=rep_user, persona=founder, title="Founder and CEO")
    scores_refresh(lead_ids=[lead.pk])

    title = ScoringRule.objects.create(kind=K.TITLE, value="founder", points=25)
    scores_refresh(lead_ids=[lead.pk])
    assert Lead.objects.get(pk=lead.pk).score == 35
    title.points = 30
    title.save()  # as the scoring page saves it (a rule changed drops this process's copy of the rules)
    scores_refresh(lead_ids=[lead.pk])

    lead.refresh_from_db()
    assert crossings(lead) == [(10, 35, 30)]  # 35 -> 40 crosses nothing; the trigger that is off has no threshold
    assert (lead.score, lead.status) == (40, "new")


def test_a_trigger_at_the_mql_threshold_shares_its_crossing_and_the_lead_still_moves(rep_user):
    Trigger.objects.create(sequence=sequence_with_steps(), kind=Trigger.Kind.SCORE_CROSSED, score=50)
    ScoringRule.objects.create(kind=K.TITLE, value="founder", points=60)
    lead = LeadFactory(owner=rep_user, title="Founder")

    scores_refresh(lead_ids=[lead.pk])

    lead.refresh_from_db()
    assert crossings(lead) == [(0, 60, 50)] and lead.status == "mql"
