"""What the worker and broker fault tests share: a load of tracking hits and form captures through the real
endpoints, real `celery beat` processes, a private `redis-server`, a slow SMTP server, and the counts.

Every count is read from what arrived (the SMTP server's messages by their X-CRM-Delivery header, the webhook
receiver's requests by their webhook-id, the page views and form submissions stored) against what was due or
acknowledged, never from what the workers say they did.
"""

import asyncio
import collections
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db.models import Count

from leads.models import Lead
from nurturing.models import Delivery, Enrollment
from tests.conftest import ROOT, celery_env
from tests.factories import CompanyFactory
from tests.faults.report import fault_record
from tests.smtp_sink import SmtpSink, _Collector, free_port
from tests.waiting import wait_for

# What a delivery can end as once nothing holds it; `scheduled` and `sending` are not settled.
SETTLED = {"sent", "unknown", "skipped", "failed"}
# The reaper's stale time in these tests (production: CRM_NURTURE_STALE_AFTER_SECONDS, 600 s).
STALE_SECONDS = 6
SITE = "www.example.com"
# Beat ticking every 2 s: scheduled work is rows, so a tick only says "look now". Not faster: a 2-CPU machine's
# worker must keep up with the dozen tasks of each tick.
BEAT_ENV = {"CRM_BEAT_TICK_SECONDS": "2", "CRM_WEBHOOKS_TICK_SECONDS": "2", "CRM_TRACKING_INGEST_SECONDS": "2",
            "CRM_CAPTURE_INGEST_SECONDS": "2"}


def bulk_enroll(sequence, count, owner=None, prefix="bulk"):
    """Many enrolled leads with a due first step, written in bulk (the services are tested elsewhere)."""
    from django.utils import timezone

    company = CompanyFactory()
    leads = Lead.objects.bulk_create(
        [Lead(first_name=f"Lead{i}", last_name="Bulk", email=f"{prefix}{i}@example.org", company=company, owner=owner)
         for i in range(count)]
    )
    enrollments = Enrollment.objects.bulk_create([Enrollment(lead=lead, sequence=sequence) for lead in leads])
    step = sequence.steps.get(position=1)
    now = timezone.now()
    Delivery.objects.bulk_create([Delivery(enrollment=e, step=step, due_at=now) for e in enrollments], batch_size=1000)


# --- Processes ------------------------------------------------------------------------------------


def start_beat(queue, env_extra, tmp_path, name="beat"):
    """A real `celery beat` process (its own session) with its own schedule file, sending to `queue`."""
    log_path = tmp_path / f"{name}.log"
    env = celery_env(queue, env_extra)
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crm.celeryd", "beat", "-l", "info", "-s", str(tmp_path / f"{name}-schedule"),
             "--pidfile="],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    assert wait_for(lambda: "Starting..." in log_path.read_text(errors="replace") or proc.poll() is not None, 30)
    if proc.poll() is not None:
        pytest.fail(f"celery beat did not start:\n{log_path.read_text(errors='replace')}")
    return proc


def signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def stop_process(proc):
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=15)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class PrivateRedis:
    """A `redis-server` of this test's own on a free port (never the machine's 6379, which others use at once).

    `appendonly=False`: nothing is kept across a restart (a broker as the CI's Redis runs it); True: every write
    is in the append-only file, fsynced, before it is answered, and a restart (even after SIGKILL) reads it back.
    """

    def __init__(self, directory, *, appendonly: bool):
        if not shutil.which("redis-server"):
            from tests.conftest import need_service

            need_service("needs redis-server on the PATH to start a private Redis")
        self.directory, self.appendonly, self.port = directory, appendonly, free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.start()

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert wait_for(lambda: self._answers(), 20, 0.05), (self.directory / "redis.log").read_text(errors="replace")

    def _answers(self):
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def kill(self):
        """SIGKILL: no shutdown save, no goodbye to the clients."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.kill()


class SlowSmtpSink(SmtpSink):
    """The loopback SMTP server, taking `delay` seconds over each message (a provider's usual pace), so a
    batch is mid-send long enough to be caught there."""

    def __init__(self, delay: float):
        super().__init__()
        collector, self.delay = self.collector, delay

        class Slow(_Collector):
            async def handle_DATA(inner, server, session, envelope):  # noqa: N805
                await asyncio.sleep(delay)
                return await _Collector.handle_DATA(collector, server, session, envelope)

        self.controller.handler = Slow()


# --- Load: tracking hits and captures through the real endpoints ------------------------------------------


def load_settings(settings, *, queue_url: str, key: str, capture_url: str | None = None):
    """This process's endpoints queue hits at `queue_url` and captures at `capture_url` (default the same; two
    spools need two folders); returns the workers' matching environment."""
    capture_url = capture_url or queue_url
    settings.CRM_TRACKING_QUEUE_URL, settings.CRM_CAPTURE_QUEUE_URL = queue_url, capture_url
    settings.CRM_TRACKING_QUEUE_KEY = key
    settings.CRM_TRACKING_SITES = [SITE]
    settings.CRM_CAPTURE_MIN_FILL_SECONDS = 0
    settings.CRM_CAPTURE_PER_ADDRESS_PER_HOUR = 100_000
    settings.CRM_CAPTURE_PER_EMAIL_PER_HOUR = 100
    settings.CRM_RATE_LIMIT_URL = ""
    settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    return {
        "CRM_TRACKING_QUEUE_URL": queue_url, "CRM_CAPTURE_QUEUE_URL": capture_url, "CRM_TRACKING_QUEUE_KEY": key,
        "CRM_TRACKING_SITES": SITE, "CRM_RATE_LIMIT_URL": "",
    }


def capture_form():
    from capture.models import CaptureForm
    from leads.models import ConversionKind

    return CaptureForm.objects.create(
        name="Fault guide", slug=f"fault-{uuid.uuid4().hex[:6]}", conversion_kind=ConversionKind.objects.get_or_create(slug="guide-download", defaults={"name": "Guide download"})[0],
        fields=[{"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"}],
        allowed_sites=SITE,
    )


class Load:
    """Posts page views (and every `capture_every`th time a form) to the real endpoints from a thread, through
    Django's test client, until stopped; keeps what was acknowledged (2xx) and counts what was refused."""

    def __init__(self, form, *, per_second=60, capture_every=8, limit=None):
        self.form, self.per_second, self.capture_every, self.limit = form, per_second, capture_every, limit
        self.tag = uuid.uuid4().hex[:8]
        self.acked_hits, self.acked_captures = [], []
        self.refused = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self):
        from django.db import connections
        from django.test import Client
        from django.urls import reverse

        from capture.services import fill_token

        client = Client(raise_request_exception=False)
        hit_url, form_url = reverse("traffic:hit"), reverse("capture:api_submit", args=[self.form.slug])
        started = time.monotonic()
        try:
            for n in itertools.count():
                if self._stop.is_set() or (self.limit is not None and n >= self.limit):
                    return
                path = f"/load/{self.tag}/{n}"
                body = {"v": f"visitor{self.tag}{n % 50:04d}", "u": f"https://{SITE}{path}", "t": "Load", "r": "",
                        "l": 0, "w": 0, "sw": 1440}
                try:
                    answer = client.post(hit_url, json.dumps(body), content_type="text/plain;charset=UTF-8",
                                         HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                                         HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR=f"198.51.100.{n % 200 + 1}")
                    status = answer.status_code
                except Exception:  # the queue's server is down and the view did not say so: not acknowledged
                    status = 599
                if 200 <= status < 300:
                    self.acked_hits.append(path)
                else:
                    self.refused[f"hit {status}"] += 1
                if n % self.capture_every == 0:
                    email = f"capture-{self.tag}-{n}@example.org"
                    payload = {"fields": {"email": email}, "crm_token": fill_token(self.form)}
                    try:
                        status = client.post(form_url, json.dumps(payload), content_type="application/json",
                                             HTTP_ORIGIN=f"https://{SITE}", REMOTE_ADDR="192.0.2.7").status_code
                    except Exception:
                        status = 599
                    if 200 <= status < 300:
                        self.acked_captures.append(email)
                    else:
                        self.refused[f"capture {status}"] += 1
                time.sleep(max(0.0, started + (n + 1) / self.per_second - time.monotonic()))
        finally:
            connections.close_all()

    def stored(self):
        """(hits stored per acknowledged path, submissions stored per acknowledged email)."""
        from leads.models import FormSubmission
        from traffic.models import PageView

        hits = collections.Counter(PageView.objects.filter(path__startswith=f"/load/{self.tag}/").values_list("path", flat=True))
        captures = collections.Counter(FormSubmission.objects.filter(lead__email__startswith=f"capture-{self.tag}-")
                                       .values_list("lead__email", flat=True))
        return hits, captures

    def all_stored(self):
        hits, captures = self.stored()
        return set(self.acked_hits) <= set(hits) and set(self.acked_captures) <= set(captures)

    def counts(self) -> dict:
        """What was acknowledged, and of it what is lost or stored twice."""
        hits, captures = self.stored()
        return {
            "hits_acknowledged": len(self.acked_hits), "hits_lost": len(set(self.acked_hits) - set(hits)),
            "hits_twice": sum(1 for n in hits.values() if n > 1),
            "captures_acknowledged": len(self.acked_captures),
            "captures_lost": len(set(self.acked_captures) - set(captures)),
            "captures_twice": sum(1 for n in captures.values() if n > 1),
            "refused": dict(self.refused),
        }


# --- Webhooks ------------------------------------------------------------------------------------------

WEBHOOK_ENV = {
    "CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "CRM_EVENT_SETTLE_SECONDS": "0", "CRM_WEBHOOKS_LEASE_SECONDS": "5",
    "CRM_WEBHOOKS_TIMEOUT_SECONDS": "2", "CRM_WEBHOOKS_BATCH_SIZE": "25",
}


def webhook_events(receiver, count):
    """An endpoint for lead.created at `receiver`, and `count` such events (the captures add theirs)."""
    from core.events import Actor, EventType, events_record_each
    from outbound import services

    services.endpoint_create(url=receiver.url, event_types=["lead.created"], by=None)
    events_record_each(EventType.LEAD_CREATED, actor=Actor.system("import"),
                       rows=({"lead_id": n, "payload": {"n": n}} for n in range(1, count + 1)))


def webhooks_done():
    from outbound.models import Delivery as WebhookDelivery

    return not WebhookDelivery.objects.exclude(status="succeeded").exists()


def webhook_counts(receiver) -> dict:
    """Due webhooks against what the receiver got: lost ones, and ones it got again under the same webhook-id
    (at least once by design: a sender lost after the POST and before recording it sends it again; the
    receiver drops the repeat by its id)."""
    from outbound.models import Delivery as WebhookDelivery

    expected = set(WebhookDelivery.objects.values_list("message_id", flat=True))
    received = collections.Counter(receiver.ids())
    return {"webhooks_due": len(expected), "webhooks_lost": len(expected - set(received)),
            "webhooks_redelivered": sum(received.values()) - len(received),
            "webhooks_unexpected": len(set(received) - expected)}


# --- Emails -------------------------------------------------------------------------------------------


def statuses():
    return collections.Counter(dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("id"))))


def emails_settled():
    return not Delivery.objects.exclude(status__in=SETTLED).exists()


@dataclass
class EmailCounts:
    due: int
    sent: int
    unknown: int
    duplicates: int
    lost: int
    received: int
    unknown_received: int
    reasons: dict = field(default_factory=dict)

    def figures(self) -> dict:
        return {"emails_due": self.due, "emails_sent": self.sent, "emails_received": self.received,
                "unknown_received": self.unknown_received}


def email_counts(smtp_sink) -> EmailCounts:
    """Deliveries against what the SMTP server received, by the X-CRM-Delivery header."""
    received = collections.Counter(message["X-CRM-Delivery"] for _, _, message in smtp_sink.messages)
    rows = dict(Delivery.objects.values_list("id", "status"))
    sent = {str(pk) for pk, status in rows.items() if status == "sent"}
    unknown = {str(pk) for pk, status in rows.items() if status == "unknown"}
    reasons = collections.Counter(Delivery.objects.filter(status="unknown").values_list("reason", flat=True))
    return EmailCounts(
        due=len(rows), sent=len(sent), unknown=len(unknown),
        duplicates=sum(1 for n in received.values() if n > 1),
        # Due and never settled, or recorded sent and never received.
        lost=sum(1 for status in rows.values() if status not in SETTLED) + len(sent - set(received)),
        received=len(received), unknown_received=len(unknown & set(received)), reasons=dict(reasons),
    )


def assert_emails_once(counts: EmailCounts):
    assert counts.duplicates == 0, counts
    assert counts.lost == 0, counts
    assert counts.sent + counts.unknown == counts.due, counts
    assert all(reason for reason in counts.reasons), counts  # every unknown row says why


def drain(is_done, *, smtp_sink, timeout=90, reap=True, interval=0.2):
    """Wait until `is_done()`, running the reaper (as beat's reap_stale would, after STALE_SECONDS) when no email
    has arrived for a while and some are not settled. Returns when sends flowed again (s after the call) or None."""
    from nurturing.claim import deliveries_reap

    started = time.monotonic()
    deadline = started + timeout
    first_send, last_count, last_change = None, smtp_sink.count(), started
    while time.monotonic() < deadline:
        if is_done():
            return first_send
        now, count = time.monotonic(), smtp_sink.count()
        if count != last_count:
            first_send = first_send if first_send is not None else now - started
            last_count, last_change = count, now
        elif reap and now - last_change > STALE_SECONDS and not emails_settled():
            deliveries_reap(stale_after=timedelta(seconds=STALE_SECONDS))
            last_change = now
        time.sleep(interval)
    raise AssertionError(f"not drained in {timeout}s: emails {dict(statuses())}")


# --- The verdict ---------------------------------------------------------------------------------------


def everything_done(load):
    return lambda: emails_settled() and webhooks_done() and load.all_stored()


def check_and_record(name, *, smtp_sink, receiver, load, recovery_s, **extra):
    """Assert the counts (no email twice or lost, every unknown one explained; no webhook lost or unexpected;
    every acknowledged hit and capture stored once) and record them under `name` (tests.faults.report)."""
    emails = email_counts(smtp_sink)
    hooks = webhook_counts(receiver)
    stored = load.counts()
    assert_emails_once(emails)
    assert hooks["webhooks_lost"] == 0 and hooks["webhooks_unexpected"] == 0, hooks
    assert stored["hits_lost"] == stored["captures_lost"] == 0, stored
    assert stored["hits_twice"] == stored["captures_twice"] == 0, stored
    assert stored["hits_acknowledged"] > 0 and stored["captures_acknowledged"] > 0, stored
    explained = "; ".join(f"{n}: {reason}" for reason, n in emails.reasons.items())
    return fault_record(
        name, recovery_s=recovery_s, duplicates=emails.duplicates + stored["hits_twice"] + stored["captures_twice"],
        lost=emails.lost + hooks["webhooks_lost"] + stored["hits_lost"] + stored["captures_lost"],
        unknown=emails.unknown, explained=explained, **emails.figures(), **hooks, **stored, **extra,
    )
