"""Marketers and managers keep the content library (through the services); reps may read it."""

from django.db import migrations

from ._role_permissions import granting

CONTENT = ("add_contentblock", "change_contentblock", "view_contentblock", "delete_contentblock")


class Migration(migrations.Migration):
    dependencies = [("crm", "0014_scoring_permissions"), ("nurturing", "0014_content_blocks")]
    operations = [migrations.RunPython(*granting("nurturing", {
        "Manager": CONTENT, "Marketer": CONTENT, "Sales rep": ("view_contentblock",),
    }))]
