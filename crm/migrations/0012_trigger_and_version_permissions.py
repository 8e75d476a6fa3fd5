"""Marketers and managers set a sequence's triggers and read its versions (which the services write)."""

from django.db import migrations

from ._role_permissions import granting

TRIGGERS = ("add_trigger", "change_trigger", "view_trigger", "delete_trigger")
READ = ("view_sequenceversion", "view_triggerfired")


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_assignment_rule_permissions"), ("nurturing", "0012_triggers")]
    operations = [migrations.RunPython(*granting("nurturing", {"Manager": TRIGGERS + READ, "Marketer": TRIGGERS + READ}))]
