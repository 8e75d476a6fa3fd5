"""The three roles as groups, with their model permissions.

Managers review and correct everything in the admin. Sales reps work leads:
they add and change leads, log activities and objections, manage tasks and
deals, and read the marketing records. Marketers own sources, campaigns,
spend and personas, and read leads and their history. Later apps add their
own models' permissions to these groups in their own migrations.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ALL = ("view", "add", "change", "delete")

ROLES = {
    "Manager": {
        "leads": {
            model: ALL
            for model in (
                "company", "source", "persona", "campaign", "campaignspend", "lead",
                "stagechange", "activity", "objection", "task", "customer", "deal",
            )
        },
        "crm": {"workerheartbeat": ("view",)},
    },
    "Sales rep": {
        "leads": {
            "lead": ("view", "add", "change"),
            "company": ("view", "add", "change"),
            "activity": ("view", "add", "change"),
            "objection": ("view", "add", "change"),
            "task": ALL,
            "deal": ("view", "add", "change"),
            "customer": ("view", "add"),
            "stagechange": ("view",),
            "source": ("view",),
            "campaign": ("view",),
            "persona": ("view",),
        },
    },
    "Marketer": {
        "leads": {
            "source": ALL,
            "campaign": ALL,
            "campaignspend": ALL,
            "persona": ALL,
            "lead": ("view",),
            "company": ("view",),
            "stagechange": ("view",),
            "activity": ("view",),
            "objection": ("view",),
            "deal": ("view",),
            "customer": ("view",),
        },
    },
}


def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them
    # now so the groups can be given them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, apps_perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [
            (app_label, f"{action}_{model}")
            for app_label, models in apps_perms.items()
            for model, actions in models.items()
            for action in actions
        ]
        perms = [
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in codenames
        ]
        group.permissions.add(*perms)


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("leads", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
