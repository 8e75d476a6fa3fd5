"""What the role migrations since 0005 share (Django's migration loader skips this module: its name starts with _)."""

from django.contrib.auth.management import create_permissions


def granting(app_label: str, grants: dict[str, tuple[str, ...]]):
    """RunPython's two functions: give each role group (`grants`: role -> codenames) those permissions of
    `app_label`, creating the permissions first (normally made after all migrations), and take them back."""

    def grant(apps, schema_editor):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
        for role, codenames in grants.items():
            group, _ = Group.objects.get_or_create(name=role)
            group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))

    def revoke(apps, schema_editor):
        Permission = apps.get_model("auth", "Permission")
        for group in apps.get_model("auth", "Group").objects.filter(name__in=grants):
            group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label, codename__in=grants[group.name]))

    return grant, revoke
