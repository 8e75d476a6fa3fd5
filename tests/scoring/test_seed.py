"""The demo's scoring: rules, then every demo lead scored from what it is and did, moving none of them."""

import io

from django.core.management import call_command

from leads.models import Lead, StageChange
from scoring.models import LeadScore, ScoringRule


def test_the_demo_scores_its_leads_with_breakdowns_that_add_up_and_moves_none(db):
    call_command("seed_demo", "--leads", "40", "--seed", "3", stdout=io.StringIO())
    stages = dict(Lead.objects.values_list("pk", "status"))
    out = io.StringIO()

    call_command("seed_demo_scoring", "--if-empty", stdout=out)

    assert "scored 40 leads" in out.getvalue()
    details = list(LeadScore.objects.select_related("lead"))
    assert len(details) > 10
    for detail in details:
        assert sum(line["points"] for line in detail.lines) == detail.total == detail.lead.score
    assert dict(Lead.objects.values_list("pk", "status")) == stages
    assert not StageChange.objects.filter(actor="scoring").exists()

    rules = ScoringRule.objects.count()
    call_command("seed_demo_scoring", "--if-empty", stdout=out)
    assert ScoringRule.objects.count() == rules and "already there" in out.getvalue()
