"""Suppressions are matched on the address's SHA-256, so an erased person's address can be blanked."""

import hashlib

from django.db import DEFAULT_DB_ALIAS, migrations, models

BATCH_SIZE = 1000


def fill_hashes(apps, schema_editor):
    """Hash every address; addresses equal once trimmed and lower-cased are merged first.

    email_hash becomes unique next, so of rows that differ only in case or
    surrounding spaces the oldest (created_at, then id) is kept, normalised,
    and the others are deleted.
    """
    Suppression = apps.get_model("nurturing", "Suppression")
    db = schema_editor.connection.alias if schema_editor is not None else DEFAULT_DB_ALIAS
    rows = Suppression.objects.using(db)
    seen, keep, duplicates = set(), [], []
    for pk, email, current_hash in rows.order_by("created_at", "pk").values_list("pk", "email", "email_hash").iterator(chunk_size=BATCH_SIZE):
        address = (email or "").strip().lower()
        if not address and current_hash:
            continue  # already blanked (erased) with its hash: nothing to recompute
        digest = hashlib.sha256(address.encode()).hexdigest()
        if digest in seen:
            duplicates.append(pk)
        else:
            seen.add(digest)
            keep.append(Suppression(pk=pk, email=address, email_hash=digest))
    # Delete before writing hashes, so no write can collide with a row about to go.
    for start in range(0, len(duplicates), BATCH_SIZE):
        rows.filter(pk__in=duplicates[start:start + BATCH_SIZE]).delete()
    rows.bulk_update(keep, ["email", "email_hash"], batch_size=BATCH_SIZE)


class Migration(migrations.Migration):
    dependencies = [("nurturing", "0002_delivery_fewer_indexes")]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="email_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(fill_hashes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="suppression",
            name="email_hash",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="suppression",
            name="email",
            field=models.EmailField(blank=True, help_text="Stored lower-cased; blank once the person is erased.", max_length=254),
        ),
        migrations.AlterField(
            model_name="suppression",
            name="reason",
            field=models.CharField(
                choices=[("unsubscribed", "Unsubscribed"), ("bounced", "Hard bounce"), ("soft_bounces", "Repeated soft bounces"),
                         ("complained", "Spam complaint"), ("erased", "Person erased"), ("manual", "Added by hand")],
                default="manual",
                max_length=20,
            ),
        ),
    ]
