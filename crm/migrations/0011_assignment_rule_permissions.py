"""Managers decide who gets captured leads (assignment rules); marketers can read the rules."""

from django.db import migrations

from ._role_permissions import granting

RULES = ("add_assignmentrule", "change_assignmentrule", "view_assignmentrule", "delete_assignmentrule")


class Migration(migrations.Migration):
    dependencies = [("crm", "0010_lead_merge_permissions"), ("capture", "0002_assignment_rules")]
    operations = [migrations.RunPython(*granting("capture", {"Manager": RULES, "Marketer": ("view_assignmentrule",)}))]
