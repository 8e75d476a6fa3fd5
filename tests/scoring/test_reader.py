"""Scores follow the event log: a reader with its own cursor rescoring the leads of new events."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.utils import timezone

from core.models import EventCursor
from leads import services as lead_services
from leads.models import Lead, Resource
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import EmailEvent
from scoring.models import ScoringRule
from scoring.reader import scoring_events_run
from tests.factories import LeadFactory

K = ScoringRule.Kind


@pytest.fixture(autouse=True)
def settled(settings):
    settings.CRM_EVENT_SETTLE_SECONDS = 0


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(datetime(2026, 4, 7, 9, tzinfo=UTC), tick=False):
        yield


def scores(*leads):
    found = dict(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("pk", "score"))
    return [found[lead.pk] for lead in leads]


def test_downloads_forms_replies_and_new_leads_are_scored_from_the_event_log_once(rep_user):
    guide = Resource.objects.create(name="CRM guide", slug="crm-guide", kind="guide")
    ScoringRule.objects.create(kind=K.DOWNLOAD, resource=guide, points=15)
    ScoringRule.objects.create(kind=K.FORM, value="demo", points=30)
    ScoringRule.objects.create(kind=K.EMAIL_REPLY, points=25)
    ScoringRule.objects.create(kind=K.TITLE, value="head of", points=10)
    reader, asker, replier = (LeadFactory(owner=rep_user) for _ in range(3))
    lead_services.form_submission_record(lead=reader, form_name="Guide", form_slug="guide", resource=guide)
    lead_services.form_submission_record(lead=asker, form_name="Demo", form_slug="demo")
    event_record(IncomingEvent(provider="manual", kind=EmailEvent.Kind.REPLIED, occurred_at=timezone.now(),
                               lead=replier, event_id="reply-1", recipient=replier.email))
    new = LeadFactory(title="Head of Sales")

    assert scoring_events_run() > 0
    assert scores(reader, asker, replier, new) == [15, 30, 25, 10]

    # Read again from the start (a lost cursor): the same scores, nothing doubled.
    EventCursor.objects.filter(name="scoring.events").update(position=0)
    scoring_events_run()
    assert scores(reader, asker, replier, new) == [15, 30, 25, 10]


def test_a_machine_open_does_not_rescore_and_a_changed_title_does(rep_user):
    ScoringRule.objects.create(kind=K.EMAIL_OPEN, points=5)
    ScoringRule.objects.create(kind=K.TITLE, value="founder", points=20)
    lead = LeadFactory(owner=rep_user, title="Engineer")
    scoring_events_run()
    event_record(IncomingEvent(provider="postmark", kind=EmailEvent.Kind.OPENED, occurred_at=timezone.now(),
                               lead=lead, event_id="open-1", machine_hint="Apple Mail Privacy Protection"))
    scoring_events_run()
    assert scores(lead) == [0]

    lead_services.lead_update(lead=lead, by=rep_user, title="Founder")
    scoring_events_run()
    assert scores(lead) == [20]
