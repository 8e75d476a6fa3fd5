"""The import services: the dry run, the run, duplicates, bad cells, failures, the policy. Given / when / then."""

import csv

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.events import EventType
from core.models import ActorKind, DomainEvent
from imports.models import LeadImport
from imports.services import lead_import_check, lead_import_configure, lead_import_run
from leads.models import Company, Lead, StageChange
from leads.pipeline import LeadStatus
from tests.factories import CompanyFactory, LeadFactory

from .conftest import csv_bytes, upload, uploaded

pytestmark = pytest.mark.django_db

HEADER = ["Email", "First name", "Last name", "Company"]


def rejected_rows(job):
    with job.rejected_file.open("rb") as handle:
        return list(csv.reader(handle.read().decode().splitlines()))


def test_a_run_creates_each_lead_as_lead_create_would(marketer_user):
    job = uploaded([HEADER, ["Ann@Example.com", "Ann", "Lee", "Acme"], ["bob@example.com", "Bob", "Ray", "ACME"]],
                   by=marketer_user)

    job = lead_import_run(job=job, by=marketer_user)

    assert (job.status, job.created_count, job.rows_done, job.rows_total) == (LeadImport.Status.DONE, 2, 2, 2)
    ann, bob = Lead.objects.order_by("email")
    assert (ann.email, ann.status, ann.search_text) == ("ann@example.com", LeadStatus.NEW, "ann lee ann@example.com acme")
    assert ann.company == bob.company and Company.objects.count() == 1  # one company, matched in any case
    change = StageChange.objects.get(lead=ann)
    assert (change.from_status, change.to_status, change.changed_by) == ("", LeadStatus.NEW, marketer_user)
    assert job.last_row_written == 3


def test_an_existing_company_is_reused_by_its_name_in_any_case(manager_user):
    acme = CompanyFactory(name="Acme")

    lead_import_run(job=uploaded([HEADER, ["a@example.com", "A", "B", "ACME "]], by=manager_user), by=manager_user)

    assert Lead.objects.get().company == acme


def test_each_created_lead_has_its_lead_created_event_naming_the_import_job(manager_user):
    job = uploaded([HEADER, ["a@example.com", "A", "", ""], ["b@example.com", "B", "", ""]], by=manager_user)

    job = lead_import_run(job=job, by=manager_user)

    events = DomainEvent.objects.filter(type=EventType.LEAD_CREATED).order_by("lead_id")
    assert [e.lead_id for e in events] == list(Lead.objects.order_by("pk").values_list("pk", flat=True))
    assert {(e.actor_kind, e.actor_user_id, e.actor_ref["import_job"]) for e in events} == {
        (ActorKind.IMPORT_JOB, manager_user.pk, job.pk)
    }


def test_a_dry_run_writes_nothing_and_reports_every_fate(manager_user):
    LeadFactory(email="old@example.com", first_name="")
    rows = [
        HEADER,
        ["new@example.com", "New", "", ""],           # row 2: created
        ["OLD@example.com", "Olga", "", ""],          # row 3: fills in the blank first name
        ["new@example.com", "Again", "", ""],         # row 4: the same email as row 2
        ["not an email", "Bad", "", ""],              # row 5: refused
    ]
    job = uploaded(rows, by=manager_user)
    leads, events = Lead.objects.count(), DomainEvent.objects.count()

    job = lead_import_check(job=job, by=manager_user)

    assert (Lead.objects.count(), DomainEvent.objects.count()) == (leads, events)
    assert Lead.objects.get(email="old@example.com").first_name == ""
    assert job.status == LeadImport.Status.CHECKED
    assert (job.rows_total, job.created_count, job.updated_count, job.skipped_count, job.error_count) == (4, 1, 1, 1, 1)
    assert [(r["row"], r["fate"]) for r in job.report_rows] == [(3, "update"), (4, "skip"), (5, "error")]
    assert job.report_rows[1]["reason"] == "same email as row 2"
    assert job.report_rows[2]["column"] == "Email" and "valid email" in job.report_rows[2]["reason"]


def test_the_run_gives_each_row_the_fate_the_dry_run_reported(manager_user):
    LeadFactory(email="old@example.com", first_name="")
    job = uploaded([HEADER, ["new@example.com", "N", "", ""], ["old@example.com", "O", "", ""], ["x", "", "", ""]],
                   by=manager_user)
    checked = lead_import_check(job=job, by=manager_user)
    report = (checked.created_count, checked.updated_count, checked.skipped_count, checked.error_count, checked.report_rows)

    done = lead_import_run(job=checked, by=manager_user)

    assert (done.created_count, done.updated_count, done.skipped_count, done.error_count, done.report_rows) == report


def test_a_lead_already_in_the_crm_in_another_case_gets_only_its_blanks_filled(manager_user):
    lead = LeadFactory(email="sam@example.com", first_name="Sam", last_name="", company=None)

    job = lead_import_run(job=uploaded([HEADER, ["SAM@EXAMPLE.COM", "Samuel", "Smith", "Acme"]], by=manager_user),
                          by=manager_user)

    lead.refresh_from_db()
    assert (lead.first_name, lead.last_name, lead.company.name) == ("Sam", "Smith", "Acme")
    assert (job.created_count, job.updated_count, Lead.objects.count()) == (0, 1, 1)
    event = DomainEvent.objects.get(type=EventType.LEAD_UPDATED)
    assert (event.lead_id, event.payload) == (lead.pk, {"fields": ["company", "last_name"]})
    assert "smith" in lead.search_text


def test_overwrite_replaces_the_existing_leads_fields_and_skip_leaves_it(manager_user):
    lead = LeadFactory(email="sam@example.com", first_name="Sam")
    rows = [HEADER, ["sam@example.com", "Samuel", "", ""]]

    skipped = lead_import_run(job=uploaded(rows, by=manager_user, configure={"on_duplicate": "skip"}), by=manager_user)
    lead.refresh_from_db()
    assert (skipped.skipped_count, lead.first_name) == (1, "Sam")
    assert skipped.report_rows[0]["reason"] == f"lead #{lead.pk} already has this email"

    lead_import_run(job=uploaded(rows, by=manager_user, configure={"on_duplicate": "overwrite"}), by=manager_user)
    lead.refresh_from_db()
    assert lead.first_name == "Samuel"


def test_a_row_repeating_an_email_of_the_file_is_skipped_naming_the_row(manager_user):
    job = uploaded([HEADER, ["a@example.com", "First", "", ""], ["b@example.com", "", "", ""],
                    ["A@Example.com", "Second", "", ""]], by=manager_user)

    job = lead_import_run(job=job, by=manager_user)

    assert Lead.objects.get(email="a@example.com").first_name == "First"
    assert job.report_rows == [{"row": 4, "fate": "skip", "column": "Email", "reason": "same email as row 2"}]


def test_duplicates_found_by_phone_when_chosen(manager_user):
    lead = LeadFactory(email="", phone="+33 6 12 34 56 78", first_name="")
    rows = [["Phone", "First name"], ["+33 6 12 34 56 78", "Paul"], ["+44 20 7946 0000", "Jo"], ["+44 20 7946 0000", "Jo"]]

    job = lead_import_run(job=uploaded(rows, by=manager_user, configure={"dedupe_key": "phone"}), by=manager_user)

    lead.refresh_from_db()
    assert lead.first_name == "Paul"
    assert (job.created_count, job.updated_count, job.skipped_count) == (1, 1, 1)
    assert job.report_rows[-1]["reason"] == "same phone as row 3"


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)"])
def test_a_formula_cell_is_refused_and_written_quoted_to_the_rejected_rows(manager_user, cell):
    job = uploaded([HEADER, ["a@example.com", cell, "", ""], ["b@example.com", "B", "", ""]], by=manager_user)

    job = lead_import_run(job=job, by=manager_user)

    assert list(Lead.objects.values_list("email", flat=True)) == ["b@example.com"]
    assert job.report_rows[0]["column"] == "First name"
    assert "formula" in job.report_rows[0]["reason"]
    rows = rejected_rows(job)
    assert rows[0] == [*HEADER, "row", "error"]
    assert rows[1][:3] == ["a@example.com", "'" + cell, ""]
    assert rows[1][4] == "2"


def test_a_phone_number_with_a_plus_is_not_a_formula(manager_user):
    lead_import_run(job=uploaded([["Email", "Phone"], ["a@example.com", "+33 (0)6 12-34-56-78"]], by=manager_user),
                    by=manager_user)

    assert Lead.objects.get().phone == "+33 (0)6 12-34-56-78"


def test_a_ten_megabyte_cell_is_that_rows_error_only(manager_user):
    data = csv_bytes([HEADER, ["a@example.com", "x" * 10_000_000, "", ""], ["b@example.com", "B", "", ""]])

    job = lead_import_run(job=upload(data, by=manager_user), by=manager_user)

    assert (job.status, job.created_count, job.error_count) == (LeadImport.Status.DONE, 1, 1)
    assert job.report_rows[0]["reason"] == "First name: the cell has 10,000,000 characters; at most 10,000 are taken"
    assert len(rejected_rows(job)[1][1]) == 10_000  # the rejected file keeps it cut to the cap


def test_characters_the_encoding_cannot_read_are_that_rows_error(manager_user):
    data = csv_bytes([HEADER, ["a@example.com", "Zoé", "", ""]], encoding="latin-1")

    job = lead_import_check(job=upload(data, by=manager_user, encoding="utf-8"), by=manager_user)

    assert job.error_count == 1
    assert "choose the file's encoding" in job.report_rows[0]["reason"]


def test_dates_are_read_in_the_chosen_format_and_a_bad_one_is_the_rows_error(manager_user):
    rows = [["Email", "Created on"], ["a@example.com", "03/02/2026"], ["b@example.com", "2026-02-03"], ["c@example.com", "31/31/2026"]]
    job = uploaded(rows, by=manager_user, configure={"date_format": "%d/%m/%Y"})

    job = lead_import_run(job=job, by=manager_user)

    lead = Lead.objects.get()
    # A date is midnight where the team works (TIME_ZONE), as on the pages.
    assert (lead.email, timezone.localtime(lead.created_at).isoformat()[:19]) == ("a@example.com", "2026-02-03T00:00:00")
    assert StageChange.objects.get(lead=lead).changed_at == lead.created_at
    assert [r["reason"] for r in job.report_rows] == [
        "Created on: '2026-02-03' is not a date written as 31/01/2026 (day first)",
        "Created on: '31/31/2026' is not a date written as 31/01/2026 (day first)",
    ]


def test_a_date_column_needs_its_format_chosen(manager_user):
    job = uploaded([["Email", "Created on"], ["a@example.com", "03/02/2026"]], by=manager_user)

    with pytest.raises(ValidationError) as exc:
        lead_import_check(job=job, by=manager_user)

    assert "Choose the format of the dates" in exc.value.message_dict["date_format"][0]


def test_a_column_mapped_to_a_field_leads_do_not_have_is_refused_before_the_run(manager_user):
    job = uploaded([HEADER, ["a@example.com", "A", "", ""]], by=manager_user)

    with pytest.raises(ValidationError) as exc:
        lead_import_configure(job=job, by=manager_user, mapping={"Email": "email", "First name": "nickname"})

    assert "'First name' is mapped to 'nickname', which is not a lead field" in exc.value.message_dict["mapping"][0]
    job.refresh_from_db()
    assert job.mapping["First name"] == "first_name"
    job.mapping["First name"] = "nickname"  # set behind the service's back: the run refuses it too
    with pytest.raises(ValidationError):
        lead_import_run(job=job, by=manager_user)
    assert Lead.objects.count() == 0


def test_a_mapping_without_email_or_phone_is_refused(manager_user):
    job = uploaded([HEADER, ["a@example.com", "A", "", ""]], by=manager_user)

    with pytest.raises(ValidationError) as exc:
        lead_import_configure(job=job, by=manager_user, mapping={"Email": "", "First name": "first_name"})

    assert "Map a column to email or to phone" in " ".join(exc.value.message_dict["mapping"])


def test_a_failing_chunk_is_undone_whole_and_the_job_says_which_rows_were_written(manager_user, settings, monkeypatch):
    from imports import plan_leads

    settings.CRM_IMPORT_CHUNK_ROWS = 2
    calls = []
    real = plan_leads.leads_import_batch

    def fail_on_second_chunk(**kwargs):
        calls.append(1)
        leads = real(**kwargs)  # written, then undone with the chunk
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return leads

    monkeypatch.setattr(plan_leads, "leads_import_batch", fail_on_second_chunk)
    rows = [HEADER, *[[f"lead{n}@example.com", "", "", f"Company {n}"] for n in range(5)]]

    job = lead_import_run(job=uploaded(rows, by=manager_user), by=manager_user)

    job.refresh_from_db()
    assert job.status == LeadImport.Status.FAILED
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["lead0@example.com", "lead1@example.com"]
    assert Company.objects.count() == 2 and StageChange.objects.count() == 2
    assert DomainEvent.objects.filter(type=EventType.LEAD_CREATED).count() == 2
    assert (job.last_row_written, job.created_count, job.rows_done) == (3, 2, 2)
    assert job.failure == ("The import stopped: the database went away. Rows up to row 3 of the file were written; "
                           "the rows after it were not.")


def test_a_job_runs_once(manager_user):
    job = lead_import_run(job=uploaded([HEADER, ["a@example.com", "", "", ""]], by=manager_user), by=manager_user)

    with pytest.raises(ValidationError, match="already done"):
        lead_import_run(job=LeadImport.objects.get(pk=job.pk), by=manager_user)
    assert Lead.objects.count() == 1


def test_a_sales_rep_cannot_import(rep_user):
    with pytest.raises(PermissionDenied, match="Only a manager or a marketer can import leads"):
        upload(csv_bytes([HEADER]), by=rep_user)


def test_a_rep_cannot_run_a_job_someone_else_uploaded(manager_user, rep_user):
    job = uploaded([HEADER, ["a@example.com", "", "", ""]], by=manager_user)

    with pytest.raises(PermissionDenied):
        lead_import_run(job=job, by=rep_user)
    with pytest.raises(PermissionDenied):
        lead_import_check(job=job, by=rep_user)
    assert Lead.objects.count() == 0


def test_the_task_runs_the_job_as_its_uploader(manager_user):
    from imports.tasks import run_import

    job = uploaded([HEADER, ["a@example.com", "", "", ""]], by=manager_user)

    run_import.delay(job.pk)
    run_import.delay(job.pk)  # delivered twice: runs once

    job.refresh_from_db()
    assert (job.status, job.created_count, job.rows_done) == (LeadImport.Status.DONE, 1, 1)
    assert StageChange.objects.get().changed_by == manager_user
