"""The marketers' sequence builder: pages for who builds sequences, every change through the services."""

from datetime import time, timedelta

import pytest
import time_machine
from django.urls import reverse

from nurturing.models import Sequence, Step
from nurturing.services import enrollment_create
from tests.factories import CompanyFactory, LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel("2026-11-30 10:00:00Z", tick=False):
        yield


@pytest.fixture
def marketer_client(client, marketer_user):
    client.force_login(marketer_user)
    return client


def _three(status="draft"):
    return sequence_with_steps({"subject_template": "A"}, {"subject_template": "B"}, {"subject_template": "C"},
                               status=status, name="Guide follow-up")


def _subjects(sequence):
    return list(Step.objects.filter(sequence=sequence).order_by("position").values_list("subject_template", flat=True))


def _step_post(**fields):
    data = {"kind": "email", "delay_days": "2", "delay_hours": "4", "send_days": ["0", "1", "2", "3", "4"],
            "window_start": "09:00", "window_end": "17:00", "condition": "always", "subject_template": "Hi",
            "text_template": "Hello {{ first_name|default:'there' }}", "html_template": "", "stage_action": "",
            "click_link_contains": "", "click_stage_action": "", "save": "1"}
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def test_the_sequence_list_shows_each_sequence_with_its_steps_and_leads(marketer_client):
    sequence = _three(status="active")
    enrollment_create(lead=LeadFactory(), sequence=sequence)
    response = marketer_client.get(reverse("studio:sequence_list"))
    assert response.status_code == 200
    row = response.content.decode().split("Guide follow-up", 1)[1].split("</tr>", 1)[0]
    assert "Active" in row and ">3</td>" in row and ">1</td>" in row


def test_a_rep_gets_403_on_every_studio_page_and_post(client, rep_user):
    sequence = _three()
    step = sequence.steps.first()
    client.force_login(rep_user)
    gets = [reverse("studio:sequence_list"), reverse("studio:sequence_new"),
            reverse("studio:sequence_detail", args=[sequence.pk]), reverse("studio:step_edit", args=[step.pk]),
            reverse("studio:step_new", args=[sequence.pk]), reverse("studio:lead_search") + "?lead_q=a"]
    posts = [reverse("studio:sequence_activate", args=[sequence.pk]), reverse("studio:steps_reorder", args=[sequence.pk]),
             reverse("studio:step_duplicate", args=[step.pk]), reverse("studio:step_switch", args=[step.pk, "off"]),
             reverse("studio:step_move", args=[step.pk, "down"]), reverse("studio:step_preview", args=[step.pk])]
    assert [client.get(url).status_code for url in gets] == [403] * len(gets)
    assert [client.post(url).status_code for url in posts] == [403] * len(posts)
    assert _subjects(sequence) == ["A", "B", "C"] and Step.objects.filter(is_active=False).count() == 0


def test_the_nav_offers_sequences_to_marketers_and_not_to_reps(client, marketer_user, rep_user):
    client.force_login(marketer_user)
    assert reverse("studio:sequence_list") in client.get(reverse("workspace:lead_list")).content.decode()
    client.force_login(rep_user)
    assert reverse("studio:sequence_list") not in client.get(reverse("workspace:lead_list")).content.decode()


def test_a_post_without_the_csrf_token_is_refused(marketer_user):
    from django.test import Client

    sequence = _three()
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer_user)
    response = client.post(reverse("studio:step_switch", args=[sequence.steps.first().pk, "off"]))
    assert response.status_code == 403
    assert Step.objects.filter(is_active=False).count() == 0


def test_a_marketer_creates_a_sequence(marketer_client, marketer_user):
    response = marketer_client.post(reverse("studio:sequence_new"), {
        "name": "Webinar follow-up", "goal": "", "goal_stage": "sql", "daily_cap_per_sender": "200",
        "in_other_sequence": "allow"})
    sequence = Sequence.objects.get(name="Webinar follow-up")
    assert response.status_code == 302 and response.url == reverse("studio:sequence_detail", args=[sequence.pk])
    assert sequence.created_by == marketer_user and sequence.status == "draft"


def test_the_sequence_page_shows_the_steps_as_sentences(marketer_client):
    sequence = _three()
    Step.objects.filter(sequence=sequence, position=1).update(delay=timedelta(days=2, hours=4), send_days="01234",
                                                              window_start=time(9), window_end=time(17))
    Step.objects.filter(sequence=sequence, position=2).update(condition="no_reply", click_link_contains="/pricing",
                                                              click_stage_action="mql", click_creates_call_task=True)
    Step.objects.filter(sequence=sequence, position=3).update(is_active=False)
    page = marketer_client.get(reverse("studio:sequence_detail", args=[sequence.pk])).content.decode()
    assert "2 days 4 hours after enrolling" in page
    assert "between 09:00 and 17:00" in page
    assert "Sent only if no earlier email of this sequence got a reply; otherwise skipped." in page
    assert ("When a person clicks a link containing “/pricing”: move the lead to MQL and create a call task for the "
            "lead&#x27;s rep.") in page
    assert "switched off" in page
    assert page.count('class="day-toggle on"') == 5 + 7 + 7


def test_a_marketer_adds_an_email_step_with_days_hours_and_toggled_send_days(marketer_client):
    sequence = _three()
    response = marketer_client.post(reverse("studio:step_new", args=[sequence.pk]) + "?kind=email", _step_post(
        subject_template="Still interested, {{ first_name|default:'there' }}?", send_days=["1", "3"],
        condition="no_reply", click_link_contains="/pricing", click_creates_call_task="on"))
    assert response.status_code == 302
    step = Step.objects.get(sequence=sequence, position=4)
    assert (step.delay, step.send_days, step.condition, step.click_link_contains, step.click_creates_call_task) == (
        timedelta(days=2, hours=4), "13", "no_reply", "/pricing", True)


def test_a_marketer_edits_a_step_and_a_live_sequence_gets_a_new_version(marketer_client, marketer_user):
    from nurturing.services import sequence_activate

    sequence = _three()
    sequence_activate(sequence=sequence, by=marketer_user)
    step = sequence.steps.get(position=2)
    response = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), _step_post(subject_template="B2"))
    assert response.status_code == 302
    assert _subjects(sequence) == ["A", "B2", "C"]
    assert sequence.versions.order_by("-number").first().number == 2


@pytest.mark.parametrize(("template", "says"), [
    ("Hi {{ company.nmae }}", "Did you mean “name”?"),
    ("Hi {{ secret_key }}", "“secret_key”"),
])
def test_a_refused_template_shows_the_message_by_the_field_and_saves_nothing(marketer_client, template, says):
    sequence = _three()
    step = sequence.steps.get(position=1)
    response = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), _step_post(text_template=template))
    assert response.status_code == 200
    assert says in response.content.decode()
    assert "invalid-feedback" in response.content.decode()
    step.refresh_from_db()
    assert step.text_template != template and step.subject_template == "A"
    response = marketer_client.post(reverse("studio:step_new", args=[sequence.pk]), _step_post(subject_template=template))
    assert says in response.content.decode() and sequence.steps.count() == 3


def test_no_send_day_is_refused_by_the_field(marketer_client):
    sequence = _three()
    step = sequence.steps.get(position=1)
    data = _step_post()
    del data["send_days"]
    response = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), data)
    assert "Choose at least one day to send on." in response.content.decode()
    step.refresh_from_db()
    assert step.send_days == "0123456"


def test_duplicate_switch_off_and_move_through_the_page_buttons(marketer_client):
    sequence = _three()
    a, b, c = sequence.steps.order_by("position")
    marketer_client.post(reverse("studio:step_duplicate", args=[a.pk]))
    assert _subjects(sequence) == ["A", "A", "B", "C"]
    marketer_client.post(reverse("studio:step_move", args=[c.pk, "up"]))
    assert _subjects(sequence) == ["A", "A", "C", "B"]
    marketer_client.post(reverse("studio:step_move", args=[a.pk, "down"]))
    assert Step.objects.get(pk=a.pk).position == 2
    response = marketer_client.post(reverse("studio:step_switch", args=[b.pk, "off"]), follow=True)
    assert "Step 4 switched off." in response.content.decode()
    assert Step.objects.get(pk=b.pk).is_active is False


def test_drag_and_drop_posts_the_new_order(marketer_client):
    sequence = _three()
    a, b, c = sequence.steps.order_by("position")
    response = marketer_client.post(reverse("studio:steps_reorder", args=[sequence.pk]), {"order": [c.pk, a.pk, b.pk]},
                                    HTTP_X_REQUESTED_WITH="fetch")
    assert response.status_code == 204
    assert _subjects(sequence) == ["C", "A", "B"]


def test_an_order_missing_a_step_is_refused_with_the_reason(marketer_client):
    sequence = _three()
    a, b, _ = sequence.steps.order_by("position")
    response = marketer_client.post(reverse("studio:steps_reorder", args=[sequence.pk]), {"order": [b.pk, a.pk]},
                                    HTTP_X_REQUESTED_WITH="fetch")
    assert response.status_code == 400
    page = marketer_client.get(reverse("studio:sequence_detail", args=[sequence.pk])).content.decode()
    assert "leaves out steps" in page
    assert _subjects(sequence) == ["A", "B", "C"]


def test_the_preview_on_a_lead_found_by_name_flags_an_empty_merge_field(marketer_client):
    sequence = _three()
    step = sequence.steps.get(position=1)
    LeadFactory(first_name="Grace", last_name="Hopper", company=None)
    LeadFactory(first_name="Alan", last_name="Turing", company=CompanyFactory(name="Bletchley"))
    response = marketer_client.post(reverse("studio:step_preview", args=[step.pk]), _step_post(
        text_template="Hello {{ first_name }} at {{ company.name }}", lead_q="hopper"))
    page = response.content.decode()
    assert "Rendered for <strong>Grace Hopper</strong>" in page
    assert "Hello Grace at" in page
    assert "For Grace Hopper: <code>{{ company.name }}</code> will be empty" in page
    step.refresh_from_db()
    assert step.text_template != "Hello {{ first_name }} at {{ company.name }}"  # a preview saves nothing


def test_the_preview_counts_the_sequences_leads_with_the_field_empty(marketer_client):
    sequence = _three(status="active")
    for _ in range(2):
        enrollment_create(lead=LeadFactory(company=None), sequence=sequence)
    enrollment_create(lead=LeadFactory(), sequence=sequence)
    step = sequence.steps.get(position=1)
    response = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), _step_post(
        text_template="At {{ company.name }}", save=None, preview="1"))
    page = response.content.decode()
    assert "2 of the 3 leads in this sequence: <code>{{ company.name }}</code> will be empty" in page


def test_without_script_a_lead_picked_from_the_matches_is_previewed(marketer_client):
    sequence = _three()
    step = sequence.steps.get(position=1)
    LeadFactory(first_name="Ada", last_name="Byron")
    ada = LeadFactory(first_name="Ada", last_name="Lovelace")
    data = _step_post(save=None, lead_q="ada")
    first = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), data).content.decode()
    assert "Rendered for <strong>Ada Byron</strong>" in first and f'name="pick_lead" value="{ada.pk}"' in first
    picked = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), {**data, "pick_lead": ada.pk})
    assert "Rendered for <strong>Ada Lovelace</strong>" in picked.content.decode()


def test_the_lead_search_finds_by_name_or_email_only_leads_the_user_may_see(client, manager_user, rep_user):
    from tests.factories import marketer

    LeadFactory(first_name="Grace", last_name="Hopper", email="grace@navy.example")
    archived = LeadFactory(first_name="Grace", last_name="Kelly")
    type(archived).objects.filter(pk=archived.pk).update(archived_at="2026-01-01T00:00:00Z")
    client.force_login(marketer(username="m2"))
    by_email = client.get(reverse("studio:lead_search"), {"lead_q": "navy"}).content.decode()
    by_name = client.get(reverse("studio:lead_search"), {"lead_q": "grace"}).content.decode()
    assert "Grace Hopper" in by_email
    assert "Grace Hopper" in by_name and "Kelly" not in by_name


def test_send_a_test_puts_one_email_to_the_marketer_in_the_outbox(marketer_client, marketer_user, mailoutbox):
    sequence = _three()
    step = sequence.steps.get(position=1)
    LeadFactory(first_name="Grace", last_name="Hopper")
    response = marketer_client.post(reverse("studio:step_edit", args=[step.pk]), _step_post(
        subject_template="For {{ first_name }}", save=None, send_test="1", lead_q="Hopper"))
    assert f"Test sent to {marketer_user.email}, rendered for Grace Hopper." in response.content.decode()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [marketer_user.email] and mailoutbox[0].subject == "[Test] For Grace"


def test_activating_shows_the_reasons_it_is_refused(marketer_client):
    sequence = _three()
    Step.objects.filter(sequence=sequence, position=2).update(subject_template="")
    response = marketer_client.post(reverse("studio:sequence_activate", args=[sequence.pk]), follow=True)
    assert "Step 2: An email step needs a subject." in response.content.decode()
    sequence.refresh_from_db()
    assert sequence.status == "draft"


def test_activating_then_pausing(marketer_client):
    sequence = _three()
    response = marketer_client.post(reverse("studio:sequence_activate", args=[sequence.pk]), follow=True)
    assert "is active" in response.content.decode()
    sequence.refresh_from_db()
    assert sequence.status == "active" and sequence.versions.count() == 1
    response = marketer_client.post(reverse("studio:sequence_pause", args=[sequence.pk]), follow=True)
    assert "is paused" in response.content.decode()
    sequence.refresh_from_db()
    assert sequence.status == "paused"


def test_pausing_an_archived_sequence_shows_why_not(marketer_client):
    sequence = _three(status="archived")
    response = marketer_client.post(reverse("studio:sequence_pause", args=[sequence.pk]), follow=True)
    assert "The sequence is archived: it sends nothing more." in response.content.decode()


def test_validate_lists_the_problems_per_step(marketer_client):
    sequence = _three()
    Step.objects.filter(sequence=sequence, position=3).update(text_template="Hi {{ frist_name }}")
    page = marketer_client.get(reverse("studio:sequence_detail", args=[sequence.pk]), {"validate": "1"}).content.decode()
    assert "1 step cannot be used" in page
    problems = page.split("step-problems", 1)[1]
    assert "Did you mean “first_name”?" in problems
    assert page.index("Step 3") < page.index("step-problems")


@pytest.mark.parametrize("count", [3, 20])
def test_the_sequence_page_reads_a_fixed_number_of_queries(marketer_client, django_assert_max_num_queries, count):
    sequence = sequence_with_steps(*[{"condition": "no_reply"}] * count)
    marketer_client.get(reverse("studio:sequence_detail", args=[sequence.pk]))  # the session and user, once
    with django_assert_max_num_queries(8):  # one of them the bell's unread count
        response = marketer_client.get(reverse("studio:sequence_detail", args=[sequence.pk]), {"validate": "1"})
    assert response.content.decode().count('class="flow-item"') == count


@pytest.mark.parametrize("count", [3, 30])
def test_the_sequence_list_reads_a_fixed_number_of_queries(marketer_client, django_assert_max_num_queries, count):
    for number in range(count):
        enrollment_create(lead=LeadFactory(), sequence=sequence_with_steps({}, {}, name=f"Sequence {number}"))
    marketer_client.get(reverse("studio:sequence_list"))
    with django_assert_max_num_queries(5):  # one of them the bell's unread count
        response = marketer_client.get(reverse("studio:sequence_list"))
    assert response.content.decode().count("<tr>") == count + 1


def test_a_step_change_is_the_sequences_last_change(marketer_client):
    sequence = _three()
    with time_machine.travel("2026-11-30 11:30:00Z", tick=False):
        marketer_client.post(reverse("studio:step_duplicate", args=[sequence.steps.first().pk]))
    sequence.refresh_from_db()
    assert sequence.updated_at.isoformat() == "2026-11-30T11:30:00+00:00"


def test_the_versions_page_shows_what_changed_and_the_emails_sent_from_each(marketer_client, marketer_user):
    from nurturing.services import sequence_activate

    sequence = _three()
    sequence_activate(sequence=sequence, by=marketer_user)
    step = sequence.steps.get(position=2)
    marketer_client.post(reverse("studio:step_edit", args=[step.pk]), _step_post(subject_template="B, again"))
    page = marketer_client.get(reverse("studio:sequence_versions", args=[sequence.pk])).content.decode()
    assert "Version 2" in page and "Version 1" in page and "0 emails sent from it" in page
    assert '<span class="diff-removed">−     | B</span>' in page
    assert '<span class="diff-added">+     | B, again</span>' in page


def test_the_settings_page_changes_the_sequence(marketer_client):
    sequence = _three()
    response = marketer_client.post(reverse("studio:sequence_settings", args=[sequence.pk]), {
        "name": "Guide follow-up, take two", "goal": "Demo requests", "goal_stage": "mql", "daily_cap_per_sender": "50",
        "in_other_sequence": "skip"})
    assert response.status_code == 302
    sequence.refresh_from_db()
    assert (sequence.name, sequence.goal_stage, sequence.daily_cap_per_sender, sequence.in_other_sequence) == (
        "Guide follow-up, take two", "mql", 50, "skip")


def test_a_new_steps_preview_renders_what_is_typed_before_it_is_saved(marketer_client):
    sequence = _three()
    LeadFactory(first_name="Grace", last_name="Hopper", email="grace@navy.example")
    response = marketer_client.post(reverse("studio:step_new_preview", args=[sequence.pk]), _step_post(
        save=None, subject_template="Hello {{ first_name }}", lead_q="grace@navy"))
    assert '<p class="fw-semibold" id="preview-subject">Hello Grace</p>' in response.content.decode()
    assert sequence.steps.count() == 3


def test_a_manager_builds_sequences_too(client, manager_user):
    sequence = _three()
    client.force_login(manager_user)
    assert client.get(reverse("studio:sequence_detail", args=[sequence.pk])).status_code == 200
    response = client.post(reverse("studio:step_switch", args=[sequence.steps.get(position=2).pk, "off"]))
    assert response.url.endswith(f"#step-{sequence.steps.get(position=2).pk}")
    assert sequence.steps.get(position=2).is_active is False
