"""What each fault test measured, gathered into bench/results/faults.json.

A fault test asserts its counts (no duplicate, nothing lost, every `unknown` row explained) and hands them to
`fault_record`. When CRM_FAULTS_REPORT names a file (`python -m bench.faults_bench` sets it), the figures are
merged into it under the fault's name, so one run of the suite writes the whole report; otherwise nothing is
written and the test's assertions are all there is.
"""

import fcntl
import json
import os
from pathlib import Path


def fault_record(name: str, *, recovery_s: float | None, duplicates: int, lost: int, unknown: int,
                 explained: str = "", **counts) -> dict:
    """Record one fault's outcome: `recovery_s` from the fault's end to the backlog drained again (None: the
    fault stopped nothing), `duplicates` (emails, webhooks or rows stored twice), `lost` (acknowledged or due
    and never done), `unknown` (deliveries left `unknown`: counted, never resent) and what explains them;
    `counts` any other figures worth reading beside them (emails sent, hits stored, refusals...)."""
    entry = {"recovery_s": None if recovery_s is None else round(recovery_s, 2), "duplicates": duplicates,
             "lost": lost, "unknown": unknown, **({"unknown_explained": explained} if explained else {}), **counts}
    path = os.environ.get("CRM_FAULTS_REPORT")
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            report = json.loads(target.read_text()) if target.exists() and target.stat().st_size else {}
            report.setdefault("faults", {})[name] = entry
            target.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return entry
