"""The reps' pages: what each shows, each action done in place, and bad input refused next to its field."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads import services
from leads.models import Activity, Deal, Lead, Objection, StageChange, Task
from nurturing.models import Delivery, Enrollment
from nurturing.services import enrollment_create
from tests.factories import LeadFactory, SourceFactory, lead_at, sequence_with_steps

HTMX = {"HTTP_HX_REQUEST": "true"}


def local(dt):
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M")


def action_url(lead, name):
    return reverse("workspace:lead_action", args=[lead.pk, name])


# --- Login and the front door ----------------------------------------------------------------


def test_the_front_door_sends_each_role_to_its_start_page(client, rep_user, marketer_user):
    assert client.get("/")["Location"] == reverse("login")
    client.force_login(rep_user)
    assert client.get("/")["Location"] == reverse("workspace:today")
    client.force_login(marketer_user)
    assert client.get("/")["Location"] == reverse("workspace:lead_list")


def test_a_rep_logs_in_with_the_form_and_lands_on_today(client, rep_user):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "rep1", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("workspace:today")
    assert b"Tasks due today and overdue" in response.content


def test_forms_refuse_a_post_without_the_csrf_token(rep_user, own_lead):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(rep_user)
    response = client.post(action_url(own_lead, "note"), {"body": "no token"})
    assert response.status_code == 403
    assert not Activity.objects.filter(lead=own_lead).exists()


# --- Today ------------------------------------------------------------------------------------


@time_machine.travel("2026-03-10 10:00:00Z", tick=False)
@time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=dt_timezone.utc), tick=False)
def test_today_lists_due_and_overdue_tasks_cold_and_new_leads(rep_client, rep_user, other_rep, settings):
    settings.TIME_ZONE = "UTC"  # "this afternoon" is 13:00 today, in the account's zone
    now = timezone.now()
    warm = LeadFactory(first_name="Warm", owner=rep_user)
    services.activity_log_call(lead=warm, by=rep_user, direction="outbound", outcome="connected")
    with time_machine.travel(now - timedelta(days=20), tick=False):
        cold = lead_at("contacted", first_name="Frosty", owner=rep_user)
        services.activity_log_call(lead=cold, by=rep_user, direction="outbound", outcome="no_answer")
        services.task_create(assignee=rep_user, title="Overdue follow-up", due_at=now - timedelta(days=2), lead=cold)
    services.task_create(assignee=rep_user, title="Due this afternoon", due_at=now + timedelta(hours=3), lead=warm)
    services.task_create(assignee=rep_user, title="Due next week", due_at=now + timedelta(days=7), lead=warm)
    services.task_create(assignee=other_rep, title="Not mine", due_at=now + timedelta(hours=1))
    LeadFactory(first_name="Fresh", owner=rep_user)

    body = rep_client.get(reverse("workspace:today")).content.decode()

    tasks = body.split('id="today-tasks"')[1].split("</ul>")[0]
    assert "Overdue follow-up" in tasks and "Due this afternoon" in tasks
    assert tasks.index("Overdue follow-up") < tasks.index("Due this afternoon")
    assert "Due next week" not in body and "Not mine" not in body
    cold_section = body.split('id="cold-heading"')[1]
    assert "Frosty" in cold_section and "Warm" not in cold_section.split('id="new-heading"')[0]
    new_section = body.split('id="new-heading"')[1].split('id="cold-heading"')[0]
    assert "Fresh" in new_section and "Frosty" not in new_section


def test_snoozing_into_the_past_is_refused(rep_client, rep_user, own_lead):
    due = timezone.now() + timedelta(hours=1)
    task = services.task_create(assignee=rep_user, title="Call", due_at=due, lead=own_lead)
    response = rep_client.post(reverse("workspace:task_snooze", args=[task.pk]), {"until": "2001-01-01T09:00"}, **HTMX)
    assert response.status_code == 422 and b"from now on" in response.content
    task.refresh_from_db()
    assert task.due_at == due


# --- My leads ---------------------------------------------------------------------------------


def test_my_leads_filters_search_and_sort(rep_client, rep_user, other_rep):
    web = SourceFactory(name="Web", slug="web")
    top = LeadFactory(first_name="Top", last_name="Scorer", owner=rep_user, source=web, score=90)
    low = LeadFactory(first_name="Low", last_name="Scorer", owner=rep_user, score=5)
    qualified = lead_at("sql", first_name="Qualified", owner=rep_user)
    LeadFactory(first_name="Theirs", owner=other_rep)

    def names(**params):
        body = rep_client.get(reverse("workspace:lead_list"), params).content.decode()
        return [lead.first_name for lead in (top, low, qualified) if f">{lead} <" in body.replace("</a>", " <")]

    assert names() == ["Top", "Low", "Qualified"]
    assert names(status="sql") == ["Qualified"]
    assert names(source=web.pk) == ["Top"]
    assert names(score_min=50) == ["Top"]
    assert names(q="scorer") == ["Top", "Low"]
    assert names(q="top scorer") == ["Top"]
    body = rep_client.get(reverse("workspace:lead_list"), {"sort": "score"}).content.decode()
    assert body.index("Top Scorer") < body.index("Low Scorer")
    assert "Theirs" not in body


def test_my_leads_filters_on_last_touch_and_next_task(rep_client, rep_user):
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=30), tick=False):
        cold = LeadFactory(first_name="Cold", owner=rep_user)
        services.activity_log_call(lead=cold, by=rep_user, direction="outbound", outcome="busy")
        late = LeadFactory(first_name="Late", owner=rep_user)
        services.task_create(assignee=rep_user, title="Overdue", due_at=now - timedelta(days=1), lead=late)
    LeadFactory(first_name="Untouched", owner=rep_user)

    def body(**params):
        return rep_client.get(reverse("workspace:lead_list"), params).content.decode()

    assert "Cold" in body(touched="cold") and "Untouched" not in body(touched="cold")
    assert "Untouched" in body(touched="never") and "Cold " not in body(touched="never")
    overdue = body(next_task="overdue")
    assert "Late" in overdue and "Untouched" not in overdue
    assert "Late" not in body(next_task="none")


def test_a_bad_filter_value_is_reported_not_ignored_silently(rep_client, own_lead):
    response = rep_client.get(reverse("workspace:lead_list"), {"score_min": "lots", "status": "bogus"})
    assert response.status_code == 200
    assert b"Some filters were not understood" in response.content


def test_the_pool_lists_unassigned_leads_to_claim(rep_client, rep_user, pool_lead, own_lead):
    body = rep_client.get(reverse("workspace:lead_list"), {"scope": "pool"}).content.decode()
    assert str(pool_lead) in body and str(own_lead) not in body
    claimed = rep_client.post(reverse("workspace:lead_claim", args=[pool_lead.pk]), **HTMX)
    assert claimed.status_code == 200 and b"The lead is yours now." in claimed.content
    pool_lead.refresh_from_db()
    assert pool_lead.owner == rep_user


def _bulk_leads(owner, start, count):
    Lead.objects.bulk_create(
        Lead(first_name=f"Bulk{i}", last_name="Lead", email=f"bulk{i}@example.com", owner=owner,
             search_text=f"bulk{i} lead bulk{i}@example.com")
        for i in range(start, start + count)
    )


@pytest.mark.parametrize("url_name", ["workspace:lead_list", "workspace:today"])
def test_list_pages_make_the_same_queries_at_10_and_1000_leads(rep_client, rep_user, url_name, django_assert_max_num_queries):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert rep_client.get(reverse(url_name), {"page": 2} if url_name == "workspace:lead_list" else {}).status_code == 200
        return len(ctx.captured_queries)

    _bulk_leads(rep_user, 0, 10)
    at_10 = queries()
    _bulk_leads(rep_user, 10, 990)
    at_1000 = queries()
    assert at_10 == at_1000
    # Session, user, roles, permissions (2), the bell's unread count, saved views, the filters' choices (3), the
    # page's count (on PostgreSQL past the exact-count limit, an EXPLAIN estimate besides) and its rows.
    with django_assert_max_num_queries(13):
        rep_client.get(reverse(url_name))


# --- The lead page ----------------------------------------------------------------------------


def test_the_lead_page_shows_one_timeline_of_everything(rep_client, rep_user, own_lead):
    services.activity_log_call(lead=own_lead, by=rep_user, direction="outbound", outcome="connected", body="Talked pricing")
    services.objection_log(lead=own_lead, by=rep_user, category="price", lead_words="Too dear")
    services.activity_add_note(lead=own_lead, by=rep_user, body="Decision in March")
    services.task_create(assignee=rep_user, title="Send quote", due_at=timezone.now() + timedelta(days=1), lead=own_lead)
    enrollment = enrollment_create(lead=own_lead, sequence=sequence_with_steps(name="Welcome"))
    Delivery.objects.filter(enrollment=enrollment).update(
        status=Delivery.Status.SENT, subject="Hello Ada", sent_at=timezone.now()
    )

    body = rep_client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()
    timeline = body.split('id="timeline"')[1]
    for text in ("Stage: New → Contacted", "Call (outbound, connected)", "Talked pricing", "Objection: Price (open)",
                 "Decision in March", "Task: Send quote", "Email sent: Hello Ada"):
        assert text in timeline, text
    assert "Welcome" in body.split('id="enrollments"')[1]
    assert "Send quote" in body.split('id="open-tasks"')[1]


def test_the_lead_page_makes_a_fixed_number_of_queries(rep_client, rep_user, own_lead, django_assert_max_num_queries):
    url = reverse("workspace:lead_detail", args=[own_lead.pk])

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert rep_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    before = queries()
    for i in range(40):
        services.activity_add_note(lead=own_lead, by=rep_user, body=f"note {i}")
        services.task_create(assignee=rep_user, title=f"t{i}", due_at=timezone.now() + timedelta(days=1), lead=own_lead)
    assert queries() == before
    with django_assert_max_num_queries(15):  # one of them the lead's tags, one the bell's unread count
        rep_client.get(url)


def test_user_text_is_shown_as_text_everywhere(rep_client, rep_user):
    lead = LeadFactory(first_name="<script>alert('name')</script>", owner=rep_user)
    services.activity_add_note(lead=lead, by=rep_user, body="<img src=x onerror=alert(1)>")
    services.task_create(assignee=rep_user, title="<b>bold</b>", due_at=timezone.now() + timedelta(hours=1), lead=lead)
    for url in (reverse("workspace:lead_detail", args=[lead.pk]), reverse("workspace:lead_list"), reverse("workspace:today")):
        body = rep_client.get(url).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body and "<b>bold</b>" not in body, url
        assert "&lt;script&gt;alert" in body, url


# --- Actions --------------------------------------------------------------------------------------


def test_log_a_call_with_a_next_step_in_place(rep_client, rep_user, own_lead):
    due = timezone.localtime() + timedelta(days=2)
    response = rep_client.post(
        action_url(own_lead, "call"),
        {"direction": "outbound", "outcome": "connected", "duration_minutes": "12", "body": "Interested",
         "follow_up_title": "Send pricing", "follow_up_due_at": local(due)},
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="lead-main"' in body and "Call logged with its next step." in body
    call = Activity.objects.get(lead=own_lead, kind="call")
    assert call.duration_seconds == 720 and call.author == rep_user
    task = Task.objects.get(lead=own_lead)
    assert task.title == "Send pricing" and task.assignee == rep_user
    own_lead.refresh_from_db()
    assert own_lead.status == "contacted"


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"direction": "outbound", "outcome": ""}, "outcome", "Choose the call&#x27;s outcome."),
        ({"direction": "outbound", "outcome": "connected", "duration_minutes": "-5"}, "duration_minutes", "cannot be negative"),
        ({"direction": "outbound", "outcome": "connected", "follow_up_title": "Call back", "follow_up_due_at": "2001-01-01T09:00"},
         "follow_up_due_at", "in the past"),
        ({"direction": "outbound", "outcome": "connected", "follow_up_title": "Call back"}, "follow_up_due_at", "Choose when"),
    ],
)
def test_a_bad_call_is_refused_next_to_its_field_and_nothing_is_saved(rep_client, own_lead, data, field, message):
    for extra in ({}, HTMX):
        response = rep_client.post(action_url(own_lead, "call"), data, **extra)
        assert response.status_code == 422
        body = response.content.decode()
        assert message in body
        assert f'id="error_1_id_{field}"' in body or f"id_{field}" in body.split(message)[0][-2000:]
    assert not Activity.objects.filter(lead=own_lead).exists()
    assert not Task.objects.exists()
    own_lead.refresh_from_db()
    assert own_lead.status == "new"


def test_htmx_errors_go_back_into_the_action_panel(rep_client, own_lead):
    response = rep_client.post(action_url(own_lead, "note"), {"body": ""}, **HTMX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#action-panel" and response["HX-Reswap"] == "innerHTML"
    assert b"Write the note before saving it." in response.content


def test_a_task_due_in_the_past_is_refused(rep_client, own_lead):
    response = rep_client.post(action_url(own_lead, "task"), {"title": "Late", "due_at": "2001-01-01T09:00"})
    assert response.status_code == 422 and b"in the past" in response.content
    assert not Task.objects.exists()


def test_log_an_objection(rep_client, rep_user, own_lead):
    response = rep_client.post(action_url(own_lead, "objection"),
                               {"category": "price", "lead_words": "Too expensive for us", "response": "ROI in 3 months",
                                "is_resolved": "on"})
    assert response.status_code == 302
    objection = Objection.objects.get(lead=own_lead)
    assert objection.category == "price" and objection.is_resolved and objection.raised_by == rep_user


def test_resolving_an_objection_needs_an_answer(rep_client, own_lead):
    response = rep_client.post(action_url(own_lead, "objection"),
                               {"category": "price", "lead_words": "Too expensive", "is_resolved": "on"})
    assert response.status_code == 422 and b"Say how you answered it" in response.content
    assert not Objection.objects.exists()


def test_a_meeting_and_a_note(rep_client, own_lead):
    earlier = timezone.localtime() - timedelta(hours=2)
    assert rep_client.post(action_url(own_lead, "meeting"), {"occurred_at": local(earlier), "duration_minutes": "45"}).status_code == 302
    assert rep_client.post(action_url(own_lead, "note"), {"body": "Budget approved"}).status_code == 302
    kinds = sorted(Activity.objects.filter(lead=own_lead).values_list("kind", flat=True))
    assert kinds == ["meeting", "note"]


def test_change_stage_offers_only_allowed_moves_and_lost_needs_a_reason(rep_client, own_lead):
    form = rep_client.get(action_url(own_lead, "stage")).content.decode()
    assert 'value="contacted"' in form and 'value="customer"' not in form and 'value="new"' not in form

    refused = rep_client.post(action_url(own_lead, "stage"), {"to_status": "lost"})
    assert refused.status_code == 422 and b"a reason is required" in refused.content
    not_allowed = rep_client.post(action_url(own_lead, "stage"), {"to_status": "customer"})
    assert not_allowed.status_code == 422 and b"Select a valid choice" in not_allowed.content
    assert StageChange.objects.filter(lead=own_lead).count() == 1  # only its creation

    moved = rep_client.post(action_url(own_lead, "stage"), {"to_status": "sql"}, **HTMX)
    assert moved.status_code == 200 and b"Moved to SQL." in moved.content
    own_lead.refresh_from_db()
    assert own_lead.status == "sql"
    assert StageChange.objects.filter(lead=own_lead, to_status="sql").get().changed_by.username == "rep1"


def test_a_move_stands_and_its_sequences_stop_when_another_receiver_of_it_fails(
    rep_client, own_lead, django_capture_on_commit_callbacks, caplog
):
    from leads.signals import lead_stage_changed

    enrollment = enrollment_create(lead=own_lead, sequence=sequence_with_steps())

    def broken(sender, **kwargs):
        raise RuntimeError("a receiver added later is broken")

    lead_stage_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            moved = rep_client.post(action_url(own_lead, "stage"), {"to_status": "lost", "reason": "Chose a competitor"}, **HTMX)
    finally:
        lead_stage_changed.disconnect(broken)

    assert moved.status_code == 200 and b"Moved to Lost." in moved.content
    own_lead.refresh_from_db()
    enrollment.refresh_from_db()
    assert own_lead.status == "lost" and enrollment.status == Enrollment.Status.EXITED
    assert any("a receiver added later is broken" in str(r.exc_info[1]) for r in caplog.records if r.name == "leads.signals")


def test_convert_to_customer_and_not_twice(rep_client, own_lead):
    data = {"deal_value": "4800.00", "currency": "eur", "product": "Team plan", "expected_close_on": "2026-12-31"}
    assert rep_client.post(action_url(own_lead, "convert"), data).status_code == 302
    own_lead.refresh_from_db()
    deal = Deal.objects.get(lead=own_lead)
    assert own_lead.status == "customer" and deal.status == "won" and str(deal.value) == "4800.00" and deal.currency == "EUR"

    again = rep_client.post(action_url(own_lead, "convert"), data)
    assert again.status_code == 422 and b"already a customer" in again.content
    assert Deal.objects.filter(lead=own_lead).count() == 1


def test_a_negative_deal_value_is_refused(rep_client, own_lead):
    response = rep_client.post(action_url(own_lead, "convert"), {"deal_value": "-1", "currency": "EUR"})
    assert response.status_code == 422 and b"greater than or equal to 0" in response.content
    own_lead.refresh_from_db()
    assert own_lead.status == "new" and not Deal.objects.exists()


def test_enroll_pause_resume_and_remove(rep_client, rep_user, own_lead):
    sequence = sequence_with_steps(name="Nurture")
    assert rep_client.post(action_url(own_lead, "enroll"), {"sequence": sequence.pk}).status_code == 302
    enrollment = Enrollment.objects.get(lead=own_lead)
    again = rep_client.post(action_url(own_lead, "enroll"), {"sequence": sequence.pk})
    assert again.status_code == 422 and b"already in this sequence" in again.content

    for op, status in (("pause", "paused"), ("resume", "active"), ("remove", "exited")):
        response = rep_client.post(reverse("workspace:enrollment_change", args=[enrollment.pk, op]), **HTMX)
        assert response.status_code == 200
        enrollment.refresh_from_db()
        assert enrollment.status == status
    assert f"Removed by {rep_user.get_full_name()}" in enrollment.exit_reason
    assert not Delivery.objects.filter(enrollment=enrollment, status=Delivery.Status.SCHEDULED).exists()


def test_an_action_page_works_without_javascript(rep_client, own_lead):
    page = rep_client.get(action_url(own_lead, "note"))
    assert page.status_code == 200 and b"Add a note" in page.content and b"<html" in page.content
    response = rep_client.post(action_url(own_lead, "note"), {"body": "Plain form"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("workspace:lead_detail", args=[own_lead.pk])
    assert b"Note added." in response.content and b"Plain form" in response.content


def test_an_unknown_action_is_404(rep_client, own_lead):
    assert rep_client.get(action_url(own_lead, "teleport")).status_code == 404


# --- My numbers -------------------------------------------------------------------------------------


def test_my_numbers_count_calls_objections_and_conversions(rep_client, rep_user, other_rep):
    lead = LeadFactory(owner=rep_user)
    for outcome in ("connected", "no_answer"):
        services.activity_log_call(lead=lead, by=rep_user, direction="outbound", outcome=outcome)
    services.activity_log_call(lead=LeadFactory(owner=other_rep), by=other_rep, direction="outbound", outcome="connected")
    services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Too dear")
    services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Still too dear", response="Discount",
                           is_resolved=True)
    services.lead_convert_to_customer(lead=lead, deal_value=900, by=rep_user)

    body = rep_client.get(reverse("workspace:numbers"), {"period": "week"}).content.decode()
    assert 'id="calls-count">2<' in body and "1 connected" in body
    assert 'id="conversions-count">1<' in body and "1 won, 900 EUR" in body
    assert "<td>Price</td><td class=\"text-end\">2</td><td class=\"text-end\">1</td>" in body


def test_a_manager_filters_all_leads_by_owner(client, manager_user, rep_user, other_rep):
    mine = LeadFactory(first_name="Repone", owner=rep_user)
    theirs = LeadFactory(first_name="Reptwo", owner=other_rep)
    client.force_login(manager_user)
    body = client.get(reverse("workspace:lead_list"), {"scope": "all", "owner": other_rep.pk}).content.decode()
    assert str(theirs) in body and str(mine) not in body


def test_a_rep_has_no_owner_filter(rep_client, other_rep):
    body = rep_client.get(reverse("workspace:lead_list"), {"owner": other_rep.pk, "scope": "all"}).content.decode()
    assert 'name="owner"' not in body


# --- Engagement on the rep's pages ---------------------------------------------------------------


def _sent_email(lead):
    enrollment = enrollment_create(lead=lead, sequence=sequence_with_steps(name="Welcome"))
    delivery = enrollment.deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.SENT, subject="Hello Ada", sent_at=timezone.now() - timedelta(hours=2),
        message_id="<abc@crm.test>", to_email=lead.email,
    )
    delivery.refresh_from_db()
    return delivery


def test_the_timeline_shows_what_the_lead_did_with_emails_and_forms(rep_client, rep_user, own_lead):
    from leads.models import Resource
    from nurturing.engagement import IncomingEvent, event_record

    delivery = _sent_email(own_lead)
    now = timezone.now()
    event_record(IncomingEvent(provider="postmark", kind="opened", occurred_at=now - timedelta(hours=1),
                               message_id=delivery.message_id, user_agent="Mozilla/5.0"))
    event_record(IncomingEvent(provider="postmark", kind="clicked", occurred_at=now - timedelta(minutes=30),
                               message_id=delivery.message_id, url="https://example.com/<b>pricing</b>",
                               user_agent="Mozilla/5.0 (Macintosh) Safari/605"))
    guide = Resource.objects.create(name="Pipeline guide", slug="pipeline-guide")
    services.form_submission_record(lead=own_lead, form_name="Guide download", resource=guide,
                                    page_url="https://example.com/guide")

    timeline = rep_client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode().split('id="timeline"')[1]
    assert "Email opened by a machine (Apple Mail Privacy Protection prefetch)" in timeline
    assert "Link clicked" in timeline and "&lt;b&gt;pricing&lt;/b&gt;" in timeline
    assert "Form: Guide download (Pipeline guide)" in timeline
    assert timeline.index("Form: Guide download") < timeline.index("Link clicked") < timeline.index("Email sent: Hello Ada")


def test_a_rep_logs_a_reply_by_hand_and_the_lead_leaves_the_sequence(rep_client, own_lead):
    delivery = _sent_email(own_lead)
    earlier = timezone.localtime() - timedelta(minutes=10)
    response = rep_client.post(action_url(own_lead, "reply"), {"occurred_at": local(earlier), "note": "Call me next week"}, **HTMX)
    assert response.status_code == 200 and b"Reply logged: left Welcome." in response.content
    delivery.enrollment.refresh_from_db()
    assert delivery.enrollment.status == Enrollment.Status.EXITED and delivery.enrollment.exit_reason == "Replied"
    event = delivery.enrollment.exit_event
    assert event.kind == "replied" and event.provider == "manual" and event.recorded_by.username == "rep1"


def test_a_reply_logged_before_any_email_went_still_ends_the_leads_sequences(rep_client, own_lead):
    # The lead wrote back (say, to the rep directly) before the first step was due: nothing to match it to.
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        enrollment = enrollment_create(lead=own_lead, sequence=sequence_with_steps({"delay": timedelta(days=1)}))
    response = rep_client.post(action_url(own_lead, "reply"), {"occurred_at": local(timezone.localtime() - timedelta(minutes=5))}, **HTMX)
    assert response.status_code == 200 and b"Reply logged: left 1 sequence." in response.content
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, "Replied")
    assert not enrollment.deliveries.filter(status=Delivery.Status.SCHEDULED).exists()


def test_replies_waiting_on_today_until_the_rep_calls_back(rep_client, rep_user, own_lead):
    from nurturing.engagement import IncomingEvent, event_record

    delivery = _sent_email(own_lead)
    event_record(IncomingEvent(provider="postmark", kind="replied", occurred_at=timezone.now() - timedelta(minutes=5),
                               message_id=delivery.message_id, description="Yes, let's talk"))
    replies = rep_client.get(reverse("workspace:today")).content.decode().split('id="today-replies"')[1].split("</ul>")[0]
    assert str(own_lead) in replies and "Yes, let&#x27;s talk" in replies

    services.activity_log_call(lead=own_lead, by=rep_user, direction="outbound", outcome="connected")
    replies = rep_client.get(reverse("workspace:today")).content.decode().split('id="today-replies"')[1].split("</ul>")[0]
    assert str(own_lead) not in replies


def test_a_logged_meeting_ends_the_leads_sequences(rep_client, own_lead, django_capture_on_commit_callbacks):
    delivery = _sent_email(own_lead)
    earlier = timezone.localtime() - timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert rep_client.post(action_url(own_lead, "meeting"), {"occurred_at": local(earlier)}).status_code == 302
    delivery.enrollment.refresh_from_db()
    assert delivery.enrollment.status == Enrollment.Status.EXITED
    assert delivery.enrollment.exit_reason.startswith(f"Meeting logged by {own_lead.owner.get_full_name()}")


def test_the_lead_page_shows_the_consent(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user, consent_given_at=timezone.now() - timedelta(days=3), consent_source="Guide form",
                       consent_text="I agree to receive <emails> about the guide.")
    consent = rep_client.get(reverse("workspace:lead_detail", args=[lead.pk])).content.decode().split('id="lead-consent"')[1]
    assert "via Guide form" in consent and "I agree to receive &lt;emails&gt; about the guide." in consent


def test_a_rep_can_still_close_their_own_task_on_a_lead_given_to_someone_else(rep_client, rep_user, other_rep):
    lead = LeadFactory(owner=other_rep)
    task = services.task_create(assignee=rep_user, title="Old follow-up", due_at=timezone.now() + timedelta(hours=1), lead=lead)
    assert rep_client.post(reverse("workspace:task_done", args=[task.pk])).status_code == 302
    task.refresh_from_db()
    assert task.completed_at is not None


OUT_OF_RANGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "query",
    [{"score_min": OUT_OF_RANGE}, {"score_min": "-" + OUT_OF_RANGE}, {"scope": "all", "owner": OUT_OF_RANGE},
     {"scope": "all", "owner": "abc"}, {"source": OUT_OF_RANGE}, {"campaign": "abc"}, {"persona": OUT_OF_RANGE}],
    ids=["score-too-high", "score-too-low", "owner-out-of-range", "owner-word", "source", "campaign", "persona"],
)
def test_a_filter_value_the_database_cannot_take_is_reported_on_my_leads(client, manager_user, query):
    LeadFactory(owner=manager_user)
    client.force_login(manager_user)
    response = client.get(reverse("workspace:lead_list"), query)
    assert response.status_code == 200
    assert b"Some filters were not understood" in response.content


def test_a_reply_logged_in_the_future_is_refused_by_its_field(rep_client, own_lead):
    from nurturing.models import EmailEvent

    with time_machine.travel(datetime(2026, 5, 4, 9, 0, tzinfo=dt_timezone.utc), tick=False):
        later = timezone.localtime() + timedelta(hours=2)
        response = rep_client.post(action_url(own_lead, "reply"), {"occurred_at": later.strftime("%Y-%m-%dT%H:%M"), "note": "x"})

    assert response.status_code == 422 and "A reply cannot be in the future." in response.content.decode()
    assert not EmailEvent.objects.exists()
