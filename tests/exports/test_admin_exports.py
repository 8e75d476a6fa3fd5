"""The admin's "Export all matching" links: leads, deals and the event log, as filtered and searched, on record."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse
from openpyxl import load_workbook

from core.events import EventType
from core.models import DomainEvent
from leads import services
from leads.admin.lead import LeadAdmin
from leads.models import Deal, LeadExport
from leads.pipeline import LeadStatus
from tests.factories import LeadFactory, SourceFactory, lead_at, rep

pytestmark = pytest.mark.django_db

# 01:30 UTC on the night Berlin moves its clocks forward: 03:30 there.
CREATED = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
EXPORTED = datetime(2027, 3, 29, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(CREATED, tick=False) as traveller:
        yield traveller


def url(model: str, file_format: str, query: str = "") -> str:
    return reverse(f"admin:{model}_export", kwargs={"file_format": file_format}) + query


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def xlsx_rows(response) -> list[list]:
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@override_settings(TIME_ZONE="Europe/Berlin")
def test_every_lead_matching_the_filters_and_search_is_exported_with_labels_not_codes(client, manager_user, monkeypatch):
    monkeypatch.setattr(LeadAdmin, "list_per_page", 2)  # more matches than one page shows
    owner = rep(username="tom", first_name="Tom", last_name="Becker")
    source = SourceFactory(name="Google Ads", slug="google")
    wanted = [lead_at(LeadStatus.MQL, owner=owner, source=source, last_name=f"Wanted{n}", phone="+49 30 1234") for n in range(3)]
    lead_at(LeadStatus.MQL, owner=owner, last_name="Otherwise")  # same stage, not matching the search
    lead_at(LeadStatus.SQL, last_name="Wanted9")  # matching the search, not the stage
    client.force_login(manager_user)

    response = client.get(url("leads_lead", "csv", "?status__exact=mql&q=wanted"))

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = csv_rows(response)
    assert sorted(int(row["ID"]) for row in rows) == sorted(lead.pk for lead in wanted)
    assert rows[0]["Stage"] == "MQL" and rows[0]["Owner"] == "Tom Becker" and rows[0]["Source"] == "Google Ads"
    assert rows[0]["Phone"] == "'+49 30 1234"
    assert rows[0]["Created (Europe/Berlin)"] == "2027-03-28 03:30:00"
    assert 'filename="leads-2027-03-28-status-mql-q-wanted.csv"' in response["Content-Disposition"]


def test_the_export_is_on_record_with_its_list_format_filters_and_count_and_in_the_event_log(client, manager_user, frozen):
    lead_at(LeadStatus.MQL)
    LeadFactory()
    frozen.move_to(EXPORTED)
    client.force_login(manager_user)

    xlsx_rows(client.get(url("leads_lead", "xlsx", "?status__exact=mql&p=2")))

    record = LeadExport.objects.get()
    assert (record.kind, record.file_format, record.exported_by, record.exported_at) == (
        LeadExport.Kind.LEAD_LIST, "xlsx", manager_user, EXPORTED,
    )
    assert (record.row_count, record.filters, record.lead_ids) == (1, "status__exact=mql", [])
    event = DomainEvent.objects.get(type=EventType.LIST_EXPORTED)
    assert (event.actor_user, event.subject_type, event.subject_id, event.lead_id) == (manager_user, "leadexport", record.pk, None)
    assert event.payload == {"list": "leads", "format": "xlsx", "rows": 1}


def test_the_xlsx_of_leads_has_typed_cells_and_formula_text_kept_as_text(client, manager_user):
    LeadFactory(first_name='=HYPERLINK("http://evil","x")', phone="+49 30 1234", score=42)
    client.force_login(manager_user)

    header, row = xlsx_rows(client.get(url("leads_lead", "xlsx")))

    record = dict(zip(header, row, strict=True))
    assert record["First name"] == '=HYPERLINK("http://evil","x")' and record["Phone"] == "+49 30 1234"
    assert record["Score"] == 42 and record["Stage"] == "New"
    assert isinstance(record[next(h for h in header if h.startswith("Created"))], datetime)


def test_the_list_pages_offer_the_export_links_with_their_current_filters(client, manager_user):
    LeadFactory()
    client.force_login(manager_user)

    for model, query in (("leads_lead", "?status__exact=new"), ("leads_deal", "?status__exact=open"), ("core_domainevent", "?type__exact=lead.created")):
        page = client.get(reverse(f"admin:{model}_changelist") + query).content.decode()
        for file_format in ("csv", "xlsx"):
            assert f'href="{url(model, file_format, query)}"' in page
        assert "Export all matching (CSV)" in page and "Export all matching (XLSX)" in page


def test_who_may_not_export_sees_no_link_and_a_forged_request_is_refused(client, marketer_user):
    LeadFactory()
    client.force_login(marketer_user)

    assert "Export all matching" not in client.get(reverse("admin:leads_lead_changelist")).content.decode()
    assert client.get(url("leads_lead", "csv")).status_code == 403
    assert client.get(url("leads_deal", "xlsx")).status_code == 403
    assert not LeadExport.objects.exists() and not DomainEvent.objects.filter(type=EventType.LIST_EXPORTED).exists()


def test_a_rep_outside_the_admin_is_sent_to_its_login(client, rep_user):
    client.force_login(rep_user)

    response = client.get(url("leads_lead", "csv"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert not LeadExport.objects.exists()


def test_filters_the_list_cannot_read_are_refused_and_an_unknown_format_is_not_found(client, manager_user):
    client.force_login(manager_user)

    assert client.get(url("leads_lead", "csv", "?owner=not-a-user")).status_code == 400
    assert client.get(url("leads_lead", "pdf")).status_code == 404
    assert not LeadExport.objects.exists()


@override_settings(CRM_EXPORT_MAX_ROWS=1)
def test_a_list_longer_than_the_cap_is_refused_with_what_to_do(client, manager_user):
    LeadFactory(), LeadFactory()
    client.force_login(manager_user)

    response = client.get(url("leads_lead", "csv", "?q=example"))

    assert response.status_code == 302 and response["Location"] == reverse("admin:leads_lead_changelist") + "?q=example"
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "2 rows" in message and "at most 1" in message and "narrow the filters" in message
    assert not LeadExport.objects.exists()


@override_settings(TIME_ZONE="Europe/Berlin")
def test_deals_are_exported_as_filtered_with_money_as_numbers_beside_the_currency(client, manager_user):
    owner = rep(username="ann", first_name="Ann", last_name="Lee")
    won = services.deal_open(lead=LeadFactory(first_name="Ada", last_name="Byron"), value=Decimal("1250.50"), currency="EUR",
                             product="=cmd|' /C calc'!A0", expected_close_on=date(2027, 4, 30), by=manager_user)
    Deal.objects.filter(pk=won.pk).update(owner=owner)
    services.deal_open(lead=LeadFactory(), value=10, currency="EUR", product="Other", by=manager_user)
    client.force_login(manager_user)

    header, *rows = xlsx_rows(client.get(url("leads_deal", "xlsx", "?q=byron")))

    assert len(rows) == 1
    record = dict(zip(header, rows[0], strict=True))
    assert record["Product"] == "=cmd|' /C calc'!A0" and record["Lead"] == "Ada Byron" and record["Owner"] == "Ann Lee"
    assert (record["Value"], record["Currency"], record["Status"]) == (1250.5, "EUR", "Open")
    assert record["Expected close"] == datetime(2027, 4, 30)
    assert record["Created (Europe/Berlin)"] == datetime(2027, 3, 28, 3, 30)
    export = LeadExport.objects.get()
    assert (export.kind, export.row_count, export.filters) == (LeadExport.Kind.DEAL_LIST, 1, "q=byron")


def test_the_event_log_is_exported_as_filtered_with_event_names_and_who(client, manager_user):
    lead = LeadFactory(by=manager_user)
    services.lead_change_stage(lead=lead, to_status="contacted", by=manager_user, reason="called")
    client.force_login(manager_user)

    rows = csv_rows(client.get(url("core_domainevent", "csv", f"?type__exact=lead.stage_changed&q={lead.pk}")))

    assert [row["Event"] for row in rows] == ["Stage changed"]
    assert rows[0]["Lead ID"] == str(lead.pk) and rows[0]["By"] == f"{manager_user.get_full_name()} (manager)"
    assert "to: contacted" in rows[0]["Details"]
    assert LeadExport.objects.get().kind == LeadExport.Kind.EVENT_LIST


def test_the_selected_leads_action_still_exports_the_ticked_rows_and_now_xlsx_too(client, manager_user):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    ticked, _ = LeadFactory(), LeadFactory()
    client.force_login(manager_user)

    response = client.post(reverse("admin:leads_lead_changelist"),
                           {"action": "export_xlsx", ACTION_CHECKBOX_NAME: [ticked.pk], "index": 0})

    header, *rows = xlsx_rows(response)
    assert [row[0] for row in rows] == [ticked.pk]
    assert LeadExport.objects.get().lead_ids == [ticked.pk]


def test_a_list_longer_than_a_sheet_is_refused_as_xlsx_and_offered_as_csv(client, manager_user, monkeypatch):
    monkeypatch.setattr("leads.exports.XLSX_MAX_ROWS", 1)
    LeadFactory(), LeadFactory()
    client.force_login(manager_user)

    refused = client.get(url("leads_lead", "xlsx"))

    assert refused.status_code == 302
    assert "export it as CSV" in str(next(iter(get_messages(refused.wsgi_request))))
    assert len(csv_rows(client.get(url("leads_lead", "csv")))) == 2
    assert list(LeadExport.objects.values_list("file_format", flat=True)) == ["csv"]
