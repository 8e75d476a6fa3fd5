"""Marketers and managers set the scoring rules and thresholds (the admin's scoring page); reps see each lead's
breakdown on their own pages."""

from django.db import migrations

from ._role_permissions import granting

SETTING = ("add_scoringrule", "change_scoringrule", "delete_scoringrule", "view_scoringrule",
           "change_scoringsettings", "view_scoringsettings", "view_rescorejob", "view_leadscore")


class Migration(migrations.Migration):
    dependencies = [("crm", "0013_audience_permissions"), ("scoring", "0001_initial")]
    operations = [migrations.RunPython(*granting("scoring", {"Manager": SETTING, "Marketer": SETTING}))]
