"""Managers may make another user the sender of a sequence; marketers may choose only themselves."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {"Manager": ["send_as_others"]}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("nurturing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="nurturing", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="nurturing", codename__in=GRANTS[group.name]))


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_engagement_role_permissions"), ("nurturing", "0007_sequence_send_as_others")]
    operations = [migrations.RunPython(grant, revoke)]
