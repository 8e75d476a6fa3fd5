"""The managers' admin on PostgreSQL with a million leads.

    .venv/bin/python -m bench.admin_bench [--leads N] [--reload] [--runs 30]

Loads N leads (default 1,000,000) into their own database, `crm_bench`
(BENCH_DATABASE_URL), with SQL (INSERT ... SELECT FROM generate_series), and
1,000 into `crm_bench_small`; a second run reuses the data. Then it requests
the lead changelist (unfiltered, filtered, searched, drilled down by year) and
a lead's change page as a logged-in manager with django.test.Client, and
records per page the p50/p95/max time, the SQL queries (and whether their
number is the same at 1k and at N leads), and the slowest query with its plan.
Results: bench/results/admin.json, and a table on stdout.

Each database is measured by a child process of this module (`--worker`), as
Django's settings can point at one database per process.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "admin.json"
TARGET_P95_MS = 300
BATCH = 100_000
SEED = 0.42

# A surname with a moderate share of the leads (~0.3% in Faker's en_US
# weights) and no other first or last name containing it, so a search for it
# matches its leads (and the leads of companies named after it) only.
SEARCH_SURNAME = "nguyen"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.admin_bench", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads in the big database (default 1,000,000)")
    parser.add_argument("--small-leads", type=int, default=1_000, help="leads in the small database (default 1,000)")
    parser.add_argument("--reload", action="store_true", help="reload the data even if the databases hold enough leads")
    parser.add_argument("--runs", type=int, default=30, help="measured requests per page (default 30)")
    parser.add_argument("--warmups", type=int, default=3, help="unmeasured requests per page first (default 3)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="the big database (env BENCH_DATABASE_URL); the small one is its name + '_small'",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if args.worker:
        return worker(args)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    return orchestrate(args)


# --- The parent: one worker per database, then the report -----------------------------


def small_database_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_small"))


def run_worker(args, database_url: str, leads: int, runs: int, warmups: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    cmd = [
        sys.executable, "-m", "bench.admin_bench", "--worker", "--worker-output", str(out),
        "--database-url", database_url, "--leads", str(leads), "--runs", str(runs), "--warmups", str(warmups),
    ]
    if args.reload:
        cmd.append("--reload")
    try:
        subprocess.run(cmd, cwd=ROOT, check=True)
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def orchestrate(args) -> int:
    from bench.calibration import calibration_s

    started, calibration = time.perf_counter(), calibration_s()
    print(f"-- {args.small_leads:,} leads ({small_database_url(args.database_url)}), for the query counts", flush=True)
    small = run_worker(args, small_database_url(args.database_url), args.small_leads, runs=5, warmups=1)
    print(f"-- {args.leads:,} leads ({args.database_url})", flush=True)
    big = run_worker(args, args.database_url, args.leads, runs=args.runs, warmups=args.warmups)

    pages = {}
    for name, page in big["pages"].items():
        at_1k = small["pages"][name]["queries"]
        big_shapes, small_shapes = Counter(page["query_shapes"]), Counter(small["pages"][name]["query_shapes"])
        diff = {
            # Queries one database's page makes and the other's does not (e.g. the planner
            # estimate the paginator asks for only past its exact-count limit).
            "queries_only_at_1m": [q[:160] for q in (big_shapes - small_shapes).elements()],
            "queries_only_at_1k": [q[:160] for q in (small_shapes - big_shapes).elements()],
        }
        pages[name] = {
            "url": page["url"],
            "rows": page["rows"],
            "p50_ms": page["p50_ms"],
            "p95_ms": page["p95_ms"],
            "max_ms": page["max_ms"],
            "sql_p50_ms": page["sql_p50_ms"],
            "queries": page["queries"],
            "queries_at_1k": at_1k,
            "queries_same_at_1k_and_1m": page["queries"] == at_1k,
            "queries_varied_between_runs": page["queries_varied"],
            **{k: v for k, v in diff.items() if v},
            "p50_ms_at_1k": small["pages"][name]["p50_ms"],
            "slowest_query_ms": page["slowest_query_ms"],
            "slowest_query_max_ms": page["slowest_query_max_ms"],
            "slowest_query": page["slowest_query"],
            "slowest_query_plan": page["slowest_query_plan"],
            "query_times_ms": page["query_times_ms"],
            **page.get("extra", {}),
        }
    meets = all(p["p95_ms"] <= TARGET_P95_MS for p in pages.values())
    result = {
        "benchmark": "admin",
        "calibration_s": calibration,
        "leads": big["leads"],
        "leads_small": small["leads"],
        "code": code_version(),
        "database": big["database"],
        "database_settings": big["database_settings"],
        "machine": {**machine_info(), "loadavg_1min_before_after_measuring": big["loadavg_1min"]},
        "load_seconds": big["load_seconds"],
        "load_seconds_small": small["load_seconds"],
        "data_reused": big["data_reused"],
        "runs_per_page": args.runs,
        "warmups_per_page": args.warmups,
        "pages": pages,
        "targets": {"p95_ms_max": TARGET_P95_MS},
        "meets_targets": meets,
        "queries_constant": all(p["queries_same_at_1k_and_1m"] for p in pages.values()),
        # The paginator asks the planner for an estimate only past its exact-count limit:
        # one query more on a big filter, however big.
        "queries_differ_only_by_count_estimate": all(
            not p.get("queries_only_at_1k") and all(q.startswith("EXPLAIN (FORMAT JSON)") for q in p.get("queries_only_at_1m", []))
            for p in pages.values()
        ),
        "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, args.output)
    return 0


def code_version() -> dict:
    """The commit measured, and the files changed on top of it (the results depend on the code)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.rstrip("\n")
        except (OSError, subprocess.CalledProcessError):
            return None

    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "changed_files": [line[3:] for line in (changed or "").splitlines()]}


def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return info


def print_report(result: dict, output: Path) -> None:
    n = result["leads"]
    reused = " (data reused from an earlier run)" if result["data_reused"] else ""
    print()
    print(f"Admin benchmark: {n:,} leads, {result['database']}, {result['machine']['cpus']} CPUs")
    print(f"Load: {result['load_seconds']:.1f} s for {n:,} leads{reused}; {result['load_seconds_small']:.1f} s for {result['leads_small']:,}")
    header = f"{'page':<16}{'rows':>10}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'SQL ms':>8}{'queries':>9}{'@1k':>5}{'same':>6}{'slowest q ms':>14}"
    print(header)
    print("-" * len(header))
    for name, p in result["pages"].items():
        flag = " !" if p["p95_ms"] > result["targets"]["p95_ms_max"] else ""
        print(
            f"{name:<16}{p['rows']:>10,}{p['p50_ms']:>9.1f}{p['p95_ms']:>9.1f}{p['max_ms']:>9.1f}{p['sql_p50_ms']:>8.1f}"
            f"{p['queries']:>9}{p['queries_at_1k']:>5}{'yes' if p['queries_same_at_1k_and_1m'] else 'NO':>6}"
            f"{p['slowest_query_ms']:>14.1f}{flag}"
        )
    cl = result["pages"].get("changelist", {})
    if "count_ms" in cl:
        print(
            f"\nChangelist count: bounded (LIMIT {cl['count_limit'] + 1:,} + planner estimate) {cl['count_ms']:.1f} ms"
            f" -> {cl['count_value']:,}; plain SELECT COUNT(*) FROM leads_lead {cl['full_count_ms']:.1f} ms"
            f" -> {cl['full_count_value']:,}; live leads COUNT(*) {cl['full_live_count_ms']:.1f} ms"
        )
    for name, p in result["pages"].items():
        for key, where in (("queries_only_at_1m", f"at {n:,} only"), ("queries_only_at_1k", f"at {result['leads_small']:,} only")):
            for sql in p.get(key, []):
                print(f"  {name}: {where}: {sql[:120]}")
    print("\nSlowest query per page (median of the runs):")
    for name, p in result["pages"].items():
        sql = " ".join(p["slowest_query"].split())
        print(f"  {name}: {p['slowest_query_ms']:.1f} ms  {sql[:220]}{'…' if len(sql) > 220 else ''}")
    verdict = "meets" if result["meets_targets"] else "MISSES"
    constant = "yes" if result["queries_constant"] else "NO"
    if not result["queries_constant"] and result["queries_differ_only_by_count_estimate"]:
        constant = "yes, but for the paginator's planner estimate (one query) past its exact-count limit"
    print(f"\nTarget p95 <= {result['targets']['p95_ms_max']} ms: {verdict}. Query counts constant from "
          f"{result['leads_small']:,} to {n:,} leads: {constant}.")
    print(f"Results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


# --- The worker: one database, set up Django, load, measure ---------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            print(f"Creating database {name}", flush=True)
            conn.execute(f'CREATE DATABASE "{name}"')


def worker(args) -> int:
    ensure_database(args.database_url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings.local"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_DEBUG"] = "false"
    # django.test.Client sends Host: testserver.
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"   migrated in {time.perf_counter() - t0:.1f} s", flush=True)
    meta, reused = ensure_data(args.leads, args.reload)
    load_before = os.getloadavg()[0]
    pages = measure(meta, runs=args.runs, warmups=args.warmups)
    result = {
        "leads": meta["leads"],
        "load_seconds": meta["load_seconds"],
        "data_reused": reused,
        **database_info(),
        # Other work on the machine shows in p95 and max; the load average says how much there was.
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "pages": pages,
    }
    args.worker_output.write_text(json.dumps(result))
    return 0


def database_info() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0].split()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit", "max_parallel_workers_per_gather"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    return {"database": f"postgresql {version}", "database_settings": settings}


# --- Data ------------------------------------------------------------------------------

SOURCES = (  # name, slug, medium
    ("Google Ads", "google", "cpc"),
    ("LinkedIn", "linkedin", "paid-social"),
    ("Newsletter", "newsletter", "email"),
    ("Organic search", "organic", "organic"),
    ("Webinars", "webinar", "event"),
    ("Referrals", "referral", "referral"),
)
PERSONAS = (  # name, role
    ("Sales leader at a SMB", "Head of Sales"),
    ("RevOps manager", "Revenue Operations Manager"),
    ("Founder", "Founder / CEO"),
    ("Marketing lead", "Head of Marketing"),
)
CAMPAIGNS = (  # name, slug, source slug, persona index, starts (days ago)
    ("Search: CRM for small sales teams", "search-crm-smb", "google", 0, 700),
    ("Search: competitor keywords", "search-competitors", "google", 1, 400),
    ("Search: pipeline software", "search-pipeline", "google", 0, 200),
    ("LinkedIn: RevOps playbook e-book", "li-revops-playbook", "linkedin", 1, 600),
    ("LinkedIn: founder-led sales", "li-founder-led-sales", "linkedin", 2, 300),
    ("Newsletter: monthly pipeline tips", "nl-pipeline-tips", "newsletter", 0, 720),
    ("Newsletter: product update", "nl-product-update", "newsletter", 3, 150),
    ("Webinar: pipeline reviews that work", "webinar-pipeline-reviews", "webinar", 0, 500),
    ("Webinar: forecasting without spreadsheets", "webinar-forecasting", "webinar", 1, 250),
    ("Referral programme", "referral-programme", "referral", 2, 650),
)
TITLES = (
    "Head of Sales", "Sales Director", "VP Sales", "Sales Manager", "RevOps Manager", "Sales Operations Lead",
    "Founder", "CEO", "Managing Director", "Head of Marketing", "Marketing Manager", "Growth Lead",
    "Operations Manager", "Account Executive", "Customer Success Manager", "CFO", "Office Manager", "",
)
FREE_MAIL = ("gmail.example", "outlook.example", "proton.example", "yahoo.example")
TIMEZONES = ("Europe/Paris", "America/New_York", "Europe/London", "Asia/Singapore", "America/Los_Angeles")
LOST_REASONS = ("No budget", "Chose a competitor", "No decision maker", "Timing: next year", "Not a fit")
INDUSTRIES = ("Software", "Retail", "Manufacturing", "Healthcare", "Finance", "Education", "Logistics", "Media")
SIZES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1000+")
COUNTRIES = ("France", "Germany", "United Kingdom", "United States", "Spain", "Netherlands", "Canada")
# Status shares, in per cent: most leads are early in the funnel.
STATUS_SHARES = (
    ("new", 30), ("contacted", 24), ("nurturing", 20), ("mql", 8), ("sql", 5),
    ("opportunity", 3), ("customer", 2), ("lost", 6), ("disqualified", 2),
)
# Owner shares, in per cent, of the four reps; the rest is unassigned.
OWNER_SHARES = (28, 20, 20, 12)


def weighted_array(weights: dict, slots: int) -> list[str]:
    """Names repeated in proportion to their weight: a uniform pick is a weighted one."""
    total = sum(weights.values())
    out = []
    for name, weight in weights.items():
        out.extend([name] * max(1, round(weight / total * slots)))
    return out


# The constants of a load: small arrays, inlined into the query (a table of
# them would be de-TOASTed once per row and per use). Names are weighted lists
# of thousands, joined from temporary tables by position instead.
PARAMS = """(SELECT
    %(now)s::timestamptz AS now, %(total)s::bigint AS total,
    %(titles)s::text[] AS titles, %(free_mail)s::text[] AS free_mail, %(timezones)s::text[] AS timezones,
    %(lost_reasons)s::text[] AS lost_reasons, %(status_slots)s::text[] AS status_slots,
    %(owner_slots)s::bigint[] AS owner_slots, %(campaign_ids)s::bigint[] AS campaign_ids,
    %(campaign_sources)s::bigint[] AS campaign_sources, %(campaign_mediums)s::text[] AS campaign_mediums,
    %(source_ids)s::bigint[] AS source_ids, %(source_mediums)s::text[] AS source_mediums,
    %(persona_ids)s::bigint[] AS persona_ids, %(company_min)s::bigint AS company_min,
    %(company_count)s::bigint AS company_count
) p"""

LEADS_SQL = """
INSERT INTO leads_lead (
    first_name, last_name, email, phone, title, company_id, source_id, campaign_id, utm_medium, utm_content,
    utm_term, persona_id, owner_id, timezone, consent_given_at, consent_text, consent_source, status,
    stage_entered_at, lost_reason, score, created_at, updated_at, last_touch_at, archived_at, search_text,
    external_ref, linkedin_url, x_url
)
SELECT
    m.first_name, m.last_name, m.email, m.phone, m.title, c.id, m.source_id, m.campaign_id, m.utm_medium,
    m.utm_content, '', m.persona_id, m.owner_id, m.timezone, m.consent_given_at,
    CASE WHEN m.consent_given_at IS NULL THEN '' ELSE 'I agree to receive emails about products and events.' END,
    CASE WHEN m.consent_given_at IS NULL THEN '' ELSE 'website form' END,
    m.status, m.stage_entered_at, m.lost_reason, m.score, m.created_at,
    greatest(m.stage_entered_at, m.last_touch_at, m.archived_at), m.last_touch_at, m.archived_at,
    -- Lead.build_search_text: "first last email phone company", empty parts left out, lower-cased.
    lower(concat_ws(' ', nullif(m.first_name, ''), nullif(m.last_name, ''), nullif(m.email, ''),
                    nullif(m.phone, ''), nullif(c.name, ''))),
    '', '', ''
FROM (
    SELECT
        d.*,
        CASE WHEN d.no_email THEN ''
             ELSE lower(d.first_name || '.' || d.last_name) || d.g || '@' ||
                  coalesce(co.domain, p.free_mail[1 + floor(d.r_free * cardinality(p.free_mail))::int])
        END AS email,
        CASE WHEN d.status = 'new' THEN d.created_at
             ELSE d.created_at + (p.now - d.created_at) * (0.2 + 0.6 * d.r_stage) END AS stage_entered_at,
        CASE WHEN (d.status = 'new' AND d.r_touch < 0.7) OR d.r_touch < 0.1 THEN NULL
             ELSE d.created_at + (p.now - d.created_at) * d.r_touch_at END AS last_touch_at,
        CASE WHEN d.r_archived < 0.01 THEN d.created_at + (p.now - d.created_at) * d.r_archived_at END AS archived_at,
        CASE WHEN d.r_consent < 0.6 THEN d.created_at END AS consent_given_at
    FROM (
        SELECT
            r.*,
            fn.name AS first_name,
            ln.name AS last_name,
            r.r_email < 0.04 AS no_email,
            CASE WHEN r.r_email < 0.04 OR r.r_has_phone < 0.5
                 THEN '+1 ' || (201 + floor(r.r_area * 798))::int || ' 555 ' || lpad(floor(r.r_phone * 10000)::int::text, 4, '0')
                 ELSE '' END AS phone,
            p.titles[1 + floor(r.r_title * cardinality(p.titles))::int] AS title,
            CASE WHEN r.r_company < 0.9 THEN p.company_min + floor(r.r_company_id * p.company_count)::bigint END AS company_id,
            CASE WHEN r.r_attr < 0.6 THEN p.campaign_ids[1 + floor(r.r_attr / 0.6 * cardinality(p.campaign_ids))::int] END AS campaign_id,
            CASE WHEN r.r_attr < 0.6 THEN p.campaign_sources[1 + floor(r.r_attr / 0.6 * cardinality(p.campaign_ids))::int]
                 ELSE p.source_ids[1 + floor((r.r_attr - 0.6) / 0.4 * cardinality(p.source_ids))::int] END AS source_id,
            CASE WHEN r.r_attr < 0.6 THEN p.campaign_mediums[1 + floor(r.r_attr / 0.6 * cardinality(p.campaign_ids))::int]
                 ELSE p.source_mediums[1 + floor((r.r_attr - 0.6) / 0.4 * cardinality(p.source_ids))::int] END AS utm_medium,
            CASE WHEN r.r_attr < 0.6 THEN 'ad-' || (1 + floor(r.r_content * 4))::int ELSE '' END AS utm_content,
            CASE WHEN r.r_persona < 0.7 THEN p.persona_ids[1 + floor(r.r_persona / 0.7 * cardinality(p.persona_ids))::int] END AS persona_id,
            nullif(p.owner_slots[1 + floor(r.r_owner * cardinality(p.owner_slots))::int], 0) AS owner_id,
            CASE WHEN r.r_tz < 0.2 THEN p.timezones[1 + floor(r.r_tz / 0.2 * cardinality(p.timezones))::int] ELSE '' END AS timezone,
            p.status_slots[1 + floor(r.r_status * cardinality(p.status_slots))::int] AS status,
            CASE WHEN p.status_slots[1 + floor(r.r_status * cardinality(p.status_slots))::int] IN ('lost', 'disqualified')
                 THEN p.lost_reasons[1 + floor(r.r_lost * cardinality(p.lost_reasons))::int] ELSE '' END AS lost_reason,
            least(100, floor(power(r.r_score, 1.6) * 101))::int AS score,
            -- Spread over two years in id order (as leads arrive), with an hour of jitter.
            p.now - make_interval(secs => (p.total - r.g)::float8 / p.total * 730 * 86400 + r.r_created * 3600) AS created_at
        FROM (
            -- Every random draw once per row, behind OFFSET 0 so no reference re-draws it.
            SELECT g, 1 + floor(random() * %(first_names_count)s)::int AS fn_i,
                   1 + floor(random() * %(last_names_count)s)::int AS ln_i,
                   random() AS r_email, random() AS r_has_phone,
                   random() AS r_area, random() AS r_phone, random() AS r_title, random() AS r_company,
                   random() AS r_company_id, random() AS r_free, random() AS r_attr, random() AS r_content,
                   random() AS r_persona, random() AS r_owner, random() AS r_tz, random() AS r_status,
                   random() AS r_lost, random() AS r_score, random() AS r_created, random() AS r_consent,
                   random() AS r_stage, random() AS r_touch, random() AS r_touch_at, random() AS r_archived,
                   random() AS r_archived_at
            FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
            OFFSET 0
        ) r
        JOIN bench_first_names fn ON fn.i = r.fn_i
        JOIN bench_last_names ln ON ln.i = r.ln_i
        CROSS JOIN PARAMS
    ) d
    CROSS JOIN PARAMS
    LEFT JOIN leads_company co ON co.id = d.company_id
) m
LEFT JOIN leads_company c ON c.id = m.company_id
""".replace("PARAMS", PARAMS)


def create_name_table(cursor, table: str, names: list[str]) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(f"CREATE TEMP TABLE {table} (i int PRIMARY KEY, name text NOT NULL)")
    cursor.execute(
        f"INSERT INTO {table} (i, name) SELECT n, name FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n)", [names]
    )
    cursor.execute(f"ANALYZE {table}")


def read_meta():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'dataset'")
        row = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM leads_lead")
        count = cursor.fetchone()[0]
    if row is None:
        return None, count
    value = row[0]
    return (json.loads(value) if isinstance(value, str) else value), count


def ensure_data(n: int, reload: bool):
    from leads.models import Deal

    meta, count = read_meta()
    if (
        not reload
        and meta is not None
        and count >= n
        and meta.get("leads") == count
        and Deal.objects.filter(lead_id=meta.get("showcase_lead_id")).exists()
    ):
        print(f"   reusing {count:,} leads (loaded in {meta['load_seconds']:.1f} s); --reload to load again", flush=True)
        return meta, True
    meta = load(n)
    return meta, False


def load(n: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone
    from faker import Faker
    from faker.providers.person.en_US import Provider as PersonProvider

    from core.roles import Role
    from leads.models import Campaign, Company, Persona, Source

    started = time.perf_counter()
    print(f"   loading {n:,} leads", flush=True)
    User = get_user_model()
    with transaction.atomic(), connection.cursor() as cursor:
        # Everything the leads own or point at goes (CASCADE: history, deals, tasks, enrolments...).
        cursor.execute(
            "TRUNCATE leads_lead, leads_company, leads_campaign, leads_source, leads_persona, bench_meta "
            "RESTART IDENTITY CASCADE"
        )
        groups = {g.name: g for g in Group.objects.filter(name__in=[Role.SALES_REP.value, Role.MANAGER.value])}
        reps = []
        rep_names = (("Tom", "Becker"), ("Sofia", "Marino"), ("Ade", "Okafor"), ("Lena", "Vogel"))
        for i, (first, last) in enumerate(rep_names, start=1):
            user, _ = User.objects.update_or_create(
                username=f"bench_rep{i}",
                defaults={"first_name": first, "last_name": last, "email": f"rep{i}@crm.example", "is_staff": False},
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.set([groups[Role.SALES_REP.value]])
            reps.append(user)
        manager, _ = User.objects.update_or_create(
            username="bench_manager",
            defaults={"first_name": "Claire", "last_name": "Dubois", "email": "manager@crm.example", "is_staff": True},
        )
        manager.set_unusable_password()
        manager.save(update_fields=["password"])
        manager.groups.set([groups[Role.MANAGER.value]])

        personas = Persona.objects.bulk_create(Persona(name=name, role=role) for name, role in PERSONAS)
        sources = {
            slug: source
            for slug, source in zip(
                (s[1] for s in SOURCES),
                Source.objects.bulk_create(Source(name=name, slug=slug, medium=medium) for name, slug, medium in SOURCES),
            )
        }
        today = timezone.localdate()
        campaigns = Campaign.objects.bulk_create(
            Campaign(
                name=name, slug=slug, source=sources[source], medium=sources[source].medium,
                persona=personas[persona], starts_on=today - timedelta(days=starts),
            )
            for name, slug, source, persona, starts in CAMPAIGNS
        )

        fake = Faker("en_US")
        fake.seed_instance(1234)
        companies = []
        for _ in range(2_000):
            name = fake.company()
            slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
            while "--" in slug:
                slug = slug.replace("--", "-")
            companies.append(
                Company(
                    name=name, domain=f"{slug[:40]}.example", industry=fake.random_element(INDUSTRIES),
                    size=fake.random_element(SIZES), country=fake.random_element(COUNTRIES),
                )
            )
        companies = Company.objects.bulk_create(companies, batch_size=1000)

        first_names = weighted_array({**PersonProvider.first_names_female, **PersonProvider.first_names_male}, 3000)
        last_names = weighted_array(PersonProvider.last_names, 4000)
        create_name_table(cursor, "bench_first_names", first_names)
        create_name_table(cursor, "bench_last_names", last_names)
        params = {
            "now": timezone.now(),
            "total": n,
            "first_names_count": len(first_names),
            "last_names_count": len(last_names),
            "titles": list(TITLES),
            "free_mail": list(FREE_MAIL),
            "timezones": list(TIMEZONES),
            "lost_reasons": list(LOST_REASONS),
            "status_slots": [status for status, share in STATUS_SHARES for _ in range(share)],
            "owner_slots": [0] * (100 - sum(OWNER_SHARES))
            + [rep.pk for rep, share in zip(reps, OWNER_SHARES) for _ in range(share)],
            "campaign_ids": [c.pk for c in campaigns],
            "campaign_sources": [c.source_id for c in campaigns],
            "campaign_mediums": [c.medium for c in campaigns],
            "source_ids": [s.pk for s in sources.values()],
            "source_mediums": [s.medium for s in sources.values()],
            "persona_ids": [p.pk for p in personas],
            "company_min": min(c.pk for c in companies),
            "company_count": len(companies),
        }
        cursor.execute("SELECT setseed(%s)", [SEED])

    # The leads, in batches of 100k (one transaction each, so progress shows).
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET jit = off")
        for lo in range(1, n + 1, BATCH):
            hi = min(n, lo + BATCH - 1)
            t = time.perf_counter()
            with transaction.atomic():
                cursor.execute(LEADS_SQL, {**params, "lo": lo, "hi": hi})
            print(f"   leads {hi:>10,} / {n:,}  ({time.perf_counter() - t:.1f} s)", flush=True)
        cursor.execute("DROP TABLE bench_first_names, bench_last_names")
        cursor.execute("RESET synchronous_commit")
        cursor.execute("RESET jit")

    showcase_id = add_showcase_history(reps)
    with connection.cursor() as cursor:
        # A rare search: one lead's exact email address.
        cursor.execute(
            "SELECT email FROM leads_lead WHERE id >= %s AND email <> '' AND archived_at IS NULL ORDER BY id LIMIT 1",
            [max(1, n // 3)],
        )
        rare_email = cursor.fetchone()[0]
        t = time.perf_counter()
        # As a production table would be: vacuumed (visibility map for index-only scans) and analysed.
        cursor.execute("VACUUM (ANALYZE) leads_lead")
        cursor.execute("ANALYZE")
        # Write the loaded pages out now rather than in a checkpoint during the measurements.
        cursor.execute("CHECKPOINT")
        print(f"   VACUUM ANALYZE in {time.perf_counter() - t:.1f} s", flush=True)

    meta = {
        "leads": n,
        "load_seconds": round(time.perf_counter() - started, 1),
        "loaded_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "showcase_lead_id": showcase_id,
        "rare_email": rare_email,
        "search_surname": SEARCH_SURNAME,
        "owner_id": reps[0].pk,
        "manager_id": manager.pk,
    }
    save_meta("dataset", meta)
    print(f"   loaded {n:,} leads in {meta['load_seconds']:.1f} s", flush=True)
    return meta


def read_saved_meta(key: str) -> dict | None:
    """What a benchmark loaded under `key` (bench_meta), or None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        cursor.execute("SELECT value FROM bench_meta WHERE key = %s", [key])
        row = cursor.fetchone()
    value = row[0] if row else None
    return json.loads(value) if isinstance(value, str) else value


def save_meta(key: str, meta: dict) -> None:
    """Remember what a benchmark loaded (bench_meta), so a later run can reuse it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta (key, value) VALUES (%s, %s::jsonb) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [key, json.dumps(meta)],
        )


def add_showcase_history(reps) -> int:
    """One lead with a realistic record: ~10 stage changes, 20 activities, objections, tasks and a deal."""
    from django.db import transaction
    from django.utils import timezone

    from leads.models import Activity, Deal, Lead, Objection, StageChange, Task

    now = timezone.now()
    lead = (
        Lead.objects.filter(
            archived_at__isnull=True, owner__isnull=False, company__isnull=False,
            created_at__lte=now - timedelta(days=300),
        )
        .exclude(email="")
        .order_by("-created_at", "-id")
        .first()
    ) or Lead.objects.filter(archived_at__isnull=True).order_by("id").first()
    owner = reps[0] if lead.owner_id is None else lead.owner
    path = ["new", "contacted", "nurturing", "mql", "nurturing", "mql", "sql", "nurturing", "mql", "sql", "opportunity"]
    start = lead.created_at
    span = (now - timedelta(days=5)) - start
    with transaction.atomic():
        changes, previous_at = [], None
        for i, status in enumerate(path):
            at = start + span * (i / len(path))
            changes.append(
                StageChange(
                    lead=lead, from_status=path[i - 1] if i else "", to_status=status, changed_at=at,
                    changed_by=owner if i % 3 else None,
                    actor="" if i % 3 else ("import" if i == 0 else "sequence Welcome step 2"),
                    reason="" if i % 4 else "Followed up after the webinar",
                    time_in_from_stage=(at - previous_at) if previous_at else None,
                )
            )
            previous_at = at
        StageChange.objects.bulk_create(changes)

        activities = []
        outcomes = [o for o, _ in Activity.CallOutcome.choices]
        for i in range(20):
            at = start + span * ((i + 0.5) / 20)
            if i % 5 == 4:
                activities.append(Activity(lead=lead, kind="note", author=owner, occurred_at=at, created_at=at,
                                           body=f"Note {i}: budget owner is the CFO; revisit pricing tiers."))
            elif i % 7 == 6:
                activities.append(Activity(lead=lead, kind="meeting", author=owner, occurred_at=at, created_at=at,
                                           duration_seconds=1800, body="Demo with the sales team."))
            else:
                activities.append(Activity(
                    lead=lead, kind="call", author=owner, occurred_at=at, created_at=at,
                    direction="outbound" if i % 3 else "inbound", outcome=outcomes[i % len(outcomes)],
                    duration_seconds=60 + 37 * i, body="Discussed rollout timing.",
                ))
        activities = Activity.objects.bulk_create(activities)
        calls = [a for a in activities if a.kind == "call"]
        Objection.objects.bulk_create(
            Objection(lead=lead, activity=calls[i * 3], category=category, lead_words=words, response=response,
                      is_resolved=i < 2, resolved_at=calls[i * 3].occurred_at if i < 2 else None,
                      raised_by=owner, created_at=calls[i * 3].occurred_at)
            for i, (category, words, response) in enumerate((
                ("price", "Too expensive for a team of five.", "Showed the starter plan."),
                ("timing", "We are mid-quarter; ask again in April.", "Booked a call for April."),
                ("competitor", "We already pay for another CRM.", ""),
            ))
        )
        Task.objects.bulk_create([
            Task(lead=lead, assignee=owner, title="Send the proposal", due_at=now - timedelta(days=10),
                 completed_at=now - timedelta(days=11), created_by=owner),
            Task(lead=lead, assignee=owner, title="Call about the proposal", due_at=now + timedelta(days=2),
                 created_by=owner),
            Task(lead=lead, assignee=owner, title="Check references with the CFO", due_at=now + timedelta(days=9),
                 notes="Two customer references in logistics.", created_by=owner),
        ])
        Deal.objects.create(lead=lead, owner=owner, product="Team plan, 12 seats", value="14400.00", currency="EUR",
                            status="open", created_at=changes[-1].changed_at,
                            expected_close_on=(now + timedelta(days=30)).date())
        Lead.objects.filter(pk=lead.pk).update(
            status="opportunity", stage_entered_at=changes[-1].changed_at, owner=owner,
            last_touch_at=max(a.occurred_at for a in activities if a.kind != "note"),
        )
    return lead.pk


# --- Measuring ----------------------------------------------------------------------------


class QueryTimer:
    """An execute wrapper: each query's SQL, parameters and time, to the microsecond."""

    def __init__(self):
        self.queries = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, params, (time.perf_counter() - start) * 1000))


def percentile(values, pct):
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def pages_for(meta) -> dict:
    """name -> (url, filter for the exact number of matching live leads, or None)."""
    from django.db.models import Q
    from django.urls import reverse

    changelist = reverse("admin:leads_lead_changelist")
    live = Q(archived_at__isnull=True)
    owner = meta["owner_id"]
    year = (datetime.now(dt_timezone.utc) - timedelta(days=365)).year
    surname, email = meta["search_surname"], meta["rare_email"]
    return {
        "changelist": (changelist, live),
        "status": (f"{changelist}?status__exact=sql", live & Q(status="sql")),
        "owner": (f"{changelist}?owner={owner}", live & Q(owner_id=owner)),
        "status_owner": (f"{changelist}?status__exact=sql&owner={owner}", live & Q(status="sql", owner_id=owner)),
        "search_surname": (f"{changelist}?{urlencode({'q': surname})}", live & Q(search_text__contains=surname)),
        "search_email": (f"{changelist}?{urlencode({'q': email})}", live & Q(search_text__contains=email)),
        "year": (f"{changelist}?created_at__year={year}", live & Q(created_at__year=year)),
        "change": (reverse("admin:leads_lead_change", args=[meta["showcase_lead_id"]]), None),
    }


def measure(meta, *, runs: int, warmups: int) -> dict:
    import gc

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from leads.models import Lead

    client = Client()
    client.force_login(get_user_model().objects.get(pk=meta["manager_id"]))
    results = {}
    for name, (url, rows_filter) in pages_for(meta).items():
        rows = Lead.objects.filter(rows_filter).count() if rows_filter is not None else 1
        for _ in range(warmups):
            response = client.get(url)
            assert response.status_code == 200, f"{url}: {response.status_code}"
        gc.collect()
        times, sql_totals, run_queries, counts = [], [], [], []
        for _ in range(runs):
            timer = QueryTimer()
            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
                start = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, f"{url}: {response.status_code}"
            times.append(elapsed)
            counts.append(len(captured.captured_queries))
            sql_totals.append(sum(q[2] for q in timer.queries))
            shown = [q["sql"] for q in captured.captured_queries]
            if len(shown) != len(timer.queries):
                shown = [sql for sql, _, _ in timer.queries]
            run_queries.append([(shown[i], sql, params, ms) for i, (sql, params, ms) in enumerate(timer.queries)])
        slowest = slowest_query(run_queries)
        results[name] = {
            "url": url,
            "rows": rows,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1),
            "sql_p50_ms": round(statistics.median(sql_totals), 1),
            "queries": max(counts),
            "queries_varied": min(counts) != max(counts),
            "query_shapes": [query_shape(q[0]) for q in run_queries[-1]],
            **slowest,
        }
        print(
            f"   {name:<15} p50 {results[name]['p50_ms']:7.1f} ms  p95 {results[name]['p95_ms']:7.1f} ms  "
            f"{results[name]['queries']:>3} queries  slowest {slowest['slowest_query_ms']:.1f} ms",
            flush=True,
        )
    results["changelist"]["extra"] = measure_counts(runs)
    return results


def query_shape(sql: str) -> str:
    """A query without its literals or cursor names, to compare the queries of two databases."""
    sql = re.sub(r"_django_curs_\d+_\w+", "_django_curs_", sql)
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "?", sql)
    # A list that fits on one page is fetched without LIMIT: the same query.
    return re.sub(r"(\s+LIMIT \?)?(\s+OFFSET \?)?$", "", sql.strip())


def explainable(sql: str) -> str | None:
    """The SELECT behind a query (a server-side cursor's DECLARE included), or None."""
    match = re.match(r'\s*DECLARE\s+"[^"]+"\s+.*?CURSOR\s+(?:WITH(?:OUT)?\s+HOLD\s+)?FOR\s+', sql, re.S | re.I)
    if match:
        sql = sql[match.end():]
    return sql if sql.lstrip().upper().startswith("SELECT") else None


def slowest_query(run_queries) -> dict:
    """The query with the highest median time over the runs (runs issue the same sequence), and its plan."""
    from django.db import connection

    lengths = {len(qs) for qs in run_queries}
    breakdown = []
    if len(lengths) == 1 and lengths.pop() > 0:
        medians = [statistics.median(run[i][3] for run in run_queries) for i in range(len(run_queries[0]))]
        # Every query of the page by median time: where the SQL time goes.
        breakdown = sorted(
            ([round(ms, 2), " ".join(run_queries[0][i][0].split())[:140]] for i, ms in enumerate(medians)), reverse=True
        )
        index = max(range(len(medians)), key=medians.__getitem__)
        shown, sql, params, _ = run_queries[0][index]
        median_ms = medians[index]
        max_ms = max(run[index][3] for run in run_queries)
    else:
        shown, sql, params, max_ms = max((q for run in run_queries for q in run), key=lambda q: q[3])
        median_ms = max_ms
    plan, select = [], explainable(sql)
    if select is not None:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + select, params)
            plan = [row[0] for row in cursor.fetchall()]
    return {
        "slowest_query_ms": round(median_ms, 2),
        "slowest_query_max_ms": round(max_ms, 2),
        "slowest_query": shown,
        "slowest_query_plan": plan,
        "query_times_ms": breakdown,
    }


def measure_counts(runs: int) -> dict:
    """What the bounded count saves: the paginator's count vs COUNT(*) over the table."""
    from django.conf import settings
    from django.db import connection

    from core.pagination import BoundedCountPaginator
    from leads.models import Lead

    def timed(fn, n):
        fn()  # warm-up
        samples, value = [], None
        for _ in range(n):
            start = time.perf_counter()
            value = fn()
            samples.append((time.perf_counter() - start) * 1000)
        return round(statistics.median(samples), 2), value

    def full_count():
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM leads_lead")
            return cursor.fetchone()[0]

    live = Lead.objects.live().select_related("company", "owner", "source", "campaign").order_by("-created_at", "-id")
    limit = settings.CRM_ADMIN_EXACT_COUNT_LIMIT
    count_ms, count_value = timed(lambda: BoundedCountPaginator(live, 50).count, runs)
    bounded_ms, _ = timed(lambda: live.order_by()[: limit + 1].count(), runs)
    full_ms, full_value = timed(full_count, 10)
    full_live_ms, full_live_value = timed(lambda: Lead.objects.live().count(), 10)
    return {
        "count_ms": count_ms,
        "count_value": count_value,
        "count_limit": limit,
        "bounded_count_only_ms": bounded_ms,
        "full_count_ms": full_ms,
        "full_count_value": full_value,
        "full_live_count_ms": full_live_ms,
        "full_live_count_value": full_live_value,
    }


if __name__ == "__main__":
    sys.exit(main())
