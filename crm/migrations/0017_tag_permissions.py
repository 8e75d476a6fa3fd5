"""Tags on leads: managers and marketers see tags and tag leads in bulk from the admin (through the services);
reps see them (they tag their own leads on the lead page)."""

from django.db import migrations

from ._role_permissions import granting

TAGS = ("view_tag", "add_tag", "view_leadtag", "add_leadtag")


class Migration(migrations.Migration):
    dependencies = [("crm", "0016_variant_permissions"), ("leads", "0024_lead_tags")]
    operations = [migrations.RunPython(*granting("leads", {
        "Manager": TAGS, "Marketer": TAGS, "Sales rep": ("view_tag", "view_leadtag"),
    }))]
