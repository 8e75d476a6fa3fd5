"""manage.py import_leads: a manager imports from the shell."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from leads.models import Lead

from .conftest import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads_file(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes([["Courriel", "Prénom", "Signed up"], ["a@example.com", "Ann", "31.01.2026"],
                                ["A@example.com", "Ann", "31.01.2026"]], separator=";", encoding="latin-1"))
    return path


def test_a_dry_run_reports_and_writes_nothing(manager_user, leads_file, capsys):
    call_command("import_leads", str(leads_file), "--by", manager_user.username, "--mapping", "Prénom=first_name",
                 "--mapping", "Signed up=created_at", "--dry-run")

    out = capsys.readouterr().out
    assert "cp1252, separator ';'" in out
    assert "Would create 1, updated 0, skipped 1, refused 0." in out
    assert "row 3: skip: same email as row 2" in out
    assert Lead.objects.count() == 0


def test_the_import_writes_with_the_mapping_given(manager_user, leads_file, capsys):
    call_command("import_leads", str(leads_file), "--by", manager_user.username, "--mapping", "Prénom=first_name",
                 "--mapping", "Signed up=created_at")

    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, timezone.localdate(lead.created_at).isoformat()) == ("a@example.com", "Ann", "2026-01-31")
    assert "Created 1, updated 0, skipped 1, refused 0." in capsys.readouterr().out


def test_a_rep_is_refused(rep_user, leads_file):
    with pytest.raises(CommandError, match="Only a manager or a marketer"):
        call_command("import_leads", str(leads_file), "--by", rep_user.username)
