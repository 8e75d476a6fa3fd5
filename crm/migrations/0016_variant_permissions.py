"""Marketers and managers run A/B tests of steps: add, change and read variants (through the services), and read
their results; reps get nothing new."""

from django.db import migrations

from ._role_permissions import granting

VARIANTS = ("add_stepvariant", "change_stepvariant", "view_stepvariant")


class Migration(migrations.Migration):
    dependencies = [("crm", "0015_content_permissions"), ("nurturing", "0015_step_variants")]
    operations = [migrations.RunPython(*granting("nurturing", {"Manager": VARIANTS, "Marketer": VARIANTS}))]
