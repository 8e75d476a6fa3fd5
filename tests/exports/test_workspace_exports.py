"""The reps' Leads page exports its list (CSV or XLSX) with its filters, within what the user may see, for who may export."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse
from openpyxl import load_workbook

from leads.models import LeadExport
from leads.pipeline import LeadStatus
from tests.factories import LeadFactory, lead_at

pytestmark = pytest.mark.django_db

LIST = reverse("workspace:lead_list")


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(datetime(2026, 3, 2, 10, 30, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def export_url(file_format: str, query: str = "") -> str:
    return reverse("workspace:lead_export", kwargs={"file_format": file_format}) + query


def exported_ids(response) -> list[int]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return sorted(int(row["ID"]) for row in csv.DictReader(io.StringIO(text)))


@pytest.fixture
def exporting_rep(rep_user):
    """A rep given the export permission one by one (managers have it by their role)."""
    rep_user.user_permissions.add(Permission.objects.get(codename="export_lead"))
    return rep_user


def test_a_manager_sees_the_export_buttons_with_the_pages_filters(client, manager_user):
    LeadFactory()
    client.force_login(manager_user)

    page = client.get(LIST + "?status=mql&page=1").content.decode()

    assert f'href="{export_url("csv", "?status=mql")}"' in page and f'href="{export_url("xlsx", "?status=mql")}"' in page


def test_a_manager_exports_every_lead_matching_the_filters(client, manager_user):
    wanted = [lead_at(LeadStatus.MQL) for _ in range(3)]
    LeadFactory()
    client.force_login(manager_user)

    response = client.get(export_url("csv", "?scope=all&status=mql&page=2"))

    assert exported_ids(response) == sorted(lead.pk for lead in wanted)
    record = LeadExport.objects.get()
    assert (record.kind, record.file_format, record.row_count, record.filters) == (
        LeadExport.Kind.LEAD_LIST, "csv", 3, "scope=all&status=mql",
    )


def test_the_xlsx_holds_the_same_leads_with_labels(client, manager_user):
    lead = lead_at(LeadStatus.SQL, phone="+44 20 7946 0000")
    client.force_login(manager_user)

    sheet = load_workbook(io.BytesIO(b"".join(client.get(export_url("xlsx", "?scope=all&status=sql")).streaming_content))).active
    header, row = [[cell.value for cell in r] for r in sheet.iter_rows()]

    record = dict(zip(header, row, strict=True))
    assert (record["ID"], record["Stage"], record["Phone"]) == (lead.pk, "SQL", "+44 20 7946 0000")


def test_a_rep_without_the_export_permission_sees_no_button_and_a_forged_request_is_refused(client, rep_user):
    LeadFactory(owner=rep_user)
    client.force_login(rep_user)

    assert 'id="lead-export"' not in client.get(LIST).content.decode()
    assert client.get(export_url("csv")).status_code == 403
    assert client.get(export_url("xlsx", "?scope=mine")).status_code == 403
    assert not LeadExport.objects.exists()


def test_a_rep_allowed_to_export_gets_their_own_leads_and_the_pool_as_the_page_shows(client, exporting_rep, other_rep):
    own, pool = LeadFactory(owner=exporting_rep), LeadFactory(owner=None)
    LeadFactory(owner=other_rep)
    client.force_login(exporting_rep)

    assert 'id="lead-export"' in client.get(LIST).content.decode()
    assert exported_ids(client.get(export_url("csv"))) == [own.pk]  # a rep's page starts at their own leads
    assert exported_ids(client.get(export_url("csv", "?scope=pool"))) == [pool.pk]


def test_a_rep_forging_the_all_leads_scope_gets_an_error_naming_the_filter_and_no_file(client, exporting_rep, other_rep):
    LeadFactory(owner=other_rep)
    client.force_login(exporting_rep)

    response = client.get(export_url("csv", f"?scope=all&owner={other_rep.pk}"))

    assert response.status_code == 400 and "Scope" in response.content.decode()
    assert not LeadExport.objects.exists()


def test_an_unknown_format_is_not_found(client, manager_user):
    client.force_login(manager_user)
    assert client.get(export_url("pdf")).status_code == 404
