"""Managers read the event log (the audit trail) in the admin."""

from django.db import migrations

from ._role_permissions import granting


class Migration(migrations.Migration):
    dependencies = [("crm", "0007_send_as_others_permission"), ("core", "0001_event_log")]
    operations = [migrations.RunPython(*granting("core", {"Manager": ("view_domainevent",)}))]
