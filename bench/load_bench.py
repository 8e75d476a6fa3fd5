"""The load run: tracking hits, form captures, the API and the reps' pages at once, while the engine sends 100,000 emails.

    .venv/bin/python -m bench.load_bench [--emails 100000] [--seconds 60] [--max-seconds 540]
    .venv/bin/python -m bench.load_bench --emails 5000 --seconds 30 --output /tmp/load.json   # a quick try

Everything runs on this machine, on loopback, as production runs it: gunicorn
(crm.settings.production behind a TLS proxy, sync workers), a Celery worker on
every queue `make run`'s worker serves and Celery beat, on their own PostgreSQL
database `crm_bench_load` (BENCH_LOAD_DATABASE_URL; made afresh by each run) and
Redis database 8 (BENCH_LOAD_REDIS_URL, flushed at start): the broker, the
tracking and capture queues, the rate limits. The worker sends to
nurture_bench's SMTP sink. Locust (bench/locustfile.py) is the load, in a
process of its own, each simulated person at a fixed pace:

- visitors whose tracking snippet posts page views (`POST /t/hit`);
- people who open the hosted capture form and send it (`GET`, then `POST /f/<slug>/`, CSRF and fill token);
- an integration on the REST API with a rep's token (the rep's leads, one lead, a new lead);
- reps logged in through the login form: Today, the leads list, a lead's page.

After a warm-up Locust run (`--warmup` seconds: each gunicorn worker's first requests import and compile what
the pages need; its errors count, its latencies do not), three phases, in one run:

1. quiet: the Locust run (`--seconds`), no email going out: each endpoint's figures alone;
2. engine alone: `--engine-emails` due emails, no HTTP load: the engine's emails/s alone;
3. loaded: the same Locust run while `--emails` due emails (default 100,000, one per lead) are sent
   (made due, then beat's tick, `dispatch_due`, sent to the worker), until every one is `sent`
   (at most `--max-seconds`).

Results: bench/results/load.json (p95 per endpoint loaded beside alone, errors, emails/s, CPU per process).
"""

import argparse
import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.admin_bench import code_version, database_info, machine_info
from bench.capture_bench import FORM_SLUG, SITE, BenchServer, ensure_form, flush_redis, settings_module_setup
from bench.nurture_bench import CpuMeter, Sink, Worker, count_sent, enroll, load_email_data, sequence, status_counts, stop_group
from bench.nurture_bench import wait_all_sent as nurture_wait_all_sent
from bench.rep_pages_bench import gunicorn_version, lay_out_tasks

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "load.json"
PASSWORD = "load-bench"  # the reps' (a throwaway database)
LEADS_PER_REP_PAGE = 50  # the lead pages a rep opens, at random: its first leads
TARGETS = {"errors": 0}

# Who Locust simulates, and how often each acts: a fixed pace, the same in every phase.
# class: the locustfile's user class; per_user_per_s: its tasks per second (a capture is a GET and a POST).
USERS = {
    "tracking": {"class": "Visitor", "users": 4, "per_user_per_s": 10.0},
    "capture": {"class": "FormFiller", "users": 2, "per_user_per_s": 0.5},
    "api": {"class": "Integration", "users": 3, "per_user_per_s": 2.0},
    "reps": {"class": "Rep", "users": 6, "per_user_per_s": 0.5},
}
# The requests each group makes, as Locust names them; a login is setup, not an endpoint, but its errors count.
ENDPOINTS = {
    "tracking": ("tracking: hit",),
    "capture": ("capture: form page", "capture: form post"),
    "api": ("api: lead list", "api: lead", "api: create lead"),
    "reps": ("reps: today", "reps: leads list", "reps: lead page"),
}
SETUP_REQUESTS = ("reps: login page", "reps: log in")

SETTINGS_SHIM = '''"""crm.settings.production for load_bench: its site for tracking, and the limits a load from one address needs."""
from crm.settings.production import *  # noqa: F403

STATIC_ROOT = {static_root!r}
CRM_TRACKING_SITES = [{site!r}]
# The whole load comes from 127.0.0.1 (no proxy): the per-address limits are set out of its reach, and
# each fill token is fresh from the page, so no "too fast" either. The limits are still counted.
CRM_CAPTURE_MIN_FILL_SECONDS = 0
CRM_CAPTURE_PER_ADDRESS_PER_HOUR = 100_000_000
CRM_API_RATE_LIMIT_PER_MINUTE = 100_000_000

# Locust, a dev requirement, brings brotli, and with it installed whitenoise also brotli-compresses every static
# file in collectstatic (~100 s on 2 CPUs instead of 5). Production installs requirements.txt, without brotli:
# the same storage, gzip only.
from whitenoise.compress import Compressor  # noqa: E402
from whitenoise.storage import CompressedManifestStaticFilesStorage  # noqa: E402


class GzipOnlyStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def create_compressor(self, **kwargs):
        return Compressor(use_brotli=False, **kwargs)


STORAGES = {{**STORAGES, "staticfiles": {{"BACKEND": "load_bench_settings.GzipOnlyStaticFilesStorage"}}}}  # noqa: F405
'''


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.load_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--emails", type=int, default=100_000, help="emails sent under load, one per lead (default 100,000)")
    parser.add_argument("--engine-emails", type=int, default=5_000,
                        help="emails sent with no HTTP load first, for the engine's emails/s alone (default 5,000; 0: skip)")
    parser.add_argument("--seconds", type=float, default=60, help="the quiet Locust run's length (default 60)")
    parser.add_argument("--warmup", type=float, default=10, help="the warm-up Locust run's length (default 10)")
    parser.add_argument("--max-seconds", type=float, default=540,
                        help="the loaded run stops here even if emails are left (default 540)")
    parser.add_argument("--gunicorn-workers", type=int, default=4, help="gunicorn --workers, sync (default 4)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="the database, dropped and made afresh by each run (env BENCH_LOAD_DATABASE_URL)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_LOAD_REDIS_URL", DEFAULT_REDIS_URL),
                        help="the Redis database, flushed at start (env BENCH_LOAD_REDIS_URL)")
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    return run(args)


# --- The stack: gunicorn, a worker, beat, the sink ----------------------------------------------------------


class StackWorker(Worker):
    """`python -m crm.celeryd worker` on the queues `make run`'s worker serves, with the web server's settings.

    nurture_bench's Worker (its readiness check, processes, log and stop are reused) starts with
    crm.settings.local on the nurture bench's own queue; this one runs what production runs.
    """

    def __init__(self, workdir: Path, concurrency: int):
        from django.conf import settings

        self.log_path = workdir / "worker.log"
        self.concurrency = concurrency
        self.name = f"load-bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        queues = ",".join((settings.CELERY_TASK_DEFAULT_QUEUE, settings.CRM_WEBHOOKS_QUEUE, settings.CRM_IMPORTS_QUEUE,
                           settings.CRM_SCORING_QUEUE))
        self.command = ["crm.celeryd", "worker", "-l", "warning", "-Q", queues, f"--concurrency={concurrency}",
                        "--without-gossip", "--without-mingle"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", *self.command, "-n", self.name], cwd=ROOT,
                                         env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class Beat:
    """`python -m crm.celeryd beat`: the ticks production runs (capture and tracking ingest, the dispatcher, scoring...)."""

    def __init__(self, workdir: Path):
        self.log_path = workdir / "beat.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "crm.celeryd", "beat", "-l", "warning", "-s", str(workdir / "beat-schedule")],
                cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self):
        stop_group(self.proc)


class StackCpuMeter(CpuMeter):
    """CPU seconds of gunicorn, the worker, beat, the sink, PostgreSQL, Redis, and Locust with this process
    (Locust is this process's child: its CPU comes in with this process's once it has exited)."""

    NAMES = ("gunicorn", "worker", "beat", "sink", "postgres", "redis", "locust_and_bench")

    def __init__(self, server, worker, beat, sink):
        super().__init__(worker=worker, sink=sink)
        self.server, self.beat = server, beat

    def _snapshot(self) -> dict:
        return {**super()._snapshot(), "gunicorn": set(self.server.pids()), "beat": self.beat.proc.pid}

    def classify(self, pid, comm, snapshot):
        if pid in snapshot["gunicorn"]:
            return "gunicorn"
        if pid == snapshot["beat"]:
            return "beat"
        name = super().classify(pid, comm, snapshot)
        return "locust_and_bench" if name == "bench" else name

    def shares(self) -> dict:
        """Each part's CPU as a share of one CPU over the phase, and what the rest of the machine used."""
        return {"cpu_share_of_one_cpu": {name: round(s / self.wall, 2) for name, s in self.used.items()},
                "other_processes_cpu_s": self.other, "loadavg_1min_after": round(os.getloadavg()[0], 2)}


def wait_all_sent(step_id, n, worker, sink, timeout):
    """nurture_bench's wait (a failure if the worker dies or nothing moves for 60 s), bounded by `timeout`:
    the seconds taken, or None if the emails were not all sent in time."""
    try:
        return nurture_wait_all_sent(step_id, n, worker, sink, timeout=timeout)
    except RuntimeError as exc:
        if worker.proc.poll() is not None or "stuck" not in str(exc) or count_sent(step_id) >= n:
            raise
        print(f"   not all sent in {timeout:.0f} s: {status_counts(step_id)}", flush=True)
        return None


# --- Data ------------------------------------------------------------------------------------------------


def prepare_data(args) -> dict:
    """nurture_bench's leads and email (its reps own them), the reps able to log in with tasks for Today, the
    capture form, an API token; the emails of the loaded phase scheduled for tomorrow until it starts."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from bench.api_bench import tokens
    from core.roles import Role
    from leads import pipeline
    from leads.models import Lead

    data = load_email_data(args.emails)
    with connection.cursor() as cursor:  # not due until the loaded phase: beat's tick would send them before
        cursor.execute("UPDATE nurturing_delivery SET due_at = now() + interval '1 day' WHERE step_id = %s",
                       [data["engine_step"]])
    User = get_user_model()
    reps = list(User.objects.filter(username__startswith="bench_rep").order_by("username"))
    group = Group.objects.get(name=Role.SALES_REP.value)
    for rep in reps:
        rep.set_password(PASSWORD)
        rep.save(update_fields=["password"])
        rep.groups.set([group])
    rep_leads = {rep.pk: list(Lead.objects.filter(owner=rep).order_by("id").values_list("id", flat=True)[:LEADS_PER_REP_PAGE])
                 for rep in reps}
    lay_out_tasks({"showcase_lead_id": rep_leads[reps[0].pk][0], "rep_ids": [r.pk for r in reps],
                   "open_statuses": sorted(pipeline.OPEN_STATUSES)})
    ensure_form()
    made = tokens()
    with connection.cursor() as cursor:  # the statistics a database in use has (autovacuum): the planner needs them
        cursor.execute("VACUUM (ANALYZE)")
    return {
        **data,
        "reps": [{"username": rep.get_username(), "lead_ids": rep_leads[rep.pk]} for rep in reps],
        "api_token": made["rep"],
        "api_lead_ids": rep_leads[made["rep_id"]],
    }


def database_afresh(url: str) -> None:
    """The run's database, dropped and created again: each run migrates and loads from nothing, so nothing an
    earlier run (or code) left changes what this one measures."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def make_due(step_id) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE nurturing_delivery SET due_at = now() WHERE step_id = %s AND status = 'scheduled'", [step_id])
        return cursor.rowcount


# --- Locust ------------------------------------------------------------------------------------------------


def locust_version() -> str:
    import importlib.metadata

    return f"locust {importlib.metadata.version('locust')}"


def locust_config(workdir: Path, data: dict, run_id: str) -> Path:
    from django.urls import reverse

    config = {
        "run_id": run_id,
        "users": USERS,
        "site": SITE,
        "form_slug": FORM_SLUG,
        "api_token": data["api_token"],
        "api_lead_ids": data["api_lead_ids"],
        "reps": data["reps"],
        "password": PASSWORD,
        "urls": {"login": reverse("login"), "today": reverse("workspace:today"), "leads": reverse("workspace:lead_list"),
                 "lead": reverse("workspace:lead_detail", args=[0]).replace("/0/", "/{id}/")},
    }
    path = workdir / f"locust-{run_id}.json"
    path.write_text(json.dumps(config))
    return path


class Locust:
    """Locust headless in its own process: every user class at its fixed count, stats reset once all are
    spawned (and logged in), the run's stats in CSV files; stopped by `--run-time` or `stop()` (SIGTERM:
    Locust stops its users and writes the files)."""

    def __init__(self, server, workdir: Path, config: Path, label: str, seconds: float):
        self.prefix = workdir / f"locust-{label}"
        self.users = sum(group["users"] for group in USERS.values())
        self.log_path = workdir / f"locust-{label}.log"
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", f"http://127.0.0.1:{server.port}",
            "-u", str(self.users), "-r", str(self.users), "--run-time", f"{int(seconds)}s", "--stop-timeout", "10",
            "--reset-stats", "--csv", str(self.prefix), "--csv-full-history", "--only-summary", "--loglevel", "WARNING",
            *(group["class"] for group in USERS.values()),
        ]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "LOAD_BENCH_CONFIG": str(config)},
                                         stdout=log, stderr=subprocess.STDOUT)
        self.started = time.perf_counter()

    def wait_spawned(self, timeout=60.0) -> float:
        """Seconds until every user is running (the history file's user count), logins done."""
        history = Path(f"{self.prefix}_stats_history.csv")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Locust exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                rows = list(csv.DictReader(history.open()))
            except OSError:
                rows = []
            if rows and int(rows[-1]["User Count"]) >= self.users:
                time.sleep(1.5)  # the reps' logins, in on_start, run just after their users spawn
                return time.perf_counter() - self.started
            time.sleep(0.2)
        raise RuntimeError(f"Locust did not spawn its {self.users} users in {timeout:.0f} s:\n{self.log_tail()}")

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines=40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def results(self) -> dict:
        """Per request name: requests, failures, requests/s, p50, p95, p99, max (ms); and the failures' messages."""
        stats = {}
        with open(f"{self.prefix}_stats.csv") as f:
            rows = list(csv.DictReader(f))
        with open(f"{self.prefix}_failures.csv") as f:
            failed = list(csv.DictReader(f))
        for row in rows:
            if row["Name"] == "Aggregated":
                continue
            stats[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "errors": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 2),
                "p50_ms": _ms(row["50%"]),
                "p95_ms": _ms(row["95%"]),
                "p99_ms": _ms(row["99%"]),
                "max_ms": _ms(row["Max Response Time"]),
            }
        failures = [{"name": row["Name"], "error": row["Error"], "occurrences": int(row["Occurrences"])}
                    for row in failed]
        exceptions = self.log_path.read_text(errors="replace").count("Traceback")
        return {"stats": stats, "failures": failures, "tracebacks_in_log": exceptions}


def _ms(value: str):
    return None if value in ("", "N/A") else round(float(value), 1)


def run_locust(server, workdir, config, label, *, seconds, meter) -> dict:
    """The Locust run for `seconds` after its users are up, `meter` measuring."""
    with meter:
        locust = Locust(server, workdir, config, label, seconds + 15)
        spawned = locust.wait_spawned()
        time.sleep(max(0.0, seconds - 0.5))
        locust.stop()
    return {"spawn_s": round(spawned, 1), "seconds": seconds, **locust.results(), "cpu": meter.shares(),
            "cpu_s": meter.used}


# --- The phases ----------------------------------------------------------------------------------------------


def engine_alone(args, data, worker, sink, meter) -> dict | None:
    """`--engine-emails` due emails of a fresh sequence, with no HTTP load: the engine's emails/s alone."""
    from nurturing.tasks import dispatch_due

    n = min(args.engine_emails, args.emails)
    if n <= 0:
        return None
    _, steps = sequence("Load: the engine alone")
    enroll(steps[0].sequence, steps[0], leads=n)
    sink.reset()
    with meter:
        dispatch_due.delay()
        elapsed = wait_all_sent(steps[0].pk, n, worker, sink, timeout=args.max_seconds)
    received = sink.settle(n)
    return {"emails": n, "seconds": round(elapsed, 1) if elapsed else None,
            "emails_per_s": round(n / elapsed, 1) if elapsed else None,
            "duplicates": received["received_more_than_once"], "cpu": meter.shares(), "cpu_s": meter.used}


def loaded(args, data, server, worker, sink, workdir, config, meter) -> dict:
    """The Locust run, and once its users are up the loaded phase's emails made due and beat's tick sent: until
    every one is sent (or `--max-seconds`), then Locust is stopped."""
    from nurturing.tasks import dispatch_due

    n = data["emails"]
    sink.reset()
    with meter:
        locust = Locust(server, workdir, config, "loaded", args.max_seconds + 30)
        spawned = locust.wait_spawned()
        started = time.perf_counter()
        made_due = make_due(data["engine_step"])
        dispatch_due.delay()
        try:
            elapsed = wait_all_sent(data["engine_step"], n, worker, sink, timeout=args.max_seconds)
        finally:
            locust.stop()
        wall = time.perf_counter() - started
    received = sink.settle(n)
    sent = count_sent(data["engine_step"])
    return {
        "spawn_s": round(spawned, 1),
        "seconds": round(wall, 1),
        "emails": n,
        "made_due": made_due,
        "sent": sent,
        "all_sent": elapsed is not None,
        "emails_per_s": round(sent / (elapsed or wall), 1),
        "duplicates": received["received_more_than_once"],
        "statuses": status_counts(data["engine_step"]),
        **locust.results(),
        "cpu": meter.shares(),
        "cpu_s": meter.used,
    }


def captures_stored(run_ids: dict, submitted: dict, timeout=60.0) -> dict:
    """Every form the load sent, in the database once the worker has drained the capture queue (beat's ticks):
    per phase, the posts answered with the thank-you, the submissions stored, and any quarantined."""
    from django.db import connection

    from capture.services import capture_queue

    deadline = time.monotonic() + timeout
    while capture_queue().size() and time.monotonic() < deadline:
        time.sleep(1)
    counts = {}
    with connection.cursor() as cursor:
        for label, run_id in run_ids.items():
            cursor.execute("SELECT count(*) FROM leads_formsubmission WHERE form_slug = %s AND visitor_id LIKE %s",
                           [FORM_SLUG, f"v{run_id}%"])
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM capture_quarantine WHERE context->>'visitor_id' LIKE %s", [f"v{run_id}%"])
            counts[label] = {"thanked": submitted[label], "stored": stored, "quarantined": cursor.fetchone()[0]}
    counts["left_in_queue"] = capture_queue().size()
    return counts


# --- The run ------------------------------------------------------------------------------------------------


def _raise_on_signal(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def run(args) -> int:
    from bench.calibration import calibration_s

    # Stopped from outside (SIGTERM, SIGHUP), the run still stops what it started (the finally below).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_on_signal)
    started, calibration = time.perf_counter(), calibration_s()
    load_start = os.getloadavg()
    database_afresh(args.database_url)
    flush_redis(args.redis_url)
    with tempfile.TemporaryDirectory(prefix="load_bench_") as tmp:
        workdir = Path(tmp)
        sink = Sink(workdir)
        server = worker = beat = None
        try:
            os.environ.update({
                "CELERY_BROKER_URL": args.redis_url,
                "EMAIL_URL": sink.url,
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            })
            settings_module_setup(workdir, "load_bench_settings", SETTINGS_SHIM.format(
                static_root=str(workdir / "static"), site=SITE), args.database_url)
            from django.core.management import call_command
            from django.db import connection

            t0 = time.perf_counter()
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            print(f"   migrated, static files collected in {time.perf_counter() - t0:.1f} s", flush=True)
            data = prepare_data(args)
            connection.close()

            server = BenchServer(workdir, args.gunicorn_workers).__enter__()
            worker = StackWorker(workdir, args.concurrency)
            beat = Beat(workdir)
            worker.wait_ready()
            print(f"   worker and beat up; SMTP sink on port {sink.port}", flush=True)
            meter = lambda: StackCpuMeter(server, worker, beat, sink)  # noqa: E731

            run_ids = {label: f"{label[0]}{secrets.token_hex(3)}" for label in ("quiet", "loaded")}
            print(f"-- 0. warm-up: Locust for {args.warmup:.0f} s", flush=True)
            warmup = run_locust(server, workdir, locust_config(workdir, data, f"w{secrets.token_hex(3)}"), "warmup",
                                seconds=args.warmup, meter=meter())
            print_phase(warmup)
            print(f"-- 1. quiet: Locust for {args.seconds:.0f} s, no email going out", flush=True)
            quiet = run_locust(server, workdir, locust_config(workdir, data, run_ids["quiet"]), "quiet",
                               seconds=args.seconds, meter=meter())
            print_phase(quiet)
            print(f"-- 2. the engine alone: {min(args.engine_emails, args.emails):,} emails, no HTTP load", flush=True)
            alone = engine_alone(args, data, worker, sink, meter())
            if alone:
                print(f"   {alone['emails_per_s']} emails/s ({alone['seconds']} s)", flush=True)
            print(f"-- 3. loaded: Locust while {data['emails']:,} emails are sent (at most {args.max_seconds:.0f} s)",
                  flush=True)
            load = loaded(args, data, server, worker, sink, workdir, locust_config(workdir, data, run_ids["loaded"]),
                          meter())
            print(f"   {load['sent']:,} emails in {load['seconds']} s: {load['emails_per_s']} emails/s", flush=True)
            print_phase(load)
            post = "capture: form post"
            submitted = {label: phase["stats"][post]["requests"] - phase["stats"][post]["errors"]
                         for label, phase in (("quiet", quiet), ("loaded", load))}
            captures = captures_stored(run_ids, submitted)
            worker_errors = [line for line in worker.log_path.read_text(errors="replace").splitlines()
                             if "ERROR" in line or "Traceback" in line]
        finally:
            for part in (beat, worker):
                if part is not None:
                    part.stop()
            if server is not None:
                server.__exit__(None, None, None)
            sink.stop()

    result = report(args, data, warmup, quiet, alone, load, calibration, started, load_start, captures, worker_errors,
                    worker.command)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, args.output)
    return 0


def report(args, data, warmup, quiet, alone, load, calibration, started, load_start, captures, worker_errors, worker_command):
    endpoints = {}
    for group, names in ENDPOINTS.items():
        for name in names:
            q, l_ = quiet["stats"].get(name, {}), load["stats"].get(name, {})
            endpoints[name] = {
                "group": group,
                "p95_ms": l_.get("p95_ms"),
                "p95_alone_ms": q.get("p95_ms"),
                "errors": l_.get("errors", 0),
                "errors_alone": q.get("errors", 0),
                "requests": l_.get("requests", 0),
                "requests_alone": q.get("requests", 0),
                "rps": l_.get("rps"),
                "rps_alone": q.get("rps"),
                "p50_ms": l_.get("p50_ms"),
                "p50_alone_ms": q.get("p50_ms"),
                "p99_ms": l_.get("p99_ms"),
                "p99_alone_ms": q.get("p99_ms"),
            }
    # Every request of every Locust run counts here, the warm-up's and the logins' too.
    errors = sum(s["errors"] for phase in (warmup, quiet, load) for s in phase["stats"].values())
    requests = sum(s["requests"] for phase in (warmup, quiet, load) for s in phase["stats"].values())
    return {
        "benchmark": "load",
        "calibration_s": calibration,
        "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "duration_s": load["seconds"],
        "bench_seconds": round(time.perf_counter() - started, 1),
        "emails_sent": load["sent"],
        "emails_per_s": load["emails_per_s"],
        "emails_per_s_alone": alone["emails_per_s"] if alone else None,
        "errors": errors,
        "error_rate": round(errors / requests, 6) if requests else None,
        "endpoints": endpoints,
        "users": {group: {**spec, "per_s": round(spec["users"] * spec["per_user_per_s"], 1)} for group, spec in USERS.items()},
        "users_total": sum(spec["users"] for spec in USERS.values()),
        "machine": {
            **machine_info(),
            "loadavg_at_start": [round(x, 2) for x in load_start],
            "note": f"Everything on this machine ({os.cpu_count()} CPUs): Locust, gunicorn, the Celery worker and beat, "
                    "the SMTP sink, PostgreSQL and Redis share its CPUs, so the emails and the requests compete for them. "
                    "Other work on the machine shows in each phase's other_processes_cpu_s.",
        },
        "phases": {
            "warmup": {"errors": sum(s["errors"] for s in warmup["stats"].values()),
                       "requests": sum(s["requests"] for s in warmup["stats"].values()), "failures": warmup["failures"]},
            "quiet": {k: v for k, v in quiet.items() if k != "stats"},
            "engine_alone": alone,
            "loaded": {k: v for k, v in load.items() if k != "stats"},
        },
        "captures": captures,
        "worker_log_errors": worker_errors[-20:],
        "setup_requests": {name: {"quiet": quiet["stats"].get(name), "loaded": load["stats"].get(name)}
                           for name in SETUP_REQUESTS},
        "server": {
            "gunicorn": gunicorn_version(),
            "workers": args.gunicorn_workers,
            "worker_class": "sync",
            "settings": "crm.settings.production (tracking site, per-address limits out of the load's reach, "
                        "CRM_CAPTURE_MIN_FILL_SECONDS=0, STATIC_ROOT in a temporary folder)",
            "https": "X-Forwarded-Proto: https on every request, as from a TLS proxy",
        },
        "worker": {"command": " ".join(worker_command), "beat": "python -m crm.celeryd beat (the project's schedule)",
                   "email": "SMTP to nurture_bench's sink on loopback"},
        "load_generator": {"tool": locust_version(), "locustfile": "bench/locustfile.py", "loopback": True,
                           "pace": "constant_throughput per user: the same offered load in both phases",
                           "warmup_seconds": args.warmup, "quiet_seconds": args.seconds, "max_seconds": args.max_seconds},
        "data": {"leads": data["emails"], "reps": len(data["reps"])},
        "code": code_version(),
        **database_info(),
        "database_name": urlsplit(args.database_url).path.lstrip("/"),
        "redis": urlunsplit(urlsplit(args.redis_url)._replace(netloc=urlsplit(args.redis_url).hostname or "")),
        "targets": TARGETS,
        "meets_targets": {
            "errors": errors == TARGETS["errors"] and load["all_sent"],
            # Every form answered with the thank-you is in the database (or held in quarantine), none left queued.
            # More may be stored than Locust counted: posts just outside its counting window.
            "captures_kept": captures["left_in_queue"] == 0 and all(
                captures[label]["stored"] + captures[label]["quarantined"] >= captures[label]["thanked"]
                for label in ("quiet", "loaded")),
        },
    }


def print_phase(phase: dict) -> None:
    for name, s in phase["stats"].items():
        print(f"   {name:<20} {s['requests']:>7,} requests {s['rps']:7.1f}/s  p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  "
              f"errors {s['errors']}", flush=True)
    for failure in phase["failures"]:
        print(f"   FAILED {failure['occurrences']}x {failure['name']}: {failure['error'][:300]}", flush=True)
    cpu = phase["cpu"]
    print(f"   CPU (share of one CPU): {cpu['cpu_share_of_one_cpu']}, others {cpu['other_processes_cpu_s']} CPU s",
          flush=True)


def print_report(result: dict, output: Path) -> None:
    print()
    print(f"Load run: {result['emails_sent']:,} emails in {result['duration_s']} s = {result['emails_per_s']} emails/s "
          f"(alone {result['emails_per_s_alone']}), {result['users_total']} Locust users, {result['machine']['cpus']} CPUs, "
          f"calibration_s {result['calibration_s']}")
    print(f"{'endpoint':<22}{'p95 alone':>10}{'p95 loaded':>11}{'p50 alone':>10}{'p50 loaded':>11}{'req/s':>8}{'errors':>8}")
    for name, e in result["endpoints"].items():
        print(f"{name:<22}{e['p95_alone_ms']!s:>10}{e['p95_ms']!s:>11}{e['p50_alone_ms']!s:>10}{e['p50_ms']!s:>11}"
              f"{e['rps']!s:>8}{e['errors'] + e['errors_alone']:>8}")
    print(f"Errors: {result['errors']} (rate {result['error_rate']}); captures {result['captures']}")
    print(f"Meets targets: {result['meets_targets']}")
    print(f"Results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output} ({result['bench_seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
