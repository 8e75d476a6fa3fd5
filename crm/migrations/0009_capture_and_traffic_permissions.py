"""Marketers build capture forms, add conversion kinds and review the quarantine; managers too, and both read traffic."""

from django.db import migrations

from ._role_permissions import granting

FORMS = ("add_captureform", "change_captureform", "view_captureform", "delete_captureform",
         "view_quarantine", "change_quarantine")
KINDS = ("add_conversionkind", "change_conversionkind", "view_conversionkind", "view_conversion", "view_leadtouch")
TRAFFIC = ("view_pageview", "view_trafficdaily", "view_visitor")


def grant(apps, schema_editor):
    for app_label, codenames in (("capture", FORMS), ("leads", KINDS), ("traffic", TRAFFIC)):
        granting(app_label, {"Marketer": codenames, "Manager": codenames})[0](apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_event_log_permissions"),
        ("capture", "0001_initial"),
        ("leads", "0011_conversion_kinds"),
        ("traffic", "0001_initial"),
    ]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
