"""The REST API at 1,000,000 leads: the filtered lead list's latency, and lead creation against a no-op view.

    .venv/bin/python -m bench.api_bench [--quick] [--leads 1000000] [--duration 15] [--reload]

Serves the app with gunicorn (crm.settings.production behind a TLS proxy, as
capture_bench does, with its URLs: the app's plus the no-op view), its own
database `crm_bench_api` (BENCH_API_DATABASE_URL; 1,000,000 leads from
admin_bench's loader, reused by later runs) and Redis database 9
(BENCH_API_REDIS_URL, flushed at start) for the per-token rate limits.

- The lead list: `GET /api/v1/leads/` with a manager's token and a rep's,
  100 rows a page, for each filter below; requests one after another from one
  client (latency, not throughput): p50/p95 per filter and over all of them.
  The queries of a page are counted in process at 10 and at 100 rows.
- Lead creation: `POST /api/v1/leads/` (a new email each time) with wrk,
  alternated with `POST /bench/noop` on the same server; requests/s and p95.
Results: bench/results/api.json (its "webhooks" part, from webhooks_bench, is kept).
"""

import argparse
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from bench.admin_bench import code_version, database_info, ensure_database, machine_info, percentile
from bench.admin_bench import ensure_data as ensure_leads
from bench.capture_bench import NOOP_PATH, BenchServer, settings_module_setup, settle, wrk_version
from bench.nurture_bench import CpuMeter
from bench.rep_pages_bench import gunicorn_version

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_api"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "api.json"
TARGETS = {"lead_list_p95_ms_max": 100}

SETTINGS_SHIM = '''"""crm.settings.production for api_bench: capture_bench's URLs (the no-op view), limits out of the way."""
from crm.settings.production import *  # noqa: F403

STATIC_ROOT = {static_root!r}
ROOT_URLCONF = "bench.capture_site"
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
CRM_RATE_LIMIT_URL = {redis_url!r}
# One token makes every request of the load: its limit is set out of reach (it is still counted).
CRM_API_RATE_LIMIT_PER_MINUTE = 100_000_000
'''

WRK_SCRIPT = r'''
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] .. "-" .. tid
  n, codes = 0, {}
  wrk.headers["X-Forwarded-Proto"] = "https"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format('{"email":"%s-%d@api.bench.example","first_name":"Ada","last_name":"Bench"}', prefix, n)
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  local key = tostring(status)
  codes[key] = (codes[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("codes")) do total[code] = (total[code] or 0) + count end
  end
  local parts = {}
  for code, count in pairs(total) do parts[#parts + 1] = string.format('"%s":%d', code, count) end
  io.write(string.format('BENCH_JSON {"requests":%d,"duration_us":%d,"codes":{%s},' ..
    '"latency_us":{"p50":%d,"p95":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, table.concat(parts, ","),
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
'''


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true",
                        help="20,000 leads (in <database>_quick), 5 s runs; no results file unless --output is given")
    parser.add_argument("--leads", type=int, help="leads in the database (default 1,000,000)")
    parser.add_argument("--duration", type=float, help="seconds per measured wrk run (default 15; 5 with --quick)")
    parser.add_argument("--rounds", type=int, default=2, help="no-op/create pairs (default 2)")
    parser.add_argument("--list-requests", type=int, default=100, help="requests per list filter (default 100)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn --workers (default 2)")
    parser.add_argument("--reload", action="store_true", help="load the leads again even if the database holds them")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/api.json)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_API_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_API_REDIS_URL", DEFAULT_REDIS_URL))
    args, unknown = parser.parse_known_args(argv)  # scripts/bench passes every benchmark's options
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    args.duration = args.duration or (5.0 if args.quick else 15.0)
    args.leads = args.leads or (20_000 if args.quick else 1_000_000)
    if args.quick:
        parts = urlsplit(args.database_url)
        args.database_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_quick"))
    if args.output is None and not args.quick:
        args.output = DEFAULT_OUTPUT
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    return run(args)


def setup_django(args, workdir: Path) -> None:
    settings_module_setup(workdir, "api_bench_settings", SETTINGS_SHIM.format(
        static_root=str(workdir / "static"), redis_url=args.redis_url), args.database_url)


def tokens() -> dict:
    """A manager's token and a rep's (the loader's bench_rep1), with every scope, made through the service."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from api.models import Scope
    from api.services import api_token_create
    from core.roles import Role

    User = get_user_model()
    boss, _ = User.objects.update_or_create(username="bench_api_manager", defaults={"email": "boss@crm.example"})
    boss.groups.set([Group.objects.get(name=Role.MANAGER.value)])
    rep = User.objects.get(username="bench_rep1")
    expires = timezone.now() + timedelta(days=1)
    made = {}
    for label, user in (("manager", boss), ("rep", rep)):
        made[label] = api_token_create(user=user, name="api_bench", scopes=Scope.values, expires_at=expires,
                                       by=user).raw
    made["rep_id"] = rep.pk
    return made


def list_cases(rep_id: int) -> list[tuple[str, str, str]]:
    from leads.models import LeadStatus

    return [
        ("manager: status", "manager", f"/api/v1/leads/?status={LeadStatus.MQL.value}&page_size=100"),
        ("manager: owner", "manager", f"/api/v1/leads/?owner={rep_id}&page_size=100"),
        ("manager: search", "manager", "/api/v1/leads/?q=smith&page_size=100"),
        ("manager: oldest first", "manager", "/api/v1/leads/?ordering=created_at&page_size=100"),
        ("rep: own leads", "rep", "/api/v1/leads/?page_size=100"),
        ("rep: own, status", "rep", f"/api/v1/leads/?status={LeadStatus.NEW.value}&page_size=100"),
    ]


def measure_list(port: int, made: dict, requests: int) -> dict:
    """Each filter's first page, then the page after it by its cursor, one request after another."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    per_case, every = {}, []
    try:
        for label, who, path in list_cases(made["rep_id"]):
            headers = {"X-Forwarded-Proto": "https", "Authorization": f"Bearer {made[who]}"}
            times, rows, pages, next_url = [], [], 0, None
            for i in range(requests + 5):
                target = path
                if i % 2 and next_url:  # every other request: the next page, by the cursor the last one gave
                    target = next_url
                started = time.perf_counter()
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                body = response.read()
                took = (time.perf_counter() - started) * 1000
                if response.status != 200:
                    raise RuntimeError(f"{target} answered {response.status}: {body[:300]!r}")
                data = json.loads(body)
                next_url = f"{path}&cursor={quote(data['next_cursor'])}" if data.get("next_cursor") else None
                if i >= 5:  # the first five warm up
                    times.append(took)
                    rows.append(len(data["results"]))
                    pages += 1
            per_case[label] = {"path": path, "requests": len(times), "p50_ms": round(statistics.median(times), 2),
                               "p95_ms": round(percentile(times, 95), 2), "max_ms": round(max(times), 2),
                               "rows_per_page_median": statistics.median(rows)}
            every += times
            print(f"   list {label:<22} p50 {per_case[label]['p50_ms']:6.1f} ms  p95 {per_case[label]['p95_ms']:6.1f} ms"
                  f"  rows {per_case[label]['rows_per_page_median']:.0f}", flush=True)
    finally:
        conn.close()
    return {"p50_ms": round(statistics.median(every), 2), "p95_ms": round(percentile(every, 95), 2),
            "requests": len(every), "cases": per_case}


def queries_per_page(made: dict) -> dict:
    """The queries of one list page at 10 and at 100 rows (in process, the same settings)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_X_FORWARDED_PROTO="https", HTTP_AUTHORIZATION=f"Bearer {made['manager']}")
    counts = {}
    for size in (10, 100):
        client.get(f"/api/v1/leads/?page_size={size}")  # the token's last use is written at most once a minute
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/leads/?page_size={size}")
        assert response.status_code == 200, response.content[:300]
        counts[str(size)] = len(queries.captured_queries)
    return counts


def run_wrk(server, args, *, path: str, prefix: str, token: str, seconds: float) -> dict:
    script = server.workdir / "api.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    cmd = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{seconds:g}s", "--timeout", "10s",
           "-s", str(script), f"http://127.0.0.1:{server.port}{path}", "--", prefix, token]
    with CpuMeter(worker=server) as cpu:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    settle(server.port)
    seconds_run, lat = data["duration_us"] / 1e6, data["latency_us"]
    return {
        "path": path, "per_s": round(data["requests"] / seconds_run, 1), "p50_ms": round(lat["p50"] / 1000, 2),
        "p95_ms": round(lat["p95"] / 1000, 2), "max_ms": round(lat["max"] / 1000, 2), "requests": data["requests"],
        "seconds": round(seconds_run, 2), "codes": dict(sorted(data["codes"].items())), "prefix": prefix,
        "cpu_ms_per_request": {
            "gunicorn": round(cpu.used["worker"] * 1000 / max(1, data["requests"]), 3),
            "postgres": round(cpu.used["postgres"] * 1000 / max(1, data["requests"]), 3),
            "redis": round(cpu.used["redis"] * 1000 / max(1, data["requests"]), 3),
        },
        "other_processes_cpu_s": cpu.other,
    }


def measure_create(server, args, token: str, run_id: str) -> dict:
    runs = {"noop": [], "create": []}
    for label, path in (("noop", NOOP_PATH), ("create", "/api/v1/leads/")):
        run_wrk(server, args, path=path, prefix=f"w{run_id}{label[0]}", token=token, seconds=2)  # warm-up
    for i in range(1, args.rounds + 1):
        for label, path in (("noop", NOOP_PATH), ("create", "/api/v1/leads/")):
            r = run_wrk(server, args, path=path, prefix=f"m{run_id}{label[0]}{i}", token=token, seconds=args.duration)
            runs[label].append(r)
            print(f"   {label:<6} round {i}: {r['per_s']:8.1f}/s  p95 {r['p95_ms']:6.1f} ms  codes {r['codes']}",
                  flush=True)
    return runs


def created_check(run_id: str, runs: list[dict]) -> dict:
    """Every 201 is a lead with its StageChange and its lead.created event."""
    from django.db import connection

    answered = sum(r["codes"].get("201", 0) for r in runs)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_lead WHERE email LIKE %s", [f"m{run_id}c%"])
        leads = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM core_domainevent e JOIN leads_lead l ON l.id = e.lead_id "
            "WHERE e.type = 'lead.created' AND l.email LIKE %s", [f"m{run_id}c%"])
        events = cursor.fetchone()[0]
    # wrk stops its clock with up to one request per connection in flight: those leads exist unanswered.
    return {"answered_201": answered, "leads": leads, "created_events": events,
            "every_201_a_lead_with_its_event": 0 <= leads - answered <= 8 * len(runs) and events == leads}


def combined(runs: list[dict]) -> dict:
    requests, seconds = sum(r["requests"] for r in runs), sum(r["seconds"] for r in runs)
    return {"per_s": round(requests / seconds, 1), "p95_ms": max(r["p95_ms"] for r in runs)}


def run(args) -> int:
    from bench.calibration import calibration_s

    started, calibration = time.perf_counter(), calibration_s()
    ensure_database(args.database_url)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="api_bench_") as tmp:
        workdir = Path(tmp)
        setup_django(args, workdir)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", interactive=False, verbosity=0)
        meta, reused = ensure_leads(args.leads, args.reload)
        made = tokens()
        queries = queries_per_page(made)
        print(f"   queries per list page: {queries}", flush=True)
        connection.close()
        run_id = secrets.token_hex(3)
        with BenchServer(workdir, args.gunicorn_workers) as server:
            listing = measure_list(server.port, made, args.list_requests)
            create_runs = measure_create(server, args, made["manager"], run_id)
        check = created_check(run_id, create_runs["create"])
        info = database_info()
    create, noop = combined(create_runs["create"]), combined(create_runs["noop"])
    results = {
        "lead_list_p95_ms": listing["p95_ms"],
        "lead_create_per_s": create["per_s"],
        "noop_per_s": noop["per_s"],
        "calibration_s": calibration,
        "api": {
            "benchmark": "api",
            "quick": args.quick,
            "calibration_s": calibration,
            "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
            "bench_seconds": round(time.perf_counter() - started, 1),
            "code": code_version(),
            "database": info,
            "data": {"leads": meta.get("leads"), "reused": reused},
            "lead_list": listing,
            "lead_list_queries_by_page_size": queries,
            "lead_create": {"per_s": create["per_s"], "p95_ms": create["p95_ms"], "noop_per_s": noop["per_s"],
                            "noop_p95_ms": noop["p95_ms"], "ratio_to_noop": round(create["per_s"] / noop["per_s"], 3),
                            "checks": check, "runs": create_runs},
            "server": {"gunicorn": gunicorn_version(), "workers": args.gunicorn_workers,
                       "settings": "crm.settings.production via a shim (capture_bench's URLs, the token's limit out "
                                   "of reach, rate counts in Redis)"},
            "load_generator": {"tool": wrk_version(), "connections": args.connections, "threads": args.wrk_threads,
                               "duration_s": args.duration, "rounds": args.rounds, "loopback": True},
            "machine": machine_info(),
            "targets": TARGETS,
            "meets_targets": {"lead_list_p95": listing["p95_ms"] < TARGETS["lead_list_p95_ms_max"],
                              "queries_constant_with_page_size": queries["10"] == queries["100"],
                              "every_201_a_lead_with_its_event": check["every_201_a_lead_with_its_event"]},
        },
    }
    print(f"  lead list p95 {listing['p95_ms']} ms (target {TARGETS['lead_list_p95_ms_max']}); queries {queries}; "
          f"create {create['per_s']}/s vs no-op {noop['per_s']}/s (ratio {results['api']['lead_create']['ratio_to_noop']})",
          flush=True)
    if args.output:
        existing = json.loads(args.output.read_text()) if args.output.exists() else {}
        existing.update(results)  # the "webhooks" part (webhooks_bench) stays
        args.output.write_text(json.dumps(existing, indent=2) + "\n")
        print(f"Results: {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0 if all(results["api"]["meets_targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
