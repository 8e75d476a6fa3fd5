"""Scoring on PostgreSQL with a million leads: rescoring every lead after a rule change, and scoring one lead
after one event (what the event reader and the page-view signal do per lead).

    .venv/bin/python -m bench.scoring_bench [--leads N] [--reload] [--one-event-runs 300]

Loads N leads (default 1,000,000) into their own database, `crm_bench_scoring` (BENCH_SCORING_DATABASE_URL),
with the admin benchmark's loader, then their activity with SQL: a person's and machines' opens, clicks and
replies of our emails (about 3 per lead), page views of known leads (about 2 per lead, a third on /pricing),
and form submissions with downloads (one per 4 leads). A second run reuses the data. Then, with 16 rules
(persona, title, company size, country, source; opens, clicks, pricing clicks, replies, pricing pages, demo
form, downloads) and a 30-day half-life:

- rescore: the background job's work (`rescore_step` in batches until done) over every lead, from no scores:
  seconds, leads per second, and the worker's resident memory sampled every 50 batches (memory flat: the last
  sample against the first);
- one event: `scores_refresh` of one lead with activity, as after one event: p50/p95/max in ms over a few
  hundred leads.

Targets (issue: "rescoring 1,000,000 leads after a rule change: minutes, not hours, with memory flat; scoring
one event in the request path under 5 ms"): rescore under 30 minutes with RSS growth under 50 MB; one event
p95 under 5 ms. Results: bench/results/scoring.json, with `calibration_s`.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.calibration import calibration_s

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_scoring"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "scoring.json"
TARGET_RESCORE_S = 30 * 60
TARGET_RSS_GROWTH_MB = 50
TARGET_ONE_EVENT_P95_MS = 5.0
BATCH = 200_000


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.scoring_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads (default 1,000,000)")
    parser.add_argument("--reload", action="store_true", help="reload the data even if the database holds it")
    parser.add_argument("--one-event-runs", type=int, default=300, help="leads scored one at a time (default 300)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_SCORING_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    args, unknown = parser.parse_known_args(argv)
    if args.worker:
        return worker(args)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    calibration = calibration_s()
    print(f"   calibration_s {calibration}", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, "-m", "bench.scoring_bench", "--worker", "--worker-output", str(out),
               "--leads", str(args.leads), "--one-event-runs", str(args.one_event_runs),
               "--database-url", args.database_url, *(["--reload"] if args.reload else [])]
    subprocess.run(command, cwd=ROOT, check=True)
    measured = json.loads(out.read_text())
    out.unlink()
    rescore, one = measured["rescore"], measured["one_event"]
    result = {
        "calibration_s": calibration,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        **measured,
        "targets": {"rescore_s": TARGET_RESCORE_S, "rss_growth_mb": TARGET_RSS_GROWTH_MB,
                    "one_event_p95_ms": TARGET_ONE_EVENT_P95_MS},
        "meets_targets": {
            "rescore": rescore["seconds"] <= TARGET_RESCORE_S,
            "memory_flat": rescore["rss_growth_mb"] <= TARGET_RSS_GROWTH_MB,
            "one_event": one["p95_ms"] <= TARGET_ONE_EVENT_P95_MS,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"   rescored {rescore['leads']:,} leads in {rescore['seconds']:.0f} s ({rescore['leads_per_s']:,.0f}/s), "
          f"RSS {rescore['rss_mb_first']:.0f} -> {rescore['rss_mb_last']:.0f} MB; one event p50 {one['p50_ms']:.2f} ms, "
          f"p95 {one['p95_ms']:.2f} ms; targets met: {result['meets_targets']}", flush=True)
    return 0


# --- The worker: one database, one process ------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(args) -> int:
    from bench.admin_bench import ensure_database

    ensure_database(args.database_url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings.local"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    activity = ensure_activity(args.leads, args.reload)
    rules_set()
    result = {"leads": activity["leads"], "activity": activity, "rescore": measure_rescore(),
              "one_event": measure_one_event(args.one_event_runs)}
    args.worker_output.write_text(json.dumps(result))
    return 0


def ensure_activity(n: int, reload: bool) -> dict:
    from bench.admin_bench import ensure_data, read_saved_meta, save_meta

    _, reused = ensure_data(n, reload)
    saved = read_saved_meta("scoring_activity")
    if reused and saved is not None and saved.get("leads") == n:
        print(f"   reusing the activity ({saved['email_events']:,} email events, {saved['page_views']:,} page views, "
              f"{saved['submissions']:,} form submissions)", flush=True)
        return saved
    meta = load_activity(n)
    save_meta("scoring_activity", meta)
    return meta


def load_activity(n: int) -> dict:
    from django.db import connection, transaction

    from leads.models import Resource

    started = time.perf_counter()
    guide, _ = Resource.objects.get_or_create(slug="bench-guide", defaults={"name": "Bench guide", "kind": "guide"})
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nurturing_emailevent, traffic_pageview, leads_formsubmission RESTART IDENTITY CASCADE")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT min(id), max(id) FROM leads_lead")
        low, high = cursor.fetchone()
        for lo in range(low, high + 1, BATCH):
            hi = min(high, lo + BATCH - 1)
            with transaction.atomic():
                # Three email events per lead for 60% of the leads, over the last 120 days: opens (a fifth by
                # machines), clicks (a third on pricing links), replies.
                cursor.execute("""
                    INSERT INTO nurturing_emailevent (lead_id, kind, bounce, provider, event_id, message_id, recipient,
                        url, user_agent, occurred_at, received_at, is_machine, machine_reason, description, actions,
                        dedupe_key)
                    SELECT l.id, k.kind, '', 'bench', '', '', '',
                           CASE WHEN k.kind = 'clicked' AND random() < 0.33 THEN 'https://crm.example/pricing'
                                WHEN k.kind = 'clicked' THEN 'https://crm.example/blog/post' ELSE '' END,
                           '', now() - random() * interval '120 days', now(), k.kind = 'opened' AND random() < 0.2,
                           '', '', '', md5(l.id::text || k.n::text)
                    FROM leads_lead l
                    CROSS JOIN (VALUES (1, 'opened'), (2, 'clicked'),
                                       (3, CASE WHEN random() < 0.1 THEN 'replied' ELSE 'opened' END)) AS k(n, kind)
                    WHERE l.id BETWEEN %s AND %s AND random() < 0.6""", [lo, hi])
                # Page views of known leads: two for half of them, a third of the views on /pricing.
                cursor.execute("""
                    INSERT INTO traffic_pageview (utm_source, utm_medium, utm_campaign, utm_content, utm_term, hit_id,
                        received_at, visitor_id, url, host, path, title, referrer, referrer_host, landing_path,
                        click_id_type, click_id, is_landing, has_js, device, kind, bot_reason, address_hash, lead_id)
                    SELECT '', '', '', '', '', gen_random_uuid(), now() - random() * interval '90 days',
                           'v' || l.id, 'https://crm.example' || p.path, 'crm.example', p.path, '', '', '', '', '', '',
                           false, true, 'desktop', 'human', '', '', l.id
                    FROM leads_lead l
                    CROSS JOIN LATERAL (SELECT CASE WHEN random() < 0.33 THEN '/pricing' ELSE '/blog/post' END AS path
                                        FROM generate_series(1, 2) WHERE l.id > 0) AS p
                    WHERE l.id BETWEEN %s AND %s AND random() < 0.5""", [lo, hi])
                # One form per 4 leads: a guide download, or a demo request.
                cursor.execute("""
                    INSERT INTO leads_formsubmission (utm_source, utm_medium, utm_campaign, utm_content, utm_term,
                        click_id_type, landing_page, referrer, lead_id, resource_id, form_name, form_slug, page_url,
                        submitted_at, data, visitor_id, consent_text, consent_version, consent_given)
                    SELECT '', '', '', '', '', '', '', '', l.id, CASE WHEN r < 0.7 THEN %s END,
                           CASE WHEN r < 0.7 THEN 'Guide' ELSE 'Demo' END,
                           CASE WHEN r < 0.7 THEN 'guide' ELSE 'book-a-demo' END, '',
                           now() - random() * interval '200 days', '{}', '', '', '', false
                    FROM (SELECT id, random() AS r FROM leads_lead WHERE id BETWEEN %s AND %s) l
                    WHERE random() < 0.25""", [guide.pk, lo, hi])
            print(f"   activity up to lead {hi:>10,}  ({time.perf_counter() - started:.0f} s)", flush=True)
        cursor.execute("UPDATE leads_lead SET score = 0 WHERE score <> 0")
        cursor.execute("RESET synchronous_commit")
        for table in ("nurturing_emailevent", "traffic_pageview", "leads_formsubmission", "leads_lead"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        counts = {}
        for key, table in (("email_events", "nurturing_emailevent"), ("page_views", "traffic_pageview"),
                           ("submissions", "leads_formsubmission")):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[key] = cursor.fetchone()[0]
        cursor.execute("CHECKPOINT")
    meta = {"leads": n, **counts, "load_seconds": round(time.perf_counter() - started, 1)}
    print(f"   activity loaded in {meta['load_seconds']:.0f} s: {counts}", flush=True)
    return meta


def rules_set() -> None:
    from leads.models import Company, Persona, Resource, Source
    from scoring.models import LeadScore, RescoreJob, ScoringRule, ScoringSettings

    K = ScoringRule.Kind
    ScoringRule.objects.all().delete()
    LeadScore.objects.all().delete()
    RescoreJob.objects.all().delete()
    ScoringSettings.objects.all().delete()
    ScoringSettings.objects.create(half_life_days=30, mql_threshold=60, sql_threshold=None, creates_task=False)
    personas = list(Persona.objects.order_by("pk")[:3])
    size = Company.objects.exclude(size="").values_list("size", flat=True).first() or "11-50"
    country = Company.objects.exclude(country="").values_list("country", flat=True).first() or "Germany"
    rules = [ScoringRule(kind=K.PERSONA, persona=persona, points=points) for persona, points in zip(personas, (20, 10, 5))]
    rules += [
        ScoringRule(kind=K.TITLE, value="head", points=10), ScoringRule(kind=K.TITLE, value="intern", points=-20),
        ScoringRule(kind=K.COMPANY_SIZE, value=size, points=10), ScoringRule(kind=K.COUNTRY, value=country, points=5),
        ScoringRule(kind=K.SOURCE, source=Source.objects.order_by("pk").first(), points=5),
        ScoringRule(kind=K.EMAIL_OPEN, points=2, max_times=5), ScoringRule(kind=K.EMAIL_CLICK, points=5, max_times=3),
        ScoringRule(kind=K.EMAIL_CLICK, value="pricing", points=10, max_times=2),
        ScoringRule(kind=K.EMAIL_REPLY, points=20), ScoringRule(kind=K.PAGE_VIEW, value="/pricing", points=10, max_times=3),
        ScoringRule(kind=K.FORM, value="book-a-demo", points=30),
        ScoringRule(kind=K.DOWNLOAD, resource=Resource.objects.get(slug="bench-guide"), points=10),
        ScoringRule(kind=K.FORM, points=3),
    ]
    ScoringRule.objects.bulk_create(rules)


def measure_rescore() -> dict:
    from django.db import connection

    from leads.models import Lead
    from scoring.models import RescoreJob
    from scoring.services import rescore_step

    with connection.cursor() as cursor:
        cursor.execute("UPDATE leads_lead SET score = 0 WHERE score <> 0")
    job = RescoreJob.objects.create(reason="bench", total=Lead.objects.count())
    samples, batches = [], 0
    started = time.perf_counter()
    while rescore_step(job_id=job.pk):
        batches += 1
        if batches == 1 or batches % 50 == 0:
            samples.append(round(rss_mb(), 1))
            print(f"   rescored {batches * 2000:>10,} leads ({time.perf_counter() - started:.0f} s, "
                  f"RSS {samples[-1]:.0f} MB)", flush=True)
    seconds = time.perf_counter() - started
    samples.append(round(rss_mb(), 1))
    job.refresh_from_db()
    return {
        "leads": job.done, "changed": job.changed, "batches": batches, "batch_size": 2000,
        "seconds": round(seconds, 1), "leads_per_s": round(job.done / seconds),
        "rss_mb_first": samples[0], "rss_mb_last": samples[-1], "rss_mb_max": max(samples),
        "rss_growth_mb": round(samples[-1] - samples[0], 1), "rss_samples_mb": samples,
    }


def measure_one_event(runs: int) -> dict:
    from django.db import connection

    from scoring.services import scores_refresh

    with connection.cursor() as cursor:
        # Leads with activity and no reply yet: the reply each gets below changes its score, so every run writes.
        cursor.execute("""SELECT lead_id FROM nurturing_emailevent WHERE kind = 'clicked'
                          EXCEPT SELECT lead_id FROM nurturing_emailevent WHERE kind = 'replied' LIMIT 20000""")
        ids = [row[0] for row in cursor.fetchall()]
    picked = random.Random(7).sample(ids, min(runs, len(ids)))
    for lead_id in picked[:20]:  # warm up
        scores_refresh(lead_ids=[lead_id])
    writes = 0
    times = []
    for n, lead_id in enumerate(picked):
        # The event itself (a person's reply) is stored first, as the webhook stores it; then the lead is scored.
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO nurturing_emailevent (lead_id, kind, bounce, provider, event_id, message_id, recipient, url,
                    user_agent, occurred_at, received_at, is_machine, machine_reason, description, actions, dedupe_key)
                VALUES (%s, 'replied', '', 'bench', '', '', '', '', '', now(), now(), false, '', '', '', %s)""",
                           [lead_id, f"bench-one-event-{lead_id}-{n}-{time.time_ns()}"])
        started = time.perf_counter()
        refreshed = scores_refresh(lead_ids=[lead_id])
        times.append((time.perf_counter() - started) * 1000)
        writes += refreshed.changed
    times.sort()
    return {"runs": len(times), "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2), "max_ms": round(times[-1], 2),
            "scores_written": writes,
            "what": "after a person's reply is stored: scores_refresh of that lead (rules, facts, compare, write)"}


if __name__ == "__main__":
    sys.exit(main())
