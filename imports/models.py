"""An import from a CSV or XLSX file (leads, a deal history, companies): the file, how to read it, what was made of it."""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.timezone import now


class ImportFiles(FileSystemStorage):
    """Uploaded files and files of rejected rows, under CRM_IMPORTS_DIR (read when used, so tests can move it)."""

    @property
    def base_location(self):
        return str(settings.CRM_IMPORTS_DIR)

    @property
    def location(self):
        return str(settings.CRM_IMPORTS_DIR)

    def deconstruct(self):
        return ("imports.models.ImportFiles", (), {})


import_files = ImportFiles()


class LeadImport(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        CHECKING = "checking", "Dry run under way"
        CHECKED = "checked", "Checked (dry run)"
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Target(models.TextChoices):
        LEADS = "leads", "Leads"
        DEALS = "deals", "Deal history (pipeline)"
        COMPANIES = "companies", "Companies"

    class UnknownOwner(models.TextChoices):
        REFUSE = "refuse", "Refuse the row"
        IMPORTER = "importer", "Give the deal to me"

    class DedupeKey(models.TextChoices):
        EMAIL = "email", "Email (any case)"
        PHONE = "phone", "Phone"

    class OnDuplicate(models.TextChoices):
        FILL_BLANKS = "fill_blanks", "Fill in the existing lead's blank fields"
        OVERWRITE = "overwrite", "Overwrite the existing lead's fields"
        SKIP = "skip", "Skip the row"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=now)
    file = models.FileField(storage=import_files, upload_to="uploads/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=4, default="csv", help_text="csv or xlsx")
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.LEADS,
                              help_text="What the file's rows are")
    encoding = models.CharField(max_length=20, blank=True)
    separator = models.CharField(max_length=1, blank=True)
    date_format = models.CharField(max_length=20, blank=True, help_text="strptime format of the date columns")
    mapping = models.JSONField(default=dict, blank=True, help_text='{"column header": "lead field" or ""} ("" ignores it)')
    dedupe_key = models.CharField(max_length=10, choices=DedupeKey.choices, default=DedupeKey.EMAIL)
    on_duplicate = models.CharField(max_length=12, choices=OnDuplicate.choices, default=OnDuplicate.FILL_BLANKS)
    stage_mapping = models.JSONField(
        default=dict, blank=True,
        help_text='Deal history: {"stage name in the file": "an open lead stage", "won" or "lost"}',
    )
    unknown_owner = models.CharField(max_length=10, choices=UnknownOwner.choices, default=UnknownOwner.REFUSE,
                                     help_text="Deal history: a row whose owner is no user")
    currency = models.CharField(max_length=3, blank=True, help_text="Deal history: the values' currency (default: the CRM's)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    rows_total = models.PositiveIntegerField(default=0, help_text="Data rows in the file (known after a check or a run)")
    rows_done = models.PositiveIntegerField(default=0, help_text="Data rows handled so far: the progress")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    report_rows = models.JSONField(
        default=list, blank=True,
        help_text="The first rows not created as they are (errors, skips, updates): [{row, fate, column, reason}]",
    )
    rejected_file = models.FileField(storage=import_files, upload_to="rejected/%Y/%m/", max_length=300, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_row_written = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="The file's row number up to which the run's rows were written (each chunk commits whole)",
    )
    progress_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the worker last reported progress: a job left running long after it is reaped (imports.services)",
    )
    failure = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Import #{self.pk} of {self.original_name} ({self.get_status_display()})"

    @property
    def percent_done(self) -> int:
        return int(100 * self.rows_done / self.rows_total) if self.rows_total else 0
