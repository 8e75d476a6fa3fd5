"""Importing 100,000 leads from a CSV file on PostgreSQL: the time, and the memory against the file's size.

    .venv/bin/python -m bench.import_bench [--quick] [--rows 100000]

Writes a CSV of N new people (names, a unique email, a phone, a job title,
one of 5,000 companies; UTF-8), and imports it as a manager would from the
command line (imports.services: upload, the suggested mapping, the run in
chunks), with crm.settings.production (DEBUG off) on its own database
`crm_bench_import` (BENCH_IMPORT_DATABASE_URL; its leads and companies are
emptied before each import). Each import runs in a process of its own, so
its peak resident memory (ru_maxrss) is the import's; the same is done with a
file a fifth the size, so "memory flat with file size" is a measurement.
Results: `import_100k_s` and `import_peak_rss_mb` in bench/results/api.json
(the other parts of that file stay), the details under `import`.
"""

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.admin_bench import code_version, ensure_database, machine_info

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_import"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "api.json"
TARGETS = {"import_100k_s_max": 60}
SHIM = '''"""crm.settings.production for import_bench."""
from crm.settings.production import *  # noqa: F403

STATIC_ROOT = {static_root!r}
CRM_IMPORTS_DIR = {imports_dir!r}
'''
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Sofia", "Tom", "Lena", "Ade"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Torvalds", "Marino", "Becker"]
TITLES = ["Head of Sales", "CTO", "Marketing Manager", "Founder", "Operations Lead", ""]


def write_file(path: Path, rows: int, seed: int) -> int:
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["First name", "Last name", "E-mail", "Phone", "Job title", "Company"])
        for n in range(rows):
            out.writerow([rng.choice(FIRST), rng.choice(LAST), f"import{seed}-{n}@bench.example",
                          f"+49 30 {rng.randrange(1000000, 9999999)}", rng.choice(TITLES),
                          f"Company {rng.randrange(5000)} GmbH"])
    return path.stat().st_size


def child(args) -> int:
    """In a process of its own: empty the leads, import the file, print the result as JSON."""
    from bench.capture_bench import settings_module_setup

    workdir = Path(args.workdir)
    settings_module_setup(workdir, "import_bench_settings", SHIM.format(
        static_root=str(workdir / "static"), imports_dir=str(workdir / "imports")), args.database_url)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from core.roles import Role
    from imports.services import lead_import_configure, lead_import_run, lead_import_upload

    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE leads_lead, leads_company, core_domainevent RESTART IDENTITY CASCADE")
    boss, _ = get_user_model().objects.get_or_create(username="bench_import_manager")
    boss.groups.set([Group.objects.get(name=Role.MANAGER.value)])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with open(args.file, "rb") as handle:
        job = lead_import_upload(file=handle, name=Path(args.file).name, by=boss)
    job = lead_import_configure(job=job, by=boss, mapping=dict(job.mapping))
    job = lead_import_run(job=job, by=boss)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_lead")
        leads = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM core_domainevent WHERE type = 'lead.created'")
        events = cursor.fetchone()[0]
    print("IMPORT_JSON " + json.dumps({
        "rows": job.rows_total, "seconds": round(seconds, 2), "status": job.status, "failure": job.failure,
        "created": job.created_count, "refused": job.error_count, "skipped": job.skipped_count,
        "leads": leads, "created_events": events, "mapping": job.mapping,
        "rss_mb_after_setup": round(rss_before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)
    return 0


def run_child(args, file: Path, workdir: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.import_bench", "--child", "--file", str(file), "--workdir", str(workdir),
           "--database-url", args.database_url]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    line = next((x for x in out.stdout.splitlines() if x.startswith("IMPORT_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"the import failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(line.removeprefix("IMPORT_JSON "))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="10,000 rows (in <database>_quick); no results file")
    parser.add_argument("--rows", type=int, help="rows in the large file (default 100,000)")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/api.json)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_IMPORT_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args, unknown = parser.parse_known_args(argv)  # scripts/bench passes every benchmark's options
    if args.child:
        return child(args)
    if unknown:
        print(f"   (ignoring options for other benchmarks: {' '.join(unknown)})", flush=True)
    args.rows = args.rows or (10_000 if args.quick else 100_000)
    if args.quick:
        parts = urlsplit(args.database_url)
        args.database_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_quick"))
    if args.output is None and not args.quick:
        args.output = DEFAULT_OUTPUT
    from bench.calibration import calibration_s

    calibration = calibration_s()
    ensure_database(args.database_url)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="import_bench_") as tmp:
        tmp = Path(tmp)
        for label, rows in (("small", args.rows // 5), ("large", args.rows)):
            file = tmp / f"leads-{rows}.csv"
            size = write_file(file, rows, seed=rows)
            workdir = tmp / label
            workdir.mkdir()
            result = run_child(args, file, workdir)
            result["file_mb"] = round(size / 1e6, 1)
            runs[label] = result
            print(f"   {rows:,} rows ({result['file_mb']} MB): {result['seconds']} s, created {result['created']:,}, "
                  f"refused {result['refused']}, peak RSS {result['peak_rss_mb']} MB", flush=True)
    large, small = runs["large"], runs["small"]
    checks = {
        "every_row_a_lead_with_its_event": large["leads"] == large["created"] == large["rows"] == large["created_events"],
        "under_60_s": large["seconds"] < TARGETS["import_100k_s_max"],
    }
    results = {
        "import_100k_s": large["seconds"],
        "import_peak_rss_mb": large["peak_rss_mb"],
        "import": {
            "benchmark": "import",
            "quick": args.quick,
            "calibration_s": calibration,
            "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
            "rows": args.rows,
            "runs": runs,
            "peak_rss_growth_mb_from_small_to_large_file": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
            "how": "manage.py-like: imports.services upload, the suggested mapping, lead_import_run in chunks of "
                   "CRM_IMPORT_CHUNK_ROWS; crm.settings.production (DEBUG off); each import in its own process",
            "database": database_info_for(args.database_url),
            "machine": machine_info(),
            "code": code_version(),
            "targets": TARGETS,
            "checks": checks,
        },
    }
    print(f"  {args.rows:,}-row import {large['seconds']} s (target {TARGETS['import_100k_s_max']}), peak RSS "
          f"{large['peak_rss_mb']} MB ({small['peak_rss_mb']} MB for a fifth of the file)", flush=True)
    if args.output:
        existing = json.loads(args.output.read_text()) if args.output.exists() else {}
        existing.update(results)
        args.output.write_text(json.dumps(existing, indent=2) + "\n")
        print(f"Results: {args.output}")
    return 0 if all(checks.values()) else 1


def database_info_for(url: str) -> dict:
    """The server's version and settings, asked over a connection of this process's own (no Django here)."""
    import psycopg

    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return {"database": f"postgresql {version}", "database_name": urlsplit(url).path.lstrip("/")}


if __name__ == "__main__":
    sys.exit(main())
