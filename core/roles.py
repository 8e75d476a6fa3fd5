"""The three kinds of users and how to tell them apart.

Each role is a Django group. The groups and their model permissions are
created by data migrations (crm/migrations), so every database has them;
this module is what code asks at run time.
"""

from django.db import models


class Role(models.TextChoices):
    SALES_REP = "Sales rep", "Sales rep"
    MARKETER = "Marketer", "Marketer"
    MANAGER = "Manager", "Manager"


def user_has_role(user, role: Role) -> bool:
    """True if the user is active and in the role's group (superusers have every role)."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role.value).exists()


def user_is_manager(user) -> bool:
    return user_has_role(user, Role.MANAGER)


def user_can_export_personal_data(user) -> bool:
    """Exports take people's data out of the CRM: only with `leads.export_lead`, which the Manager role has
    (given to the user or to one of their groups, as Django's permission backend reads it).

    Asked in one query: the Leads page asks it on every load, and the backend would read all the user's
    permissions and all their groups' in two (unless something in the request has read them already)."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    if hasattr(user, "_perm_cache"):  # the admin has read them already (ModelBackend's cache): no query at all
        return user.has_perm("leads.export_lead")
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    return Permission.objects.filter(
        Q(user=user) | Q(group__user=user), content_type__app_label="leads", codename="export_lead"
    ).exists()
