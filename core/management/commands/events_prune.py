"""Prune the event log: rows older than --days leave the table, written first to an archive file if asked."""

import gzip
import json
from datetime import timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from core.models import DomainEvent, EventCursor

FIELDS = ("id", "type", "occurred_at", "recorded_at", "lead_id", "subject_type", "subject_id",
          "actor_kind", "actor_user_id", "actor_ref", "payload")


class Command(BaseCommand):
    help = (
        "Remove events recorded more than --days ago (oldest first, in batches). With --archive FILE.jsonl.gz, "
        "each row is first appended to that file as one JSON line. Events a reader has not reached yet "
        "(an EventCursor behind them) are kept unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, required=True, help="Keep the events of the last DAYS days.")
        parser.add_argument("--archive", type=Path, help="Append the removed rows to this gzip file (JSON lines).")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--force", action="store_true", help="Prune even what a reader's cursor has not reached.")

    def handle(self, *, days, archive, batch_size, force, **options):
        if days < 1:
            raise CommandError("--days must be 1 or more: the log keeps at least the last day.")
        cutoff = timezone.now() - timedelta(days=days)
        ceiling = None
        if not force:
            slowest = EventCursor.objects.order_by("position").values_list("name", "position").first()
            if slowest is not None:
                ceiling = slowest[1]
        removed = 0
        out = gzip.open(archive, "at", encoding="utf-8") if archive else None
        try:
            while True:
                rows = DomainEvent.objects.filter(recorded_at__lt=cutoff).order_by("id")
                if ceiling is not None:
                    rows = rows.filter(id__lte=ceiling)
                batch = list(rows.values(*FIELDS)[:batch_size])
                if not batch:
                    break
                if out is not None:
                    for row in batch:
                        out.write(json.dumps(row, cls=DjangoJSONEncoder) + "\n")
                    out.flush()
                with transaction.atomic():
                    DomainEvent.objects.filter(id__in=[row["id"] for row in batch]).delete()
                removed += len(batch)
        finally:
            if out is not None:
                out.close()
        where = f", archived to {archive}" if archive else ""
        self.stdout.write(f"Removed {removed} event(s) recorded before {cutoff:%Y-%m-%d %H:%M}{where}.")
        if ceiling is not None and DomainEvent.objects.filter(recorded_at__lt=cutoff, id__gt=ceiling).exists():
            self.stdout.write(
                f"Kept older events a reader has not reached yet (cursor {slowest[0]!r} at #{ceiling}); --force prunes them."
            )
