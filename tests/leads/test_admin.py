"""The managers' pipeline review in the Django admin."""

import csv
import io

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from leads.models import Customer, Deal, Lead, StageChange
from leads.pipeline import LeadStatus
from tests.factories import CampaignFactory, CompanyFactory, LeadFactory, PersonaFactory, SourceFactory, lead_at

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:leads_lead_changelist")


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


def bulk_leads(n, **fields):
    """Many leads at once, for query-count tests (the services are tested elsewhere)."""
    company = CompanyFactory()
    source = SourceFactory()
    now = timezone.now()
    leads = [
        Lead(
            first_name=f"Bulk{i}",
            last_name="Lead",
            email=f"bulk{i}-{n}@example.org",
            company=company,
            source=source,
            created_at=now - timezone.timedelta(minutes=i),
            search_text=f"bulk{i} lead bulk{i}-{n}@example.org",
            **fields,
        )
        for i in range(n)
    ]
    return Lead.objects.bulk_create(leads, batch_size=500)


def changelist_queries(client, django_assert_max_num_queries, url, limit):
    with django_assert_max_num_queries(limit) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


# --- The changelist ----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "?status__exact=new", "?owner=none", "?q=bulk1", "?created_at__year=2026", "?o=-3"],
    ids=["plain", "status", "owner", "search", "year", "sorted"],
)
def test_the_changelist_query_count_does_not_grow_with_the_leads(
    manager_client, django_assert_max_num_queries, query
):
    bulk_leads(10)
    at_10 = changelist_queries(manager_client, django_assert_max_num_queries, CHANGELIST + query, 20)
    bulk_leads(990)
    at_1000 = changelist_queries(manager_client, django_assert_max_num_queries, CHANGELIST + query, 20)
    assert at_1000 == at_10


def test_the_changelist_never_counts_the_whole_table(manager_client, django_assert_max_num_queries, settings):
    settings.CRM_ADMIN_EXACT_COUNT_LIMIT = 100
    bulk_leads(300)
    with django_assert_max_num_queries(20) as captured:
        response = manager_client.get(CHANGELIST)
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the page should count (a bounded count)"
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    assert response.context["cl"].result_count >= 101


def test_the_changelist_shows_status_owner_and_company(manager_client, rep_user):
    lead = lead_at(LeadStatus.MQL, owner=rep_user, company=CompanyFactory(name="Globex"))
    response = manager_client.get(CHANGELIST)
    html = response.content.decode()
    assert "lead-status-mql" in html
    assert "Globex" in html
    assert str(lead) in html
    assert rep_user.get_full_name() in html or rep_user.username in html


def test_filters_narrow_the_list(manager_client, rep_user):
    source, persona = SourceFactory(slug="linkedin"), PersonaFactory()
    campaign = CampaignFactory(source=source)
    match = LeadFactory(owner=rep_user, source=source, campaign=campaign, persona=persona, first_name="Wanted")
    LeadFactory(first_name="Other")

    for query in (
        f"owner={rep_user.pk}",
        f"source__id__exact={source.pk}",
        f"campaign__id__exact={campaign.pk}",
        f"persona__id__exact={persona.pk}",
        "status__exact=new&owner=" + str(rep_user.pk),
    ):
        results = list(manager_client.get(f"{CHANGELIST}?{query}").context["cl"].result_list)
        assert results == [match], query


def test_search_finds_leads_by_name_email_phone_and_company(manager_client):
    lead = LeadFactory(
        first_name="Hermione", last_name="Granger", email="hg@ministry.example", phone="+44 20 7946 0000",
        company=CompanyFactory(name="Ministry of Magic"),
    )
    LeadFactory(first_name="Ron")
    for term in ("hermione", "GRANGER", "hg@ministry", "7946", "ministry of", "herm granger"):
        results = list(manager_client.get(CHANGELIST, {"q": term}).context["cl"].result_list)
        assert results == [lead], term


def test_archived_leads_are_hidden_unless_asked_for(manager_client):
    live, gone = LeadFactory(), LeadFactory()
    Lead.objects.filter(pk=gone.pk).update(archived_at=timezone.now())
    assert list(manager_client.get(CHANGELIST).context["cl"].result_list) == [live]
    assert list(manager_client.get(CHANGELIST + "?archived=yes").context["cl"].result_list) == [gone]


def test_a_script_in_a_leads_name_is_shown_as_text(manager_client):
    lead = LeadFactory(first_name="<script>alert(1)</script>", last_name="X")
    for url in (CHANGELIST, reverse("admin:leads_lead_change", args=[lead.pk])):
        html = manager_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- Actions -----------------------------------------------------------------------


def post_action(client, action, leads, **data):
    payload = {"action": action, ACTION_CHECKBOX_NAME: [lead.pk for lead in leads], "index": 0, **data}
    return client.post(CHANGELIST, payload)


def test_assign_owner_asks_for_the_rep_then_assigns_through_the_service(manager_client, rep_user):
    leads = [LeadFactory(), LeadFactory()]

    page = post_action(manager_client, "assign_owner", leads)
    assert page.status_code == 200 and "Assign to" in page.content.decode()

    done = post_action(manager_client, "assign_owner", leads, apply="1", owner=rep_user.pk)
    assert done.status_code == 302
    assert set(Lead.objects.values_list("owner", flat=True)) == {rep_user.pk}


def test_assign_owner_refuses_a_user_who_cannot_own_leads(manager_client, marketer_user):
    lead = LeadFactory()
    response = post_action(manager_client, "assign_owner", [lead], apply="1", owner=marketer_user.pk)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    lead.refresh_from_db()
    assert lead.owner is None


def test_move_stage_action_moves_through_the_service_and_reports_refusals(manager_client, manager_user):
    movable = lead_at(LeadStatus.MQL)
    final = lead_at(LeadStatus.CUSTOMER)

    response = post_action(
        manager_client, "move_stage", [movable, final], apply="1", to_status="sql", reason="Budget confirmed"
    )

    assert response.status_code == 302
    movable.refresh_from_db()
    final.refresh_from_db()
    assert (movable.status, final.status) == (LeadStatus.SQL, LeadStatus.CUSTOMER)
    change = movable.stage_changes.first()
    assert (change.changed_by, change.reason) == (manager_user, "Budget confirmed")
    messages = [str(m) for m in manager_client.get(CHANGELIST).context["messages"]]
    assert any("1 lead(s) moved to SQL" in m for m in messages)
    assert any("1 lead(s) not moved" in m and "Customer is final" in m for m in messages)


def test_move_stage_action_needs_a_reason_for_lost(manager_client):
    lead = lead_at(LeadStatus.SQL)
    response = post_action(manager_client, "move_stage", [lead], apply="1", to_status="lost", reason="")
    assert response.status_code == 200
    assert "a reason is required" in response.content.decode()
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SQL


def test_export_csv_streams_the_selected_leads_with_formulas_neutralised(manager_client):
    lead = LeadFactory(first_name="=HYPERLINK(\"http://evil\")", last_name="Doe", company=CompanyFactory(name="Acme"))
    LeadFactory()

    response = post_action(manager_client, "export_csv", [lead])

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["Email"] == lead.email
    assert rows[0]["Company"] == "Acme"
    assert rows[0]["First name"].startswith("'=")


def test_archive_action_archives_and_keeps_history(manager_client):
    lead = LeadFactory()
    post_action(manager_client, "archive", [lead])
    lead.refresh_from_db()
    assert lead.archived_at is not None
    assert lead.stage_changes.exists()


# --- The lead page -----------------------------------------------------------------


def test_the_lead_page_shows_history_activities_objections_tasks_and_deals(manager_client, rep_user):
    from leads import services

    lead = lead_at(LeadStatus.SQL, owner=rep_user)
    services.activity_log_call(lead=lead, by=rep_user, direction="outbound", outcome="connected", body="Talked budget")
    services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Seems pricey")
    services.task_create(lead=lead, assignee=rep_user, title="Send proposal", due_at=timezone.now() + timezone.timedelta(days=2))
    services.deal_open(lead=lead, value=9000, product="Starter")

    html = manager_client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()

    for text in ("Timeline", "Stage: SQL → Opportunity", "Call (outbound, connected)", "Talked budget", "Seems pricey",
                 "Send proposal", "Starter", "Move stage", "Convert to customer"):
        assert text in html, text


def test_the_status_cannot_be_edited_on_the_lead_form(manager_client):
    lead = LeadFactory(email="keep@example.com")
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    form = manager_client.get(url).context["adminform"].form
    assert "status" not in form.fields
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(first_name="Renamed", email="keep@example.com", status="customer")
    response = manager_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    lead.refresh_from_db()
    assert (lead.first_name, lead.status) == ("Renamed", LeadStatus.NEW)


def test_adding_a_lead_with_a_duplicate_email_shows_a_form_error_and_writes_nothing(manager_client):
    existing = LeadFactory(email="dup@example.com")
    data = {"first_name": "Second", "email": "DUP@Example.com", "score": 0}
    response = manager_client.post(reverse("admin:leads_lead_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["email"]
    assert f"lead #{existing.pk}" in errors[0]
    assert Lead.objects.count() == 1


def test_adding_a_lead_in_the_admin_goes_through_the_service(manager_client, manager_user):
    data = {"first_name": "New", "last_name": "Person", "email": "New.Person@Example.com", "score": 5}
    response = manager_client.post(reverse("admin:leads_lead_add"), data)
    assert response.status_code == 302
    lead = Lead.objects.get()
    assert lead.email == "new.person@example.com"
    assert lead.stage_changes.get().changed_by == manager_user


def test_a_long_history_shows_its_latest_rows_and_links_to_the_rest(manager_client, rep_user):
    from leads import services

    lead = LeadFactory(owner=rep_user)
    start = timezone.now() - timezone.timedelta(days=40)
    for day in range(35):
        services.activity_add_note(lead=lead, by=rep_user, body=f"Note number {day:02d}", occurred_at=start + timezone.timedelta(days=day))

    response = manager_client.get(reverse("admin:leads_lead_change", args=[lead.pk]))

    html = response.content.decode()
    # 30 rows: the lead's creation (today) and the 29 newest notes.
    assert "Stage: created → New" in html
    assert "Note number 34" in html and "Note number 06" in html
    assert "Note number 05" not in html
    links = dict(response.context["history_links"])
    full = manager_client.get(links["All calls, notes and meetings"])
    assert full.status_code == 200
    assert full.context["cl"].result_count == 35


def test_the_lead_page_makes_the_same_queries_for_a_short_and_a_long_history(
    manager_client, rep_user, django_assert_max_num_queries
):
    from leads import services

    lead = lead_at(LeadStatus.SQL, owner=rep_user)
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    with django_assert_max_num_queries(30) as short:
        manager_client.get(url)
    for n in range(40):
        services.activity_add_note(lead=lead, by=rep_user, body=f"n{n}")
        services.objection_log(lead=lead, by=rep_user, category="price", lead_words=f"w{n}")
    with django_assert_max_num_queries(30) as long:
        manager_client.get(url)
    assert len(long.captured_queries) == len(short.captured_queries)


def test_the_lead_page_lists_deals_and_open_tasks_and_adds_a_task_through_the_service(manager_client, rep_user):
    from leads import services

    lead = lead_at(LeadStatus.SQL, owner=rep_user)
    services.deal_open(lead=lead, value=9000, product="Starter")
    done = services.task_create(lead=lead, assignee=rep_user, title="Done already", due_at=timezone.now() + timezone.timedelta(hours=1))
    services.task_complete(task=done)
    page = manager_client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    assert "Starter" in page and "9,000 EUR" in page
    assert "Done already" not in page
    add_url = f"{reverse('admin:leads_task_add')}?lead={lead.pk}"
    assert add_url in page

    due = timezone.localtime() + timezone.timedelta(days=2)
    data = {"lead": lead.pk, "title": "Call about the proposal", "assignee": rep_user.pk,
            "due_at_0": due.strftime("%Y-%m-%d"), "due_at_1": "10:00:00"}
    response = manager_client.post(add_url, data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    task = lead.tasks.get(title="Call about the proposal")
    assert (task.assignee, task.created_by.username) == (rep_user, "manager")

    data.update(title="In the past", due_at_0=(timezone.localtime() - timezone.timedelta(days=2)).strftime("%Y-%m-%d"))
    response = manager_client.post(add_url, data)
    assert response.status_code == 200
    assert "The due time is in the past" in response.content.decode()
    assert not lead.tasks.filter(title="In the past").exists()


def test_move_stage_page_moves_with_a_reason(manager_client, manager_user):
    lead = lead_at(LeadStatus.NURTURING)
    url = reverse("admin:leads_lead_move_stage", args=[lead.pk])
    page = manager_client.get(url)
    choices = [value for value, _ in page.context["form"].fields["to_status"].choices]
    assert "mql" in choices and "customer" not in choices and "new" not in choices

    response = manager_client.post(url, {"to_status": "mql", "reason": "Downloaded two guides"})

    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.status == LeadStatus.MQL
    assert lead.stage_changes.first().reason == "Downloaded two guides"


def test_move_stage_page_refuses_a_move_not_allowed(manager_client):
    lead = lead_at(LeadStatus.SQL)
    response = manager_client.post(reverse("admin:leads_lead_move_stage", args=[lead.pk]), {"to_status": "new"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SQL


def test_convert_page_refuses_a_negative_value_and_converts_nothing(manager_client):
    lead = lead_at(LeadStatus.SQL)
    url = reverse("admin:leads_lead_convert", args=[lead.pk])
    response = manager_client.post(url, {"deal_value": "-5", "currency": "EUR"})
    assert response.status_code == 200
    assert "greater than or equal to 0" in response.content.decode()
    assert not Deal.objects.exists() and not Customer.objects.exists()

    response = manager_client.post(url, {"deal_value": "2500", "currency": "usd", "product": "Pro"})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CUSTOMER
    assert Deal.objects.get().currency == "USD"


def test_pipeline_summary_counts_leads_and_deal_value_per_stage(manager_client):
    for _ in range(2):
        lead_at(LeadStatus.MQL)
    from leads import services

    services.deal_open(lead=lead_at(LeadStatus.SQL), value=1000)
    services.lead_convert_to_customer(lead=lead_at(LeadStatus.SQL), deal_value=250)

    response = manager_client.get(reverse("admin:leads_lead_pipeline"))

    rows = {row["status"]: row for row in response.context["rows"]}
    assert rows["mql"]["leads"] == 2
    assert rows["opportunity"]["leads"] == 1 and rows["opportunity"]["values"][0][1] == 1000
    assert rows["customer"]["deals"] == 1 and rows["customer"]["values"][0][1] == 250
    assert "status__exact=mql" in rows["mql"]["link"]
    assert response.context["total"] == 4


# --- Who may do what ---------------------------------------------------------------


def test_a_sales_rep_cannot_use_the_admin(client, rep_user):
    client.force_login(rep_user)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_a_marketer_can_read_leads_but_not_move_them(client, marketer_user):
    lead = LeadFactory()
    client.force_login(marketer_user)
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(reverse("admin:leads_lead_move_stage", args=[lead.pk])).status_code == 403
    assert client.post(reverse("admin:leads_lead_convert", args=[lead.pk]), {"deal_value": 1, "currency": "EUR"}).status_code == 403
    response = post_action(client, "move_stage", [lead], apply="1", to_status="contacted")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.NEW
    assert not StageChange.objects.filter(lead=lead, to_status="contacted").exists()
    assert response.status_code in (200, 302)


def test_unknown_lead_pages_answer_404(manager_client):
    assert manager_client.get(reverse("admin:leads_lead_move_stage", args=[999999])).status_code == 404


# --- Filter values the database cannot take ------------------------------------------

OUT_OF_RANGE = "99999999999999999999999"


@pytest.fixture
def attributed_lead():
    source = SourceFactory()
    return LeadFactory(source=source, campaign=CampaignFactory(source=source), persona=PersonaFactory())


@pytest.mark.parametrize(
    "query",
    [
        {"owner": OUT_OF_RANGE},
        {"owner": "abc"},
        {"created_at__year": OUT_OF_RANGE},
        {"created_at__year": "2026", "created_at__month": OUT_OF_RANGE},
        {"campaign__id__exact": "abc"},
    ],
    ids=["owner-out-of-range", "owner-word", "year-out-of-range", "month-out-of-range", "campaign-word"],
)
def test_a_lead_list_filter_that_cannot_be_read_gets_the_admins_invalid_filter_redirect(manager_client, attributed_lead, query):
    response = manager_client.get(CHANGELIST, query)
    assert response.status_code == 302
    assert response["Location"] == CHANGELIST + "?e=1"
    assert manager_client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize("parameter", ["source__id__exact", "campaign__id__exact", "persona__id__exact"])
def test_a_related_record_id_past_the_columns_range_lists_no_lead(manager_client, attributed_lead, parameter):
    response = manager_client.get(CHANGELIST, {parameter: OUT_OF_RANGE})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize("value", [OUT_OF_RANGE, "abc"])
def test_the_pipeline_summary_says_so_when_the_owner_is_no_user_id(manager_client, value):
    lead_at(LeadStatus.MQL)
    response = manager_client.get(reverse("admin:leads_lead_pipeline"), {"owner": value}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(reverse("admin:leads_lead_pipeline"), 302)]
    assert f"There is no owner “{value}”" in response.content.decode()
    assert response.context["total"] == 1


@pytest.mark.parametrize("changelist", ["admin:leads_activity_changelist", "admin:leads_task_changelist",
                                        "admin:leads_stagechange_changelist"])
def test_a_lead_id_past_the_columns_range_lists_nothing_on_the_lead_records(manager_client, changelist):
    LeadFactory()
    response = manager_client.get(reverse(changelist), {"lead__id__exact": OUT_OF_RANGE})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


# --- Edits in the admin go through the services -------------------------------------------


def deal_form(deal, **changes):
    data = {
        "lead": deal.lead_id, "owner": deal.owner_id or "", "value": str(deal.value), "currency": deal.currency,
        "product": deal.product, "created_at_0": timezone.localtime(deal.created_at).strftime("%Y-%m-%d"),
        "created_at_1": timezone.localtime(deal.created_at).strftime("%H:%M:%S"),
        "expected_close_on": deal.expected_close_on.isoformat() if deal.expected_close_on else "",
    }
    # A field with a callable default is posted twice, as a browser does: its value, and its initial one hidden.
    data.update({"initial-created_at_0": data["created_at_0"], "initial-created_at_1": data["created_at_1"]})
    return {**data, **changes}


def test_editing_an_open_deal_goes_through_the_service_and_is_logged(manager_client, manager_user):
    from core.models import DomainEvent
    from leads import services

    with time_machine.travel("2026-05-04 09:00Z", tick=False):
        lead = lead_at(LeadStatus.SQL)
        deal = services.deal_open(lead=lead, value=900, product="Starter")
        response = manager_client.post(reverse("admin:leads_deal_change", args=[deal.pk]), deal_form(deal, value="1250.00"))

    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.value == 1250
    event = DomainEvent.objects.get(type="deal.updated")
    assert (event.subject_id, event.actor_user, event.payload) == (deal.pk, manager_user, {"fields": ["value"]})


def test_the_admin_refuses_an_amount_not_written_in_digits_by_its_field(manager_client):
    from leads import services

    with time_machine.travel("2026-05-04 09:00Z", tick=False):
        lead = lead_at(LeadStatus.SQL)
        deal = services.deal_open(lead=lead, value=900, product="Starter")
        edited = manager_client.post(reverse("admin:leads_deal_change", args=[deal.pk]), deal_form(deal, value="1e3"))
        added = manager_client.post(reverse("admin:leads_deal_add"), {**deal_form(deal, value="NaN"), "product": "Other"})
        converted = manager_client.post(reverse("admin:leads_lead_convert", args=[lead.pk]), {"deal_value": "1e3", "currency": "EUR"})

    for response in (edited, added, converted):
        assert response.status_code == 200
        assert "Write the amount in digits, e.g. 1000 or 1000.50." in response.content.decode()
    deal.refresh_from_db()
    assert deal.value == 900 and Deal.objects.count() == 1 and deal.status == "open"


def test_an_open_deal_cannot_be_moved_to_a_lost_lead_and_the_form_says_why(manager_client):
    from leads import services

    with time_machine.travel("2026-05-04 09:00Z", tick=False):
        deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=900)
        lost = lead_at(LeadStatus.LOST)
        response = manager_client.post(reverse("admin:leads_deal_change", args=[deal.pk]), deal_form(deal, lead=lost.pk))

    assert response.status_code == 200
    assert "That lead is lost: reopen it before giving it a deal." in response.content.decode()
    deal.refresh_from_db()
    assert deal.lead_id != lost.pk


def test_a_closed_deal_keeps_its_terms_whoever_asks(manager_user):
    from leads import services

    lead = lead_at(LeadStatus.SQL)
    won = services.lead_convert_to_customer(lead=lead, deal_value=500)
    with pytest.raises(ValidationError) as refused:
        services.deal_update(deal=won, by=manager_user, value=1, product="Other")
    assert refused.value.messages == ["The deal is already won: its product, value stay as recorded."]
    services.deal_update(deal=won, by=manager_user, expected_close_on=None)
    won.refresh_from_db()
    assert won.value == 500


def test_marking_a_task_done_in_the_admin_is_the_same_as_completing_it(manager_client, manager_user, rep_user):
    from core.models import DomainEvent
    from leads import services

    with time_machine.travel("2026-05-04 09:00Z", tick=False):
        task = services.task_create(assignee=rep_user, title="Call back", due_at=timezone.now() + timezone.timedelta(hours=2))
        due = timezone.localtime(task.due_at)
        done = timezone.localtime()
        data = {"title": "Call back about pricing", "assignee": rep_user.pk, "lead": "", "notes": "",
                "due_at_0": due.strftime("%Y-%m-%d"), "due_at_1": due.strftime("%H:%M:%S"),
                "completed_at_0": done.strftime("%Y-%m-%d"), "completed_at_1": done.strftime("%H:%M:%S")}
        response = manager_client.post(reverse("admin:leads_task_change", args=[task.pk]), data)

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.title == "Call back about pricing" and task.completed_at is not None
    rows = list(DomainEvent.objects.filter(subject_type="task", subject_id=task.pk).values_list("type", "payload"))
    assert rows == [
        ("task.created", {"assignee": rep_user.pk, "due_at": task.due_at.isoformat()}),
        ("task.updated", {"fields": ["completed_at", "title"]}),
        ("task.done", {}),
    ]


def test_the_lead_page_shows_its_audit_trail_who_changed_what_and_when(manager_client, rep_user):
    from core.events import Actor, EventType, event_record
    from core.models import DomainEvent
    from leads import services

    with time_machine.travel("2026-06-01 09:30Z", tick=False):
        lead = LeadFactory(owner=rep_user)
        services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED, by=rep_user)
        event_record(EventType.EMAIL_SENT, actor=Actor.sequence(sequence_id=7, step_id=31), lead_id=lead.pk,
                     payload={"sequence": 7, "step": 31, "note": "<script>alert(1)</script>"})
        services.activity_add_note(lead=lead, by=rep_user, body="Hi")
        # The note's author's account was deleted since: the log keeps the id.
        DomainEvent.objects.filter(lead_id=lead.pk, type="activity.logged").update(actor_user_id=987654)
        html = manager_client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()

    trail = html[html.index("Audit trail"):]
    for text in ("Stage changed", "from: new, to: contacted", f"{rep_user.get_full_name()} (rep1)",
                 "Email sent", "Sequence (sequence 7, step 31)", "Activity logged", "user #987654",
                 f'href="{reverse("admin:core_domainevent_changelist")}?q={lead.pk}"'):
        assert text in trail, text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in trail
    assert trail.index("Activity logged") < trail.index("Email sent") < trail.index("Stage changed")  # newest first
