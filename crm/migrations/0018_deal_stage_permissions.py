"""Managers set the deal stages (name, order, win probability); reps and marketers see them."""

from django.db import migrations

from ._role_permissions import granting

MANAGING = ("add_dealstage", "change_dealstage", "view_dealstage", "view_dealstagechange")
READING = ("view_dealstage", "view_dealstagechange")


class Migration(migrations.Migration):
    dependencies = [("crm", "0017_tag_permissions"), ("leads", "0025_deal_stages")]
    operations = [migrations.RunPython(*granting("leads", {"Manager": MANAGING, "Sales rep": READING,
                                                            "Marketer": READING}))]
