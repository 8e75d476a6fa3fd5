"""The fault suite's figures: bench/results/faults.json.

Runs the fault tests (tests/faults/: workers killed and paused, two beats, PostgreSQL restarted and stormed,
the SMTP server down, refusing or hanging, a provider answering 429 and 5xx, the embedded default's database
full or read-only) with CRM_FAULTS_REPORT set, so that each test merges what it counted into one report: per
fault `recovery_s`, `duplicates`, `lost`, `unknown` (and what explains them), and the counts behind them. The
tests assert the same counts: a fault that loses or doubles anything fails the run and writes no results file.

    .venv/bin/python -m bench.faults_bench            # PostgreSQL + Redis on this machine (make bench starts them)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "faults.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_faults"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_FAULTS_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_FAULTS_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args, _ = parser.parse_known_args(argv)  # make bench passes every benchmark the same arguments

    from bench.calibration import calibration_s

    calibration = calibration_s()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="faults-bench-") as workdir:
        report = Path(workdir) / "faults.json"
        env = {**os.environ, "CRM_FAULTS_REPORT": str(report), "CRM_REQUIRE_SERVICES": "1"}
        python = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        runs = [
            # The embedded default: SQLite, in the normal suite.
            ({**env, "TEST_DATABASE_URL": ""}, ["-m", "not integration", "tests/faults"]),
            # The production stack: PostgreSQL, Redis, real workers, one process (they share the broker).
            ({**env, "TEST_DATABASE_URL": args.database_url, "CELERY_BROKER_URL": args.redis_url},
             ["-m", "integration", "--create-db", "tests/faults"]),
        ]
        for run_env, selection in runs:
            print(f"== pytest {' '.join(selection)}", flush=True)
            if subprocess.run(python + selection, cwd=ROOT, env=run_env).returncode:
                print("A fault test failed: no results written.", file=sys.stderr)
                return 1
        faults = json.loads(report.read_text())["faults"]
    result = {
        "benchmark": "faults",
        "calibration_s": calibration,
        "bench_seconds": round(time.perf_counter() - started, 1),
        "faults": faults,
        "totals": {key: sum(f[key] for f in faults.values()) for key in ("duplicates", "lost", "unknown")},
        "machine": {"cpus": os.cpu_count(), "loadavg_1min_after": round(os.getloadavg()[0], 2)},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"{len(faults)} faults: duplicates {result['totals']['duplicates']}, lost {result['totals']['lost']}, "
          f"unknown {result['totals']['unknown']} (each explained in the file). Results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
