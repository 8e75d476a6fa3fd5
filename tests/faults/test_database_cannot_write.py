"""A database that cannot write (read-only, disk full, down): each page and endpoint says so with a 503 and
Retry-After, and nothing is half-written. Read-only is made for real on the test database (SQLite: query_only;
PostgreSQL: read-only transactions), so the errors are the drivers' own."""

import sqlite3
import time
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.db.utils import OperationalError
from django.test import Client
from django.urls import reverse

from capture.models import CaptureForm
from capture.services import fill_token
from core.http import database_unavailable
from leads.models import ConversionKind, FormSubmission, Lead
from tests.factories import rep
from tests.faults.report import fault_record

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
NOW = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def form(clock, settings):
    settings.CRM_CAPTURE_QUEUE_URL = "inline"
    settings.CRM_CAPTURE_MIN_FILL_SECONDS = 0
    settings.CRM_RATE_LIMIT_URL = ""
    return CaptureForm.objects.create(
        name="Guide", slug="guide", conversion_kind=ConversionKind.objects.get(slug="guide-download"),
        fields=[{"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"}],
        allowed_sites="www.example.com",
    )


def read_only(on: bool):
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")
        else:
            cursor.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION {'READ ONLY' if on else 'READ WRITE'}")


@pytest.fixture
def browser():
    return Client(raise_request_exception=False)


def test_a_form_sent_while_the_database_is_read_only_is_refused_with_503_and_saves_nothing(browser, form):
    post = {"email": "ada@example.org", "crm_token": fill_token(form)}
    read_only(True)
    try:
        page = browser.post(reverse("capture:hosted", args=["guide"]), post)
        api = browser.post(reverse("capture:api_submit", args=["guide"]), {"fields": {"email": "ada@example.org"}, "crm_token": fill_token(form)},
                           content_type="application/json", headers={"Origin": "https://www.example.com"})
    finally:
        read_only(False)
    assert page.status_code == 503 and page["Retry-After"] == "60"
    assert "read-only at the moment, so nothing was saved" in page.content.decode()
    assert api.status_code == 503, api.content
    assert "nothing was saved" in api.json()["error"]
    assert not Lead.objects.exists() and not FormSubmission.objects.exists()
    written_while_refused = Lead.objects.count() + FormSubmission.objects.count()
    # Writable again: the same form goes through.
    started = time.perf_counter()
    assert browser.post(reverse("capture:hosted", args=["guide"]), post).status_code == 200
    recovery_s = time.perf_counter() - started
    assert Lead.objects.get().email == "ada@example.org"
    fault_record("sqlite_read_only" if connection.vendor == "sqlite" else "postgresql_read_only",
                 recovery_s=recovery_s, duplicates=Lead.objects.count() - 1, lost=1 - FormSubmission.objects.count(),
                 unknown=0, refused_503=sum(r.status_code == 503 for r in (page, api)),
                 half_written=written_while_refused)


def test_the_api_and_the_reps_pages_say_so_too(browser, clock):
    from tests.api.conftest import Api, token_for

    user = rep(username="ada")
    api = Api(token_for(user))
    api.client = browser
    browser.force_login(user)
    read_only(True)
    try:
        created = api.post("/api/v1/leads/", {"email": "grace@example.org"})
        page = browser.post(reverse("workspace:lead_new"), {"first_name": "Grace", "email": "grace@example.org"})
    finally:
        read_only(False)
    assert created.status_code == 503 and created["Content-Type"] == "application/problem+json"
    assert "nothing was saved" in created.json()["detail"]
    assert page.status_code == 503 and "nothing was saved" in page.content.decode()
    assert not Lead.objects.exists()


def test_the_drivers_own_words_for_a_full_disk_and_a_lost_server_are_recognised():
    disk = sqlite3.connect(":memory:")
    disk.execute("CREATE TABLE t (x BLOB)")
    disk.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        for _ in range(10):
            disk.execute("INSERT INTO t VALUES (randomblob(4096))")
    assert database_unavailable(OperationalError(str(full.value))) == "disk_full"
    assert database_unavailable(OperationalError("attempt to write a readonly database")) == "read_only"
    assert database_unavailable(OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused')) == "down"
    assert database_unavailable(OperationalError("FATAL:  sorry, too many clients already")) == "down"
    assert database_unavailable(OperationalError("no such column: x")) is None
    assert database_unavailable(ValueError("database is locked")) is None
