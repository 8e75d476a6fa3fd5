"""crm.apps: the admin and anymail with their start-up imports deferred, their checks still run.

The admin's ModelAdmins load with the URLs (crm.urls), or when the admin's checks run, whichever comes
first; the web entry points load the URLs at start. anymail's settings checks import anymail's checks
module when they run.
"""

import os
import subprocess
import sys
from pathlib import Path

from django.core import checks
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent.parent


def run_python(code: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_the_admin_checks_load_and_check_every_modeladmin_first():
    """In a process that has not loaded the URLs, the admin's checks still see every ModelAdmin."""
    out = run_python(
        "import django; django.setup()\n"
        "from django.contrib import admin\n"
        "from django.core import checks\n"
        "before = len(admin.site._registry)\n"
        "errors = checks.run_checks(tags=[checks.Tags.admin])\n"
        "from leads.models import Lead\n"
        "print(before, len(admin.site._registry), admin.site.is_registered(Lead), len(errors))\n"
    )
    before, after, lead_registered, errors = out.split()
    assert before == "0"
    assert int(after) > 20
    assert lead_registered == "True"
    assert errors == "0"


def test_a_broken_modeladmin_is_still_reported(monkeypatch):
    """The deferred discovery does not hide the admin's own errors: a list_display naming no field is admin.E108."""
    from django.contrib import admin

    from leads.models import Lead

    admin.autodiscover()
    model_admin = admin.site.get_model_admin(Lead)
    monkeypatch.setattr(type(model_admin), "list_display", ("no_such_field",))
    ids = {message.id for message in checks.run_checks(tags=[checks.Tags.admin])}
    assert "admin.E108" in ids


def test_the_web_entry_points_load_the_admin_at_start():
    for module in ("crm.wsgi", "crm.asgi"):
        out = run_python(f"import {module}\nfrom django.contrib import admin\nprint(len(admin.site._registry))\n")
        assert int(out) > 20, module


def test_the_urls_load_the_admin():
    out = run_python(
        "import django; django.setup()\n"
        "from django.contrib import admin\n"
        "from django.urls import reverse\n"
        "print(reverse('admin:leads_lead_changelist'), len(admin.site._registry) > 20)\n"
    )
    assert out == "/admin/leads/lead/ True"


def test_anymails_settings_checks_still_run():
    with override_settings(DEBUG=False, ANYMAIL={"DEBUG_API_REQUESTS": True}):
        ids = {message.id for message in checks.run_checks()}
    assert "anymail.W002" in ids
    with override_settings(DEBUG=False, ANYMAIL={}):
        ids = {message.id for message in checks.run_checks()}
    assert "anymail.W002" not in ids
