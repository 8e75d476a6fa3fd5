"""Give the roles their permissions on resources, form submissions and email events.

Marketers manage the resources leads download; everyone reads submissions
and engagement events (they are logs: nobody edits them by hand).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = ("view", "add", "change", "delete")

GRANTS = {
    "Manager": {("leads", "resource"): ALL, ("leads", "formsubmission"): ("view",), ("nurturing", "emailevent"): ("view",)},
    "Marketer": {("leads", "resource"): ALL, ("leads", "formsubmission"): ("view",), ("nurturing", "emailevent"): ("view",)},
    "Sales rep": {("leads", "resource"): ("view",), ("leads", "formsubmission"): ("view",), ("nurturing", "emailevent"): ("view",)},
}


def grant(apps, schema_editor):
    for label in ("leads", "nurturing"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, models in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for (app_label, model), actions in models.items():
            codenames = [f"{action}_{model}" for action in actions]
            group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        for (app_label, model) in GRANTS[group.name]:
            group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label, content_type__model=model))


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0003_nurturing_role_permissions"),
        ("leads", "0005_resources_and_form_submissions"),
        ("nurturing", "0004_email_events"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
