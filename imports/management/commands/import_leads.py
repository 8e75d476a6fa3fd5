"""Import leads, a deal history or companies from a CSV or XLSX file as a manager or a marketer, from the shell.

    manage.py import_leads leads.csv --by alice --dry-run
    manage.py import_leads leads.csv --by alice --mapping "E-mail=email" --mapping "Notes=" --date-format %d/%m/%Y
    manage.py import_leads pipeline.csv --kind deals --by alice --stage Prospecting=sql --stage Engaging=opportunity
    manage.py import_leads accounts.xlsx --kind companies --by alice --on-duplicate fill_blanks
"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from imports import reading
from imports.models import LeadImport
from imports.services import (
    lead_import_check,
    lead_import_configure,
    lead_import_preview,
    lead_import_run,
    lead_import_upload,
)
from leads.history import OUTCOMES


class Command(BaseCommand):
    help = ("Import leads, a deal history or companies from a CSV or XLSX file (the columns are mapped by their "
            "headers unless --mapping says).")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--by", required=True, help="The username of the manager or marketer importing.")
        parser.add_argument("--mapping", action="append", default=[], metavar="COLUMN=FIELD",
                            help="Map a column to a lead field (FIELD empty: ignore the column). Repeat for each.")
        parser.add_argument("--dry-run", action="store_true", help="Report every row's fate; write nothing.")
        parser.add_argument("--encoding", default="", choices=["", *reading.ENCODINGS])
        parser.add_argument("--separator", default="", help="',' ';' or 'tab' (default: detected).")
        parser.add_argument("--date-format", default=None, choices=list(reading.DATE_FORMATS))
        parser.add_argument("--dedupe-key", default=None, choices=LeadImport.DedupeKey.values)
        parser.add_argument("--on-duplicate", default=None, choices=LeadImport.OnDuplicate.values)
        parser.add_argument("--kind", default=LeadImport.Target.LEADS, choices=LeadImport.Target.values,
                            help="What the rows are: leads (default), deals (a pipeline's history) or companies.")
        parser.add_argument("--stage", action="append", default=[], metavar="NAME=OUTCOME",
                            help=f"Deals: what a stage of the file stands for ({', '.join(OUTCOMES)}); "
                                 "usual names (Won, Lost, Prospecting, Engaging...) are guessed. Repeat for each.")
        parser.add_argument("--unknown-owner", default=None, choices=LeadImport.UnknownOwner.values,
                            help="Deals: a row whose owner is no user is refused (default), or given to --by.")
        parser.add_argument("--currency", default=None, help="Deals: the values' currency (default: the CRM's).")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        user = get_user_model().objects.filter(username=options["by"]).first()
        if user is None:
            raise CommandError(f"No user {options['by']!r}.")
        separator = "\t" if options["separator"] in ("tab", "\\t") else options["separator"]
        try:
            with open(path, "rb") as handle:
                job = lead_import_upload(file=handle, name=path.name, by=user, encoding=options["encoding"],
                                         separator=separator, target=options["kind"])
            mapping = dict(job.mapping)
            for pair in options["mapping"]:
                column, sep, target = pair.partition("=")
                if not sep:
                    raise CommandError(f"--mapping {pair!r}: write COLUMN=FIELD.")
                mapping[column.strip()] = target.strip()
            preview = lead_import_preview(job=job, mapping=mapping)
            stages = dict(preview.stage_mapping)
            for pair in options["stage"]:
                name, sep, outcome = pair.partition("=")
                if not sep:
                    raise CommandError(f"--stage {pair!r}: write NAME=OUTCOME.")
                stages[name.strip()] = outcome.strip()
            self.stdout.write(f"Read as {job.kind}" + (f", {job.encoding}, separator {job.separator!r}" if job.kind == "csv" else ""))
            for column in preview.columns:
                self.stdout.write(f"  {column!r} -> {mapping.get(column) or '(ignored)'}")
            for name, count in preview.stages:
                self.stdout.write(f"  stage {name!r} ({count} rows) -> {stages.get(name) or '(not mapped: refused)'}")
            date_format = options["date_format"]
            if date_format is None and len(preview.date_formats) == 1:
                date_format = preview.date_formats[0]
            job = lead_import_configure(job=job, by=user, mapping=mapping, date_format=date_format or "",
                                        dedupe_key=options["dedupe_key"], on_duplicate=options["on_duplicate"],
                                        stage_mapping=stages if job.target == LeadImport.Target.DEALS else None,
                                        unknown_owner=options["unknown_owner"], currency=options["currency"])
            if options["dry_run"]:
                job = lead_import_check(job=job, by=user)
            else:
                job = lead_import_run(job=job, by=user)
        except (ValidationError, PermissionDenied) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError(" ".join(messages)) from None
        self._report(job, dry_run=options["dry_run"])

    def _report(self, job, *, dry_run):
        verb = "Would create" if dry_run else "Created"
        self.stdout.write(
            f"Import #{job.pk}: {job.rows_done} rows. {verb} {job.created_count}, updated {job.updated_count}, "
            f"skipped {job.skipped_count}, refused {job.error_count}."
        )
        for row in job.report_rows:
            self.stdout.write(f"  row {row['row']}: {row['fate']}: {row['reason']}")
        if job.rejected_file:
            self.stdout.write(f"Rejected rows: {job.rejected_file.path}")
        if job.status == LeadImport.Status.FAILED:
            raise CommandError(job.failure)
