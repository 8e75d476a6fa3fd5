"""Mutation testing of the modules that guard people and data, as `make mutation` runs it.

    .venv/bin/python scripts/mutation.py [MODULE ...]

MODULE is a path such as `core/policy.py`; without one, every module in
`[tool.mutmut] only_mutate` (pyproject.toml). In a module listed under
`[tool.crm.mutation.functions]`, only those functions are mutated.

Each module is one `mutmut run` (under `nice`, at most MUTATION_CHILDREN tests
processes at once, 2 by default), so its wall time is its own. Each mutant
runs only the tests that call the function it changed (mutmut learns which
from one traced run of the suite, kept in mutants/mutmut-stats.json and
redone when the code or a test changes). Each test process starts from a copy
of one database migrated beforehand (CRM_TEST_DB_TEMPLATE, tests/conftest.py),
not by migrating its own. Prints, per module: mutants, killed,
survived, no tests, timeouts, the kill rate and the wall time; writes the
mutants that no test noticed, each with its diff, to var/mutation/survivors.txt
and mutmut's output to var/mutation/<module>.log.
"""

import argparse
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"
STATS = ROOT / "mutants" / "mutmut-stats.json"

# mutmut's exit codes, grouped the way the summary reads. A timeout counts as
# noticed (the tests hang or run out of time), like in most mutation tools.
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {24, -24, 36, 152, 255}


def config() -> tuple[list[str], dict[str, list[str]]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    modules = data["tool"]["mutmut"]["only_mutate"]
    functions = data.get("tool", {}).get("crm", {}).get("mutation", {}).get("functions", {})
    unknown = set(functions) - set(modules)
    if unknown:
        sys.exit(f"[tool.crm.mutation.functions] names modules that only_mutate does not list: {sorted(unknown)}")
    return modules, functions


def mutant_globs(module: str, functions: list[str] | None) -> list[str]:
    """mutmut's names for a module's mutants: `leads.services.x_lead_change_stage__mutmut_3`."""
    dotted = module.removesuffix(".py").replace("/", ".")
    if not functions:
        return [f"{dotted}.*"]
    return [f"{dotted}.x_{name}__mutmut_*" for name in functions]


def code_changed_since_stats() -> bool:
    """Whether the traced run is out of date.

    mutmut traces new tests, but not edited tests (which may call other
    functions now) nor functions it could not trace before: their mutants
    would count as "no tests". Any change to the code or the tests means a
    new trace.
    """
    if not STATS.exists():
        return False
    traced = STATS.stat().st_mtime
    folders = ["tests", *tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["source_paths"]]
    return any(path.stat().st_mtime > traced for folder in folders for path in (ROOT / folder).rglob("*.py"))


def source_changed_since_run(module: str) -> bool:
    """A changed module is run whole: mutmut numbers a function's mutants anew when a pragma
    changes, but keeps the old results when the function's code is the same."""
    meta = ROOT / "mutants" / f"{module}.meta"
    return not meta.exists() or (ROOT / module).stat().st_mtime > meta.stat().st_mtime


def database_template() -> Path:
    """One migrated SQLite database, copied by each test process (tests/conftest.py) instead of migrating its own."""
    template = OUT / "template.sqlite3"
    for leftover in (template, template.with_name(template.name + "-wal"), template.with_name(template.name + "-shm")):
        leftover.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--settings=crm.settings.test", "--verbosity=0"],
        cwd=ROOT, check=True, env={**os.environ, "TEST_DATABASE_URL": f"sqlite:///{template}"},
    )
    return template


def mutmut_run(names: list[str], children: int, template: Path, out) -> int:
    return subprocess.call(
        ["nice", "-n", "10", str(MUTMUT), "run", "--max-children", str(children), *names],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "CRM_TEST_DB_TEMPLATE": str(template)},
    )


def results(module: str, globs: list[str]) -> dict[str, int | None]:
    import json

    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: code for name, code in codes.items() if any(fnmatch(name, g) for g in globs)}


def diff(name: str, module: str) -> str:
    # mutmut reads its configuration and mutants/ relative to the working directory.
    os.chdir(ROOT)
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    try:
        return get_diff_for_mutant(name, path=module)
    except Exception as exc:  # a report line is better than no report
        return f"(no diff: {exc})"


def main() -> int:
    modules, functions = config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"one of: {' '.join(modules)}")
    parser.add_argument(
        "--unkilled", action="store_true",
        help="run again only the mutants the last run did not kill (after writing tests for them); "
        "a module changed since is run whole",
    )
    args = parser.parse_args()
    chosen = args.modules or modules
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        parser.error(f"not configured for mutation testing: {' '.join(unknown)}. Choose from: {' '.join(modules)}")
    children = int(os.environ.get("MUTATION_CHILDREN", "2"))

    OUT.mkdir(parents=True, exist_ok=True)
    if code_changed_since_stats():
        print("The code or the tests changed since mutmut last traced the suite: tracing it again (a minute or two).")
        STATS.unlink()

    template = database_template()
    rows, survivors, failed = [], [], []
    for module in chosen:
        globs = mutant_globs(module, functions.get(module))
        log = OUT / f"{module.replace('/', '.')}.log"
        print(f"== {module}: mutmut run ({children} at a time), output in {log.relative_to(ROOT)}", flush=True)
        started = time.monotonic()
        with open(log, "w") as out:
            names = globs
            if args.unkilled and not source_changed_since_run(module):
                names = [name for name, c in results(module, globs).items() if c not in KILLED | TIMEOUT]
                print(f"   only the {len(names)} mutants the last run did not kill", flush=True)
            code = mutmut_run(names, children, template, out) if names else 0
        seconds = time.monotonic() - started
        found = results(module, globs)
        if code != 0 or not found:
            failed.append(module)
            print(f"   mutmut failed (exit {code}): see {log.relative_to(ROOT)}", flush=True)
        counts = Counter()
        for name, exit_code in sorted(found.items()):
            kind = (
                "killed" if exit_code in KILLED else "survived" if exit_code in SURVIVED
                else "no tests" if exit_code in NO_TESTS else "timeout" if exit_code in TIMEOUT
                else "not run" if exit_code is None else "other"
            )
            counts[kind] += 1
            if kind not in ("killed", "timeout"):
                survivors.append((module, name, kind))
        total = sum(counts.values())
        rate = (counts["killed"] + counts["timeout"]) / total if total else 0.0
        rows.append((module, total, counts, rate, seconds))
        print(f"   {total} mutants, {counts['killed']} killed, {counts['survived']} survived, "
              f"{rate:.0%} killed, {seconds:.0f} s", flush=True)

    header = f"{'module':30} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'timeout':>7} {'other':>5} {'kill rate':>9} {'wall':>7}"
    lines = [header, "-" * len(header)]
    for module, total, c, rate, seconds in rows:
        other = c["other"] + c["not run"]
        lines.append(f"{module:30} {total:7} {c['killed']:6} {c['survived']:8} {c['no tests']:8} {c['timeout']:7} "
                     f"{other:5} {rate:9.1%} {seconds:6.0f}s")
    summary = "\n".join(lines)
    print()
    print(summary)
    print("\nKill rate: (killed + timeout) / mutants. Not killed: survived (the tests ran and passed), "
          "no tests (no test calls the function), other (mutmut could not tell).")

    report = [f"# Mutants no test noticed ({time.strftime('%Y-%m-%d %H:%M')}): {len(survivors)}",
              "# Kill one with a test that fails on it; a truly equivalent one gets `# pragma: no mutate` and a comment.",
              "# Retry one: .venv/bin/mutmut run NAME   Show one: .venv/bin/mutmut show NAME", ""]
    for module, name, kind in survivors:
        report += [f"## {name} ({kind})", diff(name, module).strip(), ""]
    (OUT / "survivors.txt").write_text("\n".join(report) + "\n")
    (OUT / "summary.txt").write_text(summary + "\n")
    print(f"\n{len(survivors)} mutants not killed, with their diffs: {(OUT / 'survivors.txt').relative_to(ROOT)}")
    if failed:
        print(f"mutmut did not finish for: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
