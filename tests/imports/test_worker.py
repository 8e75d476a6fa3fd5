"""The dry run and the run on a worker: progress, a dead worker's job reaped honestly, then resumed after the rows it
wrote; a run without a dry run reads the file once."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from imports import plan_leads, reading
from imports.models import LeadImport
from imports.services import lead_import_queue_check, lead_import_resume, lead_import_run, lead_imports_reap
from imports.tasks import check_import, reap_stale
from leads.models import Lead

from .conftest import uploaded

pytestmark = pytest.mark.django_db

HEADER = ["Email", "First name"]


def five_leads(by):
    return uploaded([HEADER, *[[f"lead{n}@example.com", f"N{n}"] for n in range(5)], ["bad", "x"]], by=by)


def test_the_dry_run_waits_for_a_worker_with_its_progress_polled_then_the_page_shows_its_report(client, manager_user):
    client.force_login(manager_user)
    job = lead_import_queue_check(job=five_leads(manager_user), by=manager_user)

    progress = client.get(reverse("imports:progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert job.status == LeadImport.Status.CHECKING
    assert 'hx-trigger="every 1s"' in progress.content.decode() and "HX-Refresh" not in progress.headers
    check_import(job.pk)
    check_import(job.pk)  # delivered twice: the second finds nothing to check

    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count, Lead.objects.count()) == ("checked", 5, 1, 0)
    progress = client.get(reverse("imports:progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert progress.headers["HX-Refresh"] == "true"


def die_after_first_chunk(monkeypatch, settings):
    """The worker is killed while writing the second chunk (a BaseException: nothing catches it)."""
    settings.CRM_IMPORT_CHUNK_ROWS = 2
    real, calls = plan_leads.leads_import_batch, []

    def batch(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("killed")
        return real(**kwargs)

    monkeypatch.setattr(plan_leads, "leads_import_batch", batch)
    return lambda: monkeypatch.setattr(plan_leads, "leads_import_batch", real)


def test_a_run_whose_worker_died_is_failed_honestly_after_a_while_then_resumed_after_its_last_written_row(
        manager_user, monkeypatch, settings):
    revive = die_after_first_chunk(monkeypatch, settings)
    job = five_leads(manager_user)
    with pytest.raises(SystemExit):
        lead_import_run(job=job, by=manager_user)
    job.refresh_from_db()
    assert (job.status, job.last_row_written, Lead.objects.count()) == ("running", 3, 2)

    assert lead_imports_reap() == 0  # not stale yet
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        assert reap_stale() == 1
        assert lead_imports_reap() == 0  # reaped once
    job.refresh_from_db()
    assert job.status == LeadImport.Status.FAILED
    assert job.failure == ("The worker running this import stopped at "
                           f"{timezone.localtime(job.progress_at):%Y-%m-%d %H:%M}. Rows up to row 3 of the file were "
                           "written; the rows after it were not: resume the import to write them.")

    revive()
    job = lead_import_resume(job=job, by=manager_user)
    job = lead_import_run(job=job, by=manager_user)

    assert (job.status, job.created_count, job.error_count, job.rows_done, job.rows_total) == ("done", 5, 1, 6, 6)
    assert sorted(Lead.objects.values_list("first_name", flat=True)) == ["N0", "N1", "N2", "N3", "N4"]
    with job.rejected_file.open("rb") as handle:
        assert handle.read().decode().splitlines()[1].startswith("bad,x,7,")
    with pytest.raises(ValidationError, match="already done"):
        lead_import_resume(job=job, by=manager_user)  # a job done is not run again


def test_a_dry_run_whose_worker_died_goes_back_to_the_set_up_with_the_reason(manager_user):
    job = lead_import_queue_check(job=five_leads(manager_user), by=manager_user)

    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        lead_imports_reap()

    job.refresh_from_db()
    assert job.status == LeadImport.Status.UPLOADED and job.failure.startswith("The dry run's worker stopped at ")


def test_a_run_without_a_dry_run_reads_the_file_once(manager_user, monkeypatch):
    job = five_leads(manager_user)
    real, reads = reading.read_rows, []

    def counting(*args, **kwargs):
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reading, "read_rows", counting)
    monkeypatch.setattr(reading, "head", lambda *a, **k: (HEADER, []))  # the header check reads no rows

    job = lead_import_run(job=job, by=manager_user)

    assert len(reads) == 1
    assert (job.status, job.rows_total, job.created_count) == ("done", 6, 5)
