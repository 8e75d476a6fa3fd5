"""`manage.py seed_demo`: demo users, reference data and leads with a believable history.

Seeding 60 leads takes a couple of seconds, so the checks that can share one
seeded database live in one Django TestCase: `setUpTestData` seeds once for
the class and each test runs in its own rolled-back transaction.
"""

import io
import random
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import F, Max, Q
from django.test import RequestFactory, TestCase
from django.utils import timezone

from core.roles import Role
from leads import services
from leads.models import (
    Activity,
    Campaign,
    CampaignSpend,
    Company,
    Customer,
    Deal,
    Lead,
    Objection,
    Persona,
    Source,
    StageChange,
    Task,
)
from leads.pipeline import LeadStatus
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

DEMO_USERS = {
    "manager": (Role.MANAGER, True),
    "marketer": (Role.MARKETER, True),
    "rep1": (Role.SALES_REP, False),
    "rep2": (Role.SALES_REP, False),
}


def log_in(*, username, password):
    """What the login form does: authenticate with the request (django-axes requires one)."""
    return authenticate(RequestFactory().post("/accounts/login/"), username=username, password=password)


def seed(*args, leads=60):
    out = io.StringIO()
    call_command("seed_demo", "--leads", str(leads), *args, stdout=out)
    return out.getvalue()


def emails_and_stages_of_a_run(seed_value):
    """Seed, read what was made, then roll it back so the next run starts from the same empty database."""
    with transaction.atomic():
        seed("--seed", str(seed_value), leads=30)
        made = sorted(Lead.objects.values_list("email", "status", "score"))
        transaction.set_rollback(True)
    assert Lead.objects.count() == 0
    return made


class TestOneSeededDatabase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.output = seed()

    def test_seed_creates_the_four_demo_users_with_their_roles_and_the_demo_password(self):
        for username, (role, is_staff) in DEMO_USERS.items():
            user = get_user_model().objects.get(username=username)
            assert list(user.groups.values_list("name", flat=True)) == [role.value]
            assert user.is_staff is is_staff
            assert user.email.endswith("@example.com") and user.first_name and user.last_name
            assert log_in(username=username, password="crm-demo") == user

    def test_seed_creates_the_marketing_reference_data(self):
        assert set(Source.objects.values_list("slug", flat=True)) == {
            "google", "linkedin", "newsletter", "organic", "webinar", "referral"}
        assert Persona.objects.filter(name__in=["Sales leader at a SMB", "RevOps manager", "Founder"]).count() == 3
        assert Campaign.objects.count() >= 6
        assert not Campaign.objects.filter(Q(source=None) | Q(starts_on=None)).exists()
        for campaign in Campaign.objects.all():
            spends = list(campaign.spends.all())
            assert spends, f"{campaign} has no spend"
            assert all(campaign.starts_on <= s.period_start <= s.period_end <= timezone.localdate() for s in spends)
        assert CampaignSpend.objects.filter(amount__lte=0).count() == 0
        assert Company.objects.count() >= 8

    def test_seed_fills_every_stage_of_the_pipeline(self):
        stages = set(Lead.objects.values_list("status", flat=True))
        assert stages == set(LeadStatus.values)
        ended = Lead.objects.filter(status__in=[LeadStatus.LOST, LeadStatus.DISQUALIFIED])
        assert ended.exists() and not ended.filter(lost_reason="").exists()
        assert Customer.objects.exists()

    def test_seed_spreads_leads_over_owners_time_zones_consent_and_half_a_year(self):
        leads = Lead.objects.all()
        assert set(leads.values_list("owner__username", flat=True)) == {"rep1", "rep2", None}
        assert 0.05 <= leads.filter(owner=None).count() / leads.count() <= 0.3
        assert leads.filter(timezone="").exists() and leads.exclude(timezone="").count() > leads.count() / 2
        assert leads.exclude(consent_given_at=None).exclude(consent_text="").count() > leads.count() / 2
        assert leads.exclude(campaign=None).exclude(utm_medium="").exists()
        oldest = leads.order_by("created_at").first().created_at
        assert timezone.now() - oldest > timedelta(days=90)

    def test_seed_records_every_objection_category_some_resolved(self):
        assert set(Objection.objects.values_list("category", flat=True)) == set(Objection.Category.values)
        assert Objection.objects.filter(is_resolved=True).exists()
        assert Objection.objects.filter(is_resolved=False).exists()
        assert not Objection.objects.filter(is_resolved=True, response="").exists()

    def test_seed_has_won_lost_and_open_deals_that_took_days_to_close(self):
        statuses = set(Deal.objects.values_list("status", flat=True))
        assert statuses == {Deal.Status.WON, Deal.Status.LOST, Deal.Status.OPEN}
        for deal in Deal.objects.exclude(status=Deal.Status.OPEN):
            assert deal.closed_at - deal.created_at >= timedelta(days=1), deal

    def test_seed_logs_calls_notes_meetings_and_tasks_overdue_today_and_done(self):
        kinds = set(Activity.objects.values_list("kind", flat=True))
        assert kinds == set(Activity.Kind.values)
        assert not Activity.objects.filter(kind=Activity.Kind.CALL, outcome="").exists()
        now = timezone.now()
        open_tasks = Task.objects.filter(completed_at=None)
        assert open_tasks.filter(due_at__lt=now).exists()
        assert open_tasks.filter(due_at__date=timezone.localdate(now)).exists()
        assert Task.objects.exclude(completed_at=None).exists()

    def test_every_lead_history_starts_at_new_and_ends_at_its_stage(self):
        changes = {}
        for change in StageChange.objects.order_by("changed_at", "id"):
            changes.setdefault(change.lead_id, []).append(change)
        for lead in Lead.objects.all():
            history = changes[lead.pk]
            assert (history[0].from_status, history[0].to_status) == ("", LeadStatus.NEW)
            assert history[0].changed_at == lead.created_at
            assert history[-1].to_status == lead.status
            assert all(a.to_status == b.from_status for a, b in zip(history, history[1:])), lead
        # Ordered by time and by insertion alike: every move happened after the one before it.
        assert [c.pk for c in StageChange.objects.order_by("lead_id", "changed_at", "id")] == [
            c.pk for c in StageChange.objects.order_by("lead_id", "id")
        ]

    def test_nothing_that_happened_is_dated_in_the_future_or_before_its_lead(self):
        now = timezone.now()
        dated = {
            Lead: ["created_at", "updated_at", "stage_entered_at", "last_touch_at", "consent_given_at"],
            StageChange: ["changed_at"],
            Activity: ["occurred_at", "created_at"],
            Objection: ["created_at", "resolved_at"],
            Task: ["created_at", "completed_at"],
            Deal: ["created_at", "closed_at"],
            Customer: ["became_customer_at"],
        }
        for model, fields in dated.items():
            for name in fields:
                latest = model.objects.aggregate(latest=Max(name))["latest"]
                assert latest is not None and latest <= now, f"{model.__name__}.{name} = {latest}"
        assert not StageChange.objects.filter(changed_at__lt=F("lead__created_at")).exists()
        assert not Activity.objects.filter(occurred_at__lt=F("lead__created_at")).exists()
        assert not Deal.objects.filter(created_at__lt=F("lead__created_at")).exists()
        # Activities, objections and tasks are dated when they happened, not when the seed ran.
        assert Activity.objects.filter(occurred_at__lt=now - timedelta(days=30)).exists()
        assert Objection.objects.filter(created_at__lt=now - timedelta(days=30)).exists()
        assert Task.objects.filter(created_at__lt=now - timedelta(days=30)).exists()

    def test_if_empty_leaves_a_seeded_database_alone(self):
        counts = (Lead.objects.count(), Activity.objects.count(), Company.objects.count(), Deal.objects.count())
        output = seed("--if-empty")
        assert "already there" in output
        assert (Lead.objects.count(), Activity.objects.count(), Company.objects.count(), Deal.objects.count()) == counts

    def test_a_second_run_without_flags_is_refused(self):
        with pytest.raises(CommandError, match="--force"):
            seed()
        assert Lead.objects.count() == 60

    def test_force_adds_a_second_batch_next_to_the_first(self):
        first_batch = set(Lead.objects.values_list("pk", flat=True))
        seed("--force")
        assert Lead.objects.count() == 120
        assert first_batch <= set(Lead.objects.values_list("pk", flat=True))
        assert get_user_model().objects.count() == 4
        assert Source.objects.count() == 6
        emails = [e for e in Lead.objects.values_list("email", flat=True) if e]
        assert len(emails) == len(set(emails))

    def test_seed_prints_the_stages_the_deals_and_the_logins(self):
        for status, label in LeadStatus.choices:
            assert re.search(rf"^  {label} +{Lead.objects.filter(status=status).count()}$", self.output, re.M), label
        won, lost, open_ = (Deal.objects.filter(status=s).count() for s in ("won", "lost", "open"))
        assert f"Deals: {won} won, {lost} lost, {open_} open" in self.output
        assert "Demo logins (password: crm-demo): manager, marketer, rep1, rep2" in self.output


def test_the_demo_password_comes_from_crm_demo_password(db, monkeypatch):
    monkeypatch.setenv("CRM_DEMO_PASSWORD", "another-demo-pw")
    output = seed(leads=5)
    assert log_in(username="rep1", password="another-demo-pw") is not None
    assert log_in(username="rep1", password="crm-demo") is None
    assert "Demo logins (password: another-demo-pw): manager, marketer, rep1, rep2" in output


def test_an_existing_user_keeps_its_password_and_groups(db):
    UserFactory(username="rep1", password="my-own-password")
    output = seed(leads=5)
    rep1 = get_user_model().objects.get(username="rep1")
    assert log_in(username="rep1", password="my-own-password") == rep1
    assert log_in(username="rep1", password="crm-demo") is None
    assert not rep1.groups.exists()
    assert "left unchanged" in output and "rep1" in output.split("left unchanged")[1]


def test_if_empty_seeds_an_empty_database(db):
    seed("--if-empty", leads=5)
    assert Lead.objects.count() == 5


def test_the_same_seed_gives_the_same_leads_whatever_the_global_random_state(db):
    random.seed(1)
    first = emails_and_stages_of_a_run(7)
    random.seed(2)
    second = emails_and_stages_of_a_run(7)
    other_seed = emails_and_stages_of_a_run(8)
    assert first == second
    assert len(first) == 30
    assert first != other_seed


def test_a_failure_half_way_leaves_nothing_behind(db, monkeypatch):
    real_deal_mark_lost = services.deal_mark_lost

    def refuse(**kwargs):
        real_deal_mark_lost(**kwargs)
        raise ValidationError({"lost_reason": ["Refused by the test."]})

    monkeypatch.setattr(services, "deal_mark_lost", refuse)
    with pytest.raises(CommandError, match="nothing was saved"):
        seed()
    assert Lead.objects.count() == 0
    assert get_user_model().objects.count() == 0
    assert Source.objects.count() == Company.objects.count() == Activity.objects.count() == 0


def test_a_lead_made_elsewhere_counts_as_existing_data(db):
    LeadFactory()
    with pytest.raises(CommandError, match="already has 1 lead\\."):
        seed()
    assert "already there" in seed("--if-empty")


@pytest.mark.parametrize("when", ["2026-03-03T07:30Z", "2026-07-15T21:45Z"])
def test_right_after_seeding_a_few_tasks_are_overdue_by_hours_or_days_and_most_are_ahead(db, when):
    with time_machine.travel(when, tick=False):
        seed(leads=120)
        now = timezone.now()

    open_tasks = Task.objects.filter(completed_at=None)
    overdue, ahead = open_tasks.filter(due_at__lt=now), open_tasks.filter(due_at__gte=now)
    assert overdue.exists() and ahead.count() > overdue.count()
    oldest = overdue.order_by("due_at").first()
    assert now - oldest.due_at <= timedelta(days=4), f"{oldest} is {now - oldest.due_at} overdue"
    assert not open_tasks.filter(due_at__gt=now + timedelta(days=11)).exists()
