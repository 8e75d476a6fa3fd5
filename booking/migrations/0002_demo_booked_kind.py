"""A booked demo is a micro conversion of its own (a request a rep must still answer is "demo-request")."""

from django.db import migrations


def add(apps, schema_editor):
    apps.get_model("leads", "ConversionKind").objects.get_or_create(slug="demo-booked", defaults={"name": "Demo booked"})


def remove(apps, schema_editor):
    apps.get_model("leads", "ConversionKind").objects.filter(slug="demo-booked", conversions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("booking", "0001_initial"), ("leads", "0032_social_profiles_and_touches")]
    operations = [migrations.RunPython(add, remove)]
