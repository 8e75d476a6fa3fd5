"""PostgreSQL restarted mid-batch, and a storm of connections past max_connections, under load: a real Celery
worker sending to an SMTP server on loopback, and gunicorn serving the capture and tracking endpoints to threads.

The machine's PostgreSQL is shared, so each scenario runs on a private cluster (initdb in a temporary folder, a
free port, max_connections=30), its database a copy of the test database taken once the scenario's rows are
seeded (pg_dump: no second migration). Counting is done with psycopg on the private cluster.
"""

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from tests.conftest import ROOT, need_service, start_worker, stop_worker, wait_until_ready
from tests.faults.report import fault_record
from tests.faults.sending import due_emails
from tests.smtp_sink import SmtpSink, free_port
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MAX_CONNECTIONS = 30
SITE = "www.example.com"


def as_postgres(*argv, **kwargs):
    return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, argv)], check=True, capture_output=True,
                          text=True, **kwargs)


class PrivateCluster:
    """A PostgreSQL cluster of this test session's own, to restart and to exhaust."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="crm-faults-pg-"))
        shutil.chown(self.root, "postgres")
        self.data, self.port = self.root / "data", free_port()
        as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        self.options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                        f"-c max_connections={MAX_CONNECTIONS} -c superuser_reserved_connections=0")
        self.pg_ctl("start")

    def pg_ctl(self, action, *extra):
        as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-o", self.options, "-l", self.root / "log", "-w", action, *extra)

    def url(self, name):
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def copy_of(self, source: dict, name) -> str:
        """A database `name` holding what the test database `source` (Django's settings) holds now."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        env = {**os.environ, "PGPASSWORD": source["PASSWORD"] or ""}
        dump = subprocess.run([PG_BIN / "pg_dump", "-h", source["HOST"] or "127.0.0.1", "-p", str(source["PORT"] or 5432),
                               "-U", source["USER"], "--no-owner", source["NAME"]], check=True, capture_output=True, env=env)
        subprocess.run([PG_BIN / "psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(name)], input=dump.stdout,
                       check=True, capture_output=True)
        return self.url(name)

    def remove(self):
        try:
            self.pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        need_service(f"needs PostgreSQL's binaries in {PG_BIN} and runuser, to make a private cluster")
    private = PrivateCluster()
    yield private
    private.remove()


class Load(threading.Thread):
    """Posts forms (the JSON API) and page views to the web server until stopped; keeps each answer."""

    def __init__(self, base, token, tag):
        super().__init__(daemon=True)
        self.base, self.token, self.tag = base, token, tag
        self.answers = []  # (kind, key, status, retry_after, at)
        self.stop = threading.Event()

    def run(self):
        session, n = requests.Session(), 0
        while not self.stop.is_set():
            n += 1
            key = f"{self.tag}-{n}"
            for kind in ("capture", "hit"):
                try:
                    if kind == "capture":
                        answer = session.post(f"{self.base}/api/forms/guide", json={"fields": {"email": f"{key}@example.org"},
                                              "crm_token": self.token}, headers={"Origin": f"https://{SITE}"}, timeout=15)
                    else:
                        answer = session.post(f"{self.base}/t/hit", data='{"v": "visitor-%s", "u": "https://%s/p/%s"}' % (
                            self.tag.ljust(16, "x"), SITE, key), headers={"Content-Type": "text/plain",
                                                                          "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}, timeout=15)
                    self.answers.append((kind, key, answer.status_code, answer.headers.get("Retry-After"), time.monotonic()))
                except requests.RequestException as exc:
                    self.answers.append((kind, key, f"no answer: {type(exc).__name__}", None, time.monotonic()))
            time.sleep(0.02)


class Scenario:
    """The seeded copy on the private cluster, a worker, gunicorn and the load, all pointed at it."""

    def __init__(self, cluster, database_url, broker_url, sink, workdir):
        self.cluster, self.database_url, self.sink, self.workdir = cluster, database_url, sink, workdir
        self.queue = f"crm-faults-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        common = {
            "DJANGO_SETTINGS_MODULE": "crm.settings.test", "TEST_DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url, "CRM_RATE_LIMIT_URL": broker_url, "CRM_CAPTURE_QUEUE_URL": "inline",
            "CRM_TRACKING_QUEUE_URL": broker_url, "CRM_TRACKING_QUEUE_KEY": f"crm:faults:{self.queue}",
            "CRM_CAPTURE_MIN_FILL_SECONDS": "0", "CRM_CAPTURE_PER_ADDRESS_PER_HOUR": "1000000",
            "CRM_TRACKING_BURST_PER_MINUTE": "1000000", "DATABASE_CONN_MAX_AGE": "0",
        }
        self.env = {**common, "EMAIL_URL": sink.url, "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "CRM_NURTURE_BATCH_SIZE": "25", "CRM_NURTURE_RETRY_SECONDS": "1", "CRM_NURTURE_STALE_AFTER_SECONDS": "3"}
        self.worker_log = workdir / "worker.log"
        self.worker_log.write_text("")
        self.worker = start_worker(self.queue, self.env, self.worker_log, concurrency=4)
        self.web_log = open(workdir / "web.log", "w")
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "crm.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2", "--threads", "4",
             "--timeout", "30"], cwd=ROOT, env={**os.environ, **common}, stdout=self.web_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_until_ready(self.worker, self.worker_log)
        assert wait_for(lambda: self._answers(), timeout=30), (workdir / "web.log").read_text()

    def _answers(self):
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def tick(self, task="nurturing.tasks.dispatch_due"):
        from crm.celery import app

        app.send_task(task, queue=self.queue)

    def query(self, sql):
        with psycopg.connect(self.database_url, connect_timeout=5) as connection:
            return connection.execute(sql).fetchall()

    def statuses(self):
        return dict(self.query("SELECT status, count(*) FROM nurturing_delivery GROUP BY status"))

    def stop(self):
        stop_worker(self.worker)
        stop_worker(self.web)
        self.web_log.close()


@pytest.fixture
def scenario(cluster, postgres_db, redis_broker_url, tmp_path, settings):
    from capture.models import CaptureForm
    from capture.services import fill_token
    from leads.models import ConversionKind

    due_emails(300)
    form = CaptureForm.objects.create(
        name="Guide", slug="guide", conversion_kind=ConversionKind.objects.get_or_create(slug="guide-download", defaults={"name": "Guide"})[0],
        fields=[{"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"}],
        allowed_sites=SITE,
    )
    token = fill_token(form)
    database_url = cluster.copy_of(postgres_db.settings_dict, f"faults_{uuid.uuid4().hex[:8]}")
    with SmtpSink() as sink:
        running = Scenario(cluster, database_url, redis_broker_url, sink, tmp_path)
        running.token = token
        try:
            yield running
        finally:
            running.stop()


def load(scenario, threads=4):
    loads = [Load(f"http://127.0.0.1:{scenario.port}", scenario.token, f"l{i}{uuid.uuid4().hex[:6]}") for i in range(threads)]
    for thread in loads:
        thread.start()
    return loads


def stop_load(loads):
    for thread in loads:
        thread.stop.set()
    for thread in loads:
        thread.join(timeout=30)
    return [answer for thread in loads for answer in thread.answers]


def settle(scenario, timeout=60):
    """Tick (and reap what a lost batch held) until nothing is left to send; the time it was done, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = scenario.statuses()
        if not any(counts.get(s) for s in ("scheduled", "sending")):
            return time.monotonic()
        scenario.tick()
        scenario.tick("nurturing.tasks.reap_stale")
        time.sleep(1)
    return None


def settled_counts(scenario, loads):
    """Once the fault is over: the backlog drained (asserted; when, as settle gives it), the load stopped; its
    answers, the emails' and the ingest's counts."""
    done = settle(scenario)
    time.sleep(1)
    answers = stop_load(loads)
    assert done, (scenario.statuses(), scenario.worker_log.read_text()[-3000:])
    return done, answers, email_counts(scenario), stored_counts(scenario, answers)


def stored_counts(scenario, answers):
    """Acknowledged (2xx) captures and hits against what the database holds; refusals and non-answers by kind."""
    scenario.tick("traffic.tasks.ingest_hits")
    acknowledged = {kind: {key for k, key, status, _, _ in answers if k == kind and status in (201, 204)}
                    for kind in ("capture", "hit")}

    def stored():
        leads = collections.Counter(e.split("@")[0] for (e,) in scenario.query("SELECT email FROM leads_lead WHERE email LIKE 'l%'"))
        views = collections.Counter(p.rsplit("/", 1)[1] for (p,) in scenario.query("SELECT path FROM traffic_pageview WHERE path LIKE '/p/%'"))
        return leads, views

    wait_for(lambda: set(stored()[1]) >= acknowledged["hit"], timeout=30, interval=0.5)
    leads, views = stored()
    statuses = collections.Counter(str(status) for _, _, status, _, _ in answers)
    return {
        "captures_acknowledged": len(acknowledged["capture"]), "hits_acknowledged": len(acknowledged["hit"]),
        "captures_lost": len(acknowledged["capture"] - set(leads)), "hits_lost": len(acknowledged["hit"] - set(views)),
        "stored_twice": sum(n - 1 for n in leads.values() if n > 1) + sum(n - 1 for n in views.values() if n > 1),
        "answers": dict(statuses),
        "refused_503_without_retry_after": sum(1 for _, _, s, ra, _ in answers if s == 503 and not ra),
    }


def email_counts(scenario):
    """Emails received (per delivery) against the rows: duplicates, lost, and the unknown with their reasons."""
    received = collections.Counter(m["X-CRM-Delivery"] for _, _, m in scenario.sink.messages)
    rows = scenario.query("SELECT id::text, status, reason FROM nurturing_delivery")
    sent = {pk for pk, status, _ in rows if status == "sent"}
    unknown = {pk: reason for pk, status, reason in rows if status == "unknown"}
    undecided = [pk for pk, status, _ in rows if status in ("scheduled", "sending")]
    return {
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "lost": len(sent - set(received)) + len(undecided) + len(set(received) - sent - set(unknown)),
        "unknown": unknown, "emails_received": len(received), "emails_due": len(rows),
    }


def test_postgresql_restarted_mid_batch_loses_nothing_acknowledged_and_sends_nothing_twice(scenario):
    loads = load(scenario)
    time.sleep(1)
    scenario.tick()
    assert wait_for(lambda: scenario.sink.count() >= 40, timeout=30, interval=0.05), scenario.worker_log.read_text()[-3000:]
    fault_start = time.monotonic()
    scenario.cluster.pg_ctl("restart", "-m", "fast")
    fault_end = time.monotonic()
    done, answers, emails, ingest = settled_counts(scenario, loads)
    assert emails["duplicates"] == 0 and emails["lost"] == 0, emails
    assert all(reason.startswith("The worker was lost while sending") or "may or may not have gone out" in reason
               for reason in emails["unknown"].values()), emails["unknown"]
    assert ingest["captures_lost"] == 0 and ingest["hits_lost"] == 0 and ingest["stored_twice"] == 0, ingest
    assert set(ingest["answers"]) <= {"201", "204", "503"}, ingest["answers"]  # never a 500, never a hang
    assert ingest["refused_503_without_retry_after"] == 0
    assert ingest["captures_acknowledged"] > 0 and ingest["hits_acknowledged"] > 0
    fault_record("postgres_restart_mid_batch", recovery_s=done - fault_end, duplicates=0, lost=0,
                 unknown=len(emails["unknown"]), explained="; ".join(sorted(set(emails["unknown"].values()))),
                 restart_s=round(fault_end - fault_start, 2), emails_due=emails["emails_due"],
                 emails_received=emails["emails_received"], **ingest)


def test_a_storm_of_connections_past_max_connections_is_refused_with_503_and_loses_nothing(scenario):
    loads = load(scenario)
    time.sleep(1)
    scenario.tick()
    assert wait_for(lambda: scenario.sink.count() >= 40, timeout=30, interval=0.05)
    storm = []

    def grab():
        try:
            storm.append(psycopg.connect(scenario.cluster.url("postgres"), connect_timeout=3))
            return True
        except psycopg.OperationalError:
            return False

    while grab():  # every slot the server has
        pass
    fault_start = time.monotonic()
    scenario.tick()
    # For 8 s, every slot the app lets go of is taken too (a storm does not wait its turn): the app's next
    # connection finds none.
    while time.monotonic() - fault_start < 8:
        if not grab():
            time.sleep(0.005)
    for connection in storm:
        connection.close()
    fault_end = time.monotonic()
    done, answers, emails, ingest = settled_counts(scenario, loads)
    during = [status for _, _, status, _, at in answers if fault_start <= at <= fault_end]
    assert len(storm) >= MAX_CONNECTIONS - 8  # the storm took what the worker and the web server did not hold
    assert 503 in during, collections.Counter(during)
    assert emails["duplicates"] == 0 and emails["lost"] == 0, emails
    assert ingest["captures_lost"] == 0 and ingest["hits_lost"] == 0 and ingest["stored_twice"] == 0, ingest
    assert set(ingest["answers"]) <= {"201", "204", "503"}, ingest["answers"]
    assert ingest["refused_503_without_retry_after"] == 0
    fault_record("postgres_connection_storm", recovery_s=done - fault_end, duplicates=0, lost=0,
                 unknown=len(emails["unknown"]), explained="; ".join(sorted(set(emails["unknown"].values()))),
                 storm_connections=len(storm), storm_s=round(fault_end - fault_start, 2),
                 emails_due=emails["emails_due"], emails_received=emails["emails_received"],
                 answers_during_storm=dict(collections.Counter(str(s) for s in during)), **ingest)
