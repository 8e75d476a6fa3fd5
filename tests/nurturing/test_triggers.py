"""Triggers: a form submitted, a resource downloaded, a stage reached or an objection logged enrolls the lead in a
sequence, read from the event log once per event."""

import pytest

from core.models import EventCursor
from leads import services as lead_services
from leads.models import Resource
from nurturing.models import Enrollment, Trigger, TriggerFired
from nurturing.triggers import triggers_run
from tests.factories import LeadFactory, sequence_with_steps


@pytest.fixture(autouse=True)
def settled(settings):
    settings.CRM_EVENT_SETTLE_SECONDS = 0


def enrolled_in(lead) -> list[str]:
    return sorted(Enrollment.objects.filter(lead=lead).values_list("sequence__name", flat=True))


def test_a_price_objection_enrolls_the_lead_in_the_roi_case_study_and_a_timing_one_does_not(rep_user):
    roi = sequence_with_steps(name="ROI case study")
    Trigger.objects.create(sequence=roi, kind=Trigger.Kind.OBJECTION, objection_category="price")
    dear, later = LeadFactory(owner=rep_user), LeadFactory(owner=rep_user)
    lead_services.objection_log(lead=dear, by=rep_user, category="price", lead_words="Too dear")
    lead_services.objection_log(lead=later, by=rep_user, category="timing", lead_words="Next year")

    assert triggers_run() >= 2
    assert (enrolled_in(dear), enrolled_in(later)) == (["ROI case study"], [])


def test_a_stage_reached_a_form_and_a_resource_each_enroll_and_each_event_acts_once(rep_user):
    guide = Resource.objects.create(name="CRM guide", slug="crm-guide", kind="guide")
    mql, webinar, reader = (sequence_with_steps(name=name) for name in ("MQL nurture", "Webinar", "Guide readers"))
    Trigger.objects.create(sequence=mql, kind=Trigger.Kind.STAGE_REACHED, stage="mql")
    Trigger.objects.create(sequence=webinar, kind=Trigger.Kind.FORM_SUBMITTED, form_slug="webinar")
    Trigger.objects.create(sequence=reader, kind=Trigger.Kind.RESOURCE, resource=guide)
    Trigger.objects.create(sequence=reader, kind=Trigger.Kind.STAGE_REACHED, stage="sql", is_active=False)
    a, b, c = (LeadFactory(owner=rep_user) for _ in range(3))
    lead_services.lead_change_stage(lead=a, to_status="nurturing", by=rep_user)
    lead_services.lead_change_stage(lead=a, to_status="mql", by=rep_user)
    lead_services.form_submission_record(lead=b, form_name="Webinar sign-up", form_slug="webinar")
    lead_services.form_submission_record(lead=c, form_name="Guide", form_slug="guide", resource=guide)
    lead_services.form_submission_record(lead=c, form_name="Other", form_slug="other")

    triggers_run()
    assert (enrolled_in(a), enrolled_in(b), enrolled_in(c)) == (["MQL nurture"], ["Webinar"], ["Guide readers"])

    # The event log read again from the start (a lost cursor): nothing acts twice.
    EventCursor.objects.filter(name="nurturing.triggers").update(position=0)
    triggers_run()
    assert Enrollment.objects.count() == 3 and TriggerFired.objects.count() == 3


def test_a_lead_the_sequence_refuses_is_not_enrolled_and_the_reason_is_kept(rep_user):
    roi = sequence_with_steps(name="ROI case study", goal_stage="mql")
    Trigger.objects.create(sequence=roi, kind=Trigger.Kind.OBJECTION, objection_category="price")
    paused = sequence_with_steps(name="Paused one", status="paused")
    Trigger.objects.create(sequence=paused, kind=Trigger.Kind.OBJECTION, objection_category="price")
    lead = LeadFactory(owner=rep_user)
    for step in ("nurturing", "mql"):
        lead_services.lead_change_stage(lead=lead, to_status=step, by=rep_user)
    lead_services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Too dear")

    triggers_run()
    assert enrolled_in(lead) == []
    fired = TriggerFired.objects.get()  # a paused sequence's trigger waits; the active one says why not
    assert fired.trigger.sequence == roi and "already MQL, the sequence's goal" in fired.outcome


def test_a_trigger_names_what_it_waits_for_and_only_marketers_and_managers_set_them(rep_user, marketer_user):
    from django.core.exceptions import PermissionDenied, ValidationError

    from nurturing.services import triggers_save

    sequence = sequence_with_steps()
    with pytest.raises(ValidationError, match="Choose the kind of objection"):
        triggers_save(triggers=[Trigger(sequence=sequence, kind=Trigger.Kind.OBJECTION)], by=marketer_user)
    with pytest.raises(PermissionDenied):
        triggers_save(triggers=[Trigger(sequence=sequence, kind=Trigger.Kind.FORM_SUBMITTED)], by=rep_user)
    triggers_save(triggers=[Trigger(sequence=sequence, kind=Trigger.Kind.FORM_SUBMITTED)], by=marketer_user)
    assert str(Trigger.objects.get()) == "A form is submitted (any form) → Welcome"


@pytest.fixture
def frozen():
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2026, 11, 3, 10, tzinfo=UTC), tick=False):
        yield


def test_a_score_trigger_at_30_enrolls_a_lead_scored_from_10_to_35_once_and_not_one_going_from_35_to_40(
        frozen, rep_user):
    from leads.models import Lead
    from scoring.models import ScoringRule
    from scoring.services import scores_refresh
    from tests.factories import PersonaFactory

    warm, other = sequence_with_steps(name="Warm leads"), sequence_with_steps(name="Hot leads")
    Trigger.objects.create(sequence=warm, kind=Trigger.Kind.SCORE_CROSSED, score=30)
    Trigger.objects.create(sequence=other, kind=Trigger.Kind.SCORE_CROSSED, score=45)
    founder = PersonaFactory(name="Founder")
    ScoringRule.objects.create(kind=ScoringRule.Kind.PERSONA, persona=founder, points=10)
    rising = LeadFactory(owner=rep_user, persona=founder, title="Founder")
    already = LeadFactory(owner=rep_user, title="Founder")
    Lead.objects.filter(pk=already.pk).update(score=35)
    scores_refresh(lead_ids=[rising.pk])
    title = ScoringRule.objects.create(kind=ScoringRule.Kind.TITLE, value="founder", points=25)

    scores_refresh(lead_ids=[rising.pk])  # 10 -> 35
    title.points = 40
    title.save()
    scores_refresh(lead_ids=[already.pk])  # 35 -> 40

    triggers_run()
    EventCursor.objects.filter(name="nurturing.triggers").update(position=0)
    triggers_run()
    assert (enrolled_in(rising), enrolled_in(already)) == (["Warm leads"], [])
    assert TriggerFired.objects.count() == 1


def test_a_tag_trigger_enrolls_on_its_tag_only_once_per_event_and_not_again_on_a_re_add(frozen, rep_user):
    from leads.tags import lead_tag_add, lead_tag_remove, tag_create

    vip = sequence_with_steps(name="VIP welcome")
    Trigger.objects.create(sequence=vip, kind=Trigger.Kind.TAG_ADDED, tag=tag_create(name="VIP"))
    tagged, other = LeadFactory(owner=rep_user), LeadFactory(owner=rep_user)
    lead_tag_add(lead=tagged, name="vip", by=rep_user)
    lead_tag_add(lead=tagged, name="VIP ", by=rep_user)  # has it: no second event
    lead_tag_add(lead=other, name="Newsletter", by=rep_user)

    triggers_run()
    EventCursor.objects.filter(name="nurturing.triggers").update(position=0)
    triggers_run()
    assert (enrolled_in(tagged), enrolled_in(other)) == (["VIP welcome"], [])
    assert TriggerFired.objects.count() == 1

    lead_tag_remove(lead=tagged, name="VIP", by=rep_user)
    lead_tag_add(lead=tagged, name="VIP", by=rep_user)  # a new event: the trigger acts on it (the sequence refuses)
    triggers_run()
    assert TriggerFired.objects.count() == 2 and "already" in TriggerFired.objects.latest("pk").outcome


def test_a_score_trigger_needs_a_score_above_0_and_a_tag_trigger_needs_a_tag(marketer_user):
    from django.core.exceptions import ValidationError

    from nurturing.services import triggers_save

    sequence = sequence_with_steps()
    for score in (None, 0):
        with pytest.raises(ValidationError, match="whole number above 0"):
            triggers_save(triggers=[Trigger(sequence=sequence, kind=Trigger.Kind.SCORE_CROSSED, score=score)],
                          by=marketer_user)
    with pytest.raises(ValidationError, match="Choose the tag"):
        triggers_save(triggers=[Trigger(sequence=sequence, kind=Trigger.Kind.TAG_ADDED)], by=marketer_user)
    triggers_save(triggers=[Trigger(sequence=sequence, kind=Trigger.Kind.SCORE_CROSSED, score=30)], by=marketer_user)
    assert str(Trigger.objects.get()) == "The score rises to a threshold (30) → Welcome"
