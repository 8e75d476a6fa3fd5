"""Exporting leads' personal data is a permission of its own, and only managers have it.

Managers also read the record of every export (read only: it is a log).
Marketers and reps keep reading leads, without taking them out of the CRM.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {"Manager": ("export_lead", "view_leadexport")}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("leads")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="leads", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="leads", codename__in=GRANTS[group.name]))


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_engagement_role_permissions"), ("leads", "0007_lead_exports")]
    operations = [migrations.RunPython(grant, revoke)]
