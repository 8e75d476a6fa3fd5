"""Deal stages: managers set them; an open deal opens in the first and moves through them with its history; the
lead page and the admin move it through the service."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from core.models import DomainEvent
from leads import services
from leads.deals import deal_change_stage, deal_stage_save
from leads.models import Deal, DealStage, DealStageChange
from tests.factories import LeadFactory

T0 = datetime(2026, 6, 8, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def stage(name) -> DealStage:
    return DealStage.objects.get(name=name)


def test_a_team_starts_with_four_stages_and_a_new_deal_opens_in_the_first(rep_user):
    assert list(DealStage.objects.values_list("name", "probability")) == [
        ("Qualification", 10), ("Needs analysis", 20), ("Proposal", 40), ("Negotiation", 60)]
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=1000, by=rep_user)

    deal.refresh_from_db()
    assert (deal.stage.name, deal.stage_entered_at) == ("Qualification", T0)
    [opened] = DealStageChange.objects.filter(deal=deal)
    assert (opened.from_stage, opened.to_stage.name, opened.changed_by) == (None, "Qualification", rep_user)


def test_moving_a_deal_keeps_who_when_how_long_and_why(clock, rep_user):
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=1000, by=rep_user)
    clock.shift(timedelta(days=3))

    deal_change_stage(deal=deal, stage=stage("Proposal"), by=rep_user, note="Budget confirmed")

    deal.refresh_from_db()
    move = DealStageChange.objects.filter(deal=deal).first()
    assert (deal.stage.name, deal.stage_entered_at) == ("Proposal", T0 + timedelta(days=3))
    assert (move.from_stage.name, move.to_stage.name, move.time_in_from_stage, move.note) == (
        "Qualification", "Proposal", timedelta(days=3), "Budget confirmed")
    event = DomainEvent.objects.get(type="deal.stage_changed")
    assert event.payload == {"deal": deal.pk, "from": "Qualification", "to": "Proposal"}


def test_a_move_the_rules_refuse_is_refused_with_why_and_nothing_is_written(rep_user, other_rep):
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=1000, by=rep_user)
    off = DealStage.objects.create(name="Legal review", position=5, probability=70, is_active=False)

    with pytest.raises(ValidationError, match="already in “Qualification”"):
        deal_change_stage(deal=deal, stage=stage("Qualification"), by=rep_user)
    with pytest.raises(ValidationError, match="not in use"):
        deal_change_stage(deal=deal, stage=off, by=rep_user)
    with pytest.raises(PermissionDenied):
        deal_change_stage(deal=deal, stage=stage("Proposal"), by=other_rep)
    services.deal_mark_lost(deal=deal, reason="Went quiet", by=rep_user)
    with pytest.raises(ValidationError, match="stays in the stage it closed in"):
        deal_change_stage(deal=deal, stage=stage("Proposal"), by=rep_user)
    assert DealStageChange.objects.filter(deal=deal).count() == 1


def test_a_deal_move_is_not_dated_in_the_future_and_one_made_now_follows_one_dated_a_little_ahead(rep_user):
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=1000, by=rep_user)

    with pytest.raises(ValidationError, match="in the future"):
        deal_change_stage(deal=deal, stage=stage("Proposal"), by=rep_user, at=T0 + timedelta(days=1))
    deal_change_stage(deal=deal, stage=stage("Needs analysis"), by=rep_user, at=T0 + timedelta(minutes=4))
    deal_change_stage(deal=deal, stage=stage("Proposal"), by=rep_user)

    move = DealStageChange.objects.filter(deal=deal).first()
    assert (move.to_stage.name, move.changed_at, move.time_in_from_stage) == (
        "Proposal", T0 + timedelta(minutes=4), timedelta(0))


def test_only_managers_change_the_stages_and_the_rules_hold(manager_user, rep_user):
    with pytest.raises(PermissionDenied):
        deal_stage_save(stage=DealStage(name="Demo", position=2, probability=30), by=rep_user)
    with pytest.raises(ValidationError, match="already"):
        deal_stage_save(stage=DealStage(name="proposal", position=9, probability=50), by=manager_user)
    with pytest.raises(ValidationError, match="0 to 100"):
        deal_stage_save(stage=DealStage(name="Demo", position=2, probability=130), by=manager_user)
    demo = deal_stage_save(stage=DealStage(name=" Demo ", position=2, probability=30), by=manager_user)
    assert demo.name == "Demo"
    DealStage.objects.exclude(pk=demo.pk).update(is_active=False)
    demo.is_active = False
    with pytest.raises(ValidationError, match="at least one stage in use"):
        deal_stage_save(stage=demo, by=manager_user)


def test_the_owner_moves_a_deal_and_sets_its_next_step_on_the_lead_page(client, rep_user, other_rep):
    lead = LeadFactory(owner=rep_user, first_name="Ann")
    deal = services.deal_open(lead=lead, value=1000, by=rep_user)
    client.force_login(rep_user)
    page = client.get(reverse("workspace:lead_detail", args=[lead.pk])).content.decode()
    assert 'Stage: <strong class="deal-stage">Qualification</strong> (10 % to win)' in page

    response = client.post(reverse("workspace:deal_stage", args=[deal.pk]),
                           {"stage": stage("Negotiation").pk, "next_step": "Send the <b>contract</b>"}, follow=True)

    deal.refresh_from_db()
    assert (deal.stage.name, deal.next_step) == ("Negotiation", "Send the <b>contract</b>")
    body = response.content.decode()
    assert "Next: Send the &lt;b&gt;contract&lt;/b&gt;" in body and "<b>contract</b>" not in body
    client.force_login(other_rep)
    assert client.post(reverse("workspace:deal_stage", args=[deal.pk]),
                       {"stage": stage("Proposal").pk}).status_code in (403, 404)
    assert Deal.objects.get(pk=deal.pk).stage.name == "Negotiation"


def test_a_manager_moves_a_deal_in_the_admin_and_sees_its_stage_history(client, manager_user, rep_user):
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=1000, by=rep_user)
    client.force_login(manager_user)
    url = reverse("admin:leads_deal_change", args=[deal.pk])
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    opened = timezone.localtime(deal.created_at)  # the admin's date and time boxes, in the project's time zone
    data.update(created_at_0=opened.date().isoformat(), created_at_1=opened.time().isoformat(), lead=deal.lead_id,
                move_to_stage=stage("Proposal").pk, stage_note="Asked for a quote")

    assert client.post(url, data).status_code == 302

    assert [(c.to_stage.name, c.note) for c in deal.stage_changes.all()] == [
        ("Proposal", "Asked for a quote"), ("Qualification", "")]
    assert "Asked for a quote" in client.get(url).content.decode()
