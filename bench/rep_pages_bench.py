"""The sales reps' pages served by gunicorn on PostgreSQL with 100,000 leads.

    .venv/bin/python -m bench.rep_pages_bench [--leads N] [--reload] [--runs 50] [--gunicorn-workers 2]

Loads N leads (default 100,000) into their own database, `crm_bench_reps`
(BENCH_REPS_DATABASE_URL), with the admin benchmark's SQL loader, then spreads
them over 10 sales reps and an unassigned pool (10%) and gives them a history;
a second run reuses the data (the reps' tasks are laid out again around today
on every run). Then it serves the app with gunicorn (crm.settings.production,
as behind a TLS proxy), logs in as the measured rep through the login form, and
times Today, My leads (default, searched, filtered, the pool), the pipeline board and a lead page
with a long history. The global search's dropdown (`global_search*` pages: part
of a company's name, a surname, an exact email) is measured on 1,000,000 leads
(--search-leads) in a database of its own, `crm_bench_reps_search`
(BENCH_REPS_SEARCH_DATABASE_URL), by a second run of this module (--pages
global_search) whose pages are merged into the same results file, each page
saying how many leads it was measured on. The public booking page (`booking`, no login) lists a week of free
slots of a team of 20 reps with their own calendars and 10,000 booked meetings, laid out around now on every
run; `--pages booking` measures it alone and merges it into the results file. The queries of each page are counted in this process
(django.test.Client on the same database) and the slowest one is explained.
Results: bench/results/rep_pages.json, and a table on stdout.
"""

import argparse
import gc
import http.client
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from bench.admin_bench import (
    SEARCH_SURNAME,
    QueryTimer,
    code_version,
    database_info,
    ensure_database,
    machine_info,
    percentile,
    read_meta,
    save_meta,
    slowest_query,
)
from bench.admin_bench import load as load_leads
from bench.nurture_bench import CpuMeter, free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_reps"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "rep_pages.json"
DEFAULT_SEARCH_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_reps_search"
SEARCH_LEADS = 1_000_000
TARGETS = {"p95_ms_max": 100, "queries_max": 12, "status": 200}
# Bumped when the data this module adds on top of the admin loader changes: a reload follows.
DATA_VERSION = 1
SEED = 0.17

# The admin loader makes bench_rep1-4 (and a manager); these join them: 10 reps.
MORE_REPS = (("Marco", "Rossi"), ("Hana", "Sato"), ("Liam", "Walsh"), ("Nora", "Berg"), ("Omar", "Haddad"), ("Julie", "Martin"))
POOL_SHARE = 10  # per cent of the leads, unassigned
MEASURED_SHARE = 10  # per cent, the measured rep's; the other 9 reps share the rest
PASSWORD = "rep-pages-bench"  # the measured rep's, for the login form (a throwaway database)
# Per rep, laid out around today on every run: open tasks due by tonight (the first
# 12 overdue, 2 without a lead), open tasks due later, and done tasks.
TASKS_DUE, TASKS_OVERDUE, TASKS_LATER, TASKS_DONE = 30, 12, 60, 600
TASK_TITLES = (
    "Call back about pricing", "Send the case study", "Follow up on the demo", "Check budget with the CFO",
    "Book a discovery call", "Send the proposal", "Answer the security questionnaire", "Confirm the trial setup",
)
SEQUENCE_NAME = "Bench: welcome series"

# The public booking page: a team's round-robin page with 20 reps in four time zones, Mon-Fri 9-17, 30-minute
# meetings, and 10,000 booked meetings at slot-aligned times (a fifth of them in the last 30 days, the rest
# over the next 60), laid out again around now on every run. No buffers: at ~9 meetings a rep's day, a
# 10-minute buffer would close every day (it blocks the slots on both sides of each meeting).
BOOKING_SLUG, BOOKING_SOLO_SLUG = "bench-team", "bench-solo"
BOOKING_REPS, BOOKING_MEETINGS, BOOKING_PAST_SHARE = 20, 10_000, 0.2
BOOKING_ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
BOOKING_VISITOR_ZONE = "America/Los_Angeles"
BOOKING_PAST_DAYS, BOOKING_FUTURE_DAYS = 30, 60
BOOKING_BATCH = 2_000
ANONYMOUS_PAGES = {"booking"}  # requested without logging in
PAGE_SETS = ("all", "global_search", "rep_pages", "booking")

SETTINGS_SHIM = '''"""crm.settings.production, with STATIC_ROOT in the benchmark's temporary folder (collectstatic goes there)."""
from crm.settings.production import *  # noqa: F403

STATIC_ROOT = {static_root!r}
'''


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.rep_pages_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--leads", type=int, default=100_000, help="leads in the database (default 100,000)")
    parser.add_argument("--reload", action="store_true", help="reload the data even if the database holds it")
    parser.add_argument("--runs", type=int, default=50, help="measured requests per page (default 50)")
    parser.add_argument("--warmups", type=int, default=10, help="unmeasured requests per page first (default 10)")
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn --workers (default 2)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_REPS_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="the database (env BENCH_REPS_DATABASE_URL)")
    parser.add_argument("--search-leads", type=int, default=SEARCH_LEADS,
                        help="leads for the global search pages (default 1,000,000; 0: leave them out)")
    parser.add_argument("--search-database-url",
                        default=os.environ.get("BENCH_REPS_SEARCH_DATABASE_URL", DEFAULT_SEARCH_DATABASE_URL),
                        help="the global search's database when --search-leads differs from --leads "
                             "(env BENCH_REPS_SEARCH_DATABASE_URL)")
    parser.add_argument("--pages", choices=PAGE_SETS, default="all",
                        help="measure every page, only the global search's, only the others, or only the public "
                             "booking page; anything but all is merged into an existing results file")
    # scripts/bench passes its arguments to every benchmark: ignore the other benchmarks' options.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    return run(args)


def run(args) -> int:
    from bench.calibration import calibration_s

    started, calibration = time.perf_counter(), calibration_s()
    ensure_database(args.database_url)
    with tempfile.TemporaryDirectory(prefix="rep_pages_bench_") as tmp:
        workdir = Path(tmp)
        setup_django(args.database_url, workdir)
        from django.core.management import call_command
        from django.db import connection

        t0 = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        print(f"   migrated in {time.perf_counter() - t0:.1f} s", flush=True)
        meta, reused = ensure_data(args.leads, args.reload)
        booking_only = args.pages == "booking"
        if not booking_only:
            lay_out_tasks(meta)
            set_password(meta["measured_rep_id"])
        t0 = time.perf_counter()
        call_command("collectstatic", interactive=False, verbosity=0)
        print(f"   collectstatic in {time.perf_counter() - t0:.1f} s", flush=True)
        data = {} if booking_only else describe_data(meta)
        pages = pages_for(meta)
        search_apart = args.pages == "all" and args.search_leads and args.search_leads != args.leads
        if booking_only:
            pages = {k: v for k, v in pages.items() if k == "booking"}
        elif args.pages == "rep_pages" or search_apart or not args.search_leads:
            pages = {k: v for k, v in pages.items() if not k.startswith("global_search")}
        elif args.pages == "global_search":
            pages = {k: v for k, v in pages.items() if k.startswith("global_search")}
        if "booking" in pages:
            data["booking"] = lay_out_booking(meta)
        connection.close()

        load_before = os.getloadavg()[0]
        with Gunicorn(workdir, args.gunicorn_workers) as server:
            timings = measure_http(server, data.get("measured_rep", ""), pages, runs=args.runs, warmups=args.warmups)
        load_after = os.getloadavg()[0]
        queries = measure_queries(meta, pages)

        results = {name: {"url": url, "leads": meta["leads"], "rows": queries[name].pop("rows"), **timings[name],
                          **queries[name]}
                   for name, url in pages.items()}
        if "booking" in results:
            results["booking"] = {"reps": BOOKING_REPS, "meetings": BOOKING_MEETINGS, **results["booking"]}
        if search_apart:
            results.update(measure_search_apart(args))
        meets = {
            name: {
                "p95_ms": p["p95_ms"] <= TARGETS["p95_ms_max"],
                "queries": p["queries"] <= TARGETS["queries_max"],
                "status": p["status"] == TARGETS["status"],
            }
            for name, p in results.items()
        }
        result = {
            "benchmark": "rep_pages",
            "calibration_s": calibration,
            "leads": meta["leads"],
            "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
            "bench_seconds": round(time.perf_counter() - started, 1),
            "code": code_version(),
            **database_info(),
            "server": {
                "gunicorn": gunicorn_version(),
                "workers": args.gunicorn_workers,
                "worker_class": "sync",
                "settings": "crm.settings.production (STATIC_ROOT in a temporary folder)",
                "https": "X-Forwarded-Proto: https on every request, as from a TLS proxy (redirect and Secure cookies on)",
            },
            "machine": {**machine_info(), "loadavg_1min_before_after": [round(load_before, 2), round(load_after, 2)]},
            "load_seconds": meta["load_seconds"],
            "data_reused": reused,
            "data": data,
            "runs_per_page": args.runs,
            "warmups_per_page": args.warmups,
            "pages": results,
            "targets": TARGETS,
            "meets_targets": meets,
            "meets_all_targets": all(all(m.values()) for m in meets.values()),
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    written = merged_into(args.output, result) if args.pages != "all" else result
    args.output.write_text(json.dumps(written, indent=2) + "\n")
    print_report(result, args.output)
    return 0


def merged_into(output: Path, result: dict) -> dict:
    """A run of some of the pages, merged into the results file: its pages replace theirs, the others stay.

    The file's own fields still describe the run that wrote it; each page of this run carries `run`, when and
    on what machine it was measured (calibration_s, load), beside its numbers.
    """
    try:
        merged = json.loads(output.read_text())
    except (OSError, ValueError):
        return result
    if merged.get("benchmark") != result["benchmark"] or not isinstance(merged.get("pages"), dict):
        return result
    run = {
        "measured_at": result["measured_at"],
        "calibration_s": result["calibration_s"],
        "loadavg_1min_before_after": result["machine"]["loadavg_1min_before_after"],
        "code": result["code"],
        "runs_per_page": result["runs_per_page"],
        "warmups_per_page": result["warmups_per_page"],
        "data_reused": result["data_reused"],
    }
    for name, page in result["pages"].items():
        merged["pages"][name] = {**page, "run": run}
        merged.setdefault("meets_targets", {})[name] = result["meets_targets"][name]
    merged["data"] = {**merged.get("data", {}), **result["data"]}
    merged["targets"] = result["targets"]
    merged["meets_all_targets"] = all(all(m.values()) for m in merged["meets_targets"].values())
    return merged


def server_env(database_url: str, workdir: Path) -> dict:
    """What production needs (see .env.example, [prod]), for this process and gunicorn alike."""
    return {
        "DJANGO_SETTINGS_MODULE": "rep_pages_bench_settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CRM_EMAIL_HASH_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir), str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def setup_django(database_url: str, workdir: Path) -> None:
    static_root = workdir / "static"
    (workdir / "rep_pages_bench_settings.py").write_text(SETTINGS_SHIM.format(static_root=str(static_root)))
    os.environ.update(server_env(database_url, workdir))
    for name in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"):  # the command line says it all
        os.environ.pop(name, None)
    sys.path[:0] = [str(workdir), str(ROOT)]

    import django

    django.setup()


# --- Data ------------------------------------------------------------------------------------


def read_rep_meta():
    from django.db import connection

    dataset, count = read_meta()  # also creates bench_meta
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'rep_pages'")
        row = cursor.fetchone()
    value = row[0] if row else None
    return dataset, (json.loads(value) if isinstance(value, str) else value), count


def ensure_data(n: int, reload: bool):
    from leads.models import Deal

    dataset, meta, count = read_rep_meta()
    if (
        not reload
        and dataset is not None
        and meta is not None
        and meta.get("version") == DATA_VERSION
        and meta.get("leads") == count == n
        and dataset.get("leads") == count
        and Deal.objects.filter(lead_id=meta.get("showcase_lead_id")).exists()
    ):
        print(f"   reusing {count:,} leads (loaded in {meta['load_seconds']:.1f} s); --reload to load again", flush=True)
        return meta, True
    started = time.perf_counter()
    dataset = load_leads(n)  # the admin benchmark's loader: leads, 4 reps, a manager, one lead with a history
    meta = spread_and_enrich(dataset)
    meta["load_seconds"] = round(time.perf_counter() - started, 1)
    save_meta("rep_pages", meta)
    print(f"   {n:,} leads ready in {meta['load_seconds']:.1f} s", flush=True)
    return meta, False


def spread_and_enrich(dataset: dict) -> dict:
    """10 reps and a pool instead of the loader's 4 reps; every lead's basic history; the lead page's lead gets emails."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from core.roles import Role
    from leads import pipeline
    from leads.models import Lead

    t = time.perf_counter()
    User = get_user_model()
    showcase = Lead.objects.select_related("owner").get(pk=dataset["showcase_lead_id"])
    measured = showcase.owner  # the rep whose pages are measured owns the long-history lead
    group = Group.objects.get(name=Role.SALES_REP.value)
    with transaction.atomic():
        for i, (first, last) in enumerate(MORE_REPS, start=5):
            user, _ = User.objects.update_or_create(
                username=f"bench_rep{i}",
                defaults={"first_name": first, "last_name": last, "email": f"rep{i}@crm.example", "is_staff": False},
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.set([group])
    reps = list(User.objects.filter(username__startswith="bench_rep").order_by("id"))
    others = [r.pk for r in reps if r.pk != measured.pk]
    others_share = 100 - POOL_SHARE - MEASURED_SHARE
    slots = [0] * POOL_SHARE + [measured.pk] * MEASURED_SHARE + [others[i % len(others)] for i in range(others_share)]
    open_statuses = sorted(pipeline.OPEN_STATUSES)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT setseed(%s)", [SEED])
        with transaction.atomic():
            cursor.execute(
                "UPDATE leads_lead SET owner_id = nullif((%s::bigint[])[1 + floor(random() * %s)::int], 0) WHERE id <> %s",
                [slots, len(slots), showcase.pk],
            )
            # What lead_create and the stage service record: the first stage, then the move to today's.
            cursor.execute(
                """
                INSERT INTO leads_stagechange (lead_id, from_status, to_status, changed_at, changed_by_id, actor, reason,
                                               time_in_from_stage)
                SELECT id, '', 'new', created_at, NULL, 'web form', '', NULL FROM leads_lead WHERE id <> %(showcase)s
                UNION ALL
                SELECT id, 'new', status, stage_entered_at, owner_id, CASE WHEN owner_id IS NULL THEN 'import' ELSE '' END,
                       lost_reason, stage_entered_at - created_at
                FROM leads_lead WHERE status <> 'new' AND id <> %(showcase)s
                """,
                {"showcase": showcase.pk},
            )
            # The last touch was a call by the owner.
            cursor.execute(
                """
                INSERT INTO leads_activity (lead_id, kind, author_id, occurred_at, body, direction, outcome,
                                            duration_seconds, created_at, channel, social_action)
                SELECT id, 'call', owner_id, last_touch_at, '', CASE WHEN mod(id, 4) = 0 THEN 'inbound' ELSE 'outbound' END,
                       (ARRAY['connected', 'voicemail', 'no_answer', 'busy', 'wrong_number'])[1 + mod(id, 5)::int],
                       30 + mod(id * 37, 1200), last_touch_at, '', ''
                FROM leads_lead WHERE last_touch_at IS NOT NULL AND id <> %(showcase)s
                """,
                {"showcase": showcase.pk},
            )
            # Customers were won with a deal.
            cursor.execute(
                """
                INSERT INTO leads_deal (lead_id, owner_id, product, value, currency, status, created_at, closed_at,
                                        expected_close_on, lost_reason, next_step)
                SELECT id, owner_id, 'Team plan', 1200 + mod(id * 7919, 30000), 'EUR', 'won',
                       stage_entered_at - interval '20 days', stage_entered_at, NULL, '', ''
                FROM leads_lead WHERE status = 'customer' AND id <> %(showcase)s
                """,
                {"showcase": showcase.pk},
            )
        add_showcase_emails(showcase)
        print(f"   10 reps and a pool, stage changes, calls, deals in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        # Every lead row was rewritten: compact the table and its indexes as a long-lived one would be after
        # autovacuum, then set the visibility map and the statistics.
        cursor.execute("VACUUM FULL leads_lead")
        cursor.execute("VACUUM (ANALYZE) leads_lead")
        cursor.execute("ANALYZE")
        cursor.execute("CHECKPOINT")
        cursor.execute("RESET synchronous_commit")
        print(f"   VACUUM FULL, ANALYZE in {time.perf_counter() - t:.1f} s", flush=True)
    return {
        "version": DATA_VERSION,
        "leads": dataset["leads"],
        "loaded_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "showcase_lead_id": showcase.pk,
        "measured_rep_id": measured.pk,
        "rep_ids": [r.pk for r in reps],
        "search_surname": SEARCH_SURNAME,
        "open_statuses": open_statuses,
    }


def add_showcase_emails(lead) -> None:
    """The lead page's lead is in a sequence: three emails sent, the fourth scheduled."""
    from django.db import transaction
    from django.utils import timezone

    from nurturing.models import Delivery, Enrollment, Sequence, Step

    now = timezone.now()
    with transaction.atomic():
        Sequence.objects.filter(name=SEQUENCE_NAME).delete()  # its enrollments went with the leads
        sequence = Sequence.objects.create(name=SEQUENCE_NAME, status=Sequence.Status.ACTIVE, goal="Book a demo")
        steps = Step.objects.bulk_create(
            Step(sequence=sequence, position=i, delay=timedelta(days=3), subject_template=f"Step {i}: {{{{ first_name }}}}",
                 text_template="Hi {{ first_name }}, ...")
            for i in range(1, 5)
        )
        enrolled_at = now - timedelta(days=12)
        enrollment = Enrollment.objects.create(lead=lead, sequence=sequence, enrolled_at=enrolled_at)
        Delivery.objects.bulk_create(
            Delivery(
                enrollment=enrollment, step=step, due_at=enrolled_at + timedelta(days=3 * i),
                status=Delivery.Status.SENT if i < 4 else Delivery.Status.SCHEDULED,
                sent_at=enrolled_at + timedelta(days=3 * i, minutes=2) if i < 4 else None,
                to_email=lead.email, subject=f"Step {i}: {lead.first_name}" if i < 4 else "",
                message_id=f"<bench-{lead.pk}-{i}@crm.localhost>" if i < 4 else "",
            )
            for i, step in enumerate(steps, start=1)
        )


def lay_out_tasks(meta: dict) -> None:
    """Each rep's tasks around today (every run, so 'due today' is today): due by tonight, later, done."""
    from django.db import connection, transaction
    from django.utils import timezone

    t = time.perf_counter()
    now = timezone.now()
    local = timezone.localtime(now)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = local.replace(hour=23, minute=59, second=59, microsecond=0)
    params = {
        "showcase": meta["showcase_lead_id"],
        "reps": meta["rep_ids"],
        "open": meta["open_statuses"],
        "titles": list(TASK_TITLES),
        "now": now,
        "day_start": day_start,
        "day_end": day_end,
        "overdue": TASKS_OVERDUE,
        "due": TASKS_DUE,
        "later": TASKS_DUE + TASKS_LATER,
        "total": TASKS_DUE + TASKS_LATER + TASKS_DONE,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [SEED])
        cursor.execute("DELETE FROM leads_task WHERE lead_id IS DISTINCT FROM %s", [meta["showcase_lead_id"]])
        cursor.execute(
            """
            WITH picks AS (
                SELECT id AS lead_id, owner_id AS rep, row_number() OVER (PARTITION BY owner_id ORDER BY random()) AS rn
                FROM leads_lead
                WHERE owner_id = ANY(%(reps)s) AND archived_at IS NULL AND status = ANY(%(open)s) AND id <> %(showcase)s
            )
            INSERT INTO leads_task (lead_id, assignee_id, title, notes, due_at, completed_at, created_by_id, created_at)
            SELECT CASE WHEN rn <= 2 THEN NULL ELSE lead_id END, rep,
                   (%(titles)s::text[])[1 + mod(rn, cardinality(%(titles)s::text[]))::int], '', d.due_at,
                   CASE WHEN rn > %(later)s THEN d.due_at - interval '2 hours' END, rep,
                   least(d.due_at, %(now)s) - interval '3 days'
            FROM picks
            CROSS JOIN LATERAL (SELECT CASE
                WHEN rn <= %(overdue)s THEN %(now)s - rn * interval '19 hours'
                WHEN rn <= %(due)s THEN %(day_start)s + (rn - %(overdue)s - 1) * (%(day_end)s - %(day_start)s) / (%(due)s - %(overdue)s)
                WHEN rn <= %(later)s THEN %(day_end)s + (rn - %(due)s) * interval '12 hours'
                ELSE %(now)s - (rn - %(later)s) * interval '14 hours'
            END AS due_at) d
            WHERE rn <= %(total)s
            """,
            params,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) leads_task")
    print(f"   tasks laid out around today in {time.perf_counter() - t:.1f} s", flush=True)


def lay_out_booking(meta: dict) -> dict:
    """The public booking page's team and their meetings, laid out around now on every run (so the week shown
    is as full whatever the day): 20 reps with calendars in four time zones, a round-robin page with all of them
    (and a page of the first alone, to show the page's queries do not grow with its reps), and 10,000 booked
    meetings on the leads already loaded, at slot-aligned times of the reps' working days."""
    import random
    from datetime import time as wall_time
    from zoneinfo import ZoneInfo

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from booking.models import BookingPage, Calendar, DayOff, Meeting, WorkingHours
    from capture.models import CaptureForm
    from leads.models import ConversionKind, Lead

    t = time.perf_counter()
    User = get_user_model()
    now = timezone.now()
    rng = random.Random(SEED)
    with transaction.atomic():
        # Reps outside the "Sales rep" group: the measured rep's Today and the owner lists of the other pages
        # stay as they were. The booking pages ask only for an active user with a calendar.
        reps = []
        for i in range(1, BOOKING_REPS + 1):
            user, _ = User.objects.update_or_create(
                username=f"bench_booking_rep{i}",
                defaults={"first_name": f"Booker{i}", "last_name": "Bench", "email": f"booker{i}@crm.example",
                          "is_active": True, "is_staff": False},
            )
            reps.append(user)
        calendars = []
        for i, user in enumerate(reps):
            calendar, _ = Calendar.objects.update_or_create(
                rep=user,
                defaults={"time_zone": BOOKING_ZONES[i % len(BOOKING_ZONES)], "meeting_minutes": [30],
                          "buffer_before_minutes": 0, "buffer_after_minutes": 0, "notice_minutes": 240,
                          "horizon_days": BOOKING_FUTURE_DAYS, "daily_max": 20, "is_available": True},
            )
            calendars.append(calendar)
        WorkingHours.objects.filter(calendar__in=calendars).delete()
        WorkingHours.objects.bulk_create(
            WorkingHours(calendar=c, weekday=day, starts=wall_time(9), ends=wall_time(17))
            for c in calendars for day in range(5)
        )
        form, _ = CaptureForm.objects.update_or_create(
            slug="bench-book-demo",
            defaults={
                "name": "Bench: book a demo", "conversion_kind": ConversionKind.objects.get(slug="demo-booked"),
                "fields": [{"name": "email", "label": "Work email", "type": "email", "required": True,
                            "maps_to": "email"},
                           {"name": "first_name", "label": "First name", "type": "text", "maps_to": "first_name"}],
            },
        )
        pages = {}
        for slug, title, page_reps, is_default in ((BOOKING_SLUG, "Book a demo with our team", reps, True),
                                                   (BOOKING_SOLO_SLUG, "Book a demo with Booker1", reps[:1], False)):
            page, _ = BookingPage.objects.update_or_create(
                slug=slug, defaults={"title": title, "form": form, "duration_minutes": 30, "is_active": True,
                                     "is_default": is_default},
            )
            page.reps.set(page_reps)
            pages[slug] = page
        team = pages[BOOKING_SLUG]
        Meeting.objects.filter(rep__in=reps).delete()
        DayOff.objects.filter(calendar__in=calendars).delete()

        # Per rep, its 30-minute slots on weekdays from 30 days ago to 60 days ahead in its own time zone; a
        # sample of them is booked (at most one meeting per slot, as the database requires).
        lead_ids = list(Lead.objects.exclude(pk=meta["showcase_lead_id"]).order_by("pk")
                        .values_list("pk", flat=True)[:BOOKING_MEETINGS])
        per_rep, past_per_rep = BOOKING_MEETINGS // BOOKING_REPS, round(BOOKING_MEETINGS * BOOKING_PAST_SHARE) // BOOKING_REPS
        meetings, days_off = [], []
        for calendar in calendars:
            tz = ZoneInfo(calendar.time_zone)
            today = now.astimezone(tz).date()
            past, future = [], []
            for offset in range(-BOOKING_PAST_DAYS, BOOKING_FUTURE_DAYS + 1):
                day = today + timedelta(days=offset)
                if day.weekday() >= 5:
                    continue
                for half_hour in range(16):
                    starts_at = datetime.combine(day, wall_time(9 + half_hour // 2, 30 * (half_hour % 2)), tzinfo=tz)
                    (past if starts_at < now else future).append(starts_at)
            for starts_at in rng.sample(past, past_per_rep) + rng.sample(future, per_rep - past_per_rep):
                lead_id = lead_ids[len(meetings) % len(lead_ids)]
                meetings.append(Meeting(
                    page=team, rep_id=calendar.rep_id, lead_id=lead_id, starts_at=starts_at.astimezone(dt_timezone.utc),
                    ends_at=(starts_at + timedelta(minutes=30)).astimezone(dt_timezone.utc),
                    time_zone=BOOKING_ZONES[lead_id % len(BOOKING_ZONES)], status=Meeting.Status.BOOKED,
                    booked_at=min(now, starts_at) - timedelta(days=3),
                ))
            # A weekday off in the next two weeks (its meetings left in place: booked before it was taken).
            off = [day for day in (today + timedelta(days=n) for n in range(1, 15)) if day.weekday() < 5]
            days_off.append(DayOff(calendar=calendar, date=rng.choice(off), note="Bench"))
        for i in range(0, len(meetings), BOOKING_BATCH):
            Meeting.objects.bulk_create(meetings[i : i + BOOKING_BATCH])
        DayOff.objects.bulk_create(days_off)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) booking_meeting")
    print(f"   booking: {len(reps)} calendars, {len(meetings):,} meetings laid out around now in "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    booked = Meeting.objects.filter(page=team, status=Meeting.Status.BOOKED)
    return {
        "page": BOOKING_SLUG,
        "reps": len(reps),
        "time_zones": sorted({c.time_zone for c in calendars}),
        "working_hours": "Mon-Fri 09:00-17:00 in each rep's time zone",
        "meeting_minutes": 30,
        "buffers_minutes": 0,
        "daily_max": 20,
        "horizon_days": BOOKING_FUTURE_DAYS,
        "days_off": len(days_off),
        "meetings_booked": booked.count(),
        "meetings_in_the_past": booked.filter(starts_at__lt=now).count(),
        "meetings_in_the_next_7_days": booked.filter(starts_at__gte=now, starts_at__lt=now + timedelta(days=7)).count(),
        "visitor_time_zone": BOOKING_VISITOR_ZONE,
    }


def set_password(user_id: int) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=user_id)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])


def describe_data(meta: dict) -> dict:
    """What the measured rep's pages work on."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from django.utils import timezone

    from leads.models import Activity, Deal, Lead, Objection, StageChange, Task
    from nurturing.models import Delivery, Enrollment
    from workspace.selectors import cold_condition

    now = timezone.now()
    day_end = timezone.localtime(now).replace(hour=23, minute=59, second=59, microsecond=999999)
    rep = get_user_model().objects.get(pk=meta["measured_rep_id"])
    live = Lead.objects.live()
    mine = live.filter(owner=rep)
    per_owner = dict(live.order_by().values_list("owner").annotate(n=Count("id")))
    others = [n for owner, n in per_owner.items() if owner not in (None, rep.pk)]
    due = Task.objects.filter(assignee=rep, completed_at__isnull=True, due_at__lte=day_end)
    lead_id = meta["showcase_lead_id"]
    return {
        "reps": len(meta["rep_ids"]),
        "measured_rep": rep.get_username(),
        "measured_rep_leads": per_owner.get(rep.pk, 0),
        "other_reps_leads_min_max": [min(others), max(others)] if others else [],
        "pool_leads": per_owner.get(None, 0),
        "archived_leads": Lead.objects.filter(archived_at__isnull=False).count(),
        "measured_rep_tasks_due_by_tonight": due.count(),
        "measured_rep_tasks_overdue": due.filter(due_at__lt=now).count(),
        "measured_rep_cold_leads": mine.filter(cold_condition(now)).count(),
        "measured_rep_new_leads": mine.filter(status="new").count(),
        "lead_page_lead": lead_id,
        "lead_page_history": {
            "stage_changes": StageChange.objects.filter(lead_id=lead_id).count(),
            "activities": Activity.objects.filter(lead_id=lead_id).count(),
            "objections": Objection.objects.filter(lead_id=lead_id).count(),
            "tasks": Task.objects.filter(lead_id=lead_id).count(),
            "deals": Deal.objects.filter(lead_id=lead_id).count(),
            "enrollments": Enrollment.objects.filter(lead_id=lead_id).count(),
            "emails": Delivery.objects.filter(enrollment__lead_id=lead_id).count(),
        },
        "table_rows": {
            "tasks": Task.objects.count(),
            "activities": Activity.objects.count(),
            "stage_changes": StageChange.objects.count(),
            "deals": Deal.objects.count(),
        },
    }


# --- The pages --------------------------------------------------------------------------------


def pages_for(meta: dict) -> dict:
    from django.urls import reverse

    leads = reverse("workspace:lead_list")
    return {
        "today": reverse("workspace:today"),
        "leads": leads,
        "leads_search": f"{leads}?{urlencode({'q': meta['search_surname']})}",
        "leads_status": f"{leads}?status=sql",
        "leads_pool": f"{leads}?scope=pool",
        "lead": reverse("workspace:lead_detail", args=[meta["showcase_lead_id"]]),
        # The nav's dropdown as it is typed: part of a company's name (its leads' too), a surname, an exact email.
        **{name: f"{reverse('workspace:search')}?{urlencode({'q': text, 'partial': '1'})}"
           for name, text in search_texts(meta).items()},
        "board": reverse("workspace:board"),
        # The public booking page as a visitor in California opens it: a week from now, no login.
        "booking": f"{reverse('booking:page', args=[BOOKING_SLUG])}?{urlencode({'tz': BOOKING_VISITOR_ZONE})}",
    }


def search_texts(meta: dict) -> dict:
    """What the global search is timed with: the measured rep's showcase lead's company, first 5 letters of its
    first word; the benchmark's surname; that lead's email, exactly."""
    from leads.models import Lead

    lead = Lead.objects.select_related("company").get(pk=meta["showcase_lead_id"])
    company_word = (lead.company.name if lead.company_id else "Smith").split()[0].strip(",").lower()
    return {
        "global_search": company_word[:5],
        "global_search_name": meta["search_surname"],
        "global_search_email": lead.email,
    }


def measure_search_apart(args) -> dict:
    """The global search's pages on --search-leads leads: this module again, on its own database, in a child process."""
    print(f"== global search on {args.search_leads:,} leads ({args.search_database_url.rsplit('/', 1)[-1]})", flush=True)
    with tempfile.TemporaryDirectory(prefix="rep_pages_search_") as tmp:
        output = Path(tmp) / "search.json"
        command = [sys.executable, "-m", "bench.rep_pages_bench", "--pages", "global_search",
                   "--leads", str(args.search_leads), "--search-leads", str(args.search_leads),
                   "--database-url", args.search_database_url, "--output", str(output),
                   "--runs", str(args.runs), "--warmups", str(args.warmups),
                   "--gunicorn-workers", str(args.gunicorn_workers)]
        if args.reload:
            command.append("--reload")
        subprocess.run(command, check=True, cwd=ROOT)
        return json.loads(output.read_text())["pages"]


def gunicorn_version() -> str:
    import gunicorn

    return gunicorn.__version__


class Gunicorn:
    """`gunicorn crm.wsgi:application` on a free loopback port, stopped (SIGTERM to its master) on exit."""

    def __init__(self, workdir: Path, workers: int):
        self.workdir, self.workers = workdir, workers
        self.port = free_port()
        self.log = workdir / "gunicorn.log"
        self.proc = None

    def __enter__(self):
        cmd = [
            sys.executable, "-m", "gunicorn", "crm.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--log-level", "warning",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if self.answers():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"gunicorn did not answer in 60 s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        print(f"   gunicorn {gunicorn_version()} on 127.0.0.1:{self.port}, {self.workers} workers", flush=True)
        return self

    def answers(self) -> bool:
        """Ready: the login page answers (a page that needs the collected static files)."""
        status, _, _ = Browser(self.port).request("GET", "/accounts/login/")
        return status == 200

    def pids(self) -> list[int]:
        """The master and its workers (for CpuMeter)."""
        pids = [self.proc.pid]
        for entry in os.listdir("/proc"):
            try:
                stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
            except OSError:
                continue
            if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == self.proc.pid:
                pids.append(int(entry))
        return pids

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        errors = [line for line in self.log.read_text(errors="replace").splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"   gunicorn logged errors:\n{self.log.read_text(errors='replace')[-3000:]}", flush=True)


class Browser:
    """Requests as a browser behind a TLS proxy sends them: X-Forwarded-Proto: https, cookies by name.

    One connection per request: gunicorn's sync workers close it after each response.
    The production cookies are Secure, which a cookie jar would not send over plain
    HTTP; the proxy header makes them (and the HTTPS redirect) apply as in production.
    """

    def __init__(self, port: int):
        self.port = port
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies = {}

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        all_headers = {"X-Forwarded-Proto": "https", "Accept": "text/html", "User-Agent": "rep-pages-bench"}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        all_headers.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, response.headers, data

    def log_in(self, username: str, password: str) -> None:
        status, _, page = self.request("GET", "/accounts/login/")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or not match or "csrftoken" not in self.cookies:
            raise RuntimeError(f"login page: {status}, token {'found' if match else 'missing'}, cookies {list(self.cookies)}")
        body = urlencode({"csrfmiddlewaretoken": match.group(1).decode(), "username": username, "password": password})
        status, headers, _ = self.request(
            "POST", "/accounts/login/", body,
            {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin,
             "Referer": f"{self.origin}/accounts/login/"},
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login failed: {status} {headers.get('Location')}, cookies {list(self.cookies)}")


def measure_http(server: "Gunicorn", username: str, pages: dict, *, runs: int, warmups: int) -> dict:
    rep_browser, anonymous = Browser(server.port), Browser(server.port)
    if set(pages) - ANONYMOUS_PAGES:
        rep_browser.log_in(username, PASSWORD)
        print(f"   logged in as {username} through the login form", flush=True)
    results = {}
    for name, url in pages.items():
        browser = anonymous if name in ANONYMOUS_PAGES else rep_browser
        for _ in range(warmups):
            status, _, _ = browser.request("GET", url)
            if status != 200:
                raise RuntimeError(f"{url}: {status} while warming up")
        gc.collect()
        times, codes, sizes = [], Counter(), []
        with CpuMeter(worker=server) as cpu:
            for _ in range(runs):
                start = time.perf_counter()
                status, _, body = browser.request("GET", url)
                times.append((time.perf_counter() - start) * 1000)
                codes[status] += 1
                sizes.append(len(body))
        results[name] = {
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1),
            "status": next(iter(codes)) if len(codes) == 1 else {str(k): v for k, v in codes.items()},
            "bytes": max(sizes),
            # CPU time per request (clock ticks of 10 ms, summed over the runs): what the page costs the
            # server whatever else runs, and what the rest of the machine used meanwhile (0 when quiet).
            "cpu_ms_per_request": {
                "gunicorn": round(cpu.used["worker"] * 1000 / runs, 1),
                "postgres": round(cpu.used["postgres"] * 1000 / runs, 1),
                "client": round(cpu.used["bench"] * 1000 / runs, 1),
            },
            "other_processes_cpu_s": cpu.other,
        }
        r = results[name]
        print(f"   {name:<13} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms  "
              f"status {r['status']}  {r['bytes']:,} bytes  gunicorn CPU {r['cpu_ms_per_request']['gunicorn']:.1f} ms/request  "
              f"others {cpu.other:.1f} CPU s", flush=True)
    return results


def measure_queries(meta: dict, pages: dict, runs: int = 5) -> dict:
    """Each page's queries, counted in this process (django.test.Client, same settings and database)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.http import QueryDict
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from core.policy import access_for
    from leads.models import Lead
    from workspace import search, selectors
    from workspace.forms import LeadFilterForm

    rep = get_user_model().objects.get(pk=meta["measured_rep_id"])
    access = access_for(rep)

    def rows(name: str, url: str, content: bytes) -> int:
        """The leads a list matches; the tasks Today shows; the lead page's timeline rows; the free slots a
        booking page offers."""
        if name in ANONYMOUS_PAGES:
            return content.count(b'class="btn btn-outline-primary booking-slot"')
        if name == "today":
            return len(selectors.today_for(access=access).tasks)
        if name == "lead":
            return len(selectors.lead_page(lead=Lead.objects.get(pk=meta["showcase_lead_id"]))["timeline"])
        if name.startswith("global_search"):  # results shown, over the three groups
            found = search.global_search(access=access, text=QueryDict(url.partition("?")[2])["q"])
            return len(found.leads) + len(found.companies) + len(found.deals)
        form = LeadFilterForm(QueryDict(url.partition("?")[2]) or None, access=access)
        return selectors.lead_list(access=access, filters=form.cleaned_data if form.is_valid() else {}).count()

    def get(url: str, client):
        """One request: its time in ms, its queries, each as (SQL as Django shows it, SQL, parameters, ms), and
        the page."""
        timer = QueryTimer()
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} in this process")
        # The captured SQL has its parameters in place (the wrapper sees every execute, so the counts agree).
        shown = [q["sql"] for q in captured.captured_queries]
        return elapsed, [(text, *query) for text, query in zip(shown, timer.queries, strict=True)], response.content

    rep_client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    rep_client.force_login(rep)
    anonymous = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    results = {}
    for name, url in pages.items():
        client = anonymous if name in ANONYMOUS_PAGES else rep_client
        get(url, client)  # warm-up
        samples = [get(url, client) for _ in range(runs)]
        counts = [len(queries) for _, queries, _ in samples]
        slowest = slowest_query([queries for _, queries, _ in samples])
        results[name] = {
            "rows": rows(name, url, samples[-1][2]),
            "queries": max(counts),
            "queries_varied_between_runs": min(counts) != max(counts),
            "in_process_p50_ms": round(statistics.median(ms for ms, _, _ in samples), 1),
            "sql_p50_ms": round(statistics.median(sum(q[3] for q in queries) for _, queries, _ in samples), 1),
            **slowest,
        }
        if name == "booking":  # the same page with one rep: the queries do not grow with the reps
            results[name]["queries_one_rep"] = len(get(url.replace(BOOKING_SLUG, BOOKING_SOLO_SLUG, 1), client)[1])
        print(f"   {name:<13} {max(counts):>3} queries  in-process p50 {results[name]['in_process_p50_ms']:.1f} ms  "
              f"SQL {results[name]['sql_p50_ms']:.1f} ms  slowest {slowest['slowest_query_ms']:.1f} ms", flush=True)
    return results


def print_report(result: dict, output: Path) -> None:
    d = result["data"]
    reused = " (data reused from an earlier run)" if result["data_reused"] else ""
    print()
    print(f"Rep pages benchmark: {result['leads']:,} leads, {result['database']}, gunicorn {result['server']['gunicorn']} "
          f"x {result['server']['workers']} workers, {result['machine']['cpus']} CPUs, "
          f"load {result['machine']['loadavg_1min_before_after']}")
    print(f"Load: {result['load_seconds']:.1f} s{reused}. calibration_s {result['calibration_s']}")
    if "measured_rep" in d:
        print(f"Rep {d['measured_rep']}: {d['measured_rep_leads']:,} leads, "
              f"{d['measured_rep_tasks_due_by_tonight']} tasks due by tonight ({d['measured_rep_tasks_overdue']} overdue), "
              f"{d['measured_rep_cold_leads']:,} cold, {d['measured_rep_new_leads']:,} new; pool {d['pool_leads']:,}")
    if "booking" in d:
        b = d["booking"]
        print(f"Booking page {b['page']}: {b['reps']} reps ({', '.join(b['time_zones'])}), {b['meetings_booked']:,} "
              f"meetings booked ({b['meetings_in_the_next_7_days']:,} in the next 7 days), seen from {b['visitor_time_zone']}")
    header = f"{'page':<20}{'rows':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'queries':>9}{'status':>8}{'SQL ms':>8}{'slowest q ms':>14}"
    print(header)
    print("-" * len(header))
    for name, p in result["pages"].items():
        misses = [k for k, ok in result["meets_targets"][name].items() if not ok]
        print(f"{name:<20}{p['rows']:>8,}{p['p50_ms']:>9.1f}{p['p95_ms']:>9.1f}{p['max_ms']:>9.1f}{p['queries']:>9}"
              f"{str(p['status']):>8}{p['sql_p50_ms']:>8.1f}{p['slowest_query_ms']:>14.1f}"
              f"{'  MISSES ' + ', '.join(misses) if misses else ''}")
    print("\nSlowest query per page (median of the runs):")
    for name, p in result["pages"].items():
        sql = " ".join(p["slowest_query"].split())
        print(f"  {name}: {p['slowest_query_ms']:.1f} ms  {sql[:200]}{'…' if len(sql) > 200 else ''}")
    t = result["targets"]
    verdict = "meets" if result["meets_all_targets"] else "MISSES"
    print(f"\nTargets p95 <= {t['p95_ms_max']} ms, <= {t['queries_max']} queries, status {t['status']}: {verdict}.")
    print(f"Results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    sys.exit(main())
