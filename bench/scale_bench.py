"""Two worker hosts: the engine's emails/s and the page-view ingest with one host and with two, under equal CPU caps.

    sudo .venv/bin/python -m bench.scale_bench [--emails 8000] [--hits 200000] [--quota 35000]
    sudo .venv/bin/python -m bench.scale_bench --cleanup     # remove what a killed run left (namespaces, cgroups)

Needs root: each "host" is a network namespace (crmhost1, crmhost2) with a veth
pair to this machine (10.231.<n>.2 in the host, 10.231.<n>.1 on this side), a
UTS namespace (its own host name) and a cgroup v1 `cpu` group capping all its
processes to the same share of one CPU (`cpu.cfs_quota_us` / `cpu.cfs_period_us`,
35% by default), so the hosts, not this 2-CPU machine, are the limit.

PostgreSQL and Redis stay as they are (listening on loopback only, their
configuration untouched): a host reaches them at 10.231.<n>.1 through a
forwarder on this side (socat, one per host and service). Redis's
protected mode refuses clients from other addresses, and pg_hba.conf trusts
only 127.0.0.1, so the forwarders, which connect from loopback, need no change to either.
The SMTP sink (nurture_bench's) listens on the veth addresses.

Each host runs the same command, `python -m crm.celeryd worker --concurrency=2`, with its
settings in environment variables only (DATABASE_URL, CELERY_BROKER_URL,
EMAIL_URL naming its side of the veth pair): adding a host is starting that
command on it. Measured in one run, on its own database (`crm_bench_scale`,
BENCH_SCALE_DATABASE_URL) and Redis database (/13, BENCH_SCALE_REDIS_URL):

1. emails_per_s_one_host / _two_hosts: N due deliveries sent by `dispatch_due`
   (sent once, as beat's tick) through host 1, then N again through hosts 1
   and 2, timed until all are `sent`; the sink counts each delivery's receptions.
2. hits_per_s_one_host / _two_hosts: M queued tracking hits drained into page
   views by `traffic.tasks.ingest_hits` (the beat's ingest task), as many
   tasks in both runs, by host 1, then by hosts 1 and 2.

Results: bench/results/scale.json, and a summary on stdout.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.nurture_bench import (
    QUEUE,
    CpuMeter,
    Sink,
    ensure_database,
    load_email_data,
    proc_stats,
    send_due,
    setup_django,
    status_counts,
    stop_group,
    warm_up,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_scale"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "scale.json"
HOSTS = (1, 2)
NETWORK = "10.231"  # 10.231.<n>.0/24 per host: .1 this side, .2 the host
CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
CFS_PERIOD_US = 100_000
TARGETS = {"emails_ratio_min": 1.8, "hits_ratio_min": 1.8, "duplicates_max": 0}
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SITE = "www.scale.example"
PAGES = ("pricing", "features", "demo", "blog/crm-tips", "customers")
SOURCES = ("google", "bing", "linkedin", "newsletter", "partner")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--emails", type=int, default=8000, help="due deliveries per run (default 8,000)")
    parser.add_argument("--hits", type=int, default=200_000, help="queued tracking hits per run (default 200,000)")
    parser.add_argument("--quota", type=int, default=35_000,
                        help=f"each host's cpu.cfs_quota_us per {CFS_PERIOD_US} us period (default 35000: 35%% of one CPU)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes per host (default 2)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_SCALE_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_SCALE_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--phases", default="emails,hits", help="emails,hits (default both); the results file is written only for both")
    parser.add_argument("--tick-seconds", type=float, default=0.25,
                        help="seconds between the ingest tasks sent, as beat's ticks (default 0.25; beat's is 10 s)")
    parser.add_argument("--cleanup", action="store_true", help="only remove the namespaces, cgroups and forwarders a killed run left")
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    if os.geteuid() != 0 or not CGROUP_ROOT.is_dir():
        print("scale_bench needs root and the cgroup v1 cpu controller (/sys/fs/cgroup/cpu): not run", file=sys.stderr)
        return 1
    if args.cleanup:
        leftovers_remove(args)
        return 0
    return orchestrate(args)


# --- The hosts: a network namespace, a host name, a capped cpu cgroup ----------------------------------


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


class Host:
    """Host n: namespace crmhost<n>, veth crmh<n>r (this side, 10.231.<n>.1) / crmh<n>h (the host, .2), cgroup crmhost<n>."""

    def __init__(self, n: int, quota_us: int):
        self.n, self.name = n, f"crmhost{n}"
        self.address, self.own_address = f"{NETWORK}.{n}.1", f"{NETWORK}.{n}.2"
        self.cgroup = CGROUP_ROOT / self.name
        self.quota_us = quota_us
        self.worker = None

    def create(self) -> None:
        root_if, host_if = f"crmh{self.n}r", f"crmh{self.n}h"
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", root_if, "type", "veth", "peer", "name", host_if)
        run("ip", "link", "set", host_if, "netns", self.name)
        run("ip", "addr", "add", f"{self.address}/24", "dev", root_if)
        run("ip", "link", "set", root_if, "up")
        run("ip", "netns", "exec", self.name, "ip", "addr", "add", f"{self.own_address}/24", "dev", host_if)
        run("ip", "netns", "exec", self.name, "ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        self.cgroup.mkdir()
        (self.cgroup / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (self.cgroup / "cpu.cfs_quota_us").write_text(str(self.quota_us))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.cgroup / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def cpu_stat(self) -> dict:
        """The cgroup's periods, throttled periods and throttled time (ns)."""
        try:
            return {k: int(v) for k, v in (line.split() for line in (self.cgroup / "cpu.stat").read_text().splitlines())}
        except OSError:
            return {}

    def remove(self) -> list[str]:
        """Kill what is left in the cgroup, remove it and the namespace (its veth pair goes with it); returns errors."""
        errors = []
        if self.cgroup.exists():
            for _ in range(50):
                pids = self.pids()
                if not pids:
                    break
                for pid in pids:  # only processes this benchmark put in its cgroup
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            try:
                self.cgroup.rmdir()
            except OSError as exc:
                errors.append(f"cgroup {self.cgroup}: {exc}")
        if Path(f"/run/netns/{self.name}").exists():
            result = subprocess.run(["ip", "netns", "del", self.name], capture_output=True, text=True)
            if result.returncode:
                errors.append(f"netns {self.name}: {result.stderr.strip()}")
        result = subprocess.run(["ip", "link", "show", f"crmh{self.n}r"], capture_output=True, text=True)
        if result.returncode == 0:
            subprocess.run(["ip", "link", "del", f"crmh{self.n}r"], capture_output=True)
        return errors


def host_url(url: str, address: str) -> str:
    """The URL with its host replaced by `address` (port, user, path kept)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    hostport = f"{address}:{parts.port}" if parts.port else address
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{hostport}" if len(netloc) == 2 else hostport))


def worker_argv(concurrency: int) -> list[str]:
    """The command every host runs: nothing in it names a host."""
    return [sys.executable, "-m", "crm.celeryd", "worker", "-l", "warning", f"--concurrency={concurrency}",
            "--without-gossip", "--without-mingle"]


def worker_env(args, host: Host, sink: Sink) -> dict:
    """A host's settings: where PostgreSQL, Redis and the SMTP server are, as that host reaches them."""
    return {
        "DJANGO_SETTINGS_MODULE": "crm.settings.local",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": host_url(args.database_url, host.address),
        "CELERY_BROKER_URL": host_url(args.redis_url, host.address),
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "EMAIL_URL": f"smtp://{host.address}:{sink.port}",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    }


class HostWorker:
    """`python -m crm.celeryd worker` on a host: started in the host's cgroup (before it forks its pool, which inherits
    it), in its network namespace and with its host name."""

    def __init__(self, args, host: Host, sink: Sink, workdir: Path):
        self.host, self.concurrency = host, args.concurrency
        self.argv, self.env = worker_argv(args.concurrency), worker_env(args, host, sink)
        self.node = f"celery@{host.name}"
        self.log_path = workdir / f"worker-{host.name}.log"
        procs = host.cgroup / "cgroup.procs"

        def join_cgroup():  # in the child, before exec: everything it starts counts against the host's quota
            procs.write_text(str(os.getpid()))

        launcher = ["ip", "netns", "exec", host.name, "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host.name]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [*launcher, *self.argv], cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=join_cgroup,
            )
        host.worker = self

    def wait_ready(self, timeout=120) -> None:
        from crm.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if app.control.ping(destination=[self.node], timeout=0.5) and len(self.host.pids()) >= 1 + self.concurrency:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker on {self.host.name} did not start:\n{self.log_tail()}")

    def log_tail(self, lines=30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_group(self.proc)


class Workers:
    """The running hosts' workers, as one worker for nurture_bench's helpers (wait_all_sent, warm_up)."""

    def __init__(self, workers: list[HostWorker]):
        self.workers = workers
        self.concurrency = sum(w.concurrency for w in workers)
        self.proc = self  # wait_all_sent asks worker.proc.poll(): any host's worker that died

    def poll(self):
        return next((w.proc.poll() for w in self.workers if w.proc.poll() is not None), None)

    def log_tail(self) -> str:
        return "\n".join(f"[{w.host.name}]\n{w.log_tail()}" for w in self.workers)


# --- Forwarders: PostgreSQL and Redis, reached at each host's veth address ------------------------------


class Forwarders:
    """socat on <host address>:<port> -> the service on loopback, per host and service; connections come from
    127.0.0.1, so pg_hba.conf and Redis's protected mode accept them as they are."""

    def __init__(self, hosts: list[Host], urls: list[str], workdir: Path):
        self.procs = []
        self.log = open(workdir / "forwarders.log", "w")  # noqa: SIM115 - open while they run
        for host in hosts:
            for url in urls:
                parts = urlsplit(url)
                listen = f"TCP-LISTEN:{parts.port},bind={host.address},fork,reuseaddr,nodelay"
                self.procs.append(subprocess.Popen(
                    ["socat", "-b65536", listen, f"TCP:{parts.hostname}:{parts.port},nodelay"],
                    stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
                ))
                wait_port(host.address, parts.port)

    def pgids(self) -> set[int]:
        return {p.pid for p in self.procs}

    def stop(self) -> None:
        for proc in self.procs:
            stop_group(proc, timeout=5)
        self.log.close()


def wait_port(address: str, port: int, timeout=10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port}")


# --- What each part used -----------------------------------------------------------------------------


class HostsCpuMeter(CpuMeter):
    """CPU seconds per host (its cgroup's processes), the sink, the forwarders, PostgreSQL, Redis and this process;
    and each host's throttling (cpu.stat) over the phase."""

    NAMES = (*(f"crmhost{n}" for n in HOSTS), "sink", "forwarders", "postgres", "redis", "bench")

    def __init__(self, hosts: list[Host], sink: Sink, forwarders: Forwarders):
        super().__init__(sink=sink)
        self.hosts, self.forwarders = hosts, forwarders

    def _snapshot(self) -> dict:
        snapshot = super()._snapshot()
        snapshot["hosts"] = {pid: host.name for host in self.hosts for pid in host.pids()}
        pgids = self.forwarders.pgids()
        snapshot["forwarders"] = {pid for pid, _, fields in proc_stats() if int(fields[2]) in pgids}
        return snapshot

    def classify(self, pid, comm, snapshot):
        if pid in snapshot["hosts"]:
            return snapshot["hosts"][pid]
        if pid in snapshot["forwarders"]:
            return "forwarders"
        return super().classify(pid, comm, snapshot)

    def __enter__(self):
        self.stat_start = {host.name: host.cpu_stat() for host in self.hosts}
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.throttling = {}
        for host in self.hosts:
            start, end = self.stat_start[host.name], host.cpu_stat()
            periods = end.get("nr_periods", 0) - start.get("nr_periods", 0)
            throttled = end.get("nr_throttled", 0) - start.get("nr_throttled", 0)
            self.throttling[host.name] = {
                "periods": periods,
                "throttled_periods": throttled,
                "throttled_share": round(throttled / periods, 2) if periods else 0.0,
                "throttled_s": round((end.get("throttled_time", 0) - start.get("throttled_time", 0)) / 1e9, 2),
            }

    def summary(self, units: int, running: list[Host]) -> dict:
        result = self.result(units)
        result["host_cpu_share_of_one_cpu"] = {h.name: round(self.used[h.name] / self.wall, 3) for h in running}
        result["throttling"] = {h.name: self.throttling[h.name] for h in running}
        root_side = sum(self.used[k] for k in ("sink", "forwarders", "postgres", "redis", "bench"))
        result["root_side_cpu_share_of_one_cpu"] = round(root_side / self.wall, 3)
        result["sink_cpu_share_of_one_cpu"] = round(self.used["sink"] / self.wall, 3)
        result["postgres_cpu_share_of_one_cpu"] = round(self.used["postgres"] / self.wall, 3)
        return result


class WaitSampler(threading.Thread):
    """What the bench database's sessions wait on, every 0.1 s (pg_stat_activity): lock waits between hosts show here."""

    def __init__(self, database_url: str):
        super().__init__(daemon=True)
        self.url, self.stopped = database_url, threading.Event()
        self.samples, self.waits, self.active = 0, Counter(), 0

    def run(self):
        import psycopg

        name = urlsplit(self.url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopped.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'", [name],
                ).fetchall()
                self.samples += 1
                for state, kind, event in rows:
                    if state == "active":
                        self.active += 1
                        self.waits[f"{kind}:{event}" if kind else "on CPU"] += 1
                self.stopped.wait(0.1)

    def result(self) -> dict:
        return {
            "samples": self.samples,
            "active_sessions_mean": round(self.active / max(self.samples, 1), 2),
            # Per active session seen: what it was doing (Lock:* = waiting for another session's row or transaction).
            "active_by_wait": dict(self.waits.most_common(8)),
        }


# --- The phases ------------------------------------------------------------------------------------------


def measure_emails(args, hosts, running, sink, forwarders) -> dict:
    from django.db import connection

    from nurturing.models import Delivery

    n = args.emails
    data = load_email_data(n)
    workers = Workers([h.worker for h in running])
    sink.reset()
    waits = WaitSampler(args.database_url)
    waits.start()
    try:
        elapsed = send_due(data["engine_step"], n, workers, sink, cpu := HostsCpuMeter(hosts, sink, forwarders))
    finally:
        waits.stopped.set()
        waits.join()
    received = sink.settle(n)
    statuses = status_counts(data["engine_step"])
    # Which host sent each: make_msgid puts the sending process's pid in the Message-ID, <time.pid.random@domain>.
    owner = {pid: h.name for h in running for pid in h.pids()}
    by_host = Counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT split_part(message_id, '.', 2), count(*) FROM nurturing_delivery "
                       "WHERE step_id = %s AND status = 'sent' GROUP BY 1", [data["engine_step"]])
        for pid, count in cursor.fetchall():
            by_host[owner.get(int(pid), "unknown") if pid.isdigit() else "unknown"] += count
    return {
        "hosts": [h.name for h in running],
        "emails": n,
        "emails_per_s": round(n / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "sent_by_host": dict(sorted(by_host.items())),
        "sink": received,
        "duplicates": received["received"] - received["distinct"],
        "all_sent": statuses == {"sent": n} and received["distinct"] == n,
        "statuses": statuses,
        "next_step_scheduled": Delivery.objects.filter(step_id=data["engine_next_step"], status="scheduled").count(),
        "cpu": cpu.summary(n, running),
        "database_waits": waits.result(),
    }


def hit_template() -> dict:
    """One hit as the tracking endpoint queues it (traffic.ingest.hit_accept), caught before the queue."""
    from traffic import ingest

    caught = []

    class Catch:
        push = staticmethod(caught.append)

    real, ingest.hit_queue = ingest.hit_queue, lambda: Catch
    try:
        ingest.hit_accept(
            {"v": "scale-template-0000", "u": f"https://{SITE}/pricing", "t": "Bench page", "r": "https://www.google.com/",
             "l": True, "lp": f"https://{SITE}/?utm_source=google&utm_medium=cpc&utm_campaign=bench", "sw": 1440},
            client=ingest.Client(address="203.0.113.7", user_agent=UA, accept_language="en-GB", do_not_track=False),
        )
    finally:
        ingest.hit_queue = real
    return caught[0]


def hits_load(m: int) -> dict:
    """Empty the traffic tables, then queue M hits: M/10 visitors of 10 page views, landing from 5 sources."""
    from django.db import connection

    from traffic.models import DailyVisitors, PageView, TrafficDaily, Visitor, VisitorNumber
    from traffic.partitions import partitions_ensure
    from traffic.queue import hit_queue

    started = time.perf_counter()
    partitions_ensure()
    tables = ", ".join(model._meta.db_table for model in (PageView, Visitor, VisitorNumber, DailyVisitors, TrafficDaily))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    queue = hit_queue()
    queue.redis.delete(queue.KEY)
    template, run_id = hit_template(), uuid.uuid4().hex[:6]
    pipe, chunk = queue.redis.pipeline(transaction=False), []
    for i in range(m):
        visitor, source = i // 10, SOURCES[(i // 10) % len(SOURCES)]
        landing = f"https://{SITE}/?utm_source={source}&utm_medium=cpc&utm_campaign=bench&gclid=g{visitor}"
        chunk.append(json.dumps({
            **template, "id": uuid.uuid4().hex, "v": f"scale-{run_id}-{visitor:08d}", "u": f"https://{SITE}/{PAGES[i % 5]}",
            "l": i % 10 == 0, "lp": landing, "ip": f"{visitor:016x}",
        }, separators=(",", ":")))
        if len(chunk) == 1000:
            pipe.rpush(queue.KEY, *chunk)
            chunk = []
    if chunk:
        pipe.rpush(queue.KEY, *chunk)
    pipe.execute()
    queued = queue.size()
    print(f"   {queued:,} hits queued in {time.perf_counter() - started:.1f} s", flush=True)
    return {"queued": queued}


def measure_hits(args, hosts, running, sink, forwarders) -> dict:
    """Drain the queued hits with `ingest_hits` tasks, sent as beat's ticks: one every --tick-seconds until there
    are concurrency x 2 hosts of them, the same in every run, and a new round if the queue stops moving with hits
    left (a task stops after 40 s). Each task drains batch after batch until the queue is empty.

    Sent all at once, the first worker to read the broker can take them all: ingest_hits is acknowledged when it
    starts, so a host whose processes are busy still reserves `prefetch` more, which then find the queue empty."""
    from traffic.models import PageView
    from traffic.queue import hit_queue
    from traffic.tasks import ingest_hits

    m = args.hits
    loaded = hits_load(m)
    queue = hit_queue()
    per_round = args.concurrency * len(HOSTS)
    tasks, next_tick, sent_total = 0, 0.0, 0
    waits = WaitSampler(args.database_url)
    waits.start()
    try:
        with HostsCpuMeter(hosts, sink, forwarders) as cpu:
            start = time.perf_counter()
            last, moved = None, start
            while True:
                now = time.perf_counter()
                left = queue.size()
                if left == 0:
                    break
                if left != last:
                    last, moved = left, now
                if now - moved > 5:  # the tasks ran out of time with hits left: another round
                    tasks, moved = 0, now
                if tasks < per_round and now >= next_tick:
                    ingest_hits.apply_async(queue=QUEUE)
                    tasks, next_tick = tasks + 1, now + args.tick_seconds
                    sent_total += 1
                if now - start > 900 or any(h.worker.proc.poll() is not None for h in running):
                    raise RuntimeError(f"ingest stuck with {left:,} hits left\n{Workers([h.worker for h in running]).log_tail()}")
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
    finally:
        waits.stopped.set()
        waits.join()
    stored = PageView.objects.count()
    return {
        "hosts": [h.name for h in running],
        "hits": m,
        "queued": loaded["queued"],
        "hits_per_s": round(m / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "page_views_stored": stored,
        "all_stored": stored == m,
        "ingest_tasks_sent": sent_total,
        "cpu": cpu.summary(m, running),
        "database_waits": waits.result(),
    }


# --- Orchestration, with everything undone at the end --------------------------------------------------


def services_state(args) -> dict:
    """How PostgreSQL and Redis are reached and set up: compared at the end, so a change would show."""
    import psycopg
    import redis

    client = redis.Redis.from_url(args.redis_url)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
    return {
        "redis_bind": client.config_get("bind")["bind"],
        "redis_protected_mode": client.config_get("protected-mode")["protected-mode"],
        "postgres_listen_addresses": listen,
    }


def leftovers_remove(args) -> list[str]:
    """What an earlier run of this benchmark left: its cgroups' processes, namespaces, forwarders."""
    errors = []
    for n in HOSTS:
        errors += Host(n, args.quota).remove()
    for pid, comm, _ in proc_stats():
        if comm != "socat":
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.startswith(b"TCP-LISTEN:") and f"bind={NETWORK}.".encode() in arg for arg in cmdline):
            os.kill(pid, signal.SIGKILL)  # a forwarder of this benchmark's network
    for error in errors:
        print(f"   cleanup: {error}", file=sys.stderr)
    return errors


def _raise_on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def orchestrate(args) -> int:
    from bench.calibration import calibration_s

    started, load_before = time.perf_counter(), round(os.getloadavg()[0], 2)
    calibration = calibration_s()
    print(f"   calibration_s {calibration}", flush=True)
    in_use = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    if any(f" {NETWORK}.{n}." in in_use for n in HOSTS) or any(Path(f"/run/netns/crmhost{n}").exists() for n in HOSTS):
        leftovers_remove(args)
        if any(f" {NETWORK}.{n}." in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout for n in HOSTS):
            raise SystemExit(f"{NETWORK}.0.0/16 is in use on this machine: pick another network")
    ensure_database(args.database_url)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    before = services_state(args)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _raise_on_signal)

    workdir = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    hosts = [Host(n, args.quota) for n in HOSTS]
    sink = forwarders = None
    phases = {}
    cleanup_errors = []
    try:
        for host in hosts:
            host.create()
        forwarders = Forwarders(hosts, [args.database_url, args.redis_url], workdir)
        sink = Sink(workdir, hosts=("127.0.0.1", *(h.address for h in hosts)))
        setup_django(args, sink.url)
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        print(f"   hosts {', '.join(h.name for h in hosts)} at {', '.join(h.address for h in hosts)}, "
              f"quota {args.quota} us per {CFS_PERIOD_US} us each; SMTP sink on port {sink.port}", flush=True)

        for count in (1, 2):
            running = hosts[:count]
            for host in running:
                if host.worker is None:
                    HostWorker(args, host, sink, workdir)
            for host in running:
                host.worker.wait_ready()
            warm_up(Workers([h.worker for h in running]))
            label = "one_host" if count == 1 else "two_hosts"
            if "emails" in args.phases:
                print(f"-- emails, {count} host(s): {args.emails:,} due deliveries", flush=True)
                phases[f"emails_{label}"] = e = measure_emails(args, hosts, running, sink, forwarders)
                print(f"   {e['emails_per_s']:.0f} emails/s ({e['elapsed_s']:.1f} s), by host {e['sent_by_host']}, "
                      f"duplicates {e['duplicates']}, all sent {e['all_sent']}; CPU share {e['cpu']['host_cpu_share_of_one_cpu']}, "
                      f"root side {e['cpu']['root_side_cpu_share_of_one_cpu']}, busy {e['cpu']['cpu_busy_share']}, "
                      f"waits {e['database_waits']['active_by_wait']}", flush=True)
            if "hits" in args.phases:
                print(f"-- hits, {count} host(s): {args.hits:,} queued", flush=True)
                phases[f"hits_{label}"] = h = measure_hits(args, hosts, running, sink, forwarders)
                print(f"   {h['hits_per_s']:.0f} hits/s ({h['elapsed_s']:.1f} s), stored {h['page_views_stored']:,}, "
                      f"CPU share {h['cpu']['host_cpu_share_of_one_cpu']}, root side {h['cpu']['root_side_cpu_share_of_one_cpu']}, "
                      f"busy {h['cpu']['cpu_busy_share']}, waits {h['database_waits']['active_by_wait']}", flush=True)
        command = command_per_host(args, hosts, sink)
    finally:
        for host in hosts:
            if host.worker is not None:
                host.worker.stop()
        if forwarders is not None:
            forwarders.stop()
        if sink is not None:
            sink.stop()
        for host in hosts:
            cleanup_errors += host.remove()
        shutil.rmtree(workdir, ignore_errors=True)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)

    after = services_state(args)
    print(f"   PostgreSQL and Redis as before: {before == after} ({after})", flush=True)
    if len(phases) < 4:
        print("(not every phase ran: no results file written)")
        return 0
    result = report(args, phases, command, calibration, started, load_before, before, after, cleanup_errors)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, args.output)
    return 0


def command_per_host(args, hosts, sink) -> dict:
    """Each host's command and environment as started: the same argv, environments differing only in addresses."""
    workers = [h.worker for h in hosts]
    envs = {w.host.name: w.env for w in workers}
    differing = sorted(k for k in workers[0].env if len({json.dumps(e.get(k)) for e in envs.values()}) > 1)
    return {
        "argv": workers[0].argv,
        "argv_identical_on_every_host": all(w.argv == workers[0].argv for w in workers),
        "env": envs,
        "env_keys_differing": differing,
        "differences_are_only_the_host_address": all(
            e[k].replace(w.host.address, "<host address>") == workers[0].env[k].replace(workers[0].host.address, "<host address>")
            for w in workers for e in [w.env] for k in differing
        ),
        "host_launcher": "ip netns exec crmhost<n> unshare --uts sh -c 'hostname \"$0\" && exec \"$@\"' crmhost<n> <argv>, "
                         "its pid written to /sys/fs/cgroup/cpu/crmhost<n>/cgroup.procs before exec",
    }


def report(args, phases, command, calibration, started, load_before, before, after, cleanup_errors) -> dict:
    from bench.admin_bench import code_version, database_info, machine_info

    e1, e2 = phases["emails_one_host"], phases["emails_two_hosts"]
    h1, h2 = phases["hits_one_host"], phases["hits_two_hosts"]
    emails_ratio = round(e2["emails_per_s"] / e1["emails_per_s"], 2)
    hits_ratio = round(h2["hits_per_s"] / h1["hits_per_s"], 2)
    duplicates = e1["duplicates"] + e2["duplicates"]
    meets = {
        "emails_ratio": emails_ratio >= TARGETS["emails_ratio_min"],
        "hits_ratio": hits_ratio >= TARGETS["hits_ratio_min"],
        "duplicates": duplicates <= TARGETS["duplicates_max"],
        "all_sent_and_stored": all(p["all_sent"] for p in (e1, e2)) and all(p["all_stored"] for p in (h1, h2)),
        "no_code_change_per_host": command["argv_identical_on_every_host"] and command["differences_are_only_the_host_address"],
    }
    return {
        "benchmark": "scale",
        "calibration_s": calibration,
        "quota": {"cfs_quota_us": args.quota, "cfs_period_us": CFS_PERIOD_US, "share_of_one_cpu": args.quota / CFS_PERIOD_US,
                  "worker_concurrency_per_host": args.concurrency},
        "emails_per_s_one_host": e1["emails_per_s"],
        "emails_per_s_two_hosts": e2["emails_per_s"],
        "emails_ratio": emails_ratio,
        "hits_per_s_one_host": h1["hits_per_s"],
        "hits_per_s_two_hosts": h2["hits_per_s"],
        "hits_ratio": hits_ratio,
        "duplicates": duplicates,
        "targets": TARGETS,
        "meets_targets": meets,
        "meets_all_targets": all(meets.values()),
        "phases": phases,
        "command_per_host": command,
        "network": {
            "hosts": {f"crmhost{n}": {"host_address": f"{NETWORK}.{n}.2", "reaches_services_at": f"{NETWORK}.{n}.1"} for n in HOSTS},
            "postgres_and_redis": "socat forwarders on each host's veth address to the services on loopback; "
                                  "neither's configuration changed",
            "smtp_sink": "nurture_bench's sink, in this namespace, on loopback and the veth addresses",
        },
        "services_before_after": {"before": before, "after": after, "unchanged": before == after},
        "cleanup_errors": cleanup_errors,
        "code": code_version(),
        **database_info(),
        "machine": {**machine_info(), "loadavg_1min_before_after": [load_before, round(os.getloadavg()[0], 2)]},
        "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }


def print_report(result: dict, output: Path) -> None:
    ok = result["meets_targets"]

    def mark(key):
        return "ok" if ok[key] else "MISSES"

    q = result["quota"]
    print()
    print(f"Two worker hosts, each capped at {q['share_of_one_cpu']:.0%} of one CPU ({result['machine']['cpus']} CPUs, "
          f"calibration_s {result['calibration_s']})")
    print(f"  emails/s  one host {result['emails_per_s_one_host']:>8.0f}   two hosts {result['emails_per_s_two_hosts']:>8.0f}   "
          f"ratio {result['emails_ratio']:.2f}, target >= {TARGETS['emails_ratio_min']}: {mark('emails_ratio')}")
    print(f"  hits/s    one host {result['hits_per_s_one_host']:>8.0f}   two hosts {result['hits_per_s_two_hosts']:>8.0f}   "
          f"ratio {result['hits_ratio']:.2f}, target >= {TARGETS['hits_ratio_min']}: {mark('hits_ratio')}")
    print(f"  duplicates {result['duplicates']}: {mark('duplicates')}; all sent and stored: {mark('all_sent_and_stored')}; "
          f"same command on every host: {mark('no_code_change_per_host')}")
    for name, phase in result["phases"].items():
        cpu = phase["cpu"]
        print(f"  {name:<17} hosts' CPU {cpu['host_cpu_share_of_one_cpu']}, throttled "
              f"{ {h: t['throttled_share'] for h, t in cpu['throttling'].items()} }, sink {cpu['sink_cpu_share_of_one_cpu']}, "
              f"postgres {cpu['postgres_cpu_share_of_one_cpu']}, machine busy {cpu['cpu_busy_share']}, "
              f"other {cpu['other_processes_cpu_s']} s")
    print(f"  PostgreSQL and Redis unchanged: {result['services_before_after']['unchanged']}")
    print(f"Results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output} ({result['bench_seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
