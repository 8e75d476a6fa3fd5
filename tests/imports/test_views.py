"""The import pages: upload, preview and mapping, dry run, run with its progress, rejected rows."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imports.models import LeadImport
from leads.models import Lead

from .conftest import csv_bytes

pytestmark = pytest.mark.django_db


def test_a_sales_rep_is_refused_the_import_pages(client, rep_user):
    client.force_login(rep_user)

    assert client.get(reverse("imports:list")).status_code == 403


def test_a_marketer_uploads_checks_runs_and_downloads_the_rejected_rows(client, marketer_user):
    client.force_login(marketer_user)
    data = csv_bytes([["E-mail", "First name", "Notes"], ["ann@example.com", "Ann", "x"], ["bob", "=1+1", "y"]], separator=";")

    response = client.post(reverse("imports:list"), {"file": SimpleUploadedFile("leads.csv", data), "encoding": "", "separator": ""})
    job = LeadImport.objects.get()
    assert response.url == reverse("imports:detail", args=[job.pk])

    page = client.get(response.url).content.decode()
    assert "separated by semicolon" in page
    assert '<option value="email" selected>' in page
    assert "ann@example.com" in page

    client.post(response.url, {"col_0": "email", "col_1": "first_name", "col_2": "", "dedupe_key": "email",
                               "on_duplicate": "fill_blanks", "encoding": "utf-8", "separator": ";", "date_format": ""})
    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count, Lead.objects.count()) == ("checked", 1, 1, 0)
    assert "Nothing was written" in client.get(response.url).content.decode()

    client.post(reverse("imports:run", args=[job.pk]))  # the task runs in the test process

    job.refresh_from_db()
    assert (job.status, Lead.objects.get().email) == ("done", "ann@example.com")
    progress = client.get(reverse("imports:progress", args=[job.pk])).content.decode()
    assert "1 created" in progress and "hx-trigger" not in progress  # done: no more polling
    rejected = b"".join(client.get(reverse("imports:rejected", args=[job.pk])).streaming_content).decode()
    assert rejected.splitlines()[1].startswith("bob,'=1+1,y,3,")


def test_a_running_import_polls_its_progress(client, manager_user):
    client.force_login(manager_user)
    job = LeadImport.objects.create(created_by=manager_user, original_name="a.csv", status="running", rows_total=10, rows_done=4)

    progress = client.get(reverse("imports:progress", args=[job.pk])).content.decode()

    assert 'hx-trigger="every 1s"' in progress
    assert 'value="4" max="10"' in progress


def test_imports_are_listed_read_only_in_the_admin_for_marketers_not_reps(client, marketer_user, rep_user):
    LeadImport.objects.create(created_by=marketer_user, original_name="fair.csv", status="done")
    client.force_login(marketer_user)

    page = client.get(reverse("admin:imports_leadimport_changelist"))

    assert page.status_code == 200 and "fair.csv" in page.content.decode()
    assert client.get(reverse("admin:imports_leadimport_add")).status_code == 403
    client.force_login(rep_user)
    assert client.get(reverse("admin:imports_leadimport_changelist")).status_code in (302, 403)


def test_a_manager_imports_a_deal_history_mapping_the_files_stages_on_the_page(client, manager_user):
    from core.roles import Role
    from leads.models import Deal
    from tests.factories import UserFactory

    UserFactory(username="moses", first_name="Moses", last_name="Frase", role=Role.SALES_REP)
    client.force_login(manager_user)
    data = csv_bytes([["opportunity_id", "sales_agent", "deal_stage", "engage_date", "close_date", "close_value"],
                      ["O1", "Moses Frase", "Gewonnen", "2025-10-01", "2025-10-20", "500"],
                      ["O2", "moses", "Im Gespräch", "2025-11-01", "", ""],
                      ["O3", "moses", "Im Gespräch", "2025-11-02", "", ""]])

    response = client.post(reverse("imports:list"), {"target": "deals", "file": SimpleUploadedFile("p.csv", data),
                                                     "encoding": "", "separator": ""})
    page = client.get(response.url).content.decode()
    assert "(deal history (pipeline))" in page
    assert "<td>Im Gespräch</td><td class=\"text-end\">2</td>" in page
    assert '<option value="owner" selected>' in page

    client.post(response.url, {"col_0": "opportunity_id", "col_1": "owner", "col_2": "stage", "col_3": "engaged_on",
                               "col_4": "closed_on", "col_5": "value", "date_format": "%Y-%m-%d", "encoding": "utf-8",
                               "separator": ",", "stage_0": "opportunity", "stage_1": "won", "unknown_owner": "refuse",
                               "currency": "usd"})
    job = LeadImport.objects.get()
    assert (job.status, job.created_count, job.stage_mapping) == ("checked", 3, {"Im Gespräch": "opportunity", "Gewonnen": "won"})
    client.post(reverse("imports:run", args=[job.pk]))

    assert sorted(Deal.objects.values_list("status", "currency")) == [("open", "USD"), ("open", "USD"), ("won", "USD")]


def test_a_failed_run_offers_to_resume_after_its_last_written_row_and_a_run_without_a_count_shows_rows_so_far(
        client, manager_user):
    client.force_login(manager_user)
    data = csv_bytes([["Email"], ["a@example.com"], ["b@example.com"]])
    client.post(reverse("imports:list"), {"file": SimpleUploadedFile("l.csv", data), "encoding": "", "separator": ""})
    job = LeadImport.objects.get()
    LeadImport.objects.filter(pk=job.pk).update(status="running", rows_done=1, rows_total=0)
    assert "1 rows so far" in client.get(reverse("imports:progress", args=[job.pk])).content.decode()
    LeadImport.objects.filter(pk=job.pk).update(status="failed", last_row_written=2, failure="The worker stopped.")

    page = client.get(reverse("imports:progress", args=[job.pk])).content.decode()
    assert "Resume after row 2" in page
    client.post(reverse("imports:resume", args=[job.pk]))  # the task runs in the test process

    job.refresh_from_db()
    assert (job.status, list(Lead.objects.values_list("email", flat=True))) == ("done", ["b@example.com"])
