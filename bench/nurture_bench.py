"""The nurturing engine on PostgreSQL + Redis + a real Celery worker + a real SMTP server.

    .venv/bin/python -m bench.nurture_bench [--emails 10000] [--deliveries 1000000]
    .venv/bin/python -m bench.nurture_bench --profile     # cProfile of one sending process

Measures, in one run, on its own database (`crm_bench_nurture`,
BENCH_NURTURE_DATABASE_URL), its own Redis database (/14, flushed at start,
BENCH_NURTURE_REDIS_URL) and an SMTP sink (aiosmtpd) in its own process on
loopback that counts what it receives:

1. emails_per_s: N due deliveries (default 10,000) sent by `dispatch_due`
   through a `celery worker --concurrency=2`, timed until all are `sent`.
2. naive_emails_per_s: the same N, one task per email (load, render, send on
   the worker process's open SMTP connection, one UPDATE), same worker.
3. smtp_limit_per_s: N pre-rendered messages sent with plain smtplib loops,
   one connection per worker process: what the sink can take.
4. claim_1000_ms_at_1m: `deliveries_claim(limit=1000)` with 1,000,000
   scheduled deliveries of which 20,000 are due (each claim takes fresh rows),
   after the dispatcher's ticks sorted the claim queue (`deliveries_queue_sort`
   until it moves nothing: what that took is reported as `queue_sort`).
   Before it, at 10,000 scheduled (2,000 due, so each run's rows are handed
   back and claimed again); after it, at 1,000,000 that same way
   (`at_1m_like_10k`: what the runs claimed is sent, the due past 2,000
   skipped). These two give the like-for-like ratio `claim_1m_vs_10k`.
5. worker_rss_mb: peak RSS of the worker and its pool during step 1.
6. email_sent_event_cost: step 1 again, alternately with and without the
   `email.sent` event write (a worker started with BENCH_NURTURE_NO_SENT_EVENTS=1
   skips it), two runs each: the share of emails/s the event costs.

Each phase also records the CPU time the worker, the sink, PostgreSQL, Redis
and this process spent per email, and what other processes used meanwhile:
on a shared machine, other work shows there.

Results: bench/results/nurture.json, and a summary on stdout. The worker
imports only bench.nurture_worker (`--include`): the naive tasks and its
settings for the bench, not this harness.
"""

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.nurture_worker import NO_SENT_EVENTS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_nurture"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "nurture.json"
QUEUE = "nurture-bench"

TARGETS = {
    "emails_per_s_min": 800,
    "share_of_smtp_limit_min": 0.6,
    "times_naive_min": 2.0,
    "claim_1000_ms_at_1m_max": 10.0,
    # No slower at 1,000,000 scheduled than at 10,000 (within the noise of one run).
    "claim_1m_vs_10k_max": 1.25,
    "duplicates_max": 0,
    "worker_rss_mb_max": 250,
    # The event log's write in the send path costs at most this share of emails/s.
    "email_sent_event_cost_max": 0.10,
}

# A realistic follow-up: personalized subject, a plain-text body and an HTML alternative.
SUBJECT = "{{ first_name|default:'there' }}, the pipeline review checklist for {{ company.name|default:'your team' }}"
TEXT = """Hi {{ first_name|default:'there' }},

Thanks for downloading our guide{% if resource.title %} ({{ resource.title }}){% endif %}. Teams like
{{ company.name|default:'yours' }} usually ask us two things next:

1. How do we run a weekly pipeline review in 30 minutes?
2. Which stages should we track before a deal is real?

I wrote up how our customers answer both: a five-minute read that works with any CRM.
If it is easier to talk it through, {{ links.book_demo|default:'just reply to this email' }}.

Best,
{{ owner.first_name|default:'The team' }}
{{ sender.full_name }}

--
You get this email because you signed up on our website. Unsubscribe: {{ links.unsubscribe|default:'reply STOP' }}
"""
HTML = """<!doctype html>
<html>
<body style="font-family: Helvetica, Arial, sans-serif; font-size: 15px; color: #222;">
<p>Hi {{ first_name|default:'there' }},</p>
<p>Thanks for downloading our guide{% if resource.title %} (<em>{{ resource.title }}</em>){% endif %}.
Teams like {{ company.name|default:'yours' }} usually ask us two things next:</p>
<ol>
  <li>How do we run a weekly pipeline review in 30 minutes?</li>
  <li>Which stages should we track before a deal is real?</li>
</ol>
<p>I wrote up how our customers answer both: a five-minute read that works with any CRM.</p>
<p><a href="https://crm.example/guides/pipeline-review">Read the checklist</a></p>
<p>Best,<br>{{ owner.first_name|default:'The team' }}<br>{{ sender.full_name }}</p>
<p style="font-size: 12px; color: #888;">You get this email because you signed up on our website.
{% if links.unsubscribe %}<a href="{{ links.unsubscribe }}">Unsubscribe</a>{% endif %}</p>
</body>
</html>
"""

REPS = (("Tom", "Becker"), ("Sofia", "Marino"), ("Ade", "Okafor"), ("Lena", "Vogel"))
TIMEZONES = ("", "", "Europe/Paris", "America/New_York", "Europe/London", "Asia/Singapore")
CLAIM_SEQUENCES = 100
CLAIM_SMALL = 10_000  # the claim is measured at this many scheduled deliveries first, then at --deliveries
CLAIM_WARMUPS = 2


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.nurture_bench", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--emails", type=int, default=10_000, help="due deliveries sent in steps 1-3 (default 10,000)")
    parser.add_argument("--naive-emails", type=int, help="emails sent the naive way (default: as many as --emails; at ~35/s it is the longest phase)")
    parser.add_argument("--deliveries", type=int, default=1_000_000, help="scheduled deliveries for the claim (default 1,000,000)")
    parser.add_argument("--due", type=int, default=20_000, help="of which due now (default 20,000: each claim takes fresh rows)")
    parser.add_argument("--claim-runs", type=int, default=15, help="measured claims of 1,000 (default 15)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, and smtplib loops (default 2)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_NURTURE_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_NURTURE_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--phases", default="engine,naive,events,limit,claim",
                        help="which to run (default all: engine,naive,events,limit,claim); the results file is written only for all")
    parser.add_argument("--event-rounds", type=int, default=2, help="runs with and without the email.sent event, each (default 2)")
    parser.add_argument("--profile", action="store_true", help="only profile deliveries_claim/send in this process (cProfile), no worker")
    parser.add_argument("--plain", action="store_true", help="with --profile: no cProfile half, every email timed plainly")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)  # the sink's addresses, comma-separated
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if args.sink:
        return run_sink(args.port, args.stats, args.host.split(","))
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    return orchestrate(args)


# --- The SMTP sink: its own process, counting messages by X-CRM-Delivery (or recipient) ---------


class _Counting:
    def __init__(self):
        self.reset()

    def reset(self):
        self.generation = getattr(self, "generation", -1) + 1
        self.received = 0
        self.keys = collections.Counter()

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        at = content.find(b"\nX-CRM-Delivery: ")
        if at >= 0:
            key = content[at + 17 : content.find(b"\n", at + 1)].strip()
        else:  # send_mail cannot add headers: the naive way is told apart by recipient
            key = ("to:" + ",".join(envelope.rcpt_tos)).encode()
        self.received += 1
        self.keys[key] += 1
        return "250 OK"


def run_sink(port: int, stats: Path, hosts=("127.0.0.1",)) -> int:
    """aiosmtpd on hosts:port (loopback by default); writes its counts to `stats` every 0.1 s; SIGUSR1 resets them."""
    import asyncio
    import logging

    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # it logs every SMTP command at INFO

    async def serve():
        loop = asyncio.get_running_loop()
        handler = _Counting()
        server = await loop.create_server(lambda: SMTP(handler, hostname="sink.localhost"), list(hosts), port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, handler.reset)
        while True:
            counts = handler.keys.values()
            data = {
                "generation": handler.generation,
                "received": handler.received,
                "distinct": len(handler.keys),
                "received_more_than_once": sum(1 for n in counts if n > 1),
            }
            tmp = stats.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(stats)
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
        server.close()

    asyncio.run(serve())
    return 0


class Sink:
    """The sink's process; `hosts`: the addresses it listens on (loopback first: it is checked there)."""

    def __init__(self, workdir: Path, hosts=("127.0.0.1",)):
        self.port = free_port()
        self.stats_path = workdir / "sink.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.nurture_bench", "--sink", "--port", str(self.port), "--stats", str(self.stats_path),
             "--host", ",".join(hosts)],
            cwd=ROOT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not (port_open(self.port) and self.stats_path.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the SMTP sink did not start")
            time.sleep(0.05)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        return json.loads(self.stats_path.read_text())

    def reset(self):
        generation = self.stats()["generation"]
        self.proc.send_signal(signal.SIGUSR1)
        while self.stats()["generation"] == generation:
            time.sleep(0.02)

    def settle(self, expected: int, timeout=30.0) -> dict:
        """The counts once `expected` messages arrived (or nothing arrived for 2 s)."""
        deadline = time.monotonic() + timeout
        last, still = None, time.monotonic()
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats["received"] >= expected:
                time.sleep(0.3)  # anything more (a duplicate) would land now
                return self.stats()
            if stats != last:
                last, still = stats, time.monotonic()
            elif time.monotonic() - still > 2:
                return stats
            time.sleep(0.05)
        return self.stats()

    def stop(self):
        stop_group(self.proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_group(proc, timeout=20):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


# --- The orchestrator -----------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            print(f"   creating database {name}", flush=True)
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(args, email_url: str = "") -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings.local"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["CELERY_BROKER_URL"] = args.redis_url
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if email_url:
        os.environ["EMAIL_URL"] = email_url
        os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.smtp.EmailBackend"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def orchestrate(args) -> int:
    from bench.calibration import calibration_s

    started, load_before = time.perf_counter(), round(os.getloadavg()[0], 2)
    calibration = calibration_s()
    ensure_database(args.database_url)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    sink = Sink(workdir)
    worker = None
    try:
        setup_django(args, sink.url)
        from django.core.management import call_command

        t = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        print(f"   migrated in {time.perf_counter() - t:.1f} s; SMTP sink on port {sink.port}", flush=True)
        data = load_email_data(args.emails)
        if args.profile:
            return profile_send(args, data, sink)

        phases = set(args.phases.split(","))
        engine = naive = limit = claim = events = None
        worker_log_tail = ""
        if phases & {"engine", "naive"}:
            worker = Worker(args, sink, workdir)
            worker.wait_ready()
            warm_up(worker)
        if "engine" in phases:
            print(f"-- 1. {args.emails:,} emails through dispatch_due and the worker", flush=True)
            engine = measure_engine(args, data, sink, worker)
            print(f"   {engine['emails_per_s']:.0f} emails/s ({engine['elapsed_s']:.1f} s), sink: {engine['sink']}, "
                  f"worker RSS {engine['worker_rss']}, CPU {engine['cpu']}", flush=True)
        if "naive" in phases:
            print(f"-- 2. {args.naive_emails or args.emails:,} emails the naive way (one task per email)", flush=True)
            naive = measure_naive(args, data, sink, worker)
            print(f"   {naive['emails_per_s']:.0f} emails/s ({naive['elapsed_s']:.1f} s), sink: {naive['sink']}, "
                  f"CPU ms/email {naive['cpu']['cpu_ms_per_email']}", flush=True)
        if worker is not None:
            worker.stop()
            worker_log_tail = worker.log_tail()
            worker = None
        if "events" in phases:
            print(f"-- 5. the email.sent event's cost: {args.emails:,} emails with and without it, "
                  f"{args.event_rounds} runs each", flush=True)
            events = measure_event_cost(args, data, sink, workdir)
            print(f"   with {events['with']['emails_per_s']} emails/s, without {events['without']['emails_per_s']}: "
                  f"cost {events['cost_share']:.1%} of emails/s", flush=True)
        if "limit" in phases:
            print(f"-- 3. smtplib loops, {args.concurrency} connections: what the sink takes", flush=True)
            if engine is None:  # the messages are the engine's, as it rendered them
                from nurturing.claim import deliveries_claim
                from nurturing.dispatch import deliveries_send

                while True:
                    token, ids = deliveries_claim(limit=1000)
                    if not ids:
                        break
                    deliveries_send(ids=ids, token=token)
            limit = measure_smtp_limit(args, data, sink)
            print(f"   {limit['emails_per_s']:.0f} emails/s ({limit['elapsed_s']:.1f} s), sink: {limit['sink']}, "
                  f"CPU ms/email {limit['cpu']['cpu_ms_per_email']}", flush=True)
        sink.stop()
        if "claim" in phases:
            small = min(CLAIM_SMALL, args.deliveries)
            print(f"-- 4. deliveries_claim(limit=1000) with {small:,}, then {args.deliveries:,} scheduled deliveries", flush=True)
            skip_leftovers()  # the next steps the email phases scheduled: the claim counts its own rows only
            claim_small = measure_claim(args, data, total=small, due=small // 5)
            print(f"   at {claim_small['scheduled']:,}: median {claim_small['median_ms']:.2f} ms, "
                  f"p95 {claim_small['p95_ms']:.2f} ms", flush=True)
            claim = measure_claim(args, data, total=args.deliveries - small, due=args.due)
            claim["at_10k"] = {k: claim_small[k] for k in ("median_ms", "p95_ms", "scheduled", "due", "fresh_rows_each_run")}
            print(f"   at {claim['scheduled']:,}: median {claim['median_ms']:.2f} ms, p95 {claim['p95_ms']:.2f} ms; "
                  f"breakdown {claim['breakdown'][-1]}", flush=True)
            claim["at_1m_like_10k"] = measure_claim_like(args, claim_small)
            print(f"   at {claim['at_1m_like_10k']['scheduled']:,} the 10,000 case's way ({claim['at_1m_like_10k']['due']:,} due, "
                  f"handed back): median {claim['at_1m_like_10k']['median_ms']:.2f} ms", flush=True)
    finally:
        if worker is not None:
            print(worker.log_tail(), file=sys.stderr)
            worker.stop()
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    if None in (engine, naive, limit, claim, events):
        print("(not every phase ran: no results file written)")
        return 0
    result = report(args, data, engine, naive, limit, claim, events, worker_log_tail, started, load_before, calibration)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, args.output)
    return 0


# --- Data -----------------------------------------------------------------------------------------


def load_email_data(n: int) -> dict:
    """Reps, companies, campaigns, N leads; a sequence for the engine and one for the naive way."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from faker import Faker

    from leads.models import Campaign, Company, Lead

    started = time.perf_counter()
    User = get_user_model()
    with transaction.atomic(), connection.cursor() as cursor:
        # Everything from an earlier run goes, the million claim rows included.
        cursor.execute(
            "TRUNCATE core_domainevent, nurturing_delivery, nurturing_enrollment, nurturing_step, nurturing_sequence, "
            "nurturing_suppression, leads_lead, leads_company, leads_campaign, leads_source, leads_persona RESTART IDENTITY CASCADE"
        )
        reps = []
        for i, (first, last) in enumerate(REPS, start=1):
            user, _ = User.objects.update_or_create(
                username=f"bench_rep{i}", defaults={"first_name": first, "last_name": last, "email": f"{first.lower()}@crm.example"}
            )
            reps.append(user)
        fake = Faker("en_US")
        fake.seed_instance(42)
        companies = Company.objects.bulk_create(
            Company(name=fake.company(), domain=f"c{i}.example", industry="Software") for i in range(500)
        )
        campaigns = Campaign.objects.bulk_create(
            Campaign(name=name, slug=slug)
            for name, slug in (("The pipeline review guide", "guide-pipeline"), ("Forecasting webinar", "webinar-forecast"),
                               ("RevOps playbook", "ebook-revops"))
        )
        leads = []
        for i in range(n):
            first, last = fake.first_name(), fake.last_name()
            company = companies[i % len(companies)]
            lead = Lead(
                first_name=first, last_name=last, email=f"{first}.{last}.{i}@{company.domain}".lower(),
                company=company, owner=reps[i % len(reps)], campaign=campaigns[i % 5] if i % 5 < 3 else None,
                timezone=TIMEZONES[i % len(TIMEZONES)], status="nurturing",
            )
            lead.search_text = f"{first} {last} {lead.email} {company.name}".lower()
            leads.append(lead)
        Lead.objects.bulk_create(leads, batch_size=2000)
        engine_seq, engine_steps = sequence("Bench: guide follow-up")
        naive_seq, naive_steps = sequence("Bench: guide follow-up, naive")
    enroll(engine_seq, engine_steps[0])
    print(f"   {n:,} leads and their due deliveries in {time.perf_counter() - started:.1f} s", flush=True)
    return {
        "emails": n,
        "engine_sequence": engine_seq.pk, "engine_step": engine_steps[0].pk, "engine_next_step": engine_steps[1].pk,
        "naive_sequence": naive_seq.pk, "naive_step": naive_steps[0].pk,
    }


def sequence(name):
    """An active two-step sequence of the bench's email, its first step due at once."""
    from nurturing.models import Sequence, Step

    seq = Sequence.objects.create(name=name, status="active", daily_cap_per_sender=1_000_000)
    steps = [
        Step.objects.create(
            sequence=seq, position=position, delay=delay, send_days="0123456",
            window_start=datetime.min.time(), window_end=datetime.max.time().replace(microsecond=0),
            subject_template=SUBJECT, text_template=TEXT, html_template=HTML,
        )
        for position, delay in ((1, timedelta(0)), (2, timedelta(days=3)))
    ]
    return seq, steps


def enroll(sequence, step, leads=None):
    """The bench's leads (the first `leads`, or all) enrolled in `sequence`, its first step due now.

    In SQL, as bulk_enroll does with the ORM.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO nurturing_enrollment (lead_id, sequence_id, status, exit_reason, enrolled_at) "
            "SELECT id, %s, 'active', '', %s FROM leads_lead ORDER BY id LIMIT %s",
            [sequence.pk, now, leads],
        )
        cursor.execute(
            "INSERT INTO nurturing_delivery (enrollment_id, step_id, status, due_at, reason, attempts, to_email, subject, "
            "body_text, body_html, message_id, provider_message_id, created_at, updated_at) "
            "SELECT id, %s, 'scheduled', %s, '', 0, '', '', '', '', '', '', %s, %s FROM nurturing_enrollment WHERE sequence_id = %s",
            [step.pk, now, now, now, sequence.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE nurturing_delivery")
        cursor.execute("ANALYZE nurturing_enrollment")


def status_counts(step_id) -> dict:
    from django.db.models import Count

    from nurturing.models import Delivery

    return dict(Delivery.objects.filter(step_id=step_id).order_by().values_list("status").annotate(n=Count("id")))


def count_sent(step_id) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM nurturing_delivery WHERE step_id = %s AND status = 'sent'", [step_id])
        return cursor.fetchone()[0]


# --- The worker -------------------------------------------------------------------------------------



def proc_stats():
    """(pid, command name, the fields after it) of every process in /proc/<pid>/stat."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        yield int(entry), stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()

class Worker:
    """`python -m crm.celeryd worker --concurrency=N` on the bench database, Redis DB and sink, in its own session."""

    def __init__(self, args, sink, workdir, extra_env=None):
        self.log_path = workdir / "worker.log"
        env = {
            **(extra_env or {}),
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm.settings.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.redis_url,
            "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
            "EMAIL_URL": sink.url,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "LOG_LEVEL": "WARNING",
        }
        if not extra_env:
            env.pop(NO_SENT_EVENTS, None)
        self.concurrency = args.concurrency
        self.name = f"nurture-bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "crm.celeryd", "worker", "-l", "warning", "-Q", QUEUE,
                 f"--concurrency={args.concurrency}", "--include", "bench.nurture_worker", "-n", self.name,
                 "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self, timeout=60):
        from crm.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if app.control.ping(destination=[self.name], timeout=0.5):
                # The pool is up too: as many children as asked.
                if len(self.pids()) >= 1 + self.concurrency:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not start:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The worker and its pool: every process in its session's process group."""
        return [pid for pid, _, fields in proc_stats() if int(fields[2]) == self.proc.pid]  # pgrp

    def log_tail(self, lines=40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        stop_group(self.proc)


class RssSampler(threading.Thread):
    """Memory of the worker's processes every 0.2 s: VmRSS (the peak of the sum and of the largest process) and PSS.

    RSS counts the pages a pool process shares with the worker it was forked
    from once in each; PSS splits them, so the PSS sum is what the group uses.
    """

    def __init__(self, worker, interval=0.2):
        super().__init__(daemon=True)
        self.worker, self.interval = worker, interval
        self.stopped = threading.Event()
        self.peak_total = self.peak_single = self.peak_pss = 0.0
        self.samples = self.processes = 0
        self.idle = self.sample()

    def sample(self) -> dict:
        rss, pss = [], 0.0
        for pid in self.worker.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss.append(int(line.split()[1]) / 1024)
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
            except OSError:
                pass
        return {"total_mb": round(sum(rss), 1), "largest_process_mb": round(max(rss, default=0), 1),
                "pss_total_mb": round(pss, 1), "processes": len(rss)}

    def run(self):
        while not self.stopped.is_set():
            sample = self.sample()
            if sample["processes"]:
                self.samples += 1
                self.processes = max(self.processes, sample["processes"])
                self.peak_total = max(self.peak_total, sample["total_mb"])
                self.peak_single = max(self.peak_single, sample["largest_process_mb"])
                self.peak_pss = max(self.peak_pss, sample["pss_total_mb"])
            self.stopped.wait(self.interval)

    def result(self) -> dict:
        return {
            "peak_total_mb": round(self.peak_total, 1),
            "peak_largest_process_mb": round(self.peak_single, 1),
            "peak_pss_total_mb": round(self.peak_pss, 1),
            "idle_before": self.idle,
            "processes": self.processes,
            "samples": self.samples,
        }


class CpuMeter:
    """CPU seconds used during a phase by the worker, the sink, PostgreSQL, Redis and this process.

    utime + stime of every live process of each, plus what their exited children used
    (cutime + cstime of the parent that reaped them: PostgreSQL backends, pool processes).
    PostgreSQL is every postgres process: other databases' work counts there too.
    A subclass names other groups of processes with NAMES and `classify`.
    """

    NAMES = ("worker", "sink", "postgres", "redis", "bench")

    def __init__(self, worker=None, sink=None):
        self.worker, self.sink = worker, sink
        self.tick = os.sysconf("SC_CLK_TCK")

    def _snapshot(self) -> dict:
        """What `classify` needs, read once per measurement."""
        return {
            "worker_pids": set(self.worker.pids()) if self.worker else set(),
            "sink_pid": self.sink.proc.pid if self.sink else None,
        }

    def classify(self, pid: int, comm: str, snapshot: dict) -> str | None:
        """The group (one of NAMES) a process's CPU counts in, or None."""
        if pid in snapshot["worker_pids"]:
            return "worker"
        if pid == snapshot["sink_pid"]:
            return "sink"
        if comm == "postgres" or comm.startswith("postgres"):
            return "postgres"
        if comm.startswith("redis-server"):
            return "redis"
        if pid == os.getpid():
            return "bench"
        return None

    def _read(self) -> dict:
        totals = collections.Counter()
        snapshot = self._snapshot()
        for pid, comm, fields in proc_stats():
            name = self.classify(pid, comm, snapshot)
            if name is None:
                continue
            own = (int(fields[11]) + int(fields[12])) / self.tick
            reaped = (int(fields[13]) + int(fields[14])) / self.tick
            totals[name] += own + reaped
        return totals

    def _busy(self) -> float:
        """CPU seconds the whole machine has been busy (every process, the kernel included)."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        return (sum(fields[:8]) - idle) / self.tick

    def __enter__(self):
        self.start, self.busy_start, self.started = self._read(), self._busy(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        end, busy, self.wall = self._read(), self._busy(), time.perf_counter() - self.started
        self.used = {name: round(end[name] - self.start[name], 2) for name in self.NAMES}
        # What the rest of the machine used meanwhile: other work disturbs the measurement.
        self.other = round(max(0.0, busy - self.busy_start - sum(self.used.values())), 2)

    def result(self, emails: int) -> dict:
        """CPU seconds per component, and milliseconds of CPU per email."""
        total = sum(self.used.values())
        return {
            "cpu_s": self.used,
            "cpu_ms_per_email": {name: round(s * 1000 / emails, 3) for name, s in self.used.items()},
            "cpu_busy_share": round(total / (self.wall * (os.cpu_count() or 1)), 2),
            # CPU seconds used by anything else on the machine during the phase (0 on a quiet machine).
            "other_processes_cpu_s": self.other,
            "loadavg_1min_after": round(os.getloadavg()[0], 2),
        }


def warm_up(worker):
    """Each pool process runs a task (the reaper: nothing to reap) before the clock starts; nothing is sent."""
    from nurturing.tasks import reap_stale

    for _ in range(2 * worker.concurrency):
        reap_stale.apply_async(queue=QUEUE)
    time.sleep(1.0)


def wait_all_sent(step_id, n, worker, sink, timeout=600.0) -> float:
    """Seconds until `n` deliveries of the step are `sent` in the database.

    The sink's count (a file) is watched and the database asked once a second,
    then every 20 ms once the sink has everything: polling should not compete
    with the worker for the database. Fails if the worker dies or nothing moves for 60 s.
    """
    start = time.perf_counter()
    last, moved, asked = -1, start, 0.0
    while True:
        now = time.perf_counter()
        arrived = sink.stats()["received"] >= n
        if arrived or now - asked >= 1.0:
            asked = now
            sent = count_sent(step_id)
            if sent >= n:
                return time.perf_counter() - start
            if sent != last:
                last, moved = sent, now
            if worker.proc.poll() is not None or now - moved > 60 or now - start > timeout:
                raise RuntimeError(f"stuck at {sent:,}/{n:,} sent: {status_counts(step_id)}\n{worker.log_tail()}")
        time.sleep(0.02 if arrived else 0.05)


def send_due(step_id, n, worker, sink, meter) -> float:
    """Beat's tick (`dispatch_due`) sent to the worker, `meter` measuring: seconds until the step's n deliveries are sent."""
    from nurturing.tasks import dispatch_due

    with meter:
        start = time.perf_counter()
        dispatch_due.apply_async(queue=QUEUE)
        wait_all_sent(step_id, n, worker, sink)
        return time.perf_counter() - start


def measure_engine(args, data, sink, worker) -> dict:
    from django.conf import settings

    from nurturing.models import Delivery

    n = data["emails"]
    sink.reset()
    sampler = RssSampler(worker)
    sampler.start()
    try:
        elapsed = send_due(data["engine_step"], n, worker, sink, cpu := CpuMeter(worker, sink))
    finally:
        sampler.stopped.set()
        sampler.join()
    received = sink.settle(n)
    statuses = status_counts(data["engine_step"])
    step = Delivery.objects.filter(step_id=data["engine_step"])
    return {
        "emails_per_s": round(n / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "sink": received,
        "duplicates": received["received"] - received["distinct"],
        "statuses": statuses,
        "next_step_scheduled": Delivery.objects.filter(step_id=data["engine_next_step"], status="scheduled").count(),
        "stored_rendered": step.filter(status="sent").exclude(subject="").exclude(body_text="").exclude(message_id="").count(),
        "worker_rss": sampler.result(),
        "cpu": cpu.result(n),
        "settings": {
            "CRM_NURTURE_BATCH_SIZE": settings.CRM_NURTURE_BATCH_SIZE,
            "CRM_NURTURE_MAX_BATCHES_PER_TICK": settings.CRM_NURTURE_MAX_BATCHES_PER_TICK,
            "CRM_NURTURE_SEND_CHUNK": settings.CRM_NURTURE_SEND_CHUNK,
            "concurrency": args.concurrency,
        },
    }


def measure_event_cost(args, data, sink, workdir) -> dict:
    """The engine's emails/s with and without the email.sent event write, alternated (without, with, with,
    without, ...), each run a fresh sequence for the same leads on a fresh worker."""
    from core.models import DomainEvent

    n = data["emails"]
    runs = {"with": [], "without": []}
    order = [("without", "with") if i % 2 == 0 else ("with", "without") for i in range(args.event_rounds)]
    for i, mode in enumerate(m for pair in order for m in pair):
        worker = Worker(args, sink, workdir, extra_env={NO_SENT_EVENTS: "1"} if mode == "without" else None)
        try:
            worker.wait_ready()
            warm_up(worker)
            _, steps = sequence(f"Bench: event cost, run {i + 1} ({mode})")
            enroll(steps[0].sequence, steps[0], leads=n)
            sink.reset()
            elapsed = send_due(steps[0].pk, n, worker, sink, cpu := CpuMeter(worker, sink))
        finally:
            worker.stop()
        received = sink.settle(n)
        events = DomainEvent.objects.filter(type="email.sent", payload__step=steps[0].pk).count()
        cpu_ms = cpu.result(n)["cpu_ms_per_email"]
        runs[mode].append({
            "emails_per_s": round(n / elapsed, 1),
            "email_sent_events": events,
            "duplicates": received["received"] - received["distinct"],
            "worker_cpu_ms_per_email": cpu_ms["worker"],
            "postgres_cpu_ms_per_email": cpu_ms["postgres"],
        })
        print(f"   run {i + 1} {mode}: {runs[mode][-1]}", flush=True)

    def summary(mode):
        rows = runs[mode]
        return {
            "emails_per_s": round(statistics.median(r["emails_per_s"] for r in rows), 1),
            "worker_cpu_ms_per_email": round(statistics.median(r["worker_cpu_ms_per_email"] for r in rows), 3),
            "postgres_cpu_ms_per_email": round(statistics.median(r["postgres_cpu_ms_per_email"] for r in rows), 3),
            "runs": rows,
        }

    with_, without = summary("with"), summary("without")
    return {
        "emails": n,
        "with": with_,
        "without": without,
        # The share of emails/s lost to the event write (negative: within the noise, the run with it was faster).
        "cost_share": round(1 - with_["emails_per_s"] / without["emails_per_s"], 3),
        # Each run with the event wrote one per email, each run without wrote none: the switch worked.
        "switch_checked": all(r["email_sent_events"] == n for r in runs["with"])
        and all(r["email_sent_events"] == 0 for r in runs["without"]),
    }


def measure_naive(args, data, sink, worker) -> dict:
    from crm.celery import app
    from nurturing.models import Sequence, Step

    n = args.naive_emails or data["emails"]
    enroll(Sequence.objects.get(pk=data["naive_sequence"]), Step.objects.get(pk=data["naive_step"]), leads=n)
    sink.reset()
    with CpuMeter(worker, sink) as cpu:
        start = time.perf_counter()
        app.send_task("bench.nurture_worker.naive_dispatch", args=[data["naive_step"]], queue=QUEUE)
        wait_all_sent(data["naive_step"], n, worker, sink)
        elapsed = time.perf_counter() - start
    received = sink.settle(n)
    return {
        "emails": n,
        # Each worker process keeps one SMTP and one PostgreSQL connection between its tasks.
        "new_connections_per_email": {"smtp": 0, "postgresql": 0},
        "cpu": cpu.result(n),
        "emails_per_s": round(n / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "sink": received,
        "duplicates": received["received"] - received["distinct"],
        "statuses": status_counts(data["naive_step"]),
    }


def _smtp_loop(port, messages, ready, go, done):
    import smtplib

    smtp = smtplib.SMTP("127.0.0.1", port)
    ready.release()
    go.wait()
    for from_email, to, raw in messages:
        smtp.sendmail(from_email, to, raw)
    smtp.quit()
    done.put(len(messages))


def measure_smtp_limit(args, data, sink) -> dict:
    """N messages rendered as the engine renders them, sent by plain smtplib loops (one connection each)."""
    import multiprocessing

    from django.core.mail import EmailMultiAlternatives
    from django.db import connections

    from nurturing.models import Delivery

    n = data["emails"]
    t = time.perf_counter()
    messages = []
    rows = Delivery.objects.filter(step_id=data["engine_step"], status="sent").select_related("sender").order_by("pk")
    for d in rows.iterator(chunk_size=2000):
        sender = d.sender
        message = EmailMultiAlternatives(
            subject=d.subject, body=d.body_text, from_email=f"{sender.get_full_name()} <{sender.email}>", to=[d.to_email],
            reply_to=[sender.email], headers={"Message-ID": d.message_id, "X-CRM-Delivery": f"limit-{d.pk}"},
        )
        message.attach_alternative(d.body_html, "text/html")
        messages.append((sender.email, [d.to_email], message.message().as_bytes(linesep="\r\n")))
    render_s = time.perf_counter() - t
    connections.close_all()  # not shared with the forked loops

    ctx = multiprocessing.get_context("fork")
    ready, go, done = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    k = args.concurrency
    procs = [ctx.Process(target=_smtp_loop, args=(sink.port, messages[i::k], ready, go, done)) for i in range(k)]
    sink.reset()
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    with CpuMeter(None, sink) as cpu:
        start = time.perf_counter()
        go.set()
        sent = sum(done.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - start
        for p in procs:
            p.join()  # reaped by this process: their CPU counts as "bench"
    received = sink.settle(n)
    sizes = [len(raw) for _, _, raw in messages]
    return {
        "emails_per_s": round(sent / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "connections": k,
        "sink": received,
        "cpu": cpu.result(sent),
        "message_bytes_median": int(statistics.median(sizes)),
        "message_lines_median": int(statistics.median(raw.count(b"\n") for _, _, raw in messages[:500])),
        "prerender_s": round(render_s, 1),
    }


# --- The claim at a million -------------------------------------------------------------------------


def load_claim_data(total: int, due: int, emails: int) -> dict:
    """`total` scheduled deliveries: CLAIM_SEQUENCES one-step sequences x enough leads, `due` of them due now."""
    from django.db import connection, transaction
    from django.utils import timezone

    from nurturing.claim import deliveries_queue_sort
    from nurturing.models import Sequence, Step

    started = time.perf_counter()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_lead")
        leads = cursor.fetchone()[0]
    per_sequence = -(-total // CLAIM_SEQUENCES)
    if per_sequence > leads:
        raise SystemExit(f"--deliveries {total:,} needs {per_sequence:,} leads per sequence; there are {leads:,} (raise --emails)")
    with transaction.atomic():
        sequences = Sequence.objects.bulk_create(
            Sequence(name=f"Bench claim {i:03}", status="active") for i in range(CLAIM_SEQUENCES)
        )
        Step.objects.bulk_create(
            Step(sequence=s, position=1, subject_template=SUBJECT, text_template=TEXT, send_days="0123456") for s in sequences
        )
    # Every `every`-th delivery is due (spread over the last hour), the rest over the next 30 days.
    every = max(1, total // max(due, 1))
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET jit = off")
        done = 0
        for i in range(0, CLAIM_SEQUENCES, 10):
            ids = [s.pk for s in sequences[i : i + 10]]
            t = time.perf_counter()
            with transaction.atomic():
                cursor.execute(
                    "INSERT INTO nurturing_enrollment (lead_id, sequence_id, status, exit_reason, enrolled_at) "
                    "SELECT l.id, s.id, 'active', '', %s FROM (SELECT id FROM leads_lead ORDER BY id LIMIT %s) l "
                    "CROSS JOIN unnest(%s::bigint[]) AS s(id)",
                    [now, per_sequence, ids],
                )
                cursor.execute(
                    "INSERT INTO nurturing_delivery (enrollment_id, step_id, status, due_at, reason, attempts, to_email, "
                    "subject, body_text, body_html, message_id, provider_message_id, created_at, updated_at) "
                    "SELECT e.id, st.id, 'scheduled', "
                    "  CASE WHEN (row_number() OVER ()) %% %s = 0 THEN %s - random() * interval '1 hour' "
                    "       ELSE %s + interval '1 minute' + random() * interval '30 days' END, "
                    "  '', 0, '', '', '', '', '', '', %s, %s "
                    "FROM nurturing_enrollment e JOIN nurturing_step st ON st.sequence_id = e.sequence_id "
                    "WHERE e.sequence_id = ANY(%s::bigint[]) ORDER BY e.id",
                    [every, now, now, now, now, ids],
                )
                done += cursor.rowcount
            print(f"   deliveries {done:>10,} / {total:,}  ({time.perf_counter() - t:.1f} s)", flush=True)
        cursor.execute("RESET synchronous_commit")
        cursor.execute("RESET jit")
        # The dispatcher's ticks: what is due past the claim's horizon goes to the queue's far end.
        t, ticks, moved_away = time.perf_counter(), 0, 0
        while True:
            away, _ = deliveries_queue_sort()
            ticks, moved_away = ticks + 1, moved_away + away
            if not away:
                break
        sort = {"ticks": ticks, "rows_moved_away": moved_away, "seconds": round(time.perf_counter() - t, 2)}
        print(f"   queue sorted in {ticks} ticks: {moved_away:,} rows to the far end in {sort['seconds']} s", flush=True)
        t = time.perf_counter()
        cursor.execute("VACUUM (ANALYZE) nurturing_delivery")
        cursor.execute("VACUUM (ANALYZE) nurturing_enrollment")
        cursor.execute("VACUUM (ANALYZE) nurturing_duedelivery")
        cursor.execute("VACUUM (ANALYZE) nurturing_laterdelivery")
        cursor.execute("CHECKPOINT")
        print(f"   VACUUM ANALYZE in {time.perf_counter() - t:.1f} s", flush=True)
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE due_at <= now()) FROM nurturing_delivery WHERE status = 'scheduled'"
        )
        scheduled, due_now = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM nurturing_delivery")
        rows = cursor.fetchone()[0]
    return {
        "deliveries": rows,
        "scheduled": scheduled,
        "due": due_now,
        "queue_sort": sort,
        "load_seconds": round(time.perf_counter() - started, 1),
    }


def skip_leftovers() -> int:
    """Skip every delivery still scheduled (the earlier phases' next steps): they leave the claim queue."""
    from nurturing.models import Delivery

    return Delivery.objects.filter(status="scheduled").update(status="skipped", reason="Bench: before the claim")


def measure_claim(args, data, *, total, due) -> dict:
    """deliveries_claim(limit=1000), timed, after `total` more scheduled deliveries (`due` of them due) are loaded;
    each run takes fresh due rows when enough are due, else the last run's, handed back."""
    from django.db import connection, transaction
    from django.utils import timezone

    from nurturing.claim import _CLAIM_SQL_POSTGRESQL

    loaded = load_claim_data(total, due, args.emails)
    fresh = loaded["due"] >= (CLAIM_WARMUPS + args.claim_runs + 3) * 1000
    times = claim_runs(args, fresh=fresh)

    # Where the time goes: the claim's plan, executed on the next due rows and rolled back.
    def explain(fmt):
        with transaction.atomic(), connection.cursor() as cursor:
            now = timezone.now()
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT {fmt}) " + _CLAIM_SQL_POSTGRESQL,
                           [now, 1000, uuid.uuid4(), now])
            rows = [row[0] for row in cursor.fetchall()]
            transaction.set_rollback(True)
        return rows

    plan = explain("TEXT")
    breakdown = []
    for _ in range(3):
        root = explain("JSON")[0]
        root = (json.loads(root) if isinstance(root, str) else root)[0]
        update = root["Plan"]
        # The scan that finds the rows to update (by their address, after the CTE picked and locked them).
        rows_node = _find_node(update, "Tid Scan") or update["Plans"][0]
        select = _find_node(update, "Limit")
        breakdown.append({
            "execution_ms": round(root["Execution Time"], 2),
            "select_and_lock_ms": round(select["Actual Total Time"], 2) if select else None,
            "find_rows_ms": round(rows_node["Actual Total Time"], 2),
            "update_rows_ms": round(update["Actual Total Time"] - rows_node["Actual Total Time"], 2),
            "wal_records": update.get("WAL Records"),
            "wal_bytes": update.get("WAL Bytes"),
        })
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'nurturing_duedelivery'")
        indexes = cursor.fetchone()[0]
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "max_ms": round(max(times), 2),
        "runs_ms": [round(t, 2) for t in times],
        "fresh_rows_each_run": fresh,
        **loaded,
        "claim_queue_indexes": indexes,
        "breakdown": breakdown,
        "plan": plan,
    }


def claim_runs(args, *, fresh: bool) -> list[float]:
    """Milliseconds of each measured deliveries_claim(limit=1000), after CLAIM_WARMUPS; unless `fresh`, each run's
    rows are handed back, so the next run claims the same ones again."""
    from django.db import connection

    from nurturing.claim import deliveries_claim

    times = []
    for run in range(CLAIM_WARMUPS + args.claim_runs):
        start = time.perf_counter()
        _, ids = deliveries_claim(limit=1000)
        elapsed = (time.perf_counter() - start) * 1000
        assert len(ids) == 1000, f"claimed {len(ids)}"
        if not fresh:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE nurturing_duedelivery SET claim_token = NULL, claimed_at = NULL "
                               "WHERE delivery_id = ANY(%s)", [ids])
        if run >= CLAIM_WARMUPS:
            times.append(elapsed)
    return times


def measure_claim_like(args, small: dict) -> dict:
    """The claim at 1,000,000 the way it was measured at 10,000: as many due rows (`small["due"]`), each run's
    handed back. On the 1,000,000 just measured: what its runs claimed is sent (it leaves the queue, as the engine
    does) and the due rows past `small["due"]` are skipped; then the tables are vacuumed, the near end rewritten
    compact, as after a load. Only the number of scheduled deliveries differs from the 10,000 case."""
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute("UPDATE nurturing_delivery SET status = 'sent', updated_at = %s WHERE id IN "
                       "(SELECT delivery_id FROM nurturing_duedelivery WHERE claim_token IS NOT NULL)", [timezone.now()])
        sent = cursor.rowcount
        cursor.execute("UPDATE nurturing_delivery SET status = 'skipped', reason = 'Bench: past the 10,000 case''s due' "
                       "WHERE id IN (SELECT delivery_id FROM nurturing_duedelivery WHERE claim_token IS NULL "
                       "AND due_at <= %s ORDER BY due_at OFFSET %s)", [timezone.now(), small["due"]])
        skipped = cursor.rowcount
        cursor.execute("VACUUM (ANALYZE) nurturing_delivery")
        # The near end rewritten compact, as the 10,000 case's is after its load: otherwise its pages still
        # span the 20,000 due rows of the run before, and the claim reads them all: what a backlog leaves until autovacuum's free space is reused.
        cursor.execute("VACUUM (FULL, ANALYZE) nurturing_duedelivery")
        cursor.execute("CHECKPOINT")
        cursor.execute("SELECT count(*) FILTER (WHERE due_at <= now()), count(*) FROM nurturing_duedelivery")
        due, near_end = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM nurturing_delivery WHERE status = 'scheduled'")
        scheduled = cursor.fetchone()[0]
    times = claim_runs(args, fresh=False)
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "runs_ms": [round(t, 2) for t in times],
        "fresh_rows_each_run": False,
        "scheduled": scheduled,
        "due": due,
        "near_end_rows": near_end,
        "made_ready": {"sent": sent, "skipped": skipped},
    }


def _find_node(node, node_type):
    if node.get("Node Type") == node_type:
        return node
    for child in node.get("Plans", []):
        found = _find_node(child, node_type)
        if found:
            return found
    return None


def percentile(values, pct):
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- Profiling one sending process -------------------------------------------------------------------


def profile_send(args, data, sink) -> int:
    """The worker's loop in this process (claim a batch, send it over SMTP): half timed plainly, half under cProfile."""
    import cProfile
    import pstats

    from django.conf import settings

    from nurturing.claim import deliveries_claim
    from nurturing.dispatch import deliveries_send

    def send(limit):
        sent = 0
        while sent < limit:
            token, ids = deliveries_claim(limit=min(settings.CRM_NURTURE_BATCH_SIZE, limit - sent))
            if not ids:
                break
            sent += deliveries_send(ids=ids, token=token).sent
        return sent

    class SqlTimes:
        """Time per statement (its first 90 characters), to see where the database time goes."""

        def __init__(self):
            self.times = collections.defaultdict(lambda: [0, 0.0])

        def __call__(self, execute, sql, params, many, context):
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                entry = self.times[" ".join(sql.split())[:90]]
                entry[0] += 1
                entry[1] += time.perf_counter() - start

    from django.db import connection

    n = data["emails"]
    sink.reset()
    sql_times = SqlTimes()
    start, cpu_start = time.perf_counter(), os.times()
    with connection.execute_wrapper(sql_times):
        plain = send(n if args.plain else n // 2)
    plain_s, cpu_end = time.perf_counter() - start, os.times()
    plain_cpu_ms = ((cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)) * 1000 / max(plain, 1)
    if args.plain:
        received = sink.settle(n)
        print(f"   one process: {plain:,} sent in {plain_s:.1f} s = {plain / plain_s:.0f} emails/s, "
              f"{plain_cpu_ms:.2f} ms CPU per email (this process), SQL {sum(t for _, t in sql_times.times.values()):.1f} s; "
              f"sink {received['received']:,}; load {os.getloadavg()[0]:.2f}")
        sink.stop()
        return 0
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    profiled = send(n - plain)
    profiler.disable()
    profiled_s = time.perf_counter() - start
    received = sink.settle(n)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(50)
    stats.sort_stats("tottime").print_stats(30)
    print(f"   SQL in the plain half: {sum(t for _, t in sql_times.times.values()):.1f} s of {plain_s:.1f} s")
    for sql, (count, total) in sorted(sql_times.times.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"   {total * 1000:8.0f} ms {count:6} x  {sql}")
    print(f"   one process: {plain:,} sent in {plain_s:.1f} s = {plain / plain_s:.0f} emails/s, {plain_cpu_ms:.2f} ms CPU per email; "
          f"under cProfile {profiled / profiled_s:.0f} emails/s; sink {received}")
    sink.stop()
    return 0


# --- The report ----------------------------------------------------------------------------------


def report(args, data, engine, naive, limit, claim, events, worker_log_tail, started, load_before, calibration) -> dict:
    from bench.admin_bench import code_version, database_info, machine_info

    emails_per_s = engine["emails_per_s"]
    share = emails_per_s / limit["emails_per_s"]
    times_naive = emails_per_s / naive["emails_per_s"]  # rates: comparable if --naive-emails is smaller
    duplicates = engine["duplicates"]
    rss = engine["worker_rss"]
    cpus = os.cpu_count() or 1
    meets = {
        "emails_per_s": emails_per_s >= TARGETS["emails_per_s_min"],
        "share_of_smtp_limit": share >= TARGETS["share_of_smtp_limit_min"],
        "times_naive": times_naive >= TARGETS["times_naive_min"],
        "claim_1000_ms_at_1m": claim["median_ms"] < TARGETS["claim_1000_ms_at_1m_max"],
        # Like for like: at 1,000,000 the way the 10,000 case is measured (as many due, handed back).
        "claim_1m_vs_10k": claim["at_1m_like_10k"]["median_ms"] <= claim["at_10k"]["median_ms"] * TARGETS["claim_1m_vs_10k_max"],
        "duplicates": duplicates <= TARGETS["duplicates_max"] and engine["sink"]["received"] == data["emails"],
        "worker_rss_mb": rss["peak_total_mb"] < TARGETS["worker_rss_mb_max"],
        "email_sent_event_cost": events["switch_checked"] and events["cost_share"] <= TARGETS["email_sent_event_cost_max"],
    }
    return {
        "benchmark": "nurture",
        "calibration_s": calibration,
        "emails": data["emails"],
        "metrics": {
            "emails_per_s": emails_per_s,
            "naive_emails_per_s": naive["emails_per_s"],
            "smtp_limit_per_s": limit["emails_per_s"],
            "claim_1000_ms_at_1m": {"median": claim["median_ms"], "p95": claim["p95_ms"]},
            "claim_1000_ms_at_10k": {"median": claim["at_10k"]["median_ms"], "p95": claim["at_10k"]["p95_ms"]},
            "claim_1000_ms_at_1m_like_10k": {"median": claim["at_1m_like_10k"]["median_ms"], "p95": claim["at_1m_like_10k"]["p95_ms"]},
            "duplicates": duplicates,
            "worker_rss_mb": {
                "peak_total": rss["peak_total_mb"],
                "peak_largest_process": rss["peak_largest_process_mb"],
                "idle_total_before": rss["idle_before"]["total_mb"],
                "peak_pss_total": rss["peak_pss_total_mb"],
            },
        },
        "ratios": {
            "share_of_smtp_limit": round(share, 2),
            "times_naive": round(times_naive, 2),
            "claim_1m_vs_10k": round(claim["at_1m_like_10k"]["median_ms"] / claim["at_10k"]["median_ms"], 2),
            "claim_1m_fresh_vs_10k": round(claim["median_ms"] / claim["at_10k"]["median_ms"], 2),
            "email_sent_event_cost": events["cost_share"],
        },
        # What the machine allows: its CPUs over the CPU time one email took, all processes together
        # (the engine: worker + sink + PostgreSQL + Redis + this process's polling), and the sink's alone.
        "analysis": {
            "engine_cpu_ms_per_email": round(sum(engine["cpu"]["cpu_ms_per_email"].values()), 3),
            "engine_cpu_ceiling_emails_per_s": round(cpus * 1000 / sum(engine["cpu"]["cpu_ms_per_email"].values())),
            "engine_cpu_busy_share": engine["cpu"]["cpu_busy_share"],
            "sink_cpu_ms_per_email_during_engine": engine["cpu"]["cpu_ms_per_email"]["sink"],
            "sink_cpu_ms_per_email_during_limit": limit["cpu"]["cpu_ms_per_email"]["sink"],
            "sink_alone_ceiling_emails_per_s": round(cpus * 1000 / limit["cpu"]["cpu_ms_per_email"]["sink"]),
            "claim_update_share": round(
                statistics.median(b["update_rows_ms"] / b["execution_ms"] for b in claim["breakdown"]), 2
            ),
        },
        "targets": TARGETS,
        "meets_targets": meets,
        "meets_all_targets": all(meets.values()),
        "engine": engine,
        "naive": naive,
        "smtp_limit": limit,
        "claim": claim,
        "email_sent_event": events,
        "worker": {
            "command": f"python -m crm.celeryd worker --concurrency={args.concurrency} --include bench.nurture_worker",
            "settings": "crm.settings.local, DEBUG off, log level WARNING",
            "log_tail": worker_log_tail.splitlines()[-10:],
        },
        "code": code_version(),
        **database_info(),
        "machine": {**machine_info(), "loadavg_1min_before_after": [load_before, round(os.getloadavg()[0], 2)]},
        "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }


def print_report(result: dict, output: Path) -> None:
    m, r, t, ok = result["metrics"], result["ratios"], result["targets"], result["meets_targets"]

    def mark(key):
        return "ok" if ok[key] else "MISSES"

    print()
    print(f"Nurturing benchmark: {result['emails']:,} emails, {result['machine']['cpus']} CPUs, {result['database']}")
    print(f"  emails/s (dispatch_due + worker)  {m['emails_per_s']:>8.0f}   target >= {t['emails_per_s_min']}: {mark('emails_per_s')}")
    print(f"  naive emails/s (task per email)   {m['naive_emails_per_s']:>8.0f}   engine / naive = {r['times_naive']:.2f}x, "
          f"target >= {t['times_naive_min']}x: {mark('times_naive')}")
    print(f"  SMTP limit/s (smtplib loops)      {m['smtp_limit_per_s']:>8.0f}   engine / limit = {r['share_of_smtp_limit']:.2f}, "
          f"target >= {t['share_of_smtp_limit_min']}: {mark('share_of_smtp_limit')}")
    print(f"  claim 1000 at {result['claim']['deliveries']:,} ms    median {m['claim_1000_ms_at_1m']['median']:.2f}, "
          f"p95 {m['claim_1000_ms_at_1m']['p95']:.2f}   target < {t['claim_1000_ms_at_1m_max']}: {mark('claim_1000_ms_at_1m')}")
    print(f"  claim 1000 at 10,000 ms           median {m['claim_1000_ms_at_10k']['median']:.2f}; at 1M the same way "
          f"{m['claim_1000_ms_at_1m_like_10k']['median']:.2f}: {result['ratios']['claim_1m_vs_10k']:.2f}x, "
          f"target <= {t['claim_1m_vs_10k_max']}: {mark('claim_1m_vs_10k')}")
    print(f"  duplicates                        {m['duplicates']:>8}   (sink received {result['engine']['sink']['received']:,}): "
          f"{mark('duplicates')}")
    print(f"  worker RSS MB, peak               {m['worker_rss_mb']['peak_total']:>8.0f}   "
          f"(largest process {m['worker_rss_mb']['peak_largest_process']:.0f}, idle {m['worker_rss_mb']['idle_total_before']:.0f}, "
          f"PSS {m['worker_rss_mb']['peak_pss_total']:.0f}), target < {t['worker_rss_mb_max']}: {mark('worker_rss_mb')}")
    e = result["email_sent_event"]
    print(f"  email.sent event's cost           {r['email_sent_event_cost']:>8.1%}   (with {e['with']['emails_per_s']:.0f}/s, "
          f"without {e['without']['emails_per_s']:.0f}/s), target <= {t['email_sent_event_cost_max']:.0%}: {mark('email_sent_event_cost')}")
    a = result["analysis"]
    print(f"CPU per email, all processes: {a['engine_cpu_ms_per_email']:.2f} ms -> at most {a['engine_cpu_ceiling_emails_per_s']} emails/s "
          f"on {result['machine']['cpus']} CPUs; the sink alone: {a['sink_cpu_ms_per_email_during_limit']:.2f} ms -> at most "
          f"{a['sink_alone_ceiling_emails_per_s']}/s. Claim: {a['claim_update_share']:.0%} of it is updating the rows.")
    print(f"Results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output} ({result['bench_seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
