"""Importing leads from a file: upload, preview, set up, dry run, run.

Guarantees:
- Only managers and marketers import (core.policy.check_may_import_leads).
- A dry run (`lead_import_check`) and a run (`lead_import_run`) give every row
  the same fate: created, updated, skipped (a duplicate in the file or in the
  CRM) or refused with the column and the reason. The dry run writes no lead.
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
from datetime import datetime, time
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from core.emails import normalize_email
from core.events import Actor
from core.models import ActorKind
from core.policy import check_may_import_leads
from core.tabular import formula_safe
from leads.importing import DATE_FIELDS, IMPORTABLE_FIELDS, lead_import_clean, leads_import_batch, leads_import_update
from leads.models import Lead

from . import reading
from .models import LeadImport

log = logging.getLogger(__name__)

# Rows not created as they are, kept on the job for the report (the rejected-rows file has every refused one).
REPORT_ROWS = 100
FORMULA_STARTS = ("=", "+", "-", "@")
# "+33 1 23 45 67 89", "-12.5": a number, not a formula, though it starts with + or -.
_NUMBER_LIKE = re.compile(r"^[+-]?[\d\s().\-/]*\d[\d\s().\-/]*$")

# Header names (letters and digits only, lower-cased) taken for each field, besides its name and label.
_HEADER_NAMES = {
    "email": {"email", "emailaddress", "mail", "courriel", "emailadresse"},
    "first_name": {"firstname", "first", "givenname", "forename", "prenom", "vorname"},
    "last_name": {"lastname", "last", "surname", "familyname", "nom", "nachname"},
    "phone": {"phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell"},
    "title": {"title", "jobtitle", "position", "role", "function"},
    "company": {"company", "companyname", "organisation", "organization", "account", "employer", "societe", "firma"},
    "timezone": {"timezone", "tz"},
    "consent_given_at": {"consentdate", "consentgivenon", "consentgivenat", "optindate", "optedinon"},
    "created_at": {"createdon", "createdat", "created", "datecreated", "signupdate", "signedupon"},
}


def _header_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def suggest_mapping(columns: list[str]) -> dict[str, str]:
    """For each column, the lead field its header names ("E-mail" → email, "First name" → first_name), else ""."""
    names = {}
    for name, label in IMPORTABLE_FIELDS.items():
        names[_header_key(name)] = name
        names[_header_key(label)] = name
        for alias in _HEADER_NAMES.get(name, ()):
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


def lead_import_upload(*, file, name: str, by, encoding: str = "", separator: str = "") -> LeadImport:
    """Keep an uploaded file (a Django File or an open binary file) and read how it is written.

    Refuses (ValidationError) a file that is not CSV or XLSX, too large, or whose encoding or separator
    is not one offered. The encoding and separator, unless given, are detected.
    """
    check_may_import_leads(by)
    errors = {}
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
    job = LeadImport(created_by=by, original_name=Path(name).name[:255], kind=kind)
    job.file.save(Path(name).name, file if isinstance(file, File) else File(file), save=False)
    if kind == "csv":
        detected = reading.detect_csv(Path(job.file.path), encoding=encoding, separator=separator)
        job.encoding, job.separator = detected.encoding, detected.separator
    columns, _ = _head(job, rows=0)
    if not any(columns):
        job.file.delete(save=False)
        raise ValidationError({"file": ["The file has no header row: its first row must name the columns."]})
    job.mapping = suggest_mapping(columns)
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

    @property
    def date_format_needed(self) -> bool:
        return bool(self.date_columns) and len(self.date_formats) != 1


def lead_import_preview(*, job: LeadImport, rows: int = 5, mapping: dict | None = None) -> Preview:
    """The columns, the first `rows` rows, how the file was read, the mapping (`mapping`, else the job's, else
    suggested) and the date formats that fit the date columns' first 200 values."""
    columns, first = _head(job, rows=max(rows, 200))
    mapping = mapping or job.mapping or suggest_mapping(columns)
    date_columns = [column for column in columns if mapping.get(column) in DATE_FIELDS]
    indexes = [columns.index(column) for column in date_columns]
    values = [cells[i] for cells in first for i in indexes if i < len(cells)]
    return Preview(
        columns=columns, rows=first[:rows], encoding=job.encoding, separator=job.separator, mapping=mapping,
        date_formats=reading.date_formats_fitting(values) if date_columns else list(reading.DATE_FORMATS),
        date_columns=date_columns,
    )


# --- Set up --------------------------------------------------------------------------------


def lead_import_configure(
    *, job: LeadImport, by, mapping: dict | None = None, dedupe_key: str | None = None,
    on_duplicate: str | None = None, date_format: str | None = None, encoding: str | None = None,
    separator: str | None = None,
) -> LeadImport:
    """Set how the file is read and what its columns fill in; refused (ValidationError, by setting) when the
    mapping names a column the file lacks or a field leads do not have, maps two columns to one field, maps
    neither email nor phone, or maps dates without a format that reads them."""
    check_may_import_leads(by)
    _check_not_started(job)
    for name, value in (("mapping", mapping), ("dedupe_key", dedupe_key), ("on_duplicate", on_duplicate),
                        ("date_format", date_format), ("encoding", encoding), ("separator", separator)):
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


def _check_not_started(job: LeadImport):
    if job.status not in (LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED):
        raise ValidationError(f"This import is {job.get_status_display().lower()}: upload the file again to import it anew.")


def _check_setup(job: LeadImport, columns: list[str]) -> None:
    errors: dict[str, list[str]] = {}
    mapping = {column: target for column, target in (job.mapping or {}).items() if target}
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in columns:
            errors.setdefault("mapping", []).append(f"The file has no column {column!r}.")
        elif columns.count(column) > 1:
            errors.setdefault("mapping", []).append(f"The file has {columns.count(column)} columns named {column!r}: rename them.")
        if target not in IMPORTABLE_FIELDS:
            errors.setdefault("mapping", []).append(
                f"Column {column!r} is mapped to {target!r}, which is not a lead field. "
                f"Choose one of {', '.join(IMPORTABLE_FIELDS)}, or ignore the column."
            )
        elif target in used:
            errors.setdefault("mapping", []).append(f"Columns {used[target]!r} and {column!r} are both mapped to {target}: keep one.")
        used.setdefault(target, column)
    if not {"email", "phone"} & set(used):
        errors.setdefault("mapping", []).append("Map a column to email or to phone: a lead needs one of them.")
    if job.dedupe_key not in LeadImport.DedupeKey.values:
        errors["dedupe_key"] = [f"Find duplicates by {' or '.join(LeadImport.DedupeKey.values)}."]
    elif job.dedupe_key not in used:
        errors["dedupe_key"] = [f"Duplicates are found by {job.dedupe_key}: map a column to it, or choose another key."]
    if job.on_duplicate not in LeadImport.OnDuplicate.values:
        errors["on_duplicate"] = [f"Choose one of {', '.join(LeadImport.OnDuplicate.values)}."]
    if DATE_FIELDS & set(used) and job.date_format not in reading.DATE_FORMATS:
        errors["date_format"] = [
            "Choose the format of the dates (" + "; ".join(reading.DATE_FORMATS.values()) + ")."
        ]
    if errors:
        raise ValidationError(errors)


# --- Reading rows into leads -----------------------------------------------------------------


@dataclass
class Fate:
    row: int
    cells: list
    fate: str  # "create", "update", "skip", "error"
    reason: str = ""
    column: str = ""
    fields: dict = field(default_factory=dict)
    lead: Lead | None = None
    changes: dict = field(default_factory=dict)


class _Planner:
    """Gives each row its fate, a chunk at a time, with one or two queries a chunk (the duplicates in the CRM)."""

    def __init__(self, job: LeadImport, columns: list[str]):
        self.job = job
        self.columns = [(columns.index(column), column, target) for column, target in job.mapping.items() if target]
        self.field_column = {target: column for _, column, target in self.columns}
        self.cap = settings.CRM_IMPORT_MAX_CELL_CHARS
        self.seen_email: dict[str, int] = {}
        self.seen_phone: dict[str, int] = {}
        self.tz = timezone.get_current_timezone()

    def plan(self, chunk: list[tuple[int, list]]) -> list[Fate]:
        fates = [self._read(number, cells) for number, cells in chunk]
        self._dedupe_in_file(fates)
        self._dedupe_in_crm(fates)
        return fates

    def _read(self, number: int, cells: list) -> Fate:
        fields, problems = {}, []
        for index, column, target in self.columns:
            value = cells[index] if index < len(cells) else ""
            problem = None
            if isinstance(value, str):
                if len(value) > self.cap:
                    problem = f"the cell has {len(value):,} characters; at most {self.cap:,} are taken"
                elif "\ufffd" in value:
                    problem = f"characters that are not {self.job.encoding or 'this encoding'}: choose the file's encoding"
                else:
                    value = value.strip()
                    if value.startswith(FORMULA_STARTS) and not _NUMBER_LIKE.match(value):
                        problem = "starts with =, +, - or @ as a spreadsheet formula does: formulas are not imported"
            if problem is None and target in DATE_FIELDS and value != "":
                try:
                    value = timezone.make_aware(datetime.combine(reading.parse_date(value, self.job.date_format), time.min), self.tz)
                except ValueError:
                    label = reading.DATE_FORMATS.get(self.job.date_format, self.job.date_format)
                    problem = f"{value!r} is not a date written as {label}"
            elif problem is None and not isinstance(value, str):
                value = value.isoformat() if hasattr(value, "isoformat") else str(value)
            if problem:
                problems.append((column, problem))
            elif value != "":
                fields[target] = value
        if problems:
            return Fate(number, cells, "error", "; ".join(f"{c}: {p}" for c, p in problems), problems[0][0])
        try:
            lead_import_clean(fields)
        except ValidationError as exc:
            pairs = [(self.field_column.get(name, name), message) for name, messages in exc.message_dict.items() for message in messages]
            return Fate(number, cells, "error", "; ".join(f"{c}: {m}" for c, m in pairs), pairs[0][0])
        if "email" in fields:
            fields["email"] = normalize_email(fields["email"])
        return Fate(number, cells, "create", fields=fields)

    def _dedupe_in_file(self, fates: list[Fate]):
        for fate in fates:
            if fate.fate != "create":
                continue
            email, phone = fate.fields.get("email", ""), fate.fields.get("phone", "")
            if email and email in self.seen_email:
                fate.fate, fate.column = "skip", self.field_column["email"]
                fate.reason = f"same email as row {self.seen_email[email]}"
            elif self.job.dedupe_key == "phone" and phone and phone in self.seen_phone:
                fate.fate, fate.column = "skip", self.field_column["phone"]
                fate.reason = f"same phone as row {self.seen_phone[phone]}"
            else:
                if email:
                    self.seen_email[email] = fate.row
                if phone:
                    self.seen_phone[phone] = fate.row

    def _dedupe_in_crm(self, fates: list[Fate]):
        live = [fate for fate in fates if fate.fate == "create"]
        emails = {fate.fields["email"] for fate in live if fate.fields.get("email")}
        by_email = {}
        if emails:
            for lead in Lead.objects.live().exclude(email="").alias(email_key=Lower("email")).filter(
                email_key__in=sorted(emails)
            ).select_related("company"):
                by_email[normalize_email(lead.email)] = lead
        by_phone = {}
        if self.job.dedupe_key == "phone":
            phones = sorted({fate.fields["phone"] for fate in live if fate.fields.get("phone")})
            if phones:
                for lead in Lead.objects.live().filter(phone__in=phones).select_related("company").order_by("-pk"):
                    by_phone[lead.phone] = lead  # the oldest of a phone wins
        for fate in live:
            email = fate.fields.get("email", "")
            if self.job.dedupe_key == "phone":
                match = by_phone.get(fate.fields.get("phone", ""))
                owner = by_email.get(email)
                if owner is not None and (match is None or owner.pk != match.pk):
                    fate.fate, fate.column = "error", self.field_column["email"]
                    fate.reason = f"{self.field_column['email']}: another lead (#{owner.pk}) already has this email address"
                    continue
            else:
                match = by_email.get(email)
            if match is not None:
                self._duplicate(fate, match)

    def _duplicate(self, fate: Fate, lead: Lead):
        key = self.job.dedupe_key
        fate.lead, fate.column = lead, self.field_column[key]
        if self.job.on_duplicate == LeadImport.OnDuplicate.SKIP:
            fate.fate, fate.reason = "skip", f"lead #{lead.pk} already has this {key}"
            return
        overwrite = self.job.on_duplicate == LeadImport.OnDuplicate.OVERWRITE
        changes = {}
        for name, value in fate.fields.items():
            if name == "created_at":
                continue
            current = lead.company.name if name == "company" and lead.company_id else getattr(lead, name, "")
            if name == "company":
                current = current or ""
            blank = current in ("", None)
            if (blank or overwrite) and value != current and not (name == "company" and str(current).lower() == str(value).lower()):
                changes[name] = value
        if changes:
            fate.fate, fate.changes = "update", changes
            fate.reason = f"lead #{lead.pk}: {', '.join(sorted(changes))}"
        else:
            fate.fate, fate.reason = "skip", f"lead #{lead.pk} already has these details"


# --- Dry run and run -------------------------------------------------------------------------


class _Rejected:
    """The refused rows, written as they come to a CSV file with the row number and the error; formula-safe."""

    def __init__(self, columns: list[str]):
        self.handle = tempfile.NamedTemporaryFile("w+", encoding="utf-8", newline="", suffix=".csv", delete=False)
        self.writer = csv.writer(self.handle)
        self.writer.writerow([formula_safe(c) for c in [*columns, "row", "error"]])
        self.cap = settings.CRM_IMPORT_MAX_CELL_CHARS
        self.count = 0

    def add(self, fate: Fate):
        cells = [formula_safe(cell if not isinstance(cell, str) else cell[: self.cap]) for cell in fate.cells]
        self.writer.writerow([*cells, fate.row, formula_safe(fate.reason)])
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
    created kept on the job, the refused rows in the rejected-rows file. No lead or company is written."""
    check_may_import_leads(by)
    _check_not_started(job)
    columns, chunks = _chunks_or_refuse(job)
    _check_setup(job, columns)
    _reset_counts(job)
    planner, rejected = _Planner(job, columns), _Rejected(columns)
    try:
        for chunk in chunks:
            fates = planner.plan(chunk)
            _count(job, fates)
            for fate in fates:
                if fate.fate == "error":
                    rejected.add(fate)
        rejected.keep(job)
    except reading.FileUnreadable as exc:
        rejected.close()
        raise ValidationError({"file": [str(exc)]}) from None
    job.rows_total = job.rows_done
    job.status = LeadImport.Status.CHECKED
    job.save()
    return job


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
    return _claim(job, by=by, before=[LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED, LeadImport.Status.QUEUED],
                  after=LeadImport.Status.RUNNING, started_at=timezone.now())


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
    does both). A failure is recorded on the job (status failed, the reason, `last_row_written`), not raised."""
    if job.status != LeadImport.Status.RUNNING:
        job = lead_import_start(job=job, by=by)
    made_by = Actor(ActorKind.IMPORT_JOB, user=by, ref={"import_job": job.pk})
    reason = f"Imported from {job.original_name} (import #{job.pk})"
    rows_total = job.rows_total
    _reset_counts(job)
    columns, chunks = _chunks_or_refuse(job)
    if not rows_total:
        job.rows_total = sum(len(chunk) for chunk in _chunks(job)[1])
    planner, rejected = _Planner(job, columns), _Rejected(columns)
    try:
        for chunk in chunks:
            fates = planner.plan(chunk)
            with transaction.atomic():
                leads_import_update(changes=[(f.lead, f.changes) for f in fates if f.fate == "update"], made_by=made_by, by=by)
                creates = [f for f in fates if f.fate == "create"]
                leads_import_batch(rows=[f.fields for f in creates], made_by=made_by, by=by, reason=reason)
                _count(job, fates)
                job.last_row_written = chunk[-1][0]
                job.save(update_fields=_PROGRESS_FIELDS)
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
        rejected.keep(job)
    job.finished_at = timezone.now()
    job.save()
    return job


def _failure_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc) or exc.__class__.__name__
