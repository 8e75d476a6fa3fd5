"""The embedded default's disk fills while the CRM is used: every write that needs space is refused with a 503,
Retry-After and the words "the disk is full", nothing is half-written, nothing is sent without being recorded or
sent twice, and once space is back the same requests go through.

The database is made full for real (SQLite's own SQLITE_FULL, "database or disk is full"), see `sqlite_full`;
the tracking spool's disk with the kernel's own ENOSPC, see `spool_full`.
"""

import html
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail import get_connection
from django.db import connection
from django.db.utils import OperationalError
from django.test import Client
from django.urls import reverse

from capture.models import CaptureForm
from capture.services import captures_ingest, fill_token
from core.http import UNAVAILABLE_MESSAGES
from leads.models import Activity, ConversionKind, FormSubmission, Lead
from nurturing import services as nurturing_services
from nurturing.claim import deliveries_claim, deliveries_reap
from nurturing.dispatch import deliveries_send
from nurturing.models import Delivery
from tests.factories import LeadFactory, rep, sequence_with_steps
from tests.faults.report import fault_record
from traffic.ingest import hits_ingest
from traffic.models import PageView, Visitor

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
NOW = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)
DISK_FULL = UNAVAILABLE_MESSAGES["disk_full"]
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="SQLite's max_page_count makes a database full for real; a PostgreSQL server's disk cannot be filled "
           "from a test (its read-only and down faults are tested in test_database_cannot_write and test_database_faults)",
)

FILLER = "zz_disk_full_filler"


def page_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_size")
        return cursor.fetchone()[0]


def sqlite_full(on: bool) -> None:
    """Make the database full (or give it its space back), so SQLite itself answers SQLITE_FULL.

    `PRAGMA max_page_count` caps the pages the database may have, and never below the pages it has: asking
    for 1 caps it at its size now. That alone fails only the writes that need a page beyond it, and a database
    has free pages (the freelist, left by deleted rows and the suite's flushes) that writes take first. So
    those are filled too: a filler table takes blobs, halved each time one no longer fits, down to a few bytes,
    until no free page is left (freelist_count 0). From then on any write that needs a new page fails, as on
    a full disk; a write that fits in the free room of a page it already has still goes (SQLite on a full
    disk also goes on reusing its WAL and its pages). So each request below writes something bigger than a
    page, as a pasted email, a form's long answers, a batch of page views or an email's body are.
    """
    with connection.cursor() as cursor:
        if not on:
            cursor.execute("PRAGMA max_page_count = 2147483646")
            cursor.execute(f"DROP TABLE IF EXISTS {FILLER}")
            return
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {FILLER} (b BLOB)")
        cursor.execute("PRAGMA max_page_count = 1")
        size = 64 * page_size()
        while size >= 8:
            try:
                cursor.execute(f"INSERT INTO {FILLER} VALUES (zeroblob(%s))", [size])
            except OperationalError as exc:
                assert "database or disk is full" in str(exc)
                size //= 2
        cursor.execute("PRAGMA freelist_count")
        assert cursor.fetchone()[0] == 0


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def full_disk():
    """Gives the database its space back whatever the test did."""
    yield sqlite_full
    sqlite_full(False)


@pytest.fixture
def spool(tmp_path, settings):
    settings.CRM_TRACKING_QUEUE_URL = f"spool:{tmp_path / 'tracking'}"
    return tmp_path / "tracking"


@pytest.fixture
def form(clock, settings):
    settings.CRM_CAPTURE_QUEUE_URL = "inline"
    settings.CRM_CAPTURE_MIN_FILL_SECONDS = 0
    settings.CRM_RATE_LIMIT_URL = ""
    return CaptureForm.objects.create(
        name="Demo", slug="demo", conversion_kind=ConversionKind.objects.get(slug="guide-download"),
        fields=[{"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"},
                *({"name": name, "label": name.title(), "type": "textarea"} for name in ("team", "needs", "timeline"))],
        allowed_sites="www.example.com",
    )


@pytest.fixture
def browser():
    return Client(raise_request_exception=False)


def long_text(pages: float) -> str:
    return ("Pasted from the prospect's email. " * 400)[: int(pages * page_size())]


def a_hit(n: int) -> str:
    """A page view as the snippet sends it; a long address and referrer (a campaign's links), 3 KB."""
    return json.dumps({"v": f"visitor-{n:012d}", "u": f"https://www.example.com/guide?utm_source=news&p={'x' * 1400}",
                       "r": f"https://news.example.net/issue?{'y' * 1400}", "t": "Guide", "l": 1})


def send_hit(browser, n: int):
    return browser.post(reverse("traffic:hit"), a_hit(n), content_type="text/plain")


def refused(response) -> bool:
    """A 503 that says the disk is full and when to come back."""
    if response.status_code != 503 or response.get("Retry-After") != "60":
        return False
    if response["Content-Type"].startswith("application/"):
        body = response.json()
        return DISK_FULL in (body.get("detail") or body.get("error") or "")
    return DISK_FULL in html.unescape(response.content.decode())


@sqlite_only
def test_a_full_disk_refuses_every_write_with_503_half_writes_nothing_and_sends_nothing_unrecorded(
        browser, form, spool, full_disk, settings):
    settings.EMAIL_BACKEND = LOCMEM
    user = rep(username="ada")
    lead = LeadFactory(owner=user)
    browser.force_login(user)
    from tests.api.conftest import Api, token_for

    api = Api(token_for(user))
    api.client = browser
    # An email due now whose body is three pages long.
    sequence = sequence_with_steps({"text_template": "Hello {{ first_name }}. " + long_text(3)})
    nurturing_services.enrollment_create(lead=LeadFactory(), sequence=sequence)
    post = {"email": "grace@example.org", "crm_token": fill_token(form),
            **{name: long_text(0.45) for name in ("team", "needs", "timeline")}}
    hosted = reverse("capture:hosted", args=["demo"])
    note_page = reverse("workspace:lead_action", args=[lead.pk, "note"])
    note = {"body": long_text(2)}
    # Ten page views queued before the disk fills, waiting for the ingest worker.
    assert [send_hit(browser, n).status_code for n in range(10)] == [204] * 10
    before = {"leads": Lead.objects.count(), "notes": Activity.objects.count()}

    full_disk(True)
    # The ingest worker: the batch is not written, not even in part, and stays in the spool for the next drain.
    with pytest.raises(OperationalError, match="database or disk is full"):
        hits_ingest()
    assert not PageView.objects.exists() and not Visitor.objects.exists()
    assert len(list(spool.glob("batch-*.jsonl"))) == 1
    # The spool shares the disk: a new page view cannot be queued either (current.jsonl on a device always full).
    os.symlink("/dev/full", spool / "current.jsonl")
    try:
        answers = {"hit": send_hit(browser, 10)}
    finally:
        (spool / "current.jsonl").unlink()
    answers["form"] = browser.post(hosted, post)
    answers["note page"] = browser.post(note_page, note)
    answers["api"] = api.post("/api/v1/activities/notes/", {"lead": lead.pk, "body": note["body"]})
    # The nurturing engine: the batch is claimed, its email handed to the mail server, and then its outcome
    # (with the email's body) cannot be written.
    token, ids = deliveries_claim(limit=10)
    assert len(ids) == 1
    with pytest.raises(OperationalError, match="database or disk is full"):
        deliveries_send(ids=ids, token=token, connection=get_connection(LOCMEM))
    assert len(mail.outbox) == 1
    # It stays `sending`: never sent again, and marked unknown by the reaper.
    assert Delivery.objects.get(pk=ids[0]).status == Delivery.Status.SENDING

    assert {name: (r.status_code, refused(r)) for name, r in answers.items()} == {
        name: (503, True) for name in answers}, {name: r.content[:300] for name, r in answers.items()}
    assert answers["api"]["Content-Type"] == "application/problem+json"
    # Nothing half-written: no lead without its submission, no note, no page view.
    written_while_full = (Lead.objects.count() - before["leads"] + Activity.objects.count() - before["notes"]
                          + FormSubmission.objects.count() + PageView.objects.count() + Visitor.objects.count())
    assert written_while_full == 0

    # Space is back: the same requests go through.
    full_disk(False)
    started = time.perf_counter()
    again = browser.post(hosted, post)
    recovery_s = time.perf_counter() - started
    assert again.status_code == 200, again.content[:300]
    submission = FormSubmission.objects.get()
    assert submission.lead.email == "grace@example.org"
    assert browser.post(note_page, note).status_code == 302
    assert api.post("/api/v1/activities/notes/", {"lead": lead.pk, "body": note["body"]}).status_code == 201
    assert Activity.objects.filter(lead=lead, body=note["body"]).count() == 2
    assert send_hit(browser, 10).status_code == 204
    assert hits_ingest() == 10 and hits_ingest() == 1  # the kept batch first, then the new hit
    assert PageView.objects.count() == 11 and PageView.objects.values("hit_id").distinct().count() == 11
    # The batch's task again (as a retry would run it): nothing left that it may send.
    result = deliveries_send(ids=ids, token=token, connection=get_connection(LOCMEM))
    assert (result.sent, len(mail.outbox)) == (0, 1)
    _, unknown = deliveries_reap(now=NOW + timedelta(seconds=django_settings.CRM_NURTURE_STALE_AFTER_SECONDS + 1))
    delivery = Delivery.objects.get(pk=ids[0])
    assert (unknown, delivery.status) == (1, Delivery.Status.UNKNOWN)
    assert "not sent again" in delivery.reason

    fault_record(
        "sqlite_disk_full", recovery_s=recovery_s, duplicates=len(mail.outbox) - 1, lost=11 - PageView.objects.count(),
        unknown=Delivery.objects.filter(status=Delivery.Status.UNKNOWN).count(), explained=delivery.reason,
        refused_503=sum(refused(r) for r in answers.values()), half_written=written_while_full, emails_sent=len(mail.outbox),
        hits_stored=PageView.objects.count(),
    )


def test_a_full_spool_disk_refuses_a_page_view_and_a_queued_form_with_503_and_cuts_no_line(
        browser, form, spool, tmp_path, settings):
    """The embedded default queues page views and form posts in files under var/: a disk full there is the
    kernel's ENOSPC (current.jsonl made a link to /dev/full, a device whose every write fails with it)."""
    settings.CRM_CAPTURE_QUEUE_URL = f"spool:{tmp_path / 'capture'}"
    assert send_hit(browser, 1).status_code == 204
    captured = browser.post(reverse("capture:hosted", args=["demo"]), {"email": "ada@example.org",
                                                                       "crm_token": fill_token(form)})
    assert captured.status_code == 200
    answers = {}
    for folder in (spool, tmp_path / "capture"):
        os.rename(folder / "current.jsonl", folder / "kept.jsonl")
        os.symlink("/dev/full", folder / "current.jsonl")
    try:
        answers["hit"] = send_hit(browser, 2)
        answers["form"] = browser.post(reverse("capture:hosted", args=["demo"]), {"email": "grace@example.org",
                                                                                  "crm_token": fill_token(form)})
    finally:
        for folder in (spool, tmp_path / "capture"):
            (folder / "current.jsonl").unlink()
            os.rename(folder / "kept.jsonl", folder / "current.jsonl")
    assert {name: (r.status_code, refused(r)) for name, r in answers.items()} == {
        "hit": (503, True), "form": (503, True)}, {name: r.content[:300] for name, r in answers.items()}
    # Space back: queued again, and the queues hold each item once, whole.
    assert send_hit(browser, 3).status_code == 204
    assert browser.post(reverse("capture:hosted", args=["demo"]), {"email": "grace@example.org",
                                                                   "crm_token": fill_token(form)}).status_code == 200
    lines = [json.loads(line) for line in Path(spool / "current.jsonl").read_text().splitlines()]
    assert [hit["v"] for hit in lines] == ["visitor-000000000001", "visitor-000000000003"]
    assert hits_ingest() == 2 and captures_ingest() == 2
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["ada@example.org", "grace@example.org"]


def test_a_line_the_full_disk_cut_is_taken_back_so_the_next_page_view_is_whole(browser, clock, spool, monkeypatch):
    """A disk with a few bytes left takes part of a line (a short write, not an error): the spool cuts it off
    and refuses the page view, so the next one is not glued to half of it."""
    assert send_hit(browser, 1).status_code == 204
    real_write = os.write

    def short_write(fd, data):
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", short_write)
    cut = send_hit(browser, 2)
    monkeypatch.setattr(os, "write", real_write)
    assert cut.status_code == 503 and refused(cut)
    assert send_hit(browser, 3).status_code == 204
    lines = [json.loads(line) for line in (spool / "current.jsonl").read_text().splitlines()]
    assert [hit["v"] for hit in lines] == ["visitor-000000000001", "visitor-000000000003"]
