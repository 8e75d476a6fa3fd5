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
