"""Managers unlock accounts locked after too many wrong passwords.

django-axes records failed logins as access attempts; deleting an attempt in
the admin (Axes > Access attempts) lifts its lockout. Managers may read and
delete attempts, and read the log of logins.
"""

from django.db import migrations

from ._role_permissions import granting


class Migration(migrations.Migration):
    dependencies = [("crm", "0005_export_role_permissions"), ("axes", "0010_accessattemptexpiration")]
    operations = [
        migrations.RunPython(*granting("axes", {"Manager": ("view_accessattempt", "delete_accessattempt", "view_accesslog")}))
    ]
