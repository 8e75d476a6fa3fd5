"""The public endpoints under load, and linking a visitor's history at scale.

    .venv/bin/python -m bench.capture_bench [--quick] [--duration 15] [--connections 8] [--reload]

Serves the app with gunicorn (crm.settings.production behind a TLS proxy, its
own database `crm_bench_capture` (BENCH_CAPTURE_DATABASE_URL) and Redis
database 11 (BENCH_CAPTURE_REDIS_URL) for the tracking queue and the rate
limits) and loads it from loopback with wrk, alternating each endpoint with a
no-op Django view on the same server (bench/capture_site.py):

- tracking, `POST /t/hit`: requests/s and p95; then the queue is drained with
  traffic.ingest.hits_ingest and every hit answered 204 must be a page view;
- capture, `POST /api/forms/<slug>` (JSON, a fill token from /f/<slug>/token,
  80% new emails and 20% repeats): requests/s and p95; every 201 must be a
  submission, and repeats must make no new lead.

Then, with 10,000,000 page views (partitioned by month, ~1,000,000 visitors of
10 views each, over 3 months) and 1,000,000 leads in the same database, it
times traffic.services.visitor_touches + visitor_link for 200 random visitors
(each in a transaction rolled back) and explains the slowest query.
Results: bench/results/capture.json, and a summary on stdout.
"""

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.admin_bench import (
    QueryTimer,
    code_version,
    database_info,
    ensure_database,
    machine_info,
    percentile,
    read_saved_meta,
    save_meta,
)
from bench.admin_bench import load as load_leads
from bench.nurture_bench import CpuMeter
from bench.rep_pages_bench import Gunicorn, gunicorn_version

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_capture"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "capture.json"
QUEUE_KEY = "crm:bench:capture:hits"
SITE = "www.bench.example"
FORM_SLUG = "bench-demo-request"
NOOP_PATH = "/bench/noop"
# The same no-op on the endpoints' short way through the middleware (core.middleware.LeanEndpointMiddleware).
LEAN_NOOP_PATH = "/t/bench-noop"
TARGETS = {
    "tracking_vs_noop_min": 0.70,
    "tracking_p95_ms_max": 20,
    "tracking_every_accepted_hit_stored": True,
    "capture_vs_noop_min": 0.40,
    "capture_p95_ms_max": 100,
    "capture_every_201_a_submission_and_repeats_no_new_lead": True,
    "attribution_link_p95_ms_max": 20,
}
DATA_VERSION = 1
VIEWS_PER_VISITOR = 10
LINKED_SHARE = 3  # of every 10 visitors, this many became leads already (their views carry the lead)
SPAN_DAYS = 92  # the page views' months: from SPAN_DAYS ago to now
BATCH = 1_000_000

SETTINGS_SHIM = '''"""crm.settings.production for capture_bench: its URLs (a no-op view), queue, limits and site."""
from crm.settings.production import *  # noqa: F403

STATIC_ROOT = {static_root!r}
ROOT_URLCONF = "bench.capture_site"
CRM_TRACKING_SITES = [{site!r}]
CRM_TRACKING_QUEUE_URL = {redis_url!r}
CRM_TRACKING_QUEUE_KEY = {queue_key!r}
CRM_RATE_LIMIT_URL = {redis_url!r}
# Captures are checked in the request and queued; the bench drains them (the worker's job) before counting.
CRM_CAPTURE_QUEUE_URL = {redis_url!r}
# The load comes from one address and reuses one fill token: limits on, set high; no "too fast".
CRM_CAPTURE_MIN_FILL_SECONDS = 0
CRM_CAPTURE_PER_ADDRESS_PER_HOUR = 100_000_000
CRM_CAPTURE_PER_EMAIL_PER_HOUR = 100_000
'''

# wrk: one body per request (a page view, or a form with 80% new emails and 20% repeats of
# this thread's earlier ones), the answers counted by status; a JSON line at the end.
WRK_SCRIPT = r'''
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  kind, target, prefix, token = args[1], args[2], args[3] .. "-" .. tid, args[4] or ""
  -- Repeats: emails this thread sent in the previous run (answered by now), if there was one.
  earlier, earlier_made = (args[5] or "") .. "-" .. tid, tonumber(args[6] or "0") or 0
  n, made, repeats, codes = 0, 0, 0, {}
  math.randomseed(tid * 7919 + string.len(prefix))
  wrk.headers["X-Forwarded-Proto"] = "https"
  wrk.headers["Origin"] = "https://SITE"
  wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
  wrk.headers["Accept-Language"] = "en-GB,en;q=0.8"
  if kind == "hit" then
    wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
  else
    wrk.headers["Content-Type"] = "application/json"
  end
end

local HIT = '{"v":"%s-%07d","u":"https://SITE/%s","t":"Bench page","r":"https://www.google.com/","l":%d,' ..
  '"lp":"https://SITE/?utm_source=google&utm_medium=cpc&utm_campaign=bench&gclid=abc%d","sw":1440}'
local FORM = '{"fields":{"email":"%s-%d@bench.example","first_name":"Ada","last_name":"Bench","consent":true},' ..
  '"context":{"page_url":"https://SITE/demo","referrer":"https://www.google.com/",' ..
  '"landing_page":"https://SITE/?utm_source=google&utm_medium=cpc&utm_campaign=bench","visitor_id":"v%s-%07d"},' ..
  '"crm_token":"%s","crm_hp":""}'
local PAGES = {"pricing", "features", "demo", "blog/crm-tips", "customers"}

function request()
  n = n + 1
  local body
  if kind == "hit" then
    body = string.format(HIT, prefix, math.floor(n / 10), PAGES[1 + n % 5], (n % 10 == 1) and 1 or 0, n)
  else
    local k, from = 0, prefix
    if math.random() < 0.2 and (earlier_made > 0 or made >= 25) then
      repeats = repeats + 1
      if earlier_made > 0 then
        from, k = earlier, math.random(1, earlier_made)
      else
        -- No previous run: an email sent at least 20 requests ago on this thread, answered by now.
        k = math.random(1, made - 20)
      end
    else
      made = made + 1
      k = made
    end
    body = string.format(FORM, from, k, prefix, n, token)
  end
  return wrk.format("POST", target, nil, body)
end

function response(status, headers, body)
  local key = tostring(status)
  codes[key] = (codes[key] or 0) + 1
end

function done(summary, latency, requests)
  local total, sent, rep, made_min = {}, 0, 0, nil
  for _, t in ipairs(threads) do
    local m = t:get("made")
    if made_min == nil or m < made_min then made_min = m end
    for code, count in pairs(t:get("codes")) do total[code] = (total[code] or 0) + count end
    sent = sent + t:get("n")
    rep = rep + t:get("repeats")
  end
  local parts = {}
  for code, count in pairs(total) do parts[#parts + 1] = string.format('"%s":%d', code, count) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"codes":{%s},"sent":%d,"repeats":%d,"made_min":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, table.concat(parts, ","), sent, rep, made_min or 0,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
'''.replace("SITE", SITE)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.capture_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true",
                        help="small data (200,000 page views, 20,000 leads, in <database>_quick) and 5 s runs; "
                             "writes no results file unless --output is given")
    parser.add_argument("--duration", type=float, help="seconds per measured wrk run (default 15; 5 with --quick)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per path (default 3; 1 with --quick)")
    parser.add_argument("--rounds", type=int, default=2, help="no-op/endpoint pairs per endpoint (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn --workers (default 2)")
    parser.add_argument("--page-views", type=int, help="page views for attribution (default 10,000,000)")
    parser.add_argument("--attribution-leads", type=int, help="leads in the database (default 1,000,000)")
    parser.add_argument("--attribution-runs", type=int, default=200, help="visitors linked (default 200)")
    parser.add_argument("--reload", action="store_true", help="load the data again even if the database holds it")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/capture.json)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_CAPTURE_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="the database (env BENCH_CAPTURE_DATABASE_URL); --quick adds _quick to its name")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_CAPTURE_REDIS_URL", DEFAULT_REDIS_URL),
                        help="Redis database for the queue and the rate limits, flushed at start "
                             "(env BENCH_CAPTURE_REDIS_URL)")
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    quick = args.quick
    args.duration = args.duration or (5.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.page_views = args.page_views or (200_000 if quick else 10_000_000)
    args.attribution_leads = args.attribution_leads or (20_000 if quick else 1_000_000)
    if quick:
        parts = urlsplit(args.database_url)
        args.database_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_quick"))
    if args.output is None and not quick:
        args.output = DEFAULT_OUTPUT
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    return run(args)


def run(args) -> int:
    from bench.calibration import calibration_s

    started, calibration = time.perf_counter(), calibration_s()
    load_start = os.getloadavg()
    ensure_database(args.database_url)
    flush_redis(args.redis_url)
    with tempfile.TemporaryDirectory(prefix="capture_bench_") as tmp:
        workdir = Path(tmp)
        setup_django(args, workdir)
        from django.core.management import call_command
        from django.db import connection

        t0 = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        print(f"   migrated in {time.perf_counter() - t0:.1f} s", flush=True)
        meta, reused = ensure_data(args.page_views, args.attribution_leads, args.reload)
        form = ensure_form()
        connection.close()

        run_id = secrets.token_hex(3)
        load_before = os.getloadavg()
        with BenchServer(workdir, args.gunicorn_workers) as server:
            token = fill_token_over_http(server.port)
            tracking_runs = measure_pair(server, args, kind="hit", path="/t/hit", prefix=f"t{run_id}")
            capture_runs = measure_pair(server, args, kind="form", path=f"/api/forms/{FORM_SLUG}",
                                        prefix=f"c{run_id}", token=token)
        load_after = os.getloadavg()
        tracking = tracking_summary(tracking_runs, run_id, args)
        # Before the captures are drained (minutes of writing): the linking is timed on a quiet machine.
        attribution = measure_attribution(meta, args.attribution_runs)
        capture = capture_summary(capture_runs, run_id, form, args)

    meets = {
        "tracking_vs_noop": tracking["ratio_to_noop"] >= TARGETS["tracking_vs_noop_min"],
        "tracking_p95": tracking["p95_ms"] <= TARGETS["tracking_p95_ms_max"],
        "tracking_every_accepted_hit_stored": tracking["every_accepted_hit_stored"],
        "capture_vs_noop": capture["ratio_to_noop"] >= TARGETS["capture_vs_noop_min"],
        "capture_p95": capture["p95_ms"] <= TARGETS["capture_p95_ms_max"],
        "capture_every_201_a_submission_and_repeats_no_new_lead": capture["checks_pass"],
        "attribution_link_p95": attribution["p95_ms"] <= TARGETS["attribution_link_p95_ms_max"],
    }
    result = {
        "benchmark": "capture",
        "quick": args.quick,
        "calibration_s": calibration,
        "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "bench_seconds": round(time.perf_counter() - started, 1),
        "code": code_version(),
        **db_info(args.database_url),
        "redis": redact(args.redis_url),
        "server": {
            "gunicorn": gunicorn_version(),
            "workers": args.gunicorn_workers,
            "worker_class": "sync (a connection per request)",
            "settings": "crm.settings.production via a one-line-per-setting module (bench URLs, Redis queue and "
                        "rate limits, CRM_CAPTURE_MIN_FILL_SECONDS=0, high per-hour limits, STATIC_ROOT in a temporary folder)",
            "https": "X-Forwarded-Proto: https on every request, as from a TLS proxy",
        },
        "load_generator": {
            "tool": wrk_version(),
            "connections": args.connections,
            "threads": args.wrk_threads,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "order": "per endpoint: warm-up of both paths, then no-op, endpoint, no-op, endpoint...",
            "loopback": True,
        },
        "machine": {
            **machine_info(),
            "loadavg_at_start": [round(x, 2) for x in load_start],
            "loadavg_before_after_http": [[round(x, 2) for x in load_before], [round(x, 2) for x in load_after]],
        },
        "data": {**meta, "reused": reused},
        "tracking": tracking,
        "capture": capture,
        "attribution_link_p50_ms": attribution["p50_ms"],
        "attribution_link_p95_ms": attribution["p95_ms"],
        "attribution": attribution,
        "other_processes_cpu_s": round(tracking["other_processes_cpu_s"] + capture["other_processes_cpu_s"], 2),
        "targets": TARGETS,
        "meets_targets": meets,
        "meets_all_targets": all(meets.values()),
    }
    output = args.output or Path(tempfile.gettempdir()) / "capture_bench_quick.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, output)
    return 0


# --- Setup ----------------------------------------------------------------------------------------


def redact(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def setup_django(args, workdir: Path) -> None:
    settings_module_setup(workdir, "capture_bench_settings", SETTINGS_SHIM.format(
        static_root=str(workdir / "static"), site=SITE, redis_url=args.redis_url, queue_key=QUEUE_KEY,
    ), args.database_url)


def settings_module_setup(workdir: Path, module: str, text: str, database_url: str) -> None:
    """Django set up in this process (and in the gunicorn it starts) with the settings module `text`, written
    as `module` in `workdir`: its static files and var/ in `workdir`, fresh keys, `database_url`."""
    (workdir / "static").mkdir()
    (workdir / "var").mkdir()
    (workdir / f"{module}.py").write_text(text)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": module,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CRM_EMAIL_HASH_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "CRM_VAR_DIR": str(workdir / "var"),  # nothing written in the tree
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir), str(ROOT), os.environ.get("PYTHONPATH")])),
    })
    for name in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"):
        os.environ.pop(name, None)
    sys.path[:0] = [str(workdir), str(ROOT)]

    import django

    django.setup()


def db_info(url: str) -> dict:
    info = database_info()
    info["database_name"] = urlsplit(url).path.lstrip("/")
    return info


def ensure_form():
    from capture.models import CaptureForm
    from leads.models import ConversionKind

    kind, _ = ConversionKind.objects.get_or_create(slug="demo-request", defaults={"name": "Demo request"})
    form, _ = CaptureForm.objects.update_or_create(
        slug=FORM_SLUG,
        defaults={
            "name": "Bench: demo request",
            "is_active": True,
            "fields": [
                {"name": "email", "label": "Work email", "type": "email", "required": True, "maps_to": "email"},
                {"name": "first_name", "label": "First name", "type": "text", "maps_to": "first_name"},
                {"name": "last_name", "label": "Last name", "type": "text", "maps_to": "last_name"},
            ],
            "conversion_kind": kind,
            "consent_text": "I agree to receive emails about the product.",
            "consent_version": "2026-11",
            "allowed_sites": SITE,
            "owner_rule": CaptureForm.OwnerRule.POOL,
        },
    )
    return form


# --- Data: leads and page views ---------------------------------------------------------------------

PAGE_VIEWS_SQL = """
INSERT INTO traffic_pageview (
    hit_id, received_at, visitor_id, url, host, path, title, referrer, referrer_host, landing_path, utm_source,
    utm_medium, utm_campaign, utm_content, utm_term, click_id_type, click_id, is_landing, has_js, device, kind,
    bot_reason, address_hash, lead_id
)
SELECT
    md5('bench-pv-' || s.g)::uuid,
    least(%(now)s::timestamptz - interval '1 minute',
          %(start)s::timestamptz + s.frac * interval '80 days' + s.i * interval '1 day' * (0.5 + random() * 1.5)),
    'bench' || lpad(s.v::text, 11, '0'),
    CASE WHEN s.landing THEN 'https://www.bench.example/?utm_source=' || s.src || '&utm_medium=' || s.med
                             || '&utm_campaign=' || s.camp || CASE WHEN s.src = 'google' THEN '&gclid=gc' || s.v ELSE '' END
         ELSE 'https://www.bench.example/' || s.page END,
    'www.bench.example',
    CASE WHEN s.landing THEN '/' ELSE '/' || s.page END,
    CASE WHEN s.landing THEN 'CRM for small sales teams' ELSE initcap(replace(s.page, '-', ' ')) END,
    CASE WHEN s.landing AND s.src = 'google' THEN 'https://www.google.com/'
         WHEN s.landing THEN '' ELSE 'https://www.bench.example/' END,
    CASE WHEN s.landing AND s.src = 'google' THEN 'www.google.com'
         WHEN s.landing THEN '' ELSE 'www.bench.example' END,
    '/', s.src, s.med, s.camp, '', '',
    CASE WHEN s.src = 'google' THEN 'gclid' ELSE '' END,
    CASE WHEN s.src = 'google' THEN 'gc' || s.v ELSE '' END,
    s.landing, true,
    (ARRAY['desktop', 'mobile', 'desktop', 'tablet'])[1 + (s.v %% 4)::int],
    CASE WHEN s.v %% 37 = 0 THEN 'bot' ELSE 'human' END,
    CASE WHEN s.v %% 37 = 0 THEN 'crawler: bench' ELSE '' END,
    substr(md5('addr' || s.v), 1, 16),
    CASE WHEN s.v %% 10 < %(linked)s THEN %(lead_min)s + (s.v * 7919) %% %(lead_count)s END
FROM (
    SELECT t.*,
           (ARRAY['google', 'linkedin', 'newsletter', '', 'bing', 'facebook'])[1 + ((t.v * 3 + t.visit) %% 6)::int] AS src,
           (ARRAY['cpc', 'paid-social', 'email', '', 'cpc', 'paid-social'])[1 + ((t.v * 3 + t.visit) %% 6)::int] AS med,
           CASE WHEN (t.v * 3 + t.visit) %% 6 = 3 THEN '' ELSE 'camp-' || ((t.v + t.visit) %% 40) END AS camp,
           (ARRAY['pricing', 'features', 'blog/crm-tips', 'customers', 'demo', 'about', 'blog/pipeline',
                  'integrations', 'security', 'contact'])[1 + t.i::int] AS page
    FROM (
        SELECT g, (g - 1) / %(per)s + 1 AS v, (g - 1) %% %(per)s AS i,
               ((((g - 1) / %(per)s + 1) * 2654435761) %% 1000003)::float8 / 1000003 AS frac,
               (g - 1) %% %(per)s IN (0, 4, 7) AS landing,
               CASE WHEN (g - 1) %% %(per)s < 4 THEN 0 WHEN (g - 1) %% %(per)s < 7 THEN 1 ELSE 2 END AS visit
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
    ) t
) s
"""

VISITORS_SQL = """
INSERT INTO traffic_visitor (visitor_id, first_seen_at, kind, lead_id)
SELECT 'bench' || lpad(v::text, 11, '0'),
       %(start)s::timestamptz + ((v * 2654435761) %% 1000003)::float8 / 1000003 * interval '80 days',
       CASE WHEN v %% 37 = 0 THEN 'bot' ELSE 'human' END,
       CASE WHEN v %% 10 < %(linked)s THEN %(lead_min)s + (v * 7919) %% %(lead_count)s END
FROM generate_series(1, %(visitors)s::bigint) AS v
"""


def visitor_id(v: int) -> str:
    return f"bench{v:011d}"


def ensure_data(page_views: int, leads: int, reload: bool):
    from django.db import connection

    meta = read_saved_meta("capture")
    if not reload and meta and meta.get("version") == DATA_VERSION and meta.get("page_views") == page_views \
            and meta.get("leads") == leads:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM leads_lead WHERE id BETWEEN %s AND %s",
                           [meta["lead_min"], meta["lead_min"] + meta["lead_count"] - 1])
            have_leads = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM traffic_pageview WHERE visitor_id = %s", [visitor_id(meta["visitors"])])
            have_last_visitor = cursor.fetchone()[0]
        if have_leads == meta["lead_count"] and have_last_visitor == VIEWS_PER_VISITOR:
            print(f"   reusing {page_views:,} page views and {leads:,} leads (loaded in {meta['load_seconds']:.0f} s); "
                  "--reload to load again", flush=True)
            return meta, True
    started = time.perf_counter()
    load_leads(leads)  # the admin benchmark's loader (it empties bench_meta)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM leads_lead")
        lead_min, lead_count = cursor.fetchone()
    leads_seconds = time.perf_counter() - started
    views_seconds = load_page_views(page_views, lead_min, lead_count)
    meta = {
        "version": DATA_VERSION,
        "page_views": page_views,
        "visitors": page_views // VIEWS_PER_VISITOR,
        "views_per_visitor": VIEWS_PER_VISITOR,
        "visitors_linked_to_a_lead_share": LINKED_SHARE / 10,
        "leads": leads,
        "lead_min": lead_min,
        "lead_count": lead_count,
        "load_seconds": round(time.perf_counter() - started, 1),
        "leads_load_seconds": round(leads_seconds, 1),
        "page_views_load_seconds": round(views_seconds, 1),
        "loaded_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
    }
    with connection.cursor() as cursor:
        meta["partitions"] = partition_rows(cursor)
    save_meta("capture", meta)
    return meta, False


def partition_rows(cursor) -> dict:
    """Rows per partition of traffic_pageview (the planner's estimate after ANALYZE)."""
    cursor.execute(
        "SELECT c.relname, c.reltuples::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'traffic_pageview'::regclass ORDER BY c.relname"
    )
    return {name: max(0, rows) for name, rows in cursor.fetchall()}


def month_start(day: date, offset: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + offset
    return date(index // 12, index % 12 + 1, 1)


def load_page_views(n: int, lead_min: int, lead_count: int) -> float:
    """n page views (10 per visitor over ~2 weeks, visitors spread over 3 months), their visitors, then the indexes."""
    from django.db import connection
    from django.utils import timezone

    from traffic.partitions import partition_name, partitions_ensure

    started = time.perf_counter()
    now = timezone.now()
    start = now - timedelta(days=SPAN_DAYS)
    visitors = n // VIEWS_PER_VISITOR
    n = visitors * VIEWS_PER_VISITOR
    print(f"   loading {n:,} page views of {visitors:,} visitors", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE traffic_pageview, traffic_visitor")
        # The months the views fall in, each its own partition (as traffic_partitions_ensure makes them ahead).
        month = month_start(start.date())
        while month <= now.date():
            name = partition_name(month)
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:
                cursor.execute(f'CREATE TABLE "{name}" PARTITION OF traffic_pageview FOR VALUES FROM (%s) TO (%s)',
                               [month.isoformat(), month_start(month, 1).isoformat()])
            month = month_start(month, 1)
        partitions_ensure()
        # Faster without the indexes: they are dropped and made again after the load, as they were.
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'traffic_pageview'::regclass AND contype IN ('p', 'u') ORDER BY contype"
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'traffic_pageview'::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"
        )
        indexes = cursor.fetchall()
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_capture_ddl (name text PRIMARY KEY, kind text, ddl text)")
        cursor.executemany("INSERT INTO bench_capture_ddl VALUES (%s, 'constraint', %s) ON CONFLICT DO NOTHING", constraints)
        cursor.executemany("INSERT INTO bench_capture_ddl VALUES (%s, 'index', %s) ON CONFLICT DO NOTHING", indexes)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE traffic_pageview DROP CONSTRAINT "{name}"')
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET jit = off")
        cursor.execute("SELECT setseed(0.29)")
        params = {"now": now, "start": start, "per": VIEWS_PER_VISITOR, "linked": LINKED_SHARE,
                  "lead_min": lead_min, "lead_count": lead_count}
        t = time.perf_counter()
        for lo in range(1, n + 1, BATCH):
            hi = min(n, lo + BATCH - 1)
            cursor.execute(PAGE_VIEWS_SQL, {**params, "lo": lo, "hi": hi})
            print(f"   page views {hi:>11,} / {n:,}  ({time.perf_counter() - t:.0f} s)", flush=True)
        cursor.execute(VISITORS_SQL, {**params, "visitors": visitors})
        t = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SELECT name, kind, ddl FROM bench_capture_ddl ORDER BY kind DESC, name")
        for name, kind, ddl in cursor.fetchall():
            if kind == "constraint":
                cursor.execute(f'ALTER TABLE traffic_pageview ADD CONSTRAINT "{name}" {ddl}')
            else:
                # The partitioned index as pg_get_indexdef gives it ("ON ONLY") would cover no partition.
                cursor.execute(ddl.replace(" ON ONLY ", " ON ", 1))
        cursor.execute("DROP TABLE bench_capture_ddl")
        print(f"   indexes made again in {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET synchronous_commit")
        cursor.execute("RESET jit")
        cursor.execute("VACUUM (ANALYZE) traffic_pageview")
        cursor.execute("VACUUM (ANALYZE) traffic_visitor")
        cursor.execute("CHECKPOINT")
        print(f"   VACUUM ANALYZE in {time.perf_counter() - t:.0f} s", flush=True)
    return time.perf_counter() - started


# --- HTTP under load ----------------------------------------------------------------------------------


class BenchServer(Gunicorn):
    """rep_pages_bench's gunicorn, ready when /healthz answers (no page that needs collected static files)."""

    def answers(self) -> bool:
        return http_request(self.port, "GET", "/healthz")[0] == 200


def http_request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"X-Forwarded-Proto": "https", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def fill_token_over_http(port: int) -> str:
    status, body = http_request(port, "GET", f"/f/{FORM_SLUG}/token", headers={"Origin": f"https://{SITE}"})
    if status != 200:
        raise RuntimeError(f"/f/{FORM_SLUG}/token answered {status}: {body[:300]!r}")
    return json.loads(body)["token"]


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    match = re.search(r"wrk [^\s]+", out.stdout + out.stderr)
    return match.group(0) if match else "wrk"


def run_wrk(server, args, *, kind: str, path: str, prefix: str, token: str = "", seconds: float,
            earlier: tuple[str, int] = ("", 0)) -> dict:
    script = server.workdir / "bench.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    cmd = [
        "wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{seconds:g}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{server.port}", "--", kind, path, prefix, token, earlier[0], str(earlier[1]),
    ]
    with CpuMeter(worker=server) as cpu:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    settle(server.port)
    seconds_run = data["duration_us"] / 1e6
    requests = data["requests"]
    lat = data["latency_us"]
    return {
        "path": path,
        "per_s": round(requests / seconds_run, 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p95_ms": round(lat["p95"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "requests": requests,
        "seconds": round(seconds_run, 2),
        "codes": dict(sorted(data["codes"].items())),
        "sent": data["sent"],
        "repeats_sent": data["repeats"],
        "prefix": prefix,
        "new_emails_per_thread_min": data["made_min"],
        "socket_errors": {k: v for k, v in data["errors"].items() if v},
        "cpu_ms_per_request": {
            "gunicorn": round(cpu.used["worker"] * 1000 / max(1, requests), 3),
            "postgres": round(cpu.used["postgres"] * 1000 / max(1, requests), 3),
            "redis": round(cpu.used["redis"] * 1000 / max(1, requests), 3),
            "wrk_and_bench": round(cpu.used["bench"] * 1000 / max(1, requests), 3),
        },
        "cpu_busy_share": round(sum(cpu.used.values()) / (cpu.wall * (os.cpu_count() or 1)), 2),
        "other_processes_cpu_s": cpu.other,
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
    }


def settle(port: int, timeout: float = 30.0) -> None:
    """Wait until the server is idle: requests wrk left in flight are still being served after it stops."""
    deadline, quick = time.monotonic() + timeout, 0
    while quick < 4 and time.monotonic() < deadline:
        start = time.perf_counter()
        http_request(port, "POST", NOOP_PATH, body=b"{}", headers={"Content-Type": "application/json"})
        quick = quick + 1 if time.perf_counter() - start < 0.02 else 0
    time.sleep(0.5)


def measure_pair(server, args, *, kind: str, path: str, prefix: str, token: str = "") -> dict:
    """Warm-up of both paths, then no-op and endpoint alternated `rounds` times, with the same script.

    The form's repeats are of emails the previous endpoint run sent (each wrk thread its own).
    """
    runs = {"warmup": [], "noop": [], "endpoint": [], "lean_noop": []}
    name = "tracking" if kind == "hit" else "capture"
    earlier = ("", 0)
    paths = (("noop", NOOP_PATH), ("endpoint", path), ("lean_noop", LEAN_NOOP_PATH))
    for label, target in paths:
        if args.warmup > 0:
            r = run_wrk(server, args, kind=kind, path=target, prefix=f"{prefix}w{label[0]}", token=token,
                        seconds=args.warmup, earlier=earlier)
            runs["warmup"].append(r)
            if label == "endpoint":
                earlier = (r["prefix"], r["new_emails_per_thread_min"])
    for i in range(1, args.rounds + 1):
        last = earlier
        for label, target in paths:
            r = run_wrk(server, args, kind=kind, path=target, prefix=f"{prefix}{label[0]}{i}", token=token,
                        seconds=args.duration, earlier=last)
            runs[label].append(r)
            if label == "endpoint":
                earlier = (r["prefix"], r["new_emails_per_thread_min"])
            print(f"   {name:<8} {label:<9} round {i}: {r['per_s']:8.1f}/s  p50 {r['p50_ms']:6.1f} ms  "
                  f"p95 {r['p95_ms']:6.1f} ms  codes {r['codes']}  others {r['other_processes_cpu_s']:.1f} CPU s",
                  flush=True)
    return runs


def combined(runs: list[dict]) -> dict:
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "per_s": round(requests / seconds, 1),
        # The worst round's: other work on the machine shows there.
        "p95_ms": max(r["p95_ms"] for r in runs),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
    }


def codes_total(runs: list[dict], code: str) -> int:
    return sum(r["codes"].get(code, 0) for r in runs)


def endpoint_summary(runs: dict) -> dict:
    ep, noop, lean = combined(runs["endpoint"]), combined(runs["noop"]), combined(runs["lean_noop"])
    return {
        "per_s": ep["per_s"],
        "p95_ms": ep["p95_ms"],
        "p50_ms": ep["p50_ms"],
        "noop_per_s": noop["per_s"],
        "noop_p95_ms": noop["p95_ms"],
        "noop_p50_ms": noop["p50_ms"],
        "ratio_to_noop": round(ep["per_s"] / noop["per_s"], 3),
        # The endpoints skip the page middleware (sessions, auth, CSRF, messages, CSP, frames, htmx, axes);
        # the no-op view goes the whole way. The same no-op on the endpoints' way, for comparison:
        "lean_noop_per_s": lean["per_s"],
        "lean_noop_p95_ms": lean["p95_ms"],
        "ratio_to_lean_noop": round(ep["per_s"] / lean["per_s"], 3),
        "other_processes_cpu_s": round(sum(r["other_processes_cpu_s"] for rs in runs.values() for r in rs), 2),
    }


def tracking_summary(runs: dict, run_id: str, args) -> dict:
    """Drain the queue into page views and check that every accepted hit became one."""
    from traffic.ingest import hits_ingest
    from traffic.models import PageView
    from traffic.queue import hit_queue

    endpoint_runs = runs["endpoint"] + [r for r in runs["warmup"] if r["path"] not in (NOOP_PATH, LEAN_NOOP_PATH)]
    accepted = codes_total(endpoint_runs, "204")
    queued = hit_queue().size()
    t = time.perf_counter()
    drained = 0
    while True:
        n = hits_ingest()
        drained += n
        if n == 0:
            break
    drain_seconds = time.perf_counter() - t
    stored = PageView.objects.filter(
        received_at__gte=datetime.now(dt_timezone.utc) - timedelta(hours=2), visitor_id__startswith=f"t{run_id}"
    ).count()
    in_flight = queued - accepted
    # wrk stops the clock with up to one request per connection in flight: the server may still queue
    # those hits (they count in `queued`) while wrk never reads their 204.
    every_stored = stored == queued and 0 <= in_flight <= args.connections * len(endpoint_runs)
    summary = endpoint_summary(runs)
    summary.update({
        "accepted": accepted,
        "queued": queued,
        "stored": stored,
        "hits_answered_after_wrk_stopped": in_flight,
        "every_accepted_hit_stored": every_stored,
        "refused": {code: n for code in {c for r in endpoint_runs for c in r["codes"]} - {"204"}
                    if (n := codes_total(endpoint_runs, code))},
        "ingest": {"hits": drained, "seconds": round(drain_seconds, 2),
                   "hits_per_s": round(drained / drain_seconds, 1) if drain_seconds else None},
        "runs": runs,
    })
    return summary


def capture_summary(runs: dict, run_id: str, form, args) -> dict:
    """Every 201 made a submission; repeats of an email made no new lead (one lead per distinct email)."""
    from django.db import connection

    from capture.services import capture_queue, captures_ingest

    endpoint_runs = runs["endpoint"] + [r for r in runs["warmup"] if r["path"] not in (NOOP_PATH, LEAN_NOOP_PATH)]
    created = codes_total(endpoint_runs, "201")
    prefix = f"c{run_id}"
    queued = capture_queue().size()
    t = time.perf_counter()
    drained = 0
    while n := captures_ingest():
        drained += n
    drain_seconds = time.perf_counter() - t
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT data->>'email'), count(DISTINCT lead_id) FROM leads_formsubmission "
            "WHERE form_slug = %s AND visitor_id LIKE %s",
            [FORM_SLUG, f"v{prefix}%"],
        )
        submissions, distinct_emails, distinct_leads = cursor.fetchone()
        cursor.execute("SELECT count(*), count(DISTINCT email) FROM leads_lead WHERE email LIKE %s", [f"{prefix}%"])
        leads, lead_emails = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM capture_quarantine WHERE form_id = %s AND context->>'visitor_id' LIKE %s",
                       [form.pk, f"v{prefix}%"])
        quarantined = cursor.fetchone()[0]
    in_flight = submissions - created
    checks = {
        "every_201_a_submission": 0 <= in_flight <= args.connections * len(endpoint_runs),
        "one_lead_per_distinct_email": leads == lead_emails == distinct_emails == distinct_leads,
        "none_quarantined": quarantined == 0,
    }
    summary = endpoint_summary(runs)
    repeats = sum(r["repeats_sent"] for r in endpoint_runs)
    sent = sum(r["sent"] for r in endpoint_runs)
    summary.update({
        "accepted": created,
        "queued": queued,
        "stored": submissions,
        "submissions_answered_after_wrk_stopped": in_flight,
        # The worker's part, done here after the load: the queued captures written, one transaction each.
        "ingest": {"captures": drained, "seconds": round(drain_seconds, 2),
                   "captures_per_s": round(drained / drain_seconds, 1) if drain_seconds else None},
        "repeats_sent_share": round(repeats / sent, 3) if sent else None,
        "distinct_emails_submitted": distinct_emails,
        "leads_created": leads,
        "quarantined": quarantined,
        "refused": {code: n for code in {c for r in endpoint_runs for c in r["codes"]} - {"201"}
                    if (n := codes_total(endpoint_runs, code))},
        "checks": checks,
        "checks_pass": all(checks.values()),
        "runs": runs,
    })
    return summary


# --- Attribution at scale ----------------------------------------------------------------------------


def measure_attribution(meta: dict, runs: int) -> dict:
    """visitor_touches + visitor_link, as a capture does them, for `runs` random unlinked visitors (rolled back)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from traffic.services import visitor_link, visitor_touches

    rng = random.Random(20261130)
    visitors = meta["visitors"]
    picks: list[int] = []
    seen = set()
    while len(picks) < min(runs, visitors):
        v = rng.randrange(1, visitors + 1)
        if v % 10 >= LINKED_SHARE and v not in seen:
            seen.add(v)
            picks.append(v)
    times, samples, linked, touched = [], [], [], 0
    for v in picks:
        lead_id = meta["lead_min"] + rng.randrange(meta["lead_count"])
        timer = QueryTimer()
        with transaction.atomic():
            with connection.execute_wrapper(timer):
                start = time.perf_counter()
                first, last = visitor_touches(visitor_id(v))
                changed = visitor_link(visitor_id=visitor_id(v), lead_id=lead_id, at=timezone.now())
                elapsed = (time.perf_counter() - start) * 1000
            transaction.set_rollback(True)
        times.append(elapsed)
        samples.append(timer.queries)
        linked.append(changed)
        touched += first is not None and last is not None
    # Each run issues the same statements in the same order: the slowest by median, and its plan.
    shapes = {len(s) for s in samples}
    plan, slowest = [], {}
    if len(shapes) == 1:
        medians = [statistics.median(s[i][2] for s in samples) for i in range(len(samples[0]))]
        breakdown = sorted(([round(ms, 3), " ".join(samples[0][i][0].split())[:160]] for i, ms in enumerate(medians)),
                           reverse=True)
        index = max(range(len(medians)), key=medians.__getitem__)
        worst = max(range(len(samples)), key=lambda r: samples[r][index][2])
        sql, params, _ = samples[worst][index]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [row[0] for row in cursor.fetchall()]
            transaction.set_rollback(True)
        slowest = {
            "slowest_query": sql,
            "slowest_query_params": [str(p) for p in params],
            "slowest_query_median_ms": round(medians[index], 3),
            "slowest_query_max_ms": round(samples[worst][index][2], 3),
            "slowest_query_plan": plan,
            "slowest_query_plan_note": "EXPLAIN (ANALYZE, BUFFERS) of the run where it was slowest, run again after "
                                       "it (rolled back): its pages are cached by then",
            "query_times_ms": breakdown,
        }
    with connection.cursor() as cursor:
        partitions = partition_rows(cursor)
    result = {
        "runs": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "max_ms": round(max(times), 2),
        "queries_per_run": sorted(shapes),
        "page_views_linked_per_run": round(statistics.mean(linked), 2),
        "runs_with_first_and_last_touch": touched,
        "page_views": meta["page_views"],
        "visitors": meta["visitors"],
        "leads": meta["leads"],
        "partitions": partitions,
        "how": "traffic.services.visitor_touches then visitor_link for a random visitor not yet linked (10 page "
               "views, 3 landings), each in a transaction rolled back",
        **slowest,
    }
    print(f"   attribution: {len(times)} visitors, p50 {result['p50_ms']:.2f} ms  p95 {result['p95_ms']:.2f} ms  "
          f"max {result['max_ms']:.2f} ms  {result['page_views_linked_per_run']} views linked per visitor", flush=True)
    return result


# --- Report ---------------------------------------------------------------------------------------------


def print_report(result: dict, output: Path) -> None:
    t, c = result["tracking"], result["capture"]
    print()
    print(f"Capture benchmark{' (--quick)' if result['quick'] else ''}: {result['database']}, "
          f"gunicorn x {result['server']['workers']}, {result['load_generator']['tool']} "
          f"-c {result['load_generator']['connections']} {result['load_generator']['duration_s']:g} s x "
          f"{result['load_generator']['rounds']} rounds, calibration {result['calibration_s']} s, "
          f"{result['machine']['cpus']} CPUs")
    for name, s, extra in (
        ("tracking", t, f"accepted {t['accepted']:,} queued {t['queued']:,} stored {t['stored']:,}"),
        ("capture", c, f"201s {c['accepted']:,} submissions {c['stored']:,} leads {c['leads_created']:,} "
                       f"(distinct emails {c['distinct_emails_submitted']:,})"),
    ):
        print(f"  {name:<9} {s['per_s']:8.1f}/s p95 {s['p95_ms']:6.1f} ms | no-op {s['noop_per_s']:8.1f}/s "
              f"p95 {s['noop_p95_ms']:6.1f} ms | ratio {s['ratio_to_noop']:.2f} | {extra}")
    print(f"  attribution link p50 {result['attribution_link_p50_ms']:.2f} ms, p95 {result['attribution_link_p95_ms']:.2f} ms "
          f"({result['attribution']['page_views']:,} page views, {result['attribution']['leads']:,} leads)")
    misses = [k for k, ok in result["meets_targets"].items() if not ok]
    print(f"  other processes: {result['other_processes_cpu_s']} CPU s; "
          f"targets: {'all met' if not misses else 'MISSES ' + ', '.join(misses)}")
    print(f"Results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    sys.exit(main())
