"""A company import: created, filled in or skipped by domain (any case) or name, refused with the reason."""

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from openpyxl import Workbook

from core.events import EventType
from core.models import DomainEvent
from imports.models import LeadImport
from imports.services import lead_import_check, lead_import_configure, lead_import_preview, lead_import_run
from leads.models import Company
from tests.factories import CompanyFactory, LeadFactory

from .conftest import csv_bytes, upload

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[2] / "imports" / "samples" / "companies.csv"
HEADER = ["Company", "Website", "Industry", "Employees", "Country"]


def companies_job(data: bytes, *, by, name="companies.csv", **options):
    job = upload(data, by=by, name=name, target=LeadImport.Target.COMPANIES)
    return lead_import_configure(job=job, by=by, **options) if options else job


def test_the_sample_is_mapped_by_its_headers_and_imported(manager_user):
    job = companies_job(SAMPLE.read_bytes(), by=manager_user)
    assert lead_import_preview(job=job).mapping == {
        "account": "name", "website": "domain", "sector": "industry", "employees": "size", "office_location": "country"}

    job = lead_import_run(job=job, by=manager_user)

    assert (job.status, job.created_count) == (LeadImport.Status.DONE, 5)
    cancity = Company.objects.get(name="Cancity")
    assert (cancity.domain, cancity.industry, cancity.size, cancity.country) == (
        "cancity.example", "retail", "2001-5000", "United States")
    assert Company.objects.get(name="Hatfan").domain == "hatfan.example"


def test_a_company_in_the_crm_is_found_by_domain_in_any_case_or_by_name_and_its_blanks_filled_in(manager_user):
    acme = CompanyFactory(name="Acme Corp", domain="ACME.example", industry="")
    globex = CompanyFactory(name="Globex", domain="", country="France")
    lead = LeadFactory(company=globex, by=manager_user)
    data = csv_bytes([HEADER,
                      ["Acme Corporation", "https://www.acme.example/about", "software", "", ""],
                      ["GLOBEX", "", "energy", "51-200", "Germany"],
                      ["Initech", "initech.example", "", "", ""],
                      ["Initech", "INITECH.example", "", "", ""],
                      ["Umbrella", "umbrella.example", "", "", ""],
                      ["Umbrella", "other.example", "", "", ""]])

    job = lead_import_check(job=companies_job(data, by=manager_user), by=manager_user)
    assert (job.created_count, job.updated_count, job.skipped_count) == (3, 2, 1)
    job = lead_import_run(job=companies_job(data, by=manager_user), by=manager_user)

    acme.refresh_from_db()
    globex.refresh_from_db()
    assert (acme.name, acme.industry) == ("Acme Corp", "software")  # a name is kept: blanks only are filled
    assert (globex.industry, globex.size, globex.country) == ("energy", "51-200", "France")
    assert Company.objects.filter(name="Initech").count() == 1
    assert Company.objects.filter(name="Umbrella").count() == 2  # one name on two domains: two companies
    reasons = {row["row"]: (row["fate"], row["reason"]) for row in job.report_rows}
    assert reasons[5] == ("skip", "same domain as row 4")
    assert reasons[2] == ("update", f"company #{acme.pk}: industry")
    events = DomainEvent.objects.filter(type=EventType.COMPANY_UPDATED).order_by("subject_id")
    assert [(e.subject_id, e.payload["fields"]) for e in events] == [(acme.pk, ["industry"]), (globex.pk, ["industry", "size"])]
    assert lead.company_id == globex.pk


def test_overwrite_renames_and_the_leads_find_the_company_by_its_new_name(manager_user):
    acme = CompanyFactory(name="Acme", domain="acme.example")
    lead = LeadFactory(company=acme, by=manager_user)

    lead_import_run(job=companies_job(csv_bytes([HEADER, ["Acme Industries", "acme.example", "", "", ""]]),
                                      by=manager_user, on_duplicate="overwrite"), by=manager_user)

    lead.refresh_from_db()
    assert lead.company.name == "Acme Industries" and "acme industries" in lead.search_text


def test_bad_rows_are_refused_with_their_column_and_nothing_of_them_is_written(manager_user):
    data = csv_bytes([HEADER, ["", "nameless.example", "", "", ""], ["Bad", "not a domain", "", "", ""],
                      ["=HYPERLINK(\"x\")", "", "", "", ""], ["Good", "good.example", "x" * 101, "", ""]])

    job = lead_import_run(job=companies_job(data, by=manager_user), by=manager_user)

    assert (job.created_count, job.error_count) == (0, 4)
    reasons = [row["reason"] for row in job.report_rows]
    assert reasons[0] == "Company: Give the company's name."
    assert reasons[1] == "Website: 'not a domain' is not a web domain such as example.com."
    assert "formulas are not imported" in reasons[2]
    assert reasons[3].startswith("Industry: Ensure this value has at most 100 characters")
    assert Company.objects.count() == 0


def test_a_company_import_needs_a_name_column(manager_user):
    job = companies_job(csv_bytes([HEADER, ["Acme", "", "", "", ""]]), by=manager_user)

    with pytest.raises(ValidationError) as exc:
        lead_import_configure(job=job, by=manager_user, mapping={"Website": "domain"})

    assert exc.value.message_dict["mapping"] == ["Map a column to the company's name: every company needs one."]


def test_an_xlsx_file_of_companies_imports(manager_user, tmp_path):
    book = Workbook()
    book.active.append(HEADER)
    book.active.append(["Acme", "acme.example", "software", 250, "France"])
    path = tmp_path / "companies.xlsx"
    book.save(path)

    job = lead_import_run(job=companies_job(path.read_bytes(), by=manager_user, name="companies.xlsx"), by=manager_user)

    assert job.created_count == 1 and Company.objects.get().size == "250"
