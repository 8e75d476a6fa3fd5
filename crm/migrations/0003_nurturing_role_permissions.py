"""Give the roles their permissions on the nurturing models.

Marketers build and run sequences and keep the suppression list; managers
see and correct everything; reps see what their leads were sent.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = ("view", "add", "change", "delete")

GRANTS = {
    "Manager": {"sequence": ALL, "step": ALL, "enrollment": ALL, "delivery": ("view",), "suppression": ALL},
    "Marketer": {"sequence": ALL, "step": ALL, "enrollment": ALL, "delivery": ("view",), "suppression": ("view", "add")},
    "Sales rep": {"sequence": ("view",), "step": ("view",), "enrollment": ("view", "add", "change"), "delivery": ("view",)},
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("nurturing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, models in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [f"{action}_{model}" for model, actions in models.items() for action in actions]
        group.permissions.add(*Permission.objects.filter(content_type__app_label="nurturing", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="nurturing"))


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_role_groups"), ("nurturing", "0001_initial")]
    operations = [migrations.RunPython(grant, revoke)]
