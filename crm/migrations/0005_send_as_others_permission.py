"""Managers may make another user the sender of a sequence; marketers may choose only themselves."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def _send_as_others(apps):
    return apps.get_model("auth", "Permission").objects.get(content_type__app_label="nurturing", codename="send_as_others")


def grant(apps, schema_editor):
    # Permissions are created after all migrations ran; create this one now to give it.
    nurturing = apps.get_app_config("nurturing")
    nurturing.models_module = True
    create_permissions(nurturing, apps=apps, verbosity=0)
    nurturing.models_module = None
    manager, _ = apps.get_model("auth", "Group").objects.get_or_create(name="Manager")
    manager.permissions.add(_send_as_others(apps))


def revoke(apps, schema_editor):
    for group in apps.get_model("auth", "Group").objects.filter(name="Manager"):
        group.permissions.remove(_send_as_others(apps))


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_engagement_role_permissions"), ("nurturing", "0007_sequence_send_as_others")]
    operations = [migrations.RunPython(grant, revoke)]
