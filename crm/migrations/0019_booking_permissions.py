"""Marketers and managers set up booking pages; managers also see and set every rep's calendar and meetings."""

from django.db import migrations

from ._role_permissions import granting

PAGES = ("add_bookingpage", "change_bookingpage", "view_bookingpage")
MANAGING = (*PAGES, "add_calendar", "change_calendar", "view_calendar", "view_meeting", "add_workinghours",
            "change_workinghours", "delete_workinghours", "view_workinghours", "add_dayoff", "change_dayoff",
            "delete_dayoff", "view_dayoff")


class Migration(migrations.Migration):
    dependencies = [("crm", "0018_deal_stage_permissions"), ("booking", "0001_initial")]
    operations = [migrations.RunPython(*granting("booking", {"Manager": MANAGING, "Marketer": PAGES}))]
