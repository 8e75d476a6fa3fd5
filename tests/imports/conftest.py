import csv
import io

import pytest
import time_machine

from imports.services import lead_import_configure, lead_import_upload

NOW = "2026-03-02 09:00Z"


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def import_files(settings, tmp_path):
    settings.CRM_IMPORTS_DIR = tmp_path / "imports"
    return settings.CRM_IMPORTS_DIR


def csv_bytes(rows, *, separator=",", encoding="utf-8") -> bytes:
    text = io.StringIO()
    csv.writer(text, delimiter=separator, lineterminator="\n").writerows(rows)
    return text.getvalue().encode(encoding)


def upload(data: bytes, *, by, name="leads.csv", **options):
    return lead_import_upload(file=io.BytesIO(data), name=name, by=by, **options)


def uploaded(rows, *, by, configure=None, **options):
    """A job for a CSV of `rows` (the header first), set up with `configure` (lead_import_configure's arguments)."""
    job = upload(csv_bytes(rows), by=by, **options)
    if configure:
        job = lead_import_configure(job=job, by=by, **configure)
    return job
