"""Celery tasks of lead imports, on their own queue (CRM_IMPORTS_QUEUE, "imports"): a 100,000-row file never holds
up the emails or the webhooks. Thin: the service does the work and saves the progress after each chunk.
"""

import logging

from celery import shared_task
from django.core.exceptions import ValidationError

from .models import LeadImport
from .services import lead_import_check, lead_import_run, lead_import_start, lead_imports_reap

log = logging.getLogger(__name__)


# Acked early (acks_late off) and safe to deliver twice: the start claims the job once (uploaded, checked or
# queued -> running), so a second delivery finds it running or done and does nothing. A worker killed mid-run leaves the
# job running with the chunks it committed counted; it is not resumed by the broker.
@shared_task(name="imports.tasks.run_import", ignore_result=True, acks_late=False, soft_time_limit=1800, time_limit=1900)
def run_import(job_id: int) -> None:
    job = LeadImport.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None:
        return
    try:
        job = lead_import_start(job=job, by=job.created_by)
    except ValidationError as exc:
        log.info("Import #%s not started: %s", job_id, "; ".join(exc.messages))
        return
    lead_import_run(job=job, by=job.created_by)


# The dry run on the imports queue, like the run: a 100,000-row file is not checked in a web request. Safe to
# deliver twice: a second delivery finds the job no longer checking (checked, or back to uploaded) and does nothing.
@shared_task(name="imports.tasks.check_import", ignore_result=True, acks_late=False, soft_time_limit=1800, time_limit=1900)
def check_import(job_id: int) -> None:
    job = LeadImport.objects.select_related("created_by").filter(pk=job_id, status=LeadImport.Status.CHECKING).first()
    if job is None:
        return
    try:
        lead_import_check(job=job, by=job.created_by)
    except ValidationError as exc:  # recorded on the job by the service
        log.info("Import #%s: dry run refused: %s", job_id, "; ".join(exc.messages))


# Not under imports.tasks.*, so not routed to the imports queue: it must run when the imports worker is dead.
@shared_task(name="imports.reap_stale", ignore_result=True)
def reap_stale() -> int:
    return lead_imports_reap()
