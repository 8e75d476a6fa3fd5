"""How fast queued captures are written, by 1, 2 and 4 drains side by side.

    .venv/bin/python -m bench.capture_drains [--captures 1500]

Fills a Redis capture queue (db 10, env BENCH_DRAINS_REDIS_URL) with checked
submissions of new people for capture_bench's form, in capture_bench's
database (`crm_bench_capture`, with its 1,000,000 leads: run capture_bench
first), then times `capture.services.captures_ingest` (batches of 50) run by
N processes at once until the queue is empty. Results:
bench/results/capture_drains.json, with calibration_s.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
import uuid
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_capture"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"


def setup(args):
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "crm.settings.local", "DATABASE_URL": args.database_url, "DJANGO_DEBUG": "false",
        "CRM_CAPTURE_QUEUE_URL": args.redis_url, "CRM_RATE_LIMIT_URL": args.redis_url, "LOG_LEVEL": "WARNING",
    })
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def fill(n: int, run: str) -> None:
    from django.utils import timezone

    from capture.models import CaptureForm
    from capture.services import capture_queue

    form = CaptureForm.objects.order_by("pk").first()
    if form is None:
        raise SystemExit("No capture form in the database: run `python -m bench.capture_bench` first.")
    queue = capture_queue()
    queue.redis.delete(queue.KEY)
    now = timezone.now().isoformat()
    for i in range(n):
        queue.push({"id": uuid.uuid4().hex, "form": form.pk, "at": now, "answers": {}, "consent": True,
                    "fields": {"email": f"drain-{run}-{i}@example.com", "first_name": "Drain"}, "context": {"hosted": True}})


def drain(_) -> int:
    from django.db import connections

    from capture.services import captures_ingest

    connections.close_all()  # each forked process opens its own
    total = 0
    while n := captures_ingest(limit=50):
        total += n
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture_drains", description=__doc__.split("\n\n")[0])
    parser.add_argument("--captures", type=int, default=1500)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_CAPTURE_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_DRAINS_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "capture_drains.json")
    args, _ = parser.parse_known_args(argv)
    from bench.calibration import calibration_s

    calibration = calibration_s()
    setup(args)
    from django.db import connections

    from bench.admin_bench import code_version, database_info, machine_info

    runs = []
    for drains in (1, 2, 4):
        fill(args.captures, uuid.uuid4().hex[:8])
        connections.close_all()
        started = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(drains) as pool:
            written = sum(pool.map(drain, range(drains)))
        seconds = time.perf_counter() - started
        runs.append({"drains": drains, "captures": written, "seconds": round(seconds, 2),
                     "captures_per_s": round(written / seconds, 1)})
        print(f"   {drains} drain(s): {written:,} captures in {seconds:.1f} s = {written / seconds:.0f}/s", flush=True)
    result = {
        "benchmark": "capture_drains", "calibration_s": calibration, "runs": runs, "code": code_version(),
        **database_info(), "machine": machine_info(),
        "measured_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results: {args.output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
