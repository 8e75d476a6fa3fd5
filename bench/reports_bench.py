"""The managers' reports at scale: each report's page on PostgreSQL.

    .venv/bin/python -m bench.reports_bench [--runs 10] [--reload] [--quick]

Its own database `crm_bench_reports` (BENCH_REPORTS_DATABASE_URL), loaded once and reused: 1,000,000 leads
over two years (admin_bench's loader) with 10,000,000 page views over the last three months (capture_bench's),
then here: ~5,000,000 stage changes that walk each lead to its stage (created -> ... with recycling between
nurturing and MQL, time_in_from_stage set), ~500,000 deals (won, lost, open; values, three currencies,
closed_at), monthly campaign spend, objections, calls and meetings, and first touches with a landing page.
All with INSERT ... SELECT FROM generate_series.

Measured, as a manager (crm.settings.local, DEBUG off), through django.test.Client: each report's page
(funnel, cohorts, economics, nurturing, sales, pipeline, attention, objections, reps) for the default range,
the last 30 days (`pages`); then every page under each filter case: the last year, and slices by source,
campaign and owner, persona and first landing page, each for 30 days and for the year (`filters`).
p50/p95 over --runs runs after --warmups (a third of the runs for filter cases), and the query count
(CaptureQueriesContext).
Results: bench/results/reports.json.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from bench.admin_bench import (
    code_version,
    database_info,
    ensure_database,
    machine_info,
    percentile,
    read_saved_meta,
    save_meta,
)
from bench.capture_bench import SPAN_DAYS
from bench.capture_bench import ensure_data as ensure_leads_and_page_views

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_reports"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "reports.json"
TARGETS = {"page_p95_ms_max": 500, "filter_p95_ms_max": 2000}
DATA_VERSION = 1
LANDING_PAGES = ("/", "/", "/pricing", "/demo", "/blog/crm-tips", "/features")
PRODUCTS = ("CRM Starter", "CRM Team", "CRM Enterprise", "Onboarding")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.reports_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true",
                        help="small data (20,000 leads, 200,000 page views, in <database>_quick), 3 runs; "
                             "writes no results file unless --output is given")
    parser.add_argument("--leads", type=int, help="leads (default 1,000,000)")
    parser.add_argument("--page-views", type=int, help="page views (default 10,000,000)")
    parser.add_argument("--deals", type=int, help="deals (default 500,000)")
    parser.add_argument("--runs", type=int, help="timed runs per case (default 10)")
    parser.add_argument("--warmups", type=int, default=2, help="untimed runs per case first (default 2)")
    parser.add_argument("--reload", action="store_true", help="load the data again even if the database holds it")
    parser.add_argument("--load-only", action="store_true", help="load (or check) the data, measure nothing")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/reports.json)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_REPORTS_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="the database (env BENCH_REPORTS_DATABASE_URL); --quick adds _quick to its name")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    quick = args.quick
    args.leads = args.leads or (20_000 if quick else 1_000_000)
    args.page_views = args.page_views or (200_000 if quick else 10_000_000)
    args.deals = args.deals or args.leads // 2
    args.runs = args.runs or (3 if quick else 10)
    if quick:
        parts = urlsplit(args.database_url)
        args.database_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_quick"))
    if args.output is None and not quick:
        args.output = DEFAULT_OUTPUT
    return run(args)


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings.local"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()


def run(args) -> int:
    from bench.calibration import calibration_s

    started, calibration = time.perf_counter(), calibration_s()
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    print(f"   migrated in {time.perf_counter() - t0:.1f} s", flush=True)
    capture_meta, reused = ensure_leads_and_page_views(args.page_views, args.leads, args.reload)
    ensure_visitor_sets(rebuild=not reused)
    dataset = ensure_history(capture_meta, args.deals, args.reload or not reused)
    dataset["standing_merges"] = ensure_merges(capture_meta)
    if args.load_only:
        return 0
    load_before = os.getloadavg()
    pages, filters = measure(dataset, runs=args.runs, warmups=args.warmups)
    result = {
        "calibration_s": calibration,
        "targets": TARGETS,
        "pages": pages,
        "filters": filters,
        "meets_targets": {
            "pages": all(p["p95_ms"] <= TARGETS["page_p95_ms_max"] for p in pages.values()),
            "filters": all(f["p95_ms_max"] <= TARGETS["filter_p95_ms_max"] for f in filters.values()),
            "queries_constant": queries_constant(pages, filters),
        },
        "dataset": dataset,
        "loadavg": [list(load_before), list(os.getloadavg())],
        **database_info(),
        "machine": machine_info(),
        "code": code_version(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps({"pages": pages, "filters": filters, "meets_targets": result["meets_targets"]}, indent=1))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"   results in {args.output}", flush=True)
    return 0


# --- Data: the history behind the reports --------------------------------------------------------------------

# Each lead's walk through the funnel, position i of `steps` changes: new, contacted, nurturing, then `loops`
# times MQL and back to nurturing (recycled), then on up the funnel to `reached`; an ended lead (lost,
# disqualified) ends with its end. The last change lands on the lead's stage_entered_at.
STAGE_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.bench_stage(i bigint, loops bigint, steps bigint, ended boolean, final text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN i < 0 THEN ''
        WHEN ended AND i = steps - 1 THEN final
        WHEN i <= 2 THEN (ARRAY['new', 'contacted', 'nurturing'])[i::int + 1]
        WHEN i <= 2 + 2 * loops THEN CASE WHEN (i - 3) % 2 = 0 THEN 'mql' ELSE 'nurturing' END
        ELSE (ARRAY['new', 'contacted', 'nurturing', 'mql', 'sql', 'opportunity', 'customer'])[(i - 2 * loops)::int + 1]
    END
$$
"""

WALKS = """
CREATE TEMP TABLE bench_walk AS
SELECT w.*, 1 + w.reached + 2 * w.loops + w.ended::int AS steps
FROM (
    SELECT l.id, l.owner_id, l.created_at, l.stage_entered_at, l.status,
           l.status IN ('lost', 'disqualified') AS ended,
           CASE WHEN l.status IN ('lost', 'disqualified') THEN 1 + (l.id * 7) % 5
                ELSE array_position(ARRAY['new', 'contacted', 'nurturing', 'mql', 'sql', 'opportunity', 'customer'],
                                    l.status::text) - 1 END AS reached,
           0 AS loops
    FROM leads_lead l
) w
"""

STAGE_CHANGES_SQL = """
INSERT INTO leads_stagechange (lead_id, from_status, to_status, changed_at, changed_by_id, actor, reason,
                               time_in_from_stage)
SELECT s.id, pg_temp.bench_stage(s.i - 1, s.loops, s.steps, s.ended, s.status::text),
       pg_temp.bench_stage(s.i, s.loops, s.steps, s.ended, s.status::text), s.at,
       CASE WHEN s.i > 0 THEN s.owner_id END, '', CASE WHEN s.i = 0 THEN 'Lead created' ELSE '' END,
       CASE WHEN s.i > 0 THEN s.at - s.before END
FROM (
    SELECT w.*, i,
           w.created_at + (w.stage_entered_at - w.created_at) * (i::float8 / greatest(w.steps - 1, 1)) AS at,
           w.created_at + (w.stage_entered_at - w.created_at) * ((i - 1)::float8 / greatest(w.steps - 1, 1)) AS before
    FROM bench_walk w, generate_series(0, w.steps - 1) AS i
    WHERE w.id BETWEEN %(lo)s AND %(hi)s
) s
"""

# Deals of the leads that got as far as SQL (open leads: earlier deals lost, the last one open; customers: the
# last one won when the lead became a customer; lost leads: all lost), spread over the lead's later life.
DEALS_SQL = """
INSERT INTO leads_deal (lead_id, owner_id, product, value, currency, status, created_at, expected_close_on,
                        closed_at, lost_reason)
SELECT d.id, d.owner_id, (%(products)s::text[])[1 + (d.id + d.k) %% 4],
       round((500 + ((d.id * 7919 + d.k * 104729) %% 49500))::numeric, 2),
       (ARRAY['EUR', 'EUR', 'EUR', 'EUR', 'EUR', 'EUR', 'EUR', 'USD', 'USD', 'GBP'])[1 + (d.id + 3 * d.k) %% 10],
       d.deal_status, d.opened,
       CASE WHEN d.deal_status = 'open' AND d.id %% 10 <> 0 THEN (%(now)s::date + ((d.id * 31) %% 180)::int) END,
       CASE WHEN d.deal_status <> 'open' THEN d.opened + (d.ends - d.opened) * 0.9 END,
       CASE WHEN d.deal_status = 'lost' THEN 'No budget' ELSE '' END
FROM (
    SELECT x.*,
           CASE WHEN x.k < x.deals - 1 THEN 'lost' WHEN x.status = 'customer' THEN 'won'
                WHEN x.status IN ('lost', 'disqualified') THEN 'lost' ELSE 'open' END AS deal_status,
           x.start + (x.stage_entered_at - x.start) * (x.k::float8 / x.deals) AS opened,
           CASE WHEN x.status = 'customer' AND x.k = x.deals - 1 THEN x.stage_entered_at + (x.stage_entered_at - x.start) * (0.1 / x.deals)
                ELSE x.start + (x.stage_entered_at - x.start) * ((x.k + 1)::float8 / x.deals) END AS ends
    FROM (
        SELECT w.*, k, w.created_at + (w.stage_entered_at - w.created_at) * 0.4 AS start,
               %(per_lead)s + ((w.id * 2654435761) %% 1000 < %(extra_permille)s)::int AS deals
        FROM bench_walk w, generate_series(0, 9) AS k
        WHERE w.reached >= 4 AND w.stage_entered_at > w.created_at
    ) x
    WHERE x.k < x.deals
) d
"""

SPEND_SQL = """
INSERT INTO leads_campaignspend (campaign_id, period_start, period_end, amount, currency)
SELECT c.id, m::date, (m + interval '1 month' - interval '1 day')::date,
       round((1000 + (c.id * 7919 + extract(month FROM m)::int * 104729) %% 19000)::numeric, 2), 'EUR'
FROM leads_campaign c, generate_series(date_trunc('month', %(now)s::timestamptz - interval '24 months'),
                                       date_trunc('month', %(now)s::timestamptz), interval '1 month') AS m
"""

OBJECTIONS_SQL = """
INSERT INTO leads_objection (lead_id, category, stage, lead_words, response, is_resolved, resolved_at, raised_by_id,
                             created_at)
SELECT w.id, (ARRAY['price', 'timing', 'authority', 'need', 'competitor', 'trust', 'other'])[1 + (w.id * 13) % 7],
       coalesce((SELECT sc.to_status FROM leads_stagechange sc WHERE sc.lead_id = w.id AND sc.changed_at <= w.at
                 ORDER BY sc.changed_at DESC, sc.id DESC LIMIT 1), ''),
       'Too expensive for us right now', 'We have a smaller plan', w.id % 5 < 3,
       CASE WHEN w.id % 5 < 3 THEN w.at + interval '2 days' * (1 + w.id % 9) END, w.owner_id, w.at
FROM (SELECT id, owner_id, created_at + (stage_entered_at - created_at) * 0.5 AS at
      FROM bench_walk WHERE reached >= 3 AND stage_entered_at > created_at) w
"""

ACTIVITIES_SQL = """
INSERT INTO leads_activity (lead_id, kind, author_id, occurred_at, body, direction, outcome, duration_seconds, created_at,
                            channel, social_action)
SELECT w.id, CASE WHEN n = 2 THEN 'meeting' ELSE 'call' END, w.owner_id, t, '',
       CASE WHEN n = 2 THEN '' ELSE 'outbound' END,
       CASE WHEN n = 2 THEN '' WHEN (w.id + n) % 3 = 0 THEN 'connected' ELSE 'no_answer' END, 60 * (1 + n), t, '', ''
FROM (SELECT id, owner_id, created_at, stage_entered_at FROM bench_walk
      WHERE owner_id IS NOT NULL AND reached >= 1 AND stage_entered_at > created_at) w,
     generate_series(0, 2) AS n,
     LATERAL (SELECT w.created_at + (w.stage_entered_at - w.created_at) * ((n + 1) / 4.0) AS t) a
"""

TOUCHES_SQL = """
INSERT INTO leads_leadtouch (lead_id, kind, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
                             click_id_type, landing_page, referrer, touched_at)
SELECT l.id, 'first', coalesce(s.slug, ''), l.utm_medium, coalesce(c.slug, ''), l.utm_content, '', '',
       (%(pages)s::text[])[1 + (l.id * 17) %% cardinality(%(pages)s::text[])], '', l.created_at
FROM leads_lead l LEFT JOIN leads_source s ON s.id = l.source_id LEFT JOIN leads_campaign c ON c.id = l.campaign_id
WHERE l.source_id IS NOT NULL
"""


def ensure_visitor_sets(*, rebuild: bool) -> None:
    """The daily visitor sets the tracking worker writes with each page view (traffic.visitors): the loader
    writes page views by SQL, so they are built from them here, once (~12 minutes for 10,000,000 views)."""
    from traffic.models import DailyVisitors
    from traffic.visitors import visitors_rebuild

    if not rebuild and DailyVisitors.objects.exists():
        return
    started = time.perf_counter()
    days = visitors_rebuild()
    print(f"   visitor sets of {days} days built in {time.perf_counter() - started:.0f} s", flush=True)


MERGE_EVERY = 200  # one lead in 200 has a duplicate merged into it


def ensure_merges(capture_meta: dict) -> int:
    """Duplicates merged into loaded leads, as forms and imports leave in any CRM (0.5%, 5,000 of 1,000,000): an
    archived copy of the lead with a standing LeadMerge and, as after `leads.merging.lead_merge`, no rows of its
    own. The reports leave merged leads out; without any merge the database plans that check differently than it
    ever will in a CRM in use. Made once; the number of standing merges."""
    from django.db import connection

    from leads.models import Lead, LeadMerge

    standing = LeadMerge.objects.filter(undone_at__isnull=True).count()
    if standing:
        return standing
    started = time.perf_counter()
    copied = [f.column for f in Lead._meta.concrete_fields if f.name not in ("id", "archived_at", "external_ref")]
    columns = ", ".join(copied)
    lo, hi = capture_meta["lead_min"], capture_meta["lead_min"] + capture_meta["lead_count"] - 1
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH copies AS (
                    INSERT INTO leads_lead ({columns}, archived_at, external_ref)
                    SELECT {columns}, now(), 'bench-duplicate-' || id FROM leads_lead
                    WHERE id BETWEEN %(lo)s AND %(hi)s AND id %% %(every)s = 0
                    RETURNING id, external_ref)
                INSERT INTO leads_leadmerge (keep_id, merged_id, merged_at, moved, filled, events_moved)
                SELECT substr(external_ref, 17)::bigint, id, now(), '{{}}', '{{}}', '{{}}' FROM copies""",
            {"lo": lo, "hi": hi, "every": MERGE_EVERY})
        cursor.execute("ANALYZE leads_leadmerge")
        cursor.execute("ANALYZE leads_lead")
    standing = LeadMerge.objects.filter(undone_at__isnull=True).count()
    print(f"   {standing:,} duplicates merged in {time.perf_counter() - started:.0f} s", flush=True)
    return standing


def ensure_history(capture_meta: dict, deals: int, reload: bool) -> dict:
    """The stage history, deals, spend, objections, activities and first touches of the loaded leads (once)."""
    meta = read_saved_meta("reports")
    if not reload and meta and meta.get("version") == DATA_VERSION and meta.get("deals_asked") == deals:
        print(f"   reusing the reports' history (loaded in {meta['load_seconds']:.0f} s); --reload to load again",
              flush=True)
        return meta
    from django.db import connection
    from django.utils import timezone

    from leads.reach import refresh_all_reached

    started = time.perf_counter()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE leads_stagechange, leads_deal, leads_campaignspend, leads_objection, leads_activity, "
                       "leads_leadtouch RESTART IDENTITY CASCADE")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET jit = off")
        cursor.execute(STAGE_FUNCTION)
        cursor.execute("DROP TABLE IF EXISTS bench_walk")
        cursor.execute(WALKS)
        # Recycled leads (MQL back to nurturing) make up the rest of the 5,000,000 changes.
        cursor.execute("SELECT count(*), sum(1 + reached + ended::int), count(*) FILTER (WHERE reached >= 2) "
                       "FROM bench_walk")
        leads, base, recyclable = cursor.fetchone()
        loops_mean = max(0.0, (5 * leads - base) / 2 / max(recyclable, 1))
        cursor.execute("UPDATE bench_walk SET loops = ((id * 2654435761) %% 1000003) %% %s, "
                       "steps = steps + 2 * (((id * 2654435761) %% 1000003) %% %s) WHERE reached >= 2",
                       [round(2 * loops_mean) + 1] * 2)
        cursor.execute("CREATE INDEX ON bench_walk (id)")
        cursor.execute("ANALYZE bench_walk")
        lo_id, hi_id = capture_meta["lead_min"], capture_meta["lead_min"] + capture_meta["lead_count"] - 1
        t = time.perf_counter()
        with without_indexes(cursor, "leads_stagechange"):
            for lo in range(lo_id, hi_id + 1, 200_000):
                cursor.execute(STAGE_CHANGES_SQL, {"lo": lo, "hi": lo + 199_999})
                print(f"   stage changes of leads up to {min(hi_id, lo + 199_999):,}  ({time.perf_counter() - t:.0f} s)",
                      flush=True)
        cursor.execute("SELECT count(*) FROM bench_walk WHERE reached >= 4 AND stage_entered_at > created_at")
        bearing = cursor.fetchone()[0]
        per_lead = max(1, deals // max(bearing, 1))
        extra = round((deals / max(bearing, 1) - per_lead) * 1000)
        with without_indexes(cursor, "leads_deal"):
            cursor.execute(DEALS_SQL, {"products": list(PRODUCTS), "now": now, "per_lead": per_lead,
                                       "extra_permille": extra})
        cursor.execute(SPEND_SQL, {"now": now})
        cursor.execute(OBJECTIONS_SQL)
        with without_indexes(cursor, "leads_activity"):
            cursor.execute(ACTIVITIES_SQL)
        cursor.execute(TOUCHES_SQL, {"pages": list(LANDING_PAGES)})
        cursor.execute("DROP TABLE bench_walk")
        t = time.perf_counter()
        refresh_all_reached()  # what the stage service keeps on each lead as it moves (leads.reach)
        print(f"   leads' reached stages from their history in {time.perf_counter() - t:.0f} s", flush=True)
        cursor.execute("RESET synchronous_commit")
        cursor.execute("RESET jit")
        t = time.perf_counter()
        for table in ("leads_stagechange", "leads_deal", "leads_campaignspend", "leads_objection", "leads_activity",
                      "leads_leadtouch", "leads_lead"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        cursor.execute("CHECKPOINT")
        print(f"   VACUUM ANALYZE in {time.perf_counter() - t:.0f} s", flush=True)
        counts = {}
        for table in ("leads_lead", "leads_stagechange", "leads_deal", "leads_campaignspend", "leads_objection",
                      "leads_activity", "leads_leadtouch", "traffic_pageview"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT status, count(*) FROM leads_deal GROUP BY status ORDER BY status")
        deal_statuses = dict(cursor.fetchall())
    meta = {
        "version": DATA_VERSION,
        "deals_asked": deals,
        "rows": counts,
        "deals_by_status": deal_statuses,
        "leads_span_days": 730,
        "page_views_span_days": SPAN_DAYS,
        "load_seconds": round(time.perf_counter() - started, 1),
        "leads_and_page_views_load_seconds": capture_meta.get("load_seconds"),
        "manager_id": _manager_id(),
        "loaded_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
    }
    save_meta("reports", meta)
    print(f"   history loaded in {meta['load_seconds']:.0f} s: {counts}", flush=True)
    return meta


def _manager_id() -> int:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="bench_manager").pk


class without_indexes:
    """Drops a table's secondary indexes (not its constraints' ones) for a bulk insert and makes them again after."""

    def __init__(self, cursor, table: str):
        self.cursor, self.table = cursor, table

    def __enter__(self):
        self.cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
            [self.table],
        )
        self.indexes = self.cursor.fetchall()
        for name, _ in self.indexes:
            self.cursor.execute(f'DROP INDEX "{name}"')
        return self

    def __exit__(self, *exc):
        self.cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, ddl in self.indexes:
            self.cursor.execute(ddl)
        self.cursor.execute("RESET maintenance_work_mem")
        return False


# --- Measurements ---------------------------------------------------------------------------------------------


def timed(call, *, runs: int, warmups: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmups):
        call()
    times, queries = [], set()
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        queries.add(len(captured.captured_queries))
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(max(times), 1),
        "queries": max(queries),
        "runs": runs,
    }


def queries_constant(pages: dict, filters: dict) -> bool:
    """Per report: the same number of queries for the last 30 days and the last year under each slice, and no
    slice adds one to the page alone (a slice by persona or owner has one fewer on the funnel: visits have
    neither, so no visitors are counted)."""
    pairs = [("last_30_days", "last_year")] + [(name, f"{name}_last_year") for name in filters
                                               if f"{name}_last_year" in filters]
    return all(
        filters[short]["pages"][key]["queries"] == filters[long]["pages"][key]["queries"] <= pages[key]["queries"]
        for key in pages for short, long in pairs
    )


def filter_cases(dataset: dict) -> dict:
    """name -> the dashboard's query string."""
    from django.utils import timezone

    from leads.models import Campaign, Persona, Source

    today = timezone.localdate()
    year = {"start": (today - timedelta(days=364)).isoformat(), "end": today.isoformat()}
    source = Source.objects.order_by("pk").first()
    campaign = Campaign.objects.order_by("pk").first()
    persona = Persona.objects.order_by("pk").first()
    owner = (campaign.leads.exclude(owner=None).values_list("owner", flat=True).first()) if campaign else None
    return {
        "last_30_days": {},
        "last_year": year,
        "source": {"source": source.pk},
        "source_last_year": {**year, "source": source.pk},
        "campaign_owner": {"campaign": campaign.pk, "owner": owner},
        "campaign_owner_last_year": {**year, "campaign": campaign.pk, "owner": owner},
        "persona_landing_page": {"persona": persona.pk, "landing_page": "/"},
        "persona_landing_page_last_year": {**year, "persona": persona.pk, "landing_page": "/"},
    }


def measure(dataset: dict, *, runs: int, warmups: int) -> tuple[dict, dict]:
    """Each report's page as a manager gets it (the view, its queries, the template), by the test client: with the
    default range (the last 30 days), then the last year; then every report under each filter case."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from reports.views import REPORTS, _url

    manager = get_user_model().objects.get(pk=dataset["manager_id"])
    client = Client()
    client.force_login(manager)

    def page(key: str, query: dict):
        url = _url(key)

        def get():
            response = client.get(f"{url}?{urlencode(query)}" if query else url)
            assert response.status_code == 200, response.status_code
            return response
        return get

    pages = {}
    for key in REPORTS:
        pages[key] = timed(page(key, {}), runs=runs, warmups=warmups)
        print(f"   {key:<12} p50 {pages[key]['p50_ms']:>8} ms  p95 {pages[key]['p95_ms']:>8} ms  "
              f"{pages[key]['queries']} queries", flush=True)
    filters = {}
    for name, query in filter_cases(dataset).items():
        case = {"query": query, "pages": {}}
        for key in REPORTS:
            case["pages"][key] = timed(page(key, query), runs=max(3, runs // 3), warmups=1)
        case["p95_ms_max"] = max(p["p95_ms"] for p in case["pages"].values())
        filters[name] = case
        slowest = max(case["pages"], key=lambda k: case["pages"][k]["p95_ms"])
        print(f"   filter {name:<32} slowest {slowest} p95 {case['p95_ms_max']:>8} ms", flush=True)
    return pages, filters


if __name__ == "__main__":
    sys.exit(main())
