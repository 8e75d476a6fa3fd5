"""Importing from a file: upload, preview, set up, dry run, run. The file's rows are leads, a deal history
or companies (`LeadImport.target`); what a row becomes is its kind's planner's (imports.plan_leads,
imports.plan_deals, imports.plan_companies), the flow around it is the same for all.

Guarantees:
- Only managers and marketers import (core.policy.check_may_import_leads).
- A dry run (`lead_import_check`) and a run (`lead_import_run`) give every row
  the same fate: created, updated, skipped (a duplicate in the file or in the
  CRM) or refused with the column and the reason. The dry run writes nothing.
- A run writes in chunks of CRM_IMPORT_CHUNK_ROWS rows, each in one
  transaction, with the job's counts and progress saved in that same
  transaction: whatever the job says was written, was. A chunk that fails is
  undone whole; the job is then failed and `last_row_written` says up to which
  row of the file the rows were written.
- The file is read as a stream and each chunk takes a fixed number of
  queries; what grows with the file is the set of keys seen (to find
  duplicates within it), a few bytes a row.
"""

import csv
import logging
import re
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from core.events import Actor
from core.models import ActorKind
from core.policy import check_may_import_leads

from . import plan_companies, plan_deals, plan_leads, reading
from .models import LeadImport
from .rows import Fate

log = logging.getLogger(__name__)

# Rows not created as they are, kept on the job for the report (the rejected-rows file has every refused one).
REPORT_ROWS = 100
# What each kind of file becomes: its fields, date fields, header names, rules of a set-up and row planner.
_KINDS = {
    LeadImport.Target.LEADS: plan_leads,
    LeadImport.Target.DEALS: plan_deals,
    LeadImport.Target.COMPANIES: plan_companies,
}


def _kind(job: LeadImport):
    return _KINDS[LeadImport.Target(job.target)]


def fields_of(job: LeadImport) -> dict[str, str]:
    """What a column of this job's file may fill in, with its label."""
    return _kind(job).FIELDS


def _header_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def suggest_mapping(columns: list[str], target: str = LeadImport.Target.LEADS) -> dict[str, str]:
    """For each column, the field its header names ("E-mail" → email, "First name" → first_name), else ""."""
    kind, names = _KINDS[LeadImport.Target(target)], {}
    for name, label in kind.FIELDS.items():
        names[_header_key(name)] = name
        names[_header_key(label)] = name
        for alias in kind.HEADER_NAMES.get(name, ()):
            names[alias] = name
    mapping, taken = {}, set()
    for column in columns:
        name = names.get(_header_key(column), "")
        if name in taken:
            name = ""
        taken.add(name)
        mapping[column] = name
    return mapping


# --- Upload and preview ----------------------------------------------------------------


def lead_import_upload(*, file, name: str, by, encoding: str = "", separator: str = "",
                       target: str = LeadImport.Target.LEADS) -> LeadImport:
    """Keep an uploaded file (a Django File or an open binary file) and read how it is written; `target` says
    what its rows are (leads, a deal history, companies).

    Refuses (ValidationError) a file that is not CSV or XLSX, too large, or whose encoding or separator
    is not one offered. The encoding and separator, unless given, are detected.
    """
    check_may_import_leads(by)
    errors = {}
    if target not in LeadImport.Target.values:
        raise ValidationError({"target": [f"Import one of: {', '.join(LeadImport.Target.values)}."]})
    try:
        kind = reading.file_kind(name)
    except reading.FileUnreadable as exc:
        raise ValidationError({"file": [str(exc)]}) from None
    size = getattr(file, "size", None)
    if size is None:
        file.seek(0, 2)
        size = file.tell()
        file.seek(0)
    if size > settings.CRM_IMPORT_MAX_BYTES:
        errors["file"] = [f"The file is {size // 1_000_000} MB; at most {settings.CRM_IMPORT_MAX_BYTES // 1_000_000} MB "
                          "can be imported at once: split it."]
    if encoding and encoding not in reading.ENCODINGS:
        errors["encoding"] = [f"Choose one of: {', '.join(reading.ENCODINGS)}."]
    if separator and separator not in reading.SEPARATORS:
        errors["separator"] = ["Choose a comma, a semicolon or a tab."]
    if errors:
        raise ValidationError(errors)
    job = LeadImport(created_by=by, original_name=Path(name).name[:255], kind=kind, target=target)
    job.file.save(Path(name).name, file if isinstance(file, File) else File(file), save=False)
    if kind == "csv":
        detected = reading.detect_csv(Path(job.file.path), encoding=encoding, separator=separator)
        job.encoding, job.separator = detected.encoding, detected.separator
    columns, _ = _head(job, rows=0)
    if not any(columns):
        job.file.delete(save=False)
        raise ValidationError({"file": ["The file has no header row: its first row must name the columns."]})
    job.mapping = suggest_mapping(columns, target)
    job.save()
    return job


def _head(job: LeadImport, *, rows: int):
    try:
        return reading.head(Path(job.file.path), kind=job.kind, encoding=job.encoding or "utf-8",
                            separator=job.separator or ",", rows=rows)
    except reading.FileUnreadable as exc:
        raise ValidationError({"file": [str(exc)]}) from None


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[list]
    encoding: str
    separator: str
    mapping: dict[str, str]
    # The offered date formats that read every date of the first rows; one must be chosen when several do.
    date_formats: list[str]
    date_columns: list[str] = field(default_factory=list)
    # A deal history's stage names in the file with their counts, and what each is mapped to.
    stages: list[tuple[str, int]] = field(default_factory=list)
    stage_mapping: dict[str, str] = field(default_factory=dict)

    @property
    def date_format_needed(self) -> bool:
        return bool(self.date_columns) and len(self.date_formats) != 1


def lead_import_preview(*, job: LeadImport, rows: int = 5, mapping: dict | None = None) -> Preview:
    """The columns, the first `rows` rows, how the file was read, the mapping (`mapping`, else the job's, else
    suggested) and the date formats that fit the date columns' first 200 values; for a deal history, the
    stage names of the whole file with their counts, and their mapping (the job's, else suggested)."""
    columns, first = _head(job, rows=max(rows, 200))
    mapping = mapping or job.mapping or suggest_mapping(columns, job.target)
    date_fields = _kind(job).DATE_FIELDS
    date_columns = [column for column in columns if mapping.get(column) in date_fields]
    indexes = [columns.index(column) for column in date_columns]
    values = [cells[i] for cells in first for i in indexes if i < len(cells)]
    stages, stage_mapping = [], {}
    if job.target == LeadImport.Target.DEALS and rows:
        try:
            stages = plan_deals.stage_counts(job, columns, mapping)
        except reading.FileUnreadable as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        stage_mapping = {**plan_deals.suggest_stages(name for name, _ in stages), **(job.stage_mapping or {})}
    return Preview(
        columns=columns, rows=first[:rows], encoding=job.encoding, separator=job.separator, mapping=mapping,
        date_formats=reading.date_formats_fitting(values) if date_columns else list(reading.DATE_FORMATS),
        date_columns=date_columns, stages=stages, stage_mapping=stage_mapping,
    )


# --- Set up --------------------------------------------------------------------------------


def lead_import_configure(
    *, job: LeadImport, by, mapping: dict | None = None, dedupe_key: str | None = None,
    on_duplicate: str | None = None, date_format: str | None = None, encoding: str | None = None,
    separator: str | None = None, stage_mapping: dict | None = None, unknown_owner: str | None = None,
    currency: str | None = None,
) -> LeadImport:
    """Set how the file is read and what its columns fill in; refused (ValidationError, by setting) when the
    mapping names a column the file lacks or a field the import does not fill in, maps two columns to one
    field, or maps dates without a format that reads them; a lead import must map email or phone, a company
    import the name, a deal history the opportunity id, stage and engage date, with its stages mapped to an
    open stage, won or lost."""
    check_may_import_leads(by)
    _check_not_started(job)
    if currency is not None:
        currency = currency.strip().upper()
    for name, value in (("mapping", mapping), ("dedupe_key", dedupe_key), ("on_duplicate", on_duplicate),
                        ("date_format", date_format), ("encoding", encoding), ("separator", separator),
                        ("stage_mapping", stage_mapping), ("unknown_owner", unknown_owner), ("currency", currency)):
        if value is not None:
            setattr(job, name, value)
    if encoding is not None and encoding not in reading.ENCODINGS:
        raise ValidationError({"encoding": [f"Choose one of: {', '.join(reading.ENCODINGS)}."]})
    if separator is not None and separator not in reading.SEPARATORS:
        raise ValidationError({"separator": ["Choose a comma, a semicolon or a tab."]})
    columns, _ = _head(job, rows=0)
    _check_setup(job, columns)
    job.status = LeadImport.Status.UPLOADED  # a check made before the change no longer holds
    job.save()
    return job


def _check_not_started(job: LeadImport, *, also=()):
    if job.status not in (LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED, *also):
        raise ValidationError(f"This import is {job.get_status_display().lower()}: upload the file again to import it anew.")


def _check_setup(job: LeadImport, columns: list[str]) -> None:
    errors: dict[str, list[str]] = {}
    kind = _kind(job)
    mapping = {column: target for column, target in (job.mapping or {}).items() if target}
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in columns:
            errors.setdefault("mapping", []).append(f"The file has no column {column!r}.")
        elif columns.count(column) > 1:
            errors.setdefault("mapping", []).append(f"The file has {columns.count(column)} columns named {column!r}: rename them.")
        if target not in kind.FIELDS:
            errors.setdefault("mapping", []).append(
                f"Column {column!r} is mapped to {target!r}, which is not a {kind.NOUN} field. "
                f"Choose one of {', '.join(kind.FIELDS)}, or ignore the column."
            )
        elif target in used:
            errors.setdefault("mapping", []).append(f"Columns {used[target]!r} and {column!r} are both mapped to {target}: keep one.")
        used.setdefault(target, column)
    kind.check_setup(job, used, errors)
    if job.on_duplicate not in LeadImport.OnDuplicate.values:
        errors["on_duplicate"] = [f"Choose one of {', '.join(LeadImport.OnDuplicate.values)}."]
    if kind.DATE_FIELDS & set(used) and job.date_format not in reading.DATE_FORMATS:
        errors["date_format"] = [
            "Choose the format of the dates (" + "; ".join(reading.DATE_FORMATS.values()) + ")."
        ]
    if errors:
        raise ValidationError(errors)


# --- Dry run and run -------------------------------------------------------------------------


class _Rejected:
    """The refused rows, written as they come to a CSV file with the row number and the error; formula-safe."""

    def __init__(self, columns: list[str], *, previous=None):
        self.handle = tempfile.NamedTemporaryFile("w+", encoding="utf-8", newline="", suffix=".csv", delete=False)
        self.writer = csv.writer(self.handle)
        self.writer.writerow([reading.formula_safe(c) for c in [*columns, "row", "error"]])
        self.cap = settings.CRM_IMPORT_MAX_CELL_CHARS
        self.count = 0
        if previous:  # a resumed run keeps the rows refused before it stopped
            with previous.open("rb") as handle:
                lines = iter(handle.read().decode("utf-8").splitlines(keepends=True))
                next(lines, None)
                for line in lines:
                    self.handle.write(line)
                    self.count += 1

    def add(self, fate: Fate):
        cells = [reading.formula_safe(cell if not isinstance(cell, str) else cell[: self.cap]) for cell in fate.cells]
        self.writer.writerow([*cells, fate.row, reading.formula_safe(fate.reason)])
        self.count += 1

    def keep(self, job: LeadImport):
        self.handle.flush()
        self.handle.seek(0)
        if job.rejected_file:
            job.rejected_file.delete(save=False)
        if self.count:
            stem = Path(job.original_name).stem[:100]
            job.rejected_file.save(f"{stem}-rejected.csv", File(self.handle), save=False)
        self.close()

    def close(self):
        self.handle.close()
        Path(self.handle.name).unlink(missing_ok=True)


def _chunks(job: LeadImport):
    rows = reading.read_rows(Path(job.file.path), kind=job.kind, encoding=job.encoding or "utf-8",
                             separator=job.separator or ",")
    header = next(rows, (0, []))[1]
    columns = [str(c).strip() for c in header]
    size = settings.CRM_IMPORT_CHUNK_ROWS

    def chunks():
        try:
            while chunk := list(islice(rows, size)):
                yield chunk
        finally:
            rows.close()

    return columns, chunks()


def _count(job: LeadImport, fates: list[Fate]) -> None:
    for fate in fates:
        if fate.fate == "create":
            job.created_count += 1
        elif fate.fate == "update":
            job.updated_count += 1
        elif fate.fate == "skip":
            job.skipped_count += 1
        else:
            job.error_count += 1
        if fate.fate != "create" and len(job.report_rows) < REPORT_ROWS:
            job.report_rows.append({"row": fate.row, "fate": fate.fate, "column": fate.column, "reason": fate.reason})
    job.rows_done += len(fates)


def _reset_counts(job: LeadImport) -> None:
    job.rows_done = job.created_count = job.updated_count = job.skipped_count = job.error_count = 0
    job.report_rows = []
    job.failure = ""
    job.last_row_written = None


def lead_import_check(*, job: LeadImport, by) -> LeadImport:
    """The dry run: every row's fate as the run would give it, counted, the first REPORT_ROWS not plainly
    created kept on the job, the refused rows in the rejected-rows file. No lead or company is written.

    On a worker (the job queued by `lead_import_queue_check`), the counts are saved after each chunk for the
    page's progress bar, and a dry run that cannot be made puts the job back as uploaded with the reason."""
    check_may_import_leads(by)
    _check_not_started(job, also=[LeadImport.Status.CHECKING])
    on_worker = job.status == LeadImport.Status.CHECKING
    try:
        columns, chunks = _chunks_or_refuse(job)
        _check_setup(job, columns)
        _reset_counts(job)
        planner, rejected = _kind(job).Planner(job, columns), _Rejected(columns)
        try:
            for chunk in chunks:
                fates = planner.plan(chunk)
                _count(job, fates)
                for fate in fates:
                    if fate.fate == "error":
                        rejected.add(fate)
                if on_worker:
                    job.progress_at = timezone.now()
                    job.save(update_fields=[*_PROGRESS_FIELDS, "progress_at"])
            rejected.keep(job)
        except reading.FileUnreadable as exc:
            rejected.close()
            raise ValidationError({"file": [str(exc)]}) from None
    except ValidationError as exc:
        if on_worker:
            job.status, job.failure = LeadImport.Status.UPLOADED, f"The dry run stopped: {_failure_text(exc)}."
            job.save()
        raise
    job.rows_total = job.rows_done
    job.status = LeadImport.Status.CHECKED
    job.save()
    return job


def lead_import_queue_check(*, job: LeadImport, by) -> LeadImport:
    """Mark the dry run waiting for a worker (imports.tasks.check_import), once."""
    return _claim(job, by=by, before=[LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED],
                  after=LeadImport.Status.CHECKING, progress_at=timezone.now())


def _chunks_or_refuse(job):
    try:
        return _chunks(job)
    except reading.FileUnreadable as exc:
        raise ValidationError({"file": [str(exc)]}) from None


_PROGRESS_FIELDS = ["rows_done", "created_count", "updated_count", "skipped_count", "error_count", "report_rows",
                    "last_row_written"]


def lead_import_queue(*, job: LeadImport, by) -> LeadImport:
    """Mark the job waiting for a worker, once: a second click is refused (ValidationError)."""
    return _claim(job, by=by, before=[LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED],
                  after=LeadImport.Status.QUEUED)


def lead_import_start(*, job: LeadImport, by) -> LeadImport:
    """Mark the job running, once: a second start (a task delivered twice) is refused (ValidationError)."""
    now = timezone.now()
    return _claim(job, by=by, before=[LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED, LeadImport.Status.QUEUED],
                  after=LeadImport.Status.RUNNING, started_at=now, progress_at=now)


def _claim(job: LeadImport, *, by, before: list[str], after: str, **fields) -> LeadImport:
    check_may_import_leads(by)
    columns, _ = _head(job, rows=0)
    _check_setup(job, columns)
    claimed = LeadImport.objects.filter(pk=job.pk, status__in=before).update(status=after, **fields)
    if claimed != 1:
        job.refresh_from_db()
        raise ValidationError(f"This import is already {job.get_status_display().lower()}.")
    job.refresh_from_db()
    return job


def lead_import_run(*, job: LeadImport, by) -> LeadImport:
    """Write the import, chunk by chunk (see the module's guarantees). Call `lead_import_start` first (the task
    does both). A failure is recorded on the job (status failed, the reason, `last_row_written`), not raised.

    The file is read once: without a dry run before, the number of rows is known at the end. A resumed job
    (`lead_import_resume`) passes over the rows up to `last_row_written`, which were written, and keeps its
    counts; a row repeating one of them is then found in the CRM rather than in the file."""
    if job.status != LeadImport.Status.RUNNING:
        job = lead_import_start(job=job, by=by)
    made_by = Actor(ActorKind.IMPORT_JOB, user=by, ref={"import_job": job.pk})
    reason = f"Imported from {job.original_name} (import #{job.pk})"
    resume_after = job.last_row_written or 0
    if not resume_after:
        _reset_counts(job)
    columns, chunks = _chunks_or_refuse(job)
    planner = _kind(job).Planner(job, columns)
    rejected = _Rejected(columns, previous=job.rejected_file if resume_after else None)
    try:
        for chunk in chunks:
            chunk = [(number, cells) for number, cells in chunk if number > resume_after]
            if not chunk:
                continue
            fates = planner.plan(chunk)
            with transaction.atomic():
                planner.write(fates, made_by=made_by, by=by, reason=reason)
                _count(job, fates)
                job.last_row_written = chunk[-1][0]
                job.progress_at = timezone.now()
                job.save(update_fields=[*_PROGRESS_FIELDS, "progress_at"])
            for fate in fates:
                if fate.fate == "error":
                    rejected.add(fate)
    except Exception as exc:  # noqa: BLE001  (any failure ends the job as failed, with the rows written so far)
        log.exception("Import #%s failed", job.pk)
        job.refresh_from_db(fields=_PROGRESS_FIELDS)
        written = f"rows up to row {job.last_row_written} of the file were written" if job.last_row_written else "no row was written"
        job.failure = f"The import stopped: {_failure_text(exc)}. {written.capitalize()}; the rows after it were not."
        job.status = LeadImport.Status.FAILED
        rejected.keep(job)
    else:
        job.status = LeadImport.Status.DONE
        job.rows_total = max(job.rows_total, job.rows_done)
        rejected.keep(job)
    job.finished_at = timezone.now()
    job.save()
    return job


def lead_imports_reap(*, now=None) -> int:
    """Mark the jobs whose worker stopped (no progress for CRM_IMPORT_STALE_MINUTES) as what they are: a dry run
    goes back to uploaded (it wrote nothing), a run is failed with the rows written, to be resumed. Each job is
    claimed by an optimistic update, so a worker that wakes up late and a second reaper change nothing.
    Returns how many jobs were reaped."""
    now = now or timezone.now()
    stale = now - timedelta(minutes=settings.CRM_IMPORT_STALE_MINUTES)
    reaped = 0
    jobs = LeadImport.objects.filter(status__in=[LeadImport.Status.CHECKING, LeadImport.Status.RUNNING],
                                     progress_at__lt=stale)
    for job in jobs:
        since = timezone.localtime(job.progress_at).strftime("%Y-%m-%d %H:%M")
        if job.status == LeadImport.Status.CHECKING:
            fields = {"status": LeadImport.Status.UPLOADED,
                      "failure": f"The dry run's worker stopped at {since}: run the dry run again."}
        else:
            written = f"rows up to row {job.last_row_written} of the file were written" if job.last_row_written else "no row was written"
            fields = {"status": LeadImport.Status.FAILED, "finished_at": now,
                      "failure": f"The worker running this import stopped at {since}. {written.capitalize()}; "
                                 "the rows after it were not: resume the import to write them."}
        reaped += LeadImport.objects.filter(pk=job.pk, status=job.status, progress_at=job.progress_at).update(**fields)
    return reaped


def lead_import_resume(*, job: LeadImport, by) -> LeadImport:
    """Queue a failed run again, to write the rows after `last_row_written` (those before were written, each
    chunk with its counts); once: a second click is refused (ValidationError)."""
    return _claim(job, by=by, before=[LeadImport.Status.FAILED], after=LeadImport.Status.QUEUED, failure="",
                  finished_at=None)


def _failure_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc) or exc.__class__.__name__
