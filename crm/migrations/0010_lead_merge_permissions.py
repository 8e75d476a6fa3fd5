"""Managers read the record of lead merges (read only: it is a log), where they also undo one."""

from django.db import migrations

from ._role_permissions import granting


class Migration(migrations.Migration):
    dependencies = [("crm", "0009_capture_and_traffic_permissions"), ("leads", "0012_lead_merges")]
    operations = [migrations.RunPython(*granting("leads", {"Manager": ("view_leadmerge",)}))]
