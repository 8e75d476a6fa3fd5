"""Exporting leads' personal data is a permission of its own, and only managers have it.

Managers also read the record of every export (read only: it is a log).
Marketers and reps keep reading leads, without taking them out of the CRM.
"""

from django.db import migrations

from ._role_permissions import granting


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_engagement_role_permissions"), ("leads", "0007_lead_exports")]
    operations = [migrations.RunPython(*granting("leads", {"Manager": ("export_lead", "view_leadexport")}))]
