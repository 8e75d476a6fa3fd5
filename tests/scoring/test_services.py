"""Scores from what leads are and do: refreshed from real events, moving leads through the stage service at a
threshold (once), decaying with frozen time, rescored in the background after a rule change."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.models import DomainEvent
from leads import services as lead_services
from leads.models import Lead, StageChange, Task
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import EmailEvent
from scoring.models import LeadScore, RescoreJob, ScoringRule, ScoringSettings
from scoring.services import (
    decay_refresh,
    rescore_step,
    scores_refresh,
    scoring_preview,
    scoring_save,
)
from tests.factories import LeadFactory, PersonaFactory, lead_at

K = ScoringRule.Kind
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
PERSON = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def email_event(lead, kind, *, url="", user_agent=PERSON, at=None):
    """An event about one of our emails, recorded the way the webhooks record it (human or machine by its
    user agent)."""
    return event_record(IncomingEvent(
        provider="postmark", kind=kind, occurred_at=at or timezone.now(), lead=lead, url=url, user_agent=user_agent,
        event_id=f"{kind}-{EmailEvent.objects.count()}", recipient=lead.email))


def settings_with(**fields) -> ScoringSettings:
    current = ScoringSettings.current()
    for name, value in fields.items():
        setattr(current, name, value)
    current.save()
    return current


def test_a_founder_who_clicked_pricing_twice_scores_with_an_explained_breakdown(clock, rep_user):
    founder = PersonaFactory(name="Founder")
    ScoringRule.objects.create(kind=K.PERSONA, persona=founder, points=20)
    ScoringRule.objects.create(kind=K.EMAIL_CLICK, value="pricing", points=15, max_times=3)
    lead = LeadFactory(owner=rep_user, persona=founder)
    email_event(lead, EmailEvent.Kind.CLICKED, url="https://x.test/pricing")
    email_event(lead, EmailEvent.Kind.CLICKED, url="https://x.test/pricing?plan=team")
    # A link scanner's click is kept, but never scores.
    email_event(lead, EmailEvent.Kind.CLICKED, url="https://x.test/pricing", user_agent="Barracuda Sentinel (EE)")

    result = scores_refresh(lead_ids=[lead.pk])

    lead.refresh_from_db()
    detail = LeadScore.objects.get(lead=lead)
    assert (result.changed, lead.score, detail.total, detail.fit, detail.engagement) == (1, 50, 50, 20, 30)
    assert detail.lines == [{"label": "persona Founder", "points": 20, "times": 1},
                            {"label": "email link “pricing” clicked", "points": 30, "times": 2}]
    assert scores_refresh(lead_ids=[lead.pk]).changed == 0  # nothing new: nothing written


def test_crossing_the_mql_threshold_moves_the_lead_through_the_stage_service_with_the_breakdown_and_a_task(clock, rep_user):
    settings_with(mql_threshold=40, creates_task=True)
    ScoringRule.objects.create(kind=K.EMAIL_REPLY, points=45)
    lead = lead_at("nurturing", owner=rep_user, by=rep_user)
    email_event(lead, EmailEvent.Kind.REPLIED)

    assert scores_refresh(lead_ids=[lead.pk]).moved == 1

    lead.refresh_from_db()
    change = StageChange.objects.filter(lead=lead).order_by("-pk").first()
    assert (lead.status, change.from_status, change.to_status, change.actor) == ("mql", "nurturing", "mql", "scoring")
    assert change.reason == "Score 45 reached the MQL threshold of 40: +45 email replied"
    task = Task.objects.get(lead=lead)
    assert (task.assignee, task.title) == (rep_user, "Follow up: scored 45, now MQL")
    crossed = DomainEvent.objects.get(type="lead.score_crossed", lead_id=lead.pk)
    assert crossed.payload == {"from": 0, "to": 45, "threshold": 40}


def test_a_rep_who_sends_an_mql_back_to_nurturing_is_not_overruled_while_the_score_stays(clock, rep_user):
    settings_with(mql_threshold=40)
    ScoringRule.objects.create(kind=K.EMAIL_REPLY, points=45)
    lead = lead_at("nurturing", owner=rep_user, by=rep_user)
    email_event(lead, EmailEvent.Kind.REPLIED)
    scores_refresh(lead_ids=[lead.pk])
    lead_services.lead_change_stage(lead=lead, to_status="nurturing", by=rep_user, reason="Not ready")
    ScoringRule.objects.create(kind=K.EMAIL_OPEN, points=5)
    email_event(lead, EmailEvent.Kind.OPENED)

    result = scores_refresh(lead_ids=[lead.pk])

    lead.refresh_from_db()
    assert (result.changed, result.moved, lead.score, lead.status) == (1, 0, 50, "nurturing")


def test_the_sql_threshold_moves_straight_to_sql_and_a_lead_past_it_or_closed_stays(clock, rep_user):
    settings_with(mql_threshold=30, sql_threshold=60, creates_task=False)
    ScoringRule.objects.create(kind=K.TITLE, value="vp", points=70)
    new = LeadFactory(owner=rep_user, title="VP Sales")
    lost = lead_at("lost", owner=rep_user, by=rep_user, title="VP Ops")
    customer = lead_at("customer", owner=rep_user, by=rep_user, title="VP Finance")

    assert scores_refresh(lead_ids=[new.pk, lost.pk, customer.pk]).moved == 1

    statuses = dict(Lead.objects.values_list("pk", "status"))
    assert (statuses[new.pk], statuses[lost.pk], statuses[customer.pk]) == ("sql", "lost", "customer")
    assert not Task.objects.filter(title__startswith="Follow up: scored").exists()


def test_engagement_decays_with_time_and_the_nightly_pass_lowers_the_score(rep_user):
    settings_with(half_life_days=10)
    ScoringRule.objects.create(kind=K.EMAIL_REPLY, points=40)
    with time_machine.travel(T0, tick=False):
        lead = LeadFactory(owner=rep_user)
        email_event(lead, EmailEvent.Kind.REPLIED)
        scores_refresh(lead_ids=[lead.pk])
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        assert decay_refresh() == 1

    detail = LeadScore.objects.get(lead=lead)
    assert (detail.total, detail.engagement) == (10, 10)
    assert detail.lines == [{"label": "email replied", "points": 40, "times": 1},
                            {"label": "decay", "points": -30, "times": 1}]


def test_page_views_of_known_leads_score_when_the_traffic_app_stores_them(clock, rep_user, django_capture_on_commit_callbacks):
    import uuid

    from traffic.ingest import page_views_write
    from traffic.models import PageView, VisitorKind

    ScoringRule.objects.create(kind=K.PAGE_VIEW, value="/pricing", points=10, max_times=5)
    lead = LeadFactory(owner=rep_user)

    def view(path, kind=VisitorKind.HUMAN):
        return PageView(hit_id=uuid.uuid4(), received_at=timezone.now(), visitor_id="v-1", url=f"https://x.test{path}",
                        host="x.test", path=path, kind=kind, lead_id=lead.pk)

    with django_capture_on_commit_callbacks(execute=True):
        page_views_write([view("/pricing"), view("/pricing/teams"), view("/blog"), view("/pricing", VisitorKind.BOT)])

    lead.refresh_from_db()
    assert lead.score == 20


def test_rule_changes_are_saved_all_or_nothing_with_messages_that_say_what_to_fix(clock, marketer_user):
    settings = ScoringSettings.current()
    good = ScoringRule(kind=K.EMAIL_OPEN, points=5)
    bad_page = ScoringRule(kind=K.PAGE_VIEW, value="https://x.test/pricing", points=5)
    no_persona = ScoringRule(kind=K.PERSONA, points=10)

    with pytest.raises(ValidationError) as refused:
        scoring_save(rules=[good, bad_page, no_persona], settings=settings, by=marketer_user)

    assert "starts with /" in str(refused.value)
    assert not ScoringRule.objects.exists() and not RescoreJob.objects.exists()
    with pytest.raises(ValidationError, match="Choose the persona"):
        scoring_save(rules=[no_persona], settings=settings, by=marketer_user)
    settings.sql_threshold = settings.mql_threshold
    with pytest.raises(ValidationError, match="above the MQL threshold"):
        scoring_save(rules=[good], settings=settings, by=marketer_user)


def test_only_marketers_and_managers_change_the_scoring(clock, rep_user):
    with pytest.raises(PermissionDenied):
        scoring_save(rules=[ScoringRule(kind=K.EMAIL_OPEN, points=5)], settings=ScoringSettings.current(), by=rep_user)
    assert not ScoringRule.objects.exists()


def test_a_rule_change_rescores_every_lead_in_batches_with_progress(clock, marketer_user, rep_user,
                                                                   django_capture_on_commit_callbacks):
    leads = [LeadFactory(owner=rep_user, title="Founder" if n % 2 else "Intern") for n in range(5)]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = scoring_save(rules=[ScoringRule(kind=K.TITLE, value="founder", points=25)],
                           settings=ScoringSettings.current(), by=marketer_user)
    assert len(queued) == 1  # the rescoring task, sent once the change committed
    assert (job.status, job.total, job.done) == ("running", 5, 0)

    steps = 0
    while rescore_step(job_id=job.pk, batch_size=2):
        steps += 1
        job.refresh_from_db()
        assert job.done == min(5, 2 * steps)

    job.refresh_from_db()
    assert (steps, job.status, job.done, job.changed, job.percent) == (3, "done", 5, 2, 100)
    assert sorted(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("score", flat=True)) == [0, 0, 0, 25, 25]
    assert DomainEvent.objects.filter(type="scoring.changed", actor_user=marketer_user).count() == 1


def test_a_new_change_supersedes_the_job_still_running(clock, marketer_user):
    first = scoring_save(rules=[ScoringRule(kind=K.EMAIL_OPEN, points=5)], settings=ScoringSettings.current(),
                         by=marketer_user)
    second = scoring_save(rules=[], settings=ScoringSettings.current(), by=marketer_user)
    first.refresh_from_db()
    assert (first.status, second.status) == ("superseded", "running")
    assert rescore_step(job_id=first.pk) is False


def test_the_preview_counts_who_would_move_without_writing_anything(clock, rep_user):
    settings = settings_with(mql_threshold=30)
    founders = [LeadFactory(owner=rep_user, title="Founder") for _ in range(3)]
    lead_at("sql", owner=rep_user, by=rep_user, title="Founder")  # past MQL: would not move
    LeadFactory(owner=rep_user, title="Intern")
    rules = [ScoringRule(kind=K.TITLE, value="founder", points=35)]

    preview = scoring_preview(rules=rules, settings=settings)

    assert (preview.leads, preview.sampled, preview.would_reach_mql, preview.would_change) == (5, 5, 3, 4)
    assert not preview.is_sample
    assert not ScoringRule.objects.exists() and not LeadScore.objects.exists()
    assert set(Lead.objects.filter(pk__in=[f.pk for f in founders]).values_list("score", flat=True)) == {0}

    sampled = scoring_preview(rules=rules, settings=settings, sample=2)
    assert sampled.is_sample and 1 <= sampled.sampled <= 2
    assert sampled.estimate_mql == round(sampled.would_reach_mql * 5 / sampled.sampled)


def test_a_lead_whose_owner_left_still_moves_and_the_missing_task_does_not_stop_scoring(clock, rep_user):
    settings_with(mql_threshold=40, creates_task=True)
    ScoringRule.objects.create(kind=K.EMAIL_REPLY, points=45)
    lead = lead_at("nurturing", owner=rep_user, by=rep_user)
    rep_user.is_active = False
    rep_user.save()
    email_event(lead, EmailEvent.Kind.REPLIED)

    assert scores_refresh(lead_ids=[lead.pk]).moved == 1

    lead.refresh_from_db()
    assert lead.status == "mql" and not Task.objects.filter(lead=lead).exists()
