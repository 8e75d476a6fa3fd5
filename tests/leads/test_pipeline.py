"""Every stage move, allowed and forbidden, through the one stage service."""

import itertools

import pytest
from django.core.exceptions import ValidationError

from leads import pipeline, services
from leads.models import StageChange
from leads.pipeline import LeadStatus
from tests.factories import lead_at

ALL = list(LeadStatus)
PAIRS = [(a, b) for a, b in itertools.product(ALL, ALL) if a != b]
ALLOWED = [(a, b) for a, b in PAIRS if pipeline.is_move_allowed(a, b) and b not in pipeline.NEEDS_CONVERSION]
FORBIDDEN = [(a, b) for a, b in PAIRS if not pipeline.is_move_allowed(a, b)]


def test_every_stage_has_a_rule():
    assert set(pipeline.ALLOWED_MOVES) == set(LeadStatus.values)


def test_customer_is_final_and_lost_leads_can_be_reopened():
    assert pipeline.allowed_moves(LeadStatus.CUSTOMER) == ()
    assert any(s in pipeline.OPEN_STATUSES for s in pipeline.allowed_moves(LeadStatus.LOST))
    assert any(s in pipeline.OPEN_STATUSES for s in pipeline.allowed_moves(LeadStatus.DISQUALIFIED))


def test_every_open_stage_can_end_lost_or_disqualified():
    for status in pipeline.OPEN_STATUSES:
        assert pipeline.is_move_allowed(status, LeadStatus.LOST)
        assert pipeline.is_move_allowed(status, LeadStatus.DISQUALIFIED)


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_an_allowed_move_changes_the_status_and_records_it(from_status, to_status, manager_user):
    lead = lead_at(from_status)
    before = StageChange.objects.filter(lead=lead).count()

    change = services.lead_change_stage(lead=lead, to_status=to_status, by=manager_user, reason="checked")

    lead.refresh_from_db()
    assert lead.status == to_status
    assert StageChange.objects.filter(lead=lead).count() == before + 1
    assert (change.from_status, change.to_status, change.changed_by, change.reason) == (
        from_status,
        to_status,
        manager_user,
        "checked",
    )
    assert change.time_in_from_stage is not None


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), FORBIDDEN, ids=[f"{a}->{b}" for a, b in FORBIDDEN])
def test_a_forbidden_move_is_refused_naming_the_allowed_moves(from_status, to_status):
    lead = lead_at(from_status)
    before = StageChange.objects.filter(lead=lead).count()

    with pytest.raises(ValidationError) as exc:
        services.lead_change_stage(lead=lead, to_status=to_status, reason="trying")

    message = " ".join(exc.value.messages)
    assert pipeline.describe_allowed_moves(from_status) in message
    lead.refresh_from_db()
    assert lead.status == from_status
    assert StageChange.objects.filter(lead=lead).count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("from_status", sorted(pipeline.OPEN_STATUSES))
def test_customer_is_reached_only_by_converting(from_status):
    lead = lead_at(from_status)

    with pytest.raises(ValidationError, match="converting"):
        services.lead_change_stage(lead=lead, to_status=LeadStatus.CUSTOMER, reason="x")

    lead.refresh_from_db()
    assert lead.status == from_status


@pytest.mark.django_db
def test_moving_to_the_current_stage_is_refused():
    lead = lead_at(LeadStatus.MQL)
    with pytest.raises(ValidationError, match="already MQL"):
        services.lead_change_stage(lead=lead, to_status=LeadStatus.MQL)


@pytest.mark.django_db
def test_an_unknown_stage_is_refused():
    lead = lead_at(LeadStatus.NEW)
    with pytest.raises(ValidationError, match="not a stage"):
        services.lead_change_stage(lead=lead, to_status="won")


def test_the_allowed_moves_are_described_by_name_in_their_order():
    assert pipeline.describe_allowed_moves(LeadStatus.LOST) == "Allowed moves from Lost: Contacted, Nurturing."
    assert pipeline.describe_allowed_moves(LeadStatus.CUSTOMER) == "Customer is final: no moves are allowed from it."
