"""Enrolling an audience of any size: a preview checked in batches (every skip reason counted across them), then
the enrollment in the background, batch by batch, with progress, each lead through the engine's rules."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from nurturing import audience_enrollment
from nurturing.audience_enrollment import (
    audience_enroll_plan,
    audience_enroll_start,
    audience_enroll_step,
)
from nurturing.models import Audience, AudienceEnrollment, Enrollment, Sequence, Suppression
from nurturing.services import enrollment_create
from tests.factories import LeadFactory, SourceFactory, lead_at, sequence_with_steps


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(datetime(2026, 9, 14, 8, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(audience_enrollment, "PLAN_BATCH", 3)


def audience_of(source) -> Audience:
    return Audience.objects.create(name="From ads", source=source)


def test_the_preview_counts_every_skip_reason_across_batches(small_batches, rep_user):
    ads = SourceFactory(slug="ads")
    sequence = sequence_with_steps(name="Ads follow-up", goal_stage="sql", requires_consent=True,
                                   in_other_sequence=Sequence.InOtherSequence.SKIP)
    welcome = sequence_with_steps(name="Welcome")
    consent = {"consent_given_at": datetime(2026, 9, 1, tzinfo=UTC)}
    fine = [LeadFactory(source=ads, owner=rep_user, **consent) for _ in range(4)]
    suppressed = LeadFactory(source=ads, **consent)
    Suppression.objects.create(email=suppressed.email)
    no_consent = LeadFactory(source=ads)
    past_goal = lead_at("sql", source=ads, by=rep_user, owner=rep_user, **consent)
    lost = lead_at("lost", source=ads, by=rep_user, owner=rep_user, **consent)
    no_email = LeadFactory(source=ads, email="", phone="+49 30 1234", **consent)
    in_it = LeadFactory(source=ads, **consent)
    in_other = LeadFactory(source=ads, **consent)
    enrollment_create(lead=in_it, sequence=sequence)
    enrollment_create(lead=in_other, sequence=welcome)

    plan = audience_enroll_plan(audience=audience_of(ads), sequence=sequence)

    assert plan.enrolled_count == 4 and set(plan.enroll) == set(fine)
    assert {why: count for why, count, _ in plan.skipped_counts} == {
        "the address is suppressed (unsubscribed, bounced or blocked)": 1,
        "no consent to be emailed is recorded for the lead (the sequence asks for it)": 1,
        "the lead is already SQL, the sequence's goal": 1,
        "the lead is lost": 1,
        "the lead has no email address": 1,
        "the lead is already in this sequence": 1,
        "the lead is already in “Welcome” (the sequence skips such leads)": 1,
    }
    assert {tuple(leads) for _, _, leads in plan.skipped_counts} == {
        (suppressed,), (no_consent,), (past_goal,), (lost,), (no_email,), (in_it,), (in_other,)}
    assert Enrollment.objects.count() == 2  # nothing written


def test_the_preview_reads_a_fixed_number_of_queries_per_batch(small_batches, db):
    ads = SourceFactory(slug="ads")
    sequence = sequence_with_steps(name="Ads follow-up")
    audience = audience_of(ads)

    def queries_for(n):
        for _ in range(n):
            LeadFactory(source=ads)
        with CaptureQueriesContext(connection) as ctx:
            audience_enroll_plan(audience=audience, sequence=sequence)
        return len(ctx.captured_queries)

    three, nine = queries_for(3), queries_for(6)  # one batch, then three
    assert (nine - 1) == 3 * (three - 1)  # each batch: its leads, suppressions, this sequence, the others


def test_the_background_job_enrolls_batch_by_batch_counts_the_refused_and_finishes(marketer_user, rep_user,
                                                                                  django_capture_on_commit_callbacks):
    ads = SourceFactory(slug="ads")
    sequence = sequence_with_steps(name="Ads follow-up")
    leads = [LeadFactory(source=ads, owner=rep_user) for _ in range(5)]
    Suppression.objects.create(email=leads[2].email)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = audience_enroll_start(audience=audience_of(ads), sequence=sequence, by=marketer_user)
    assert len(queued) == 1 and (job.status, job.total, job.done) == ("running", 5, 0)

    steps = 0
    while audience_enroll_step(job_id=job.pk, batch_size=2):
        steps += 1
    job.refresh_from_db()

    assert (steps, job.status, job.done, job.enrolled, job.percent) == (3, "done", 5, 4, 100)
    assert job.skipped == {"the address is suppressed (unsubscribed, bounced or blocked)": 1}
    assert set(Enrollment.objects.values_list("lead_id", flat=True)) == {lead.pk for i, lead in enumerate(leads) if i != 2}
    assert set(Enrollment.objects.values_list("enrolled_by", flat=True)) == {marketer_user.pk}


def test_a_lead_that_changed_since_its_batch_was_read_is_skipped_with_the_reason(marketer_user, monkeypatch):
    ads = SourceFactory(slug="ads")
    sequence = sequence_with_steps(name="Ads follow-up")
    lead = LeadFactory(source=ads)
    job = audience_enroll_start(audience=audience_of(ads), sequence=sequence, by=marketer_user)
    real_facts = audience_enrollment.enrollment_facts

    def facts_then_someone_enrolls_it(**kwargs):
        facts = real_facts(**kwargs)
        enrollment_create(lead=lead, sequence=sequence)  # a trigger got there first
        return facts

    monkeypatch.setattr(audience_enrollment, "enrollment_facts", facts_then_someone_enrolls_it)
    audience_enroll_step(job_id=job.pk)
    job.refresh_from_db()
    assert (job.enrolled, job.skipped) == (0, {"the lead is already in this sequence": 1})
    assert Enrollment.objects.filter(lead=lead).count() == 1


def test_a_paused_sequence_a_second_start_and_a_rep_are_refused(marketer_user, rep_user):
    ads = SourceFactory(slug="ads")
    audience = audience_of(ads)
    paused = sequence_with_steps(name="Paused", status="paused")
    with pytest.raises(ValidationError, match="activate it before enrolling"):
        audience_enroll_start(audience=audience, sequence=paused, by=marketer_user)
    sequence = sequence_with_steps(name="Live")
    audience_enroll_start(audience=audience, sequence=sequence, by=marketer_user)
    with pytest.raises(ValidationError, match="being enrolled in “Live” already"):
        audience_enroll_start(audience=audience, sequence=sequence, by=marketer_user)
    with pytest.raises(PermissionDenied):
        audience_enroll_start(audience=audience, sequence=paused, by=rep_user)
    assert AudienceEnrollment.objects.count() == 1


def test_a_batch_run_twice_at_once_enrolls_and_counts_its_leads_once(marketer_user, monkeypatch):
    ads = SourceFactory(slug="ads")
    sequence = sequence_with_steps(name="Ads follow-up")
    for _ in range(2):
        LeadFactory(source=ads)
    job = audience_enroll_start(audience=audience_of(ads), sequence=sequence, by=marketer_user)
    real_facts, nested = audience_enrollment.enrollment_facts, []

    def another_run_first(**kwargs):
        # The task delivered twice: a second run does the same batch while this one is between reading and writing.
        if not nested:
            nested.append("running")
            audience_enroll_step(job_id=job.pk)
        return real_facts(**kwargs)

    monkeypatch.setattr(audience_enrollment, "enrollment_facts", another_run_first)
    audience_enroll_step(job_id=job.pk)
    job.refresh_from_db()
    assert (Enrollment.objects.count(), job.done, job.enrolled, job.skipped) == (2, 2, 2, {})
