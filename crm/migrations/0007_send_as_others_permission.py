"""Managers may make another user the sender of a sequence; marketers may choose only themselves."""

from django.db import migrations

from ._role_permissions import granting


class Migration(migrations.Migration):
    dependencies = [("crm", "0006_login_lockout_role_permissions"), ("nurturing", "0007_sequence_send_as_others")]
    operations = [migrations.RunPython(*granting("nurturing", {"Manager": ("send_as_others",)}))]
