"""Suppressions are matched on the address's SHA-256, so an erased person's address can be blanked."""

import hashlib

from django.db import migrations, models


def fill_hashes(apps, schema_editor):
    Suppression = apps.get_model("nurturing", "Suppression")
    for suppression in Suppression.objects.all().only("pk", "email"):
        digest = hashlib.sha256(suppression.email.strip().lower().encode()).hexdigest()
        Suppression.objects.filter(pk=suppression.pk).update(email_hash=digest)


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
