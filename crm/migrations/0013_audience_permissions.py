"""Marketers and managers save audiences (through the services) and enroll them."""

from django.db import migrations

from ._role_permissions import granting

AUDIENCES = ("add_audience", "change_audience", "view_audience", "delete_audience")


class Migration(migrations.Migration):
    dependencies = [("crm", "0012_trigger_and_version_permissions"), ("nurturing", "0013_audiences")]
    operations = [migrations.RunPython(*granting("nurturing", {"Manager": AUDIENCES, "Marketer": AUDIENCES}))]
