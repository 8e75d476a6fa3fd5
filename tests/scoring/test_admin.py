"""The scoring page: marketers edit rules and thresholds, preview a change, save it and watch the rescoring;
reps read; each lead's page shows its breakdown."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from scoring.models import RescoreJob, ScoringRule, ScoringSettings
from scoring.services import scores_refresh
from tests.factories import LeadFactory, PersonaFactory

PAGE = reverse("admin:scoring_scoringsettings_changelist")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(datetime(2026, 5, 4, 9, tzinfo=UTC), tick=False):
        yield


def form_data(rules=(), **settings):
    """The page's form: thresholds, then the rule rows (existing rows first, as the page lists them)."""
    data = {"mql_threshold": 50, "sql_threshold": "", "half_life_days": 30, "creates_task": "on", **settings,
            "form-TOTAL_FORMS": len(rules), "form-INITIAL_FORMS": sum(1 for rule in rules if rule.get("id")),
            "form-MIN_NUM_FORMS": 0, "form-MAX_NUM_FORMS": 1000}
    for n, rule in enumerate(rules):
        row = {"kind": "", "persona": "", "source": "", "resource": "", "value": "", "points": "", "max_times": 1,
               "is_active": "on", **rule}
        data.update({f"form-{n}-{key}": value for key, value in row.items()})
    return data


def test_a_marketer_previews_then_saves_a_rule_and_the_rescoring_starts(client, marketer_user, rep_user,
                                                                        django_capture_on_commit_callbacks):
    client.force_login(marketer_user)
    LeadFactory(owner=rep_user, title="Founder")
    LeadFactory(owner=rep_user, title="Intern")
    founders = [{"kind": "title", "value": "founder", "points": 60}]

    preview = client.post(PAGE, {**form_data(founders), "preview": "1"})

    assert preview.status_code == 200
    body = preview.content.decode()
    assert "Computed over all 2 leads" in body and "<strong>1</strong> lead would rise to the MQL threshold" in body
    assert not ScoringRule.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(PAGE, {**form_data(founders), "save": "1"}, follow=True)

    assert ScoringRule.objects.get().label == "title “founder”"
    job = RescoreJob.objects.get()
    assert (job.status, job.total, job.started_by) == ("done", 2, marketer_user)  # the test's Celery runs tasks at once
    assert "Rescoring 2 leads in the background" in saved.content.decode()


def test_a_rule_the_service_refuses_shows_its_message_beside_it_and_nothing_is_saved(client, marketer_user):
    client.force_login(marketer_user)
    response = client.post(PAGE, {**form_data([{"kind": "page_view", "value": "pricing", "points": 5},
                                               {"kind": "email_open", "points": 3}]), "save": "1"})
    assert response.status_code == 200
    assert "A page&#x27;s path starts with /" in response.content.decode()
    assert not ScoringRule.objects.exists() and not RescoreJob.objects.exists()


def test_existing_rules_are_changed_and_removed_on_the_same_page(client, marketer_user):
    client.force_login(marketer_user)
    keep = ScoringRule.objects.create(kind="email_open", points=5)
    drop = ScoringRule.objects.create(kind="email_reply", points=20)
    rows = [{"id": keep.pk, "kind": "email_open", "points": 8}, {"id": drop.pk, "kind": "email_reply", "points": 20,
                                                                    "DELETE": "on"}]
    client.post(PAGE, {**form_data(rows, mql_threshold=70), "save": "1"})
    assert list(ScoringRule.objects.values_list("pk", "points")) == [(keep.pk, 8)]
    assert ScoringSettings.current().mql_threshold == 70


def test_a_rep_sees_the_breakdown_on_the_lead_page_and_cannot_change_the_rules(client, rep_user):
    client.force_login(rep_user)
    ScoringRule.objects.create(kind="title", value="founder", points=25)
    lead = LeadFactory(owner=rep_user, title="Founder")
    scores_refresh(lead_ids=[lead.pk])

    page = client.get(reverse("workspace:lead_detail", args=[lead.pk])).content.decode()

    assert 'id="lead-score">25' in page and "+25 title “founder”" in page
    client.post(PAGE, {**form_data([{"kind": "email_open", "points": 50}]), "save": "1"})
    assert list(ScoringRule.objects.values_list("points", flat=True)) == [25]


def test_a_viewer_without_the_change_permission_cannot_save(client, manager_user):
    from django.contrib.auth.models import Permission

    client.force_login(manager_user)
    manager_user.groups.clear()
    manager_user.user_permissions.add(Permission.objects.get(codename="view_scoringsettings"))
    page = client.get(PAGE)
    assert page.status_code == 200 and "Save and rescore" not in page.content.decode()
    assert client.post(PAGE, {**form_data([{"kind": "email_open", "points": 50}]), "save": "1"}).status_code == 403
    assert not ScoringRule.objects.exists()


def test_the_lead_admin_page_shows_the_score_breakdown_and_no_score_field_to_type(client, manager_user):
    client.force_login(manager_user)
    founder = PersonaFactory(name="Founder")
    ScoringRule.objects.create(kind="persona", persona=founder, points=20)
    lead = LeadFactory(persona=founder)
    scores_refresh(lead_ids=[lead.pk])

    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk]))

    body = page.content.decode()
    assert "+20 persona Founder" in body
    assert 'name="score"' not in body
