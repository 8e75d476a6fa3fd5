"""Outbound webhooks: 10,000 events delivered to a local receiver by a real worker, and again across a SIGKILL.

    .venv/bin/python -m bench.webhooks_bench            # 10,000 events, results in bench/results/api.json ("webhooks")
    .venv/bin/python -m bench.webhooks_bench --quick    # 1,000 events, no results file

Services: its own database `crm_bench_webhooks` (env BENCH_WEBHOOKS_DATABASE_URL;
created, migrated and emptied of events and webhooks by each run) and Redis
database 12 (env BENCH_WEBHOOKS_REDIS_URL, flushed at start), a real `celery
-A crm worker --concurrency=2` on the webhooks' queue (`crm.settings.local`,
DEBUG off), and a receiver in this process: a threaded HTTP/1.1 server on
loopback that verifies every request's signature with the `standardwebhooks`
library and counts receptions by `webhook-id`.

Two runs, each of N `lead.created` events (written in bulk to the event log)
for one subscribed endpoint, timed from the fan-out task sent to the worker
until every delivery is `succeeded` in the database:

- clean: `per_s` = N / seconds;
- killed: the worker and its pool are SIGKILLed once a third of the events
  have arrived, and a new worker starts at once; beat's tick is sent every
  second (`dispatch_due`), and what the dead worker held comes back when its
  lease (`--lease-seconds`, 10 here) runs out. `lost` counts events whose
  webhook-id never arrived; `duplicates` counts receptions beyond the first
  of a webhook-id (at least once: what was in flight when the worker died
  arrives again, with the same id, for the receiver to drop).

In bench/results/api.json, under "webhooks" only (the file is shared with
other API benchmarks): per_s, lost, duplicates, each run's details, and
calibration_s measured at the start of the run.
"""

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.admin_bench import code_version, database_info, ensure_database, machine_info
from bench.calibration import calibration_s

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_webhooks"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "api.json"
QUEUE = "webhooks-bench"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--events", type=int, default=10_000, help="events per run (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="1,000 events, no results file")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--lease-seconds", type=int, default=10, help="the workers' lease (default 10)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_WEBHOOKS_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_WEBHOOKS_REDIS_URL", DEFAULT_REDIS_URL))
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    if args.quick:
        args.events = min(args.events, 1000)
    calibration = calibration_s()
    print(f"== webhooks bench: {args.events} events per run, calibration_s {calibration}", flush=True)
    ensure_database(args.database_url)
    env = worker_environment(args)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    flush_redis(args.redis_url)

    receiver = Receiver()
    try:
        clean = run(args, env, receiver, kill=False)
        print(f"   clean: {clean['per_s']}/s, lost {clean['lost']}, duplicates {clean['duplicates']}", flush=True)
        killed = run(args, env, receiver, kill=True)
        print(f"   killed: {killed['seconds']} s, lost {killed['lost']}, duplicates {killed['duplicates']}", flush=True)
    finally:
        receiver.close()
    result = {
        "per_s": clean["per_s"],
        "lost": clean["lost"] + killed["lost"],
        "duplicates": clean["duplicates"] + killed["duplicates"],
        "events": args.events,
        "calibration_s": calibration,
        "clean": clean,
        "worker_killed": killed,
        "setup": {"worker_concurrency": args.concurrency, "lease_seconds": args.lease_seconds,
                  "batch_size": int(env["CRM_WEBHOOKS_BATCH_SIZE"]), "receiver": "http.server, HTTP/1.1, in the bench's process",
                  "broker": "redis"},
        **database_info(),
        "machine": {**machine_info(), "loadavg_1min_after": round(os.getloadavg()[0], 2)},
        "code": code_version(),
    }
    if args.quick:
        print(json.dumps(result, indent=2))
        return 0
    write_results(args.output, result)
    print(f"   written to {args.output} (key \"webhooks\")", flush=True)
    return 0 if result["lost"] == 0 else 1


def worker_environment(args) -> dict:
    return {
        "DJANGO_SETTINGS_MODULE": "crm.settings.local", "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING",
        "DATABASE_URL": args.database_url, "CELERY_BROKER_URL": args.redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE, "CRM_WEBHOOKS_QUEUE": QUEUE,
        "CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "CRM_EVENT_SETTLE_SECONDS": "0",
        "CRM_WEBHOOKS_LEASE_SECONDS": str(args.lease_seconds), "CRM_WEBHOOKS_TIMEOUT_SECONDS": "2",
        "CRM_WEBHOOKS_BATCH_SIZE": "50", "CRM_WEBHOOKS_SENDERS": str(args.concurrency),
    }


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A connection the killed worker left half-way is expected here; anything else is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """Verifies each request's signature and counts receptions by webhook-id."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.bad_signatures = 0
        self.secret = ""
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    good = True
                except WebhookVerificationError:
                    good = False
                with receiver.lock:
                    receiver.counts[headers.get("webhook-id", "")] += 1
                    receiver.bad_signatures += not good
                self.send_response(204 if good else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self, secret):
        with self.lock:
            self.counts.clear()
            self.bad_signatures, self.secret = 0, secret

    def distinct(self) -> int:
        with self.lock:
            return len(self.counts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run(args, env, receiver, *, kill: bool) -> dict:
    from django.db import connection

    from core.events import Actor, EventType, events_record_each
    from outbound import services
    from outbound.models import Delivery
    from outbound.tasks import dispatch_due, fan_out

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE outbound_attempt, outbound_delivery, outbound_endpoint, core_domainevent RESTART IDENTITY CASCADE")
        cursor.execute("DELETE FROM core_eventcursor")
    endpoint = services.endpoint_create(url=receiver.url, event_types=["lead.created"], by=None)
    receiver.reset(endpoint.secret)
    events_record_each(EventType.LEAD_CREATED, actor=Actor.system("bench"),
                       rows=({"lead_id": n, "payload": {"n": n}} for n in range(1, args.events + 1)))
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"webhooks-bench-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    worker = Worker(args, env, workdir / "worker.log")
    try:
        worker.wait_ready()
        started = time.monotonic()
        fan_out.apply_async(queue=QUEUE)
        killed_at = None
        last_tick = time.monotonic()
        deadline = started + 600
        while True:
            time.sleep(0.05)
            if kill and killed_at is None and receiver.distinct() >= args.events // 3:
                killed_at = receiver.distinct()
                worker.kill()
                worker = Worker(args, env, workdir / "worker.log")
                worker.wait_ready()
            if time.monotonic() - last_tick >= 1:  # beat's tick
                dispatch_due.apply_async(queue=QUEUE)
                last_tick = time.monotonic()
            # The database is asked only once every event has arrived: the receiver's count is in memory.
            if receiver.distinct() >= args.events and Delivery.objects.filter(status="succeeded").count() == args.events:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all delivered in 10 minutes:\n{worker.log_tail()}")
        seconds = time.monotonic() - started
        time.sleep(1)  # a reception still in flight is counted too
        expected = set(Delivery.objects.values_list("message_id", flat=True))
    finally:
        worker.stop()
    with receiver.lock:
        counts = dict(receiver.counts)
        bad = receiver.bad_signatures
    return {
        "events": args.events,
        "seconds": round(seconds, 2),
        "per_s": round(args.events / seconds, 1),
        "lost": len(expected - set(counts)),
        "duplicates": sum(counts.values()) - len(counts),
        "received": sum(counts.values()),
        "distinct_webhook_ids": len(counts),
        "bad_signatures": bad,
        "killed_after_received": killed_at,
    }


class Worker:
    def __init__(self, args, env, log_path: Path):
        self.name = f"webhooks-bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.log_path = log_path
        with open(log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "crm.celeryd", "worker", "-l", "warning", "-Q", QUEUE,
                 f"--concurrency={args.concurrency}", "-n", self.name, "--without-gossip", "--without-mingle"],
                cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self, timeout=60):
        from crm.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not start:\n{self.log_tail()}")

    def log_tail(self, lines=40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=15)

    def stop(self):
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            self.kill()


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def write_results(path: Path, result: dict) -> None:
    """Replace only the "webhooks" key of the shared results file."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["webhooks"] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
